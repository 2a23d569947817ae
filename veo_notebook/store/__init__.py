"""The local history of raw records: one SQLite file (WAL), the memory the API lacks.

record-info forgets a task after 14 days; the store does not. It keeps the envelope
JSON text of every record exactly as fetched, with the time it was fetched, so a better
parser later never needs a re-fetch. A record already held is never replaced by a worse
answer (a 422 for an expired record, a fetch error): the store keeps the last good one.

The parts, split by table as sqlite-utils splits ``Database`` and ``Table``:

* :mod:`._db` — :class:`Database`: the connection, opening (a file that is not SQLite,
  or not a veo-notebook store, is a :class:`StoreError`; one written by a newer version
  a :class:`SchemaVersionError`; neither is ever modified), transactions;
* :mod:`._translate` — the one place an ``sqlite3`` error becomes a :class:`StoreError`;
* :mod:`._migrations` — the store's own tables, made, checked and migrated;
* :mod:`._records` — :class:`Store`: the records, their row versions;
* :mod:`.table` — :class:`Table`, the base of a stage's own table (made on its first
  write): ``archive`` (:class:`veo_notebook.archive.ArchiveTable`) and ``callbacks``
  (:class:`veo_notebook.callbacks.CallbackTable`) live beside their stages.

Tables::

    meta(key TEXT PRIMARY KEY, value TEXT)      -- store_version, created_at, created_by,
                                                -- store_id, row_version
    records(task_id TEXT PRIMARY KEY, raw TEXT, fetched_at REAL, fetch_error TEXT,
            success_flag INTEGER, terminal INTEGER, create_time TEXT, version INTEGER)
    -- terminal = 1: not worth asking again (veo_notebook.schema.is_pending is false)
    -- version: meta.row_version when the row was last written, set by triggers (so any
    -- writer, this code or not, versions its rows); what the frame cache is keyed on
    callbacks(...)   -- veo_notebook/callbacks/_table.py: every genuine delivery, raw
    archive(...)     -- veo_notebook/archive/_table.py: the files saved, by task and kind

>>> with Store(":memory:") as store:
...     store.put("t1", '{"code":200,"msg":"success","data":{"successFlag":1}}', fetched_at=0.0)
...     store.terminal_ids(["t1", "t2"])
{'t1'}
"""

from __future__ import annotations

from ._db import SQLITE_MAGIC, Database
from ._migrations import STORE_VERSION
from ._records import (
    ENV_STORE,
    EXPIRED_ERROR,
    Answer,
    RawChanges,
    RawRecords,
    Store,
    StoreRow,
    default_store_path,
)
from .table import Table

__all__ = [
    "ENV_STORE",
    "EXPIRED_ERROR",
    "SQLITE_MAGIC",
    "STORE_VERSION",
    "Answer",
    "Database",
    "RawChanges",
    "RawRecords",
    "Store",
    "StoreRow",
    "Table",
    "default_store_path",
]
