"""The records table: every record-info answer as received, and what is read of it.

:class:`Store` is the :class:`~veo_notebook.store._db.Database` plus the ``records``
table. A record already held is never replaced by a worse answer (a 422 for an expired
record, a fetch error): the store keeps the last good one. Each row carries a version
(set by triggers, so any writer versions its rows): :meth:`Store.changes_since` reads
what changed after a version, which is what the frame cache is keyed on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import orjson

from .. import schema
from ..config import ENV_STORE
from ..errors import InputError
from ._db import Database
from ._migrations import has_versions
from ._translate import READ, sqlite_errors

__all__ = [
    "ENV_STORE",
    "EXPIRED_ERROR",
    "Answer",
    "RawChanges",
    "RawRecords",
    "Store",
    "StoreRow",
    "default_store_path",
]

#: The API forgot this record for good (re-exported from the rules in :mod:`.schema`).
EXPIRED_ERROR = schema.EXPIRED_ERROR
#: File name of the default store inside the user data folder.
DEFAULT_STORE_NAME = "store.sqlite"
#: A sync reads its changes through the version index while at most this share of the
#: rows changed (then it sorts the few; past it, a walk in rowid order is cheaper).
CHANGES_BY_INDEX_SHARE = 0.2
# A new answer replaces the stored one unless it is worse: an error never replaces a record.
_UPSERT = """
INSERT INTO records (task_id, raw, fetched_at, fetch_error, success_flag, terminal, create_time)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (task_id) DO UPDATE SET
    raw = excluded.raw, fetched_at = excluded.fetched_at, fetch_error = excluded.fetch_error,
    success_flag = excluded.success_flag, terminal = excluded.terminal,
    create_time = excluded.create_time
WHERE excluded.fetch_error IS NULL OR records.fetch_error IS NOT NULL
"""


class RawRecords(NamedTuple):
    """Stored rows as parallel columns, the texts as bytes (see :meth:`Store.raw_records`)."""

    task_ids: list[str]
    texts: list[bytes | None]
    fetched_at: list[float]
    fetch_errors: list[str | None]


class RawChanges(NamedTuple):
    """Rows written after a row version (see :meth:`Store.changes_since`), in rowid order."""

    version: int  # the store's row version when read
    rowids: list[int]
    records: RawRecords


class StoreRow(TypedDict):
    """One stored record, as :func:`veo_notebook.frame.to_frame` takes it."""

    task_id: str
    raw: str | None
    fetched_at: float
    fetch_error: str | None


def default_store_path() -> Path:
    """The store the ``veo-notebook`` command keeps its history in unless told otherwise.

    ``$VEO_STORE`` if set, else ``store.sqlite`` in the user data folder (platformdirs:
    ``$XDG_DATA_HOME/veo-notebook``, by default ``~/.local/share/veo-notebook``, on Linux).
    The Python API has no default: ``fetch_records(store=None)`` keeps answers in memory.

    >>> default_store_path().name  # doctest: +SKIP
    'store.sqlite'
    """
    env = os.environ.get(ENV_STORE, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("veo-notebook", appauthor=False)) / DEFAULT_STORE_NAME


class Answer(NamedTuple):
    """One answer to store. ``facts`` is the envelope's (successFlag, createTime) when the
    caller has already read it (the client has); else the store reads it from ``raw``."""

    task_id: str
    raw: str | None
    fetched_at: float | None = None
    fetch_error: str | None = None
    facts: tuple[int | None, str | None] | None = None


def _index(a: Answer) -> tuple[int | None, bool, str | None]:
    """(successFlag, settled, createTime) of an answer: the ``records`` index columns.

    ``settled`` is "not worth asking again", by :func:`veo_notebook.schema.is_pending`.
    """
    facts = a.facts
    if a.fetch_error is not None:
        facts = None, None
    elif facts is None:
        try:
            facts = schema.envelope_facts(None if a.raw is None else orjson.loads(a.raw))
        except orjson.JSONDecodeError:
            facts = None, None
    flag, create_time = facts
    return flag, not schema.is_pending(schema.status_of(flag), a.fetch_error), create_time


class Store(Database):
    """SQLite history of raw records; a context manager, safe to share between threads.

    Parameters
    ----------
    path : str or Path
        The store file or ``":memory:"``.
    create : bool
        Create the store if it is missing (the default). ``False`` opens an existing
        store only, for readers: a mistyped path is an error, never a new empty store.

    Raises
    ------
    StoreNotFoundError
        ``create=False`` and there is no store at ``path`` (or only an empty file).
    StoreError
        The file is not SQLite, not a veo-notebook store, or cannot be opened.
    SchemaVersionError
        The store was written by a newer version of veo-notebook.

    >>> with Store(":memory:") as s:
    ...     s.put("t1", None, fetched_at=0.0, fetch_error="422 record is null.")
    ...     s.get("t1")["fetch_error"]
    '422 record is null.'
    """

    # ----------------------------------------------------------------- writing
    def put(
        self,
        task_id: str,
        raw: str | None,
        *,
        fetched_at: float | None = None,
        fetch_error: str | None = None,
    ) -> None:
        """Store one answer (``raw`` envelope text and/or ``fetch_error``).

        An answer with a ``fetch_error`` never replaces a record already held.

        >>> with Store(":memory:") as s:
        ...     s.put("t", '{"code":200,"data":{"successFlag":0}}', fetched_at=1.0)
        ...     len(s)
        1
        """
        self.put_many([(task_id, raw, fetched_at, fetch_error)])

    def put_many(
        self, rows: Iterable[Answer | tuple[str, str | None, float | None, str | None]]
    ) -> int:
        """Store many answers (:class:`Answer` or ``(task_id, raw, fetched_at, fetch_error)``)
        in one transaction.

        Returns the number of rows given. ``fetched_at`` None means now.
        """
        now = time.time()
        params = []
        for row in rows:
            a = row if isinstance(row, Answer) else _answer(row)
            flag, settled, create_time = _index(a)
            when = now if a.fetched_at is None else _seconds(a)
            params.append((a.task_id, a.raw, when, a.fetch_error, flag, int(settled), create_time))
        if not params:
            return 0
        with self.writing() as conn:
            conn.executemany(_UPSERT, params)
        return len(params)

    # ----------------------------------------------------------------- reading
    def get(self, task_id: str) -> StoreRow | None:
        """The stored row of ``task_id``, or None.

        >>> with Store(":memory:") as s:
        ...     s.get("nope") is None
        True
        """
        rows = self.query(
            "SELECT task_id, raw, fetched_at, fetch_error FROM records WHERE task_id = ?",
            (task_id,),
        )
        return _row(rows[0]) if rows else None

    def terminal_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` not worth asking again (:func:`veo_notebook.schema.is_pending` is
        false: successFlag 1, 2 or 3, an unknown flag, expired, or refused for good)."""
        sql = "SELECT task_id FROM records WHERE terminal = 1 AND task_id IN ({marks})"
        return {r[0] for r in self.chunked(sql, list(ids))}

    def rows(self, ids: Iterable[str] | None = None) -> list[StoreRow]:
        """Stored rows: of ``ids`` in their order (ids not held are skipped), or all of them.

        >>> with Store(":memory:") as s:
        ...     s.put("b", None, fetched_at=1.0, fetch_error="422 record is null.")
        ...     [r["task_id"] for r in s.rows(["a", "b"])]
        ['b']
        """
        return [_row(r) for r in self._select("raw", ids)]

    def raw_records(self, ids: Iterable[str] | None = None) -> RawRecords:
        """The stored rows (see :meth:`rows`) as columns, each text the UTF-8 bytes SQLite
        holds (no decoding to ``str``): what :func:`veo_notebook.frame.from_store` parses."""
        found = self._select("CAST(raw AS BLOB)", ids)
        return RawRecords(
            [r[0] for r in found],
            [r[1] for r in found],
            [r[2] for r in found],
            [r[3] for r in found],
        )

    def _select(self, raw: str, ids: Iterable[str] | None) -> list[tuple[Any, ...]]:
        """(task_id, ``raw`` expression, fetched_at, fetch_error) of ``ids`` in their order
        (ids not held skipped), or of every row in insertion order."""
        cols = f"SELECT task_id, {raw}, fetched_at, fetch_error FROM records"
        if ids is None:
            return self.query(cols + " ORDER BY rowid")
        order = list(dict.fromkeys(ids))
        found = {r[0]: r for r in self.chunked(cols + " WHERE task_id IN ({marks})", order)}
        return [found[i] for i in order if i in found]

    # ----------------------------------------------------------------- versions
    @property
    def versioned(self) -> bool:
        """True if the rows carry versions (a read-only store made before them does not)."""
        with self._lock, sqlite_errors(self.path, READ):
            return has_versions(self._connection)

    @property
    def store_id(self) -> str:
        """A random id given to this store when it was made (a copy keeps it)."""
        return str(self.query("SELECT value FROM meta WHERE key = 'store_id'")[0][0])

    def row_version(self) -> int:
        """The version of the latest row written (versions only grow, never reused)."""
        return int(self.query("SELECT value FROM meta WHERE key = 'row_version'")[0][0])

    def changes_since(
        self, version: int, *, after: int = 0, limit: int | None = None
    ) -> RawChanges:
        """The rows written (inserted, or changed) after row ``version``, in rowid order,
        with the store's version now: ``changes_since(0)`` is every row. ``after`` and
        ``limit`` page through them (rowids above ``after``, at most ``limit`` rows; page
        inside one :meth:`snapshot` for a consistent whole)."""
        with self.snapshot():
            now = self.row_version()
            found = self.query(
                "SELECT rowid, task_id, CAST(raw AS BLOB), fetched_at, fetch_error "
                f"FROM records {self._changes_plan(version)}"
                "WHERE version > ? AND rowid > ? ORDER BY rowid LIMIT ?",
                (version, after, -1 if limit is None else limit),
            )
        return RawChanges(
            now,
            [r[0] for r in found],
            RawRecords(
                [r[1] for r in found],
                [r[2] for r in found],
                [r[3] for r in found],
                [r[4] for r in found],
            ),
        )

    def _changes_plan(self, version: int) -> str:
        """Read few changes through the version index, many in rowid order.

        Left to itself SQLite walks every row in rowid order (no sort) even when a handful
        changed; past :data:`CHANGES_BY_INDEX_SHARE` of the rows that walk is cheaper."""
        if version <= 0:
            return ""
        changed = self.query("SELECT count(*) FROM records WHERE version > ?", (version,))[0][0]
        few = changed <= CHANGES_BY_INDEX_SHARE * len(self)
        return "INDEXED BY records_version " if few else ""

    def rowids(self, upto: int | None = None) -> list[int]:
        """Rowids of the rows whose version is at most ``upto`` (all rows if None), in order."""
        if upto is None:
            return [r[0] for r in self.query("SELECT rowid FROM records ORDER BY rowid")]
        sql = "SELECT rowid FROM records WHERE version <= ? ORDER BY rowid"
        return [r[0] for r in self.query(sql, (upto,))]

    def count(self, upto: int | None = None) -> int:
        """How many rows have a version of at most ``upto`` (all rows if None)."""
        if upto is None:
            return len(self)
        return int(self.query("SELECT count(*) FROM records WHERE version <= ?", (upto,))[0][0])

    def ids(self) -> list[str]:
        """Every task id held, in insertion order."""
        return [r[0] for r in self.query("SELECT task_id FROM records ORDER BY rowid")]

    def __len__(self) -> int:
        return int(self.query("SELECT count(*) FROM records")[0][0])

    def counts(self) -> dict[str, Any]:
        """What the store holds, from its own columns (no parse): for ``store info``.

        ``records``, ``terminal`` (never asked again), ``fetch_errors`` (no record was
        read) and ``by_flag`` (``successFlag`` → records; None for none).

        >>> with Store(":memory:") as s:
        ...     s.put("t", '{"code":200,"data":{"successFlag":1}}', fetched_at=1.0)
        ...     s.counts()["by_flag"]
        {1: 1}
        """
        rows = self.query(
            "SELECT success_flag, sum(terminal), sum(fetch_error IS NOT NULL), count(*) "
            "FROM records GROUP BY success_flag ORDER BY success_flag"
        )
        return {
            "records": sum(int(r[3]) for r in rows),
            "terminal": sum(int(r[1]) for r in rows),
            "fetch_errors": sum(int(r[2]) for r in rows),
            "by_flag": {r[0]: int(r[3]) for r in rows},
        }

    def __contains__(self, task_id: object) -> bool:
        if not isinstance(task_id, str):
            return False
        return bool(self.query("SELECT 1 FROM records WHERE task_id = ?", (task_id,)))


def _seconds(a: Answer) -> float:
    try:
        return float(a.fetched_at)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(
            f"fetched_at of {a.task_id!r} must be epoch seconds, not {a.fetched_at!r}"
        ) from None


def _answer(row: Sequence[Any]) -> Answer:
    try:
        return Answer(*row)
    except TypeError:
        raise InputError(
            "a stored answer is an Answer or (task_id, raw, fetched_at, fetch_error), not "
            f"this {type(row).__name__}: pass those four values"
        ) from None


def _row(r: Sequence[Any]) -> StoreRow:
    return {"task_id": r[0], "raw": r[1], "fetched_at": r[2], "fetch_error": r[3]}
