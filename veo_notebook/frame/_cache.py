"""The parsed-frame cache beside a store file: parse only what was written since.

``<store>.frame-cache.arrow`` (an Arrow IPC file) holds the typed frame of every record
of the store, with each row's ``rowid`` and row ``version`` (:meth:`Store.changes_since`),
and a key: the store's id, its row version when the cache was built, the schema and
parser versions, a digest of the parser's source and the ``naive_tz``. Opening the
store reads the cache, asks the store for the rows written after that version (new or
changed) and parses only those; deleted rows are dropped. Any key mismatch (a parser
or schema change, another store, another zone) means a full parse.

Safe by construction: the store's versions only grow and every write to a row gives it
a new one, so a cached row whose version the store still holds is that row exactly;
the reads happen in one snapshot, so a writer meanwhile is seen next time, never
half. The file is written to a temporary name and renamed (a reader sees the old cache
or the new one); deleting it loses nothing (the raw records stay the truth).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import schema
from ..store import RawRecords, Store

log = logging.getLogger(__name__)

#: Bumped whenever a reading rule changes what a record parses to (the source digest
#: below catches edits too; this says so on purpose).
PARSER_VERSION = 1
#: The cache file beside ``<store>``: ``<store>`` + this suffix.
SUFFIX = ".frame-cache.arrow"
_KEY = b"veo_notebook.frame_cache"
_ROWID, _VERSION = "__rowid", "__version"

Parse = Callable[[RawRecords], pd.DataFrame]


def _source_digest() -> str:
    """A digest of the parser's and schema's source: an edit invalidates every cache."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for p in [*sorted(here.glob("*.py")), here.parent / "schema.py"]:
        with contextlib.suppress(OSError):
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


_DIGEST = _source_digest()


def path_for(store: Store) -> Path | None:
    """The cache file of ``store`` (None for an in-memory store)."""
    if store.path == ":memory:":
        return None
    return Path(store.path + SUFFIX)


def _key(store: Store, naive_tz: str) -> dict[str, object]:
    return {
        "store_id": store.store_id,
        "schema": schema.SCHEMA_VERSION,
        "parser": PARSER_VERSION,
        "source": _DIGEST,
        "naive_tz": naive_tz,
    }


def _read(path: Path, key: dict[str, object]) -> tuple[pa.Table, int] | None:
    try:
        with pa.OSFile(str(path), "rb") as f:
            table = pa.ipc.open_file(f).read_all()
    except (OSError, pa.ArrowInvalid) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.debug("frame cache %s unreadable (%s): a full parse", path, exc)
        return None
    meta = json.loads((table.schema.metadata or {}).get(_KEY, b"{}"))
    if meta.get("key") != key:
        return None
    return table, int(meta["version"])


def _write(path: Path, table: pa.Table, key: dict[str, object], version: int) -> None:
    meta = {_KEY: json.dumps({"key": key, "version": version}).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, pa.ipc.new_file(f, table.schema) as w:
            w.write_table(table)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only folder: the frame is right, just not cached
        log.debug("frame cache %s not written: %s", path, exc)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _table(df: pd.DataFrame, rowids: list[int], versions: int) -> pa.Table:
    t = pa.Table.from_pandas(df, preserve_index=False)
    n = len(df)
    t = t.append_column(_ROWID, pa.array(rowids, pa.int64()))
    return t.append_column(_VERSION, pa.array(np.full(n, versions), pa.int64()))


def _frame(table: pa.Table) -> pd.DataFrame:
    t = table.drop_columns([_ROWID, _VERSION])
    return t.to_pandas(types_mapper=schema.pandas_type)


def cached_frame(store: Store, naive_tz: str, parse: Parse, chunk: int) -> pd.DataFrame:
    """The frame of every record of ``store``, from the cache plus what was written since.

    Rows keep their place (rowid order): a changed row's new state takes its old row's
    position, new rows come after every row held (SQLite gives a new row a rowid above
    all others), deleted rows are left out.
    """
    path = path_for(store)
    key = _key(store, naive_tz)
    old = _read(path, key) if path is not None else None
    with store.snapshot():
        since = old[1] if old is not None else 0
        changes = store.changes_since(since)
        if old is None or changes.version < since:  # none, or not this store's past
            return cached_frame_full(store, naive_tz, parse, path, key, chunk)
        table = old[0]
        cached = table.column(_ROWID).to_numpy()
        changed = np.asarray(changes.rowids, dtype=np.int64)
        pos = np.minimum(np.searchsorted(cached, changed), max(len(cached) - 1, 0))
        hit = (cached[pos] == changed) if len(cached) else np.zeros(len(changed), bool)
        keep = None
        if store.count(since) != len(cached) - int(hit.sum()):  # rows were deleted
            keep = np.isin(cached, np.asarray(store.rowids(since), dtype=np.int64))
            keep[pos[hit]] = True
    if not changes.rowids and keep is None:
        return _frame(table)  # nothing written since: the cache as it is
    new = _table(parse(changes.records), changes.rowids, changes.version)
    try:
        both = pa.concat_tables([table.replace_schema_metadata(new.schema.metadata), new])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # types drifted: start over
        log.debug("frame cache %s not mergeable (%s): a full parse", path, exc)
        return cached_frame_full(store, naive_tz, parse, path, key, chunk)
    n = len(cached)
    order = np.arange(n)
    order[pos[hit]] = n + np.flatnonzero(hit)  # a changed row in its old place
    if keep is not None:
        order = order[keep]
    added = n + np.flatnonzero(~hit)
    order = np.concatenate([order, added])
    rowids = both.column(_ROWID).to_numpy()[order]
    if len(rowids) > 1 and not bool(np.all(rowids[1:] > rowids[:-1])):  # a rowid reused
        order = order[np.argsort(rowids, kind="stable")]
    merged = both if np.array_equal(order, np.arange(len(both))) else both.take(order)
    if path is not None:
        _write(path, merged, key, changes.version)
    return _frame(merged)


def full_table(store: Store, parse: Parse, chunk: int) -> tuple[pa.Table, int]:
    """Every row of ``store`` parsed, ``chunk`` rows at a time in one snapshot, as one
    table (with rowids and versions), and the store's row version.

    Only one chunk's raw texts and parse buffers are alive at once (the memory a build
    needs stays near the frame's own size); the chunks' columns are joined without a copy.
    """
    parts: list[pa.Table] = []
    after, version = 0, 0
    with store.snapshot():
        while True:
            page = store.changes_since(0, after=after, limit=chunk)
            version = page.version
            if not page.rowids and parts:
                break
            parts.append(_table(parse(page.records), page.rowids, page.version))
            if len(page.rowids) < chunk:
                break
            after = page.rowids[-1]
            del page
    if len(parts) == 1:
        return parts[0], version
    meta = parts[0].schema.metadata
    return pa.concat_tables([p.replace_schema_metadata(meta) for p in parts]), version


def full_frame(store: Store, parse: Parse, chunk: int) -> pd.DataFrame:
    """Every row of ``store`` parsed in chunks (see :func:`full_table`), no cache."""
    return _frame(full_table(store, parse, chunk)[0])


def cached_frame_full(
    store: Store,
    naive_tz: str,
    parse: Parse,
    path: Path | None,
    key: dict[str, object],
    chunk: int,
) -> pd.DataFrame:
    """A full parse, written as the new cache."""
    table, version = full_table(store, parse, chunk)
    if path is not None:
        _write(path, table, key, version)
    return _frame(table)
