"""The local history of raw records: one SQLite file (WAL), the memory the API lacks.

record-info forgets a task after 14 days; the store does not. It keeps the envelope
JSON text of every record exactly as fetched, with the time it was fetched, so a better
parser later never needs a re-fetch. A record already held is never replaced by a worse
answer (a 422 for an expired record, a fetch error): the store keeps the last good one.

Tables::

    meta(key TEXT PRIMARY KEY, value TEXT)      -- store_version, created_at, created_by,
                                                -- store_id, row_version
    records(task_id TEXT PRIMARY KEY, raw TEXT, fetched_at REAL, fetch_error TEXT,
            success_flag INTEGER, terminal INTEGER, create_time TEXT, version INTEGER)
    -- terminal = 1: not worth asking again (veo_notebook.schema.is_pending is false)
    -- version: meta.row_version when the row was last written, set by triggers (so any
    -- writer, this code or not, versions its rows); what the frame cache is keyed on
    callbacks(id INTEGER PRIMARY KEY, task_id TEXT, received_at REAL, body BLOB,
              headers TEXT, signature_ok INTEGER, duplicate INTEGER)
                                                -- every genuine callback delivery, raw

The ``callbacks`` table is added to an older store on its first delivery (an additive
table: the store version does not change, and older versions ignore it); so are the row
versions, when an older store is first opened for writing.
    archive(task_id, kind, url, path, bytes, sha256, archived_at REAL, error, media_width,
            media_height, media_duration_s, media_fps, media_codec, media_has_audio,
            PRIMARY KEY (task_id, kind))     -- the files saved by veo_notebook.archive;
                                             -- kind: "video" (the final one) or "origin"

The ``archive`` table is created the first time an archive row is written (a store made
before it existed reads as "nothing archived").

A file that is not SQLite, or not a veo-notebook store, is a :class:`StoreError`; a store
written by a newer version is a :class:`SchemaVersionError`. Neither is ever modified.

>>> with Store(":memory:") as store:
...     store.put("t1", '{"code":200,"msg":"success","data":{"successFlag":1}}', fetched_at=0.0)
...     store.terminal_ids(["t1", "t2"])
{'t1'}
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import orjson

from . import schema
from .errors import SchemaVersionError, StoreError, StoreNotFoundError

__all__ = [
    "ARCHIVE_FIELDS",
    "ARCHIVE_ORIGIN",
    "ARCHIVE_VIDEO",
    "ENV_STORE",
    "STORE_VERSION",
    "Answer",
    "CallbackRow",
    "RawChanges",
    "RawRecords",
    "Store",
    "StoreRow",
    "default_store_path",
]

log = logging.getLogger(__name__)

#: Version of the store's SQLite layout (not the frame's ``schema.SCHEMA_VERSION``).
STORE_VERSION = 1

#: The API forgot this record for good (re-exported from the rules in :mod:`.schema`).
EXPIRED_ERROR = schema.EXPIRED_ERROR
#: The environment variable that overrides :func:`default_store_path`.
ENV_STORE = "VEO_STORE"
#: File name of the default store inside the user data folder.
DEFAULT_STORE_NAME = "store.sqlite"
_CHUNK = 500  # ids per SQL "IN (...)" (SQLite's default limit is 32766 variables)
#: Seconds a writer waits for another's transaction before "database is locked".
_BUSY_TIMEOUT_S = 30
#: Tries (and the pause between them) of two processes creating one new store at once.
_CREATE_TRIES = 100
_CREATE_PAUSE_S = 0.05
#: The SQLite file header: its size and its first bytes.
_HEADER_BYTES = 100
SQLITE_MAGIC = b"SQLite format 3\x00"

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    task_id      TEXT PRIMARY KEY,
    raw          TEXT,
    fetched_at   REAL NOT NULL,
    fetch_error  TEXT,
    success_flag INTEGER,
    terminal     INTEGER NOT NULL DEFAULT 0,
    create_time  TEXT,
    version      INTEGER
);
"""

_CALLBACKS_DDL = """
CREATE TABLE IF NOT EXISTS callbacks (
    id           INTEGER PRIMARY KEY,
    task_id      TEXT NOT NULL,
    received_at  REAL NOT NULL,
    body         BLOB NOT NULL,
    headers      TEXT NOT NULL,
    signature_ok INTEGER,
    duplicate    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS callbacks_task ON callbacks (task_id);
"""

# Row versions: every insert, and every update of what the frame reads, takes the next
# meta.row_version (the inner UPDATE sets only `version`, so it fires no trigger itself)
_BUMP = """
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'row_version';
    UPDATE records SET version = (SELECT CAST(value AS INTEGER) FROM meta
                                  WHERE key = 'row_version') WHERE rowid = NEW.rowid;
"""
_VERSIONING = [
    "CREATE INDEX IF NOT EXISTS records_version ON records (version)",
    f"CREATE TRIGGER IF NOT EXISTS records_version_insert AFTER INSERT ON records "
    f"BEGIN {_BUMP} END",
    f"CREATE TRIGGER IF NOT EXISTS records_version_update "
    f"AFTER UPDATE OF task_id, raw, fetched_at, fetch_error ON records BEGIN {_BUMP} END",
]

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


class CallbackRow(TypedDict):
    """One kept callback delivery: the body bytes as received and the headers that matter.

    ``signature_ok`` is True when the signature was verified, None when the receiver ran
    without verification; ``duplicate`` is True when an earlier delivery for the same task
    was already kept.
    """

    id: int
    task_id: str
    received_at: float
    body: bytes
    headers: dict[str, str]
    signature_ok: bool | None
    duplicate: bool


#: The columns of the ``archive`` table, in order (one row per archived task).
ARCHIVE_FIELDS = (
    "task_id",
    "kind",
    "url",
    "path",
    "bytes",
    "sha256",
    "archived_at",
    "error",
    "media_width",
    "media_height",
    "media_duration_s",
    "media_fps",
    "media_codec",
    "media_has_audio",
)
ARCHIVE_VIDEO, ARCHIVE_ORIGIN = "video", "origin"  # the kinds of archived file
_ARCHIVE_KINDS = (ARCHIVE_VIDEO, ARCHIVE_ORIGIN)
_ARCHIVE_DDL = """
CREATE TABLE IF NOT EXISTS archive (
    task_id TEXT NOT NULL, kind TEXT NOT NULL, url TEXT, path TEXT, bytes INTEGER,
    sha256 TEXT, archived_at REAL NOT NULL, error TEXT, media_width INTEGER,
    media_height INTEGER, media_duration_s REAL, media_fps REAL, media_codec TEXT,
    media_has_audio INTEGER, PRIMARY KEY (task_id, kind)
)
"""


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


class Store:
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

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = self._open(self.path, create)
        self._has_callbacks = False

    # ----------------------------------------------------------------- opening
    @staticmethod
    def _open(path: str, create: bool = True) -> sqlite3.Connection:
        target = path
        if path != ":memory:":
            p = Path(path)
            if p.is_dir():
                raise StoreError(f"store path {path!r} is a directory, not a file")
            if not create and not p.is_file():
                raise StoreNotFoundError(
                    f"no store at {path}: check the path (nothing was created)"
                )
            if not create and p.stat().st_size == 0:
                raise StoreNotFoundError(f"{path} is an empty file, not a veo-notebook store")
            if not p.parent.exists():
                raise StoreError(f"store folder {str(p.parent)!r} does not exist")
            Store._check_header(path)
            if not create:  # SQLite itself must not create the file if it vanished meanwhile
                target = p.absolute().as_uri() + "?mode=rw"
        try:
            conn = sqlite3.connect(
                target,
                check_same_thread=False,
                isolation_level=None,
                timeout=_BUSY_TIMEOUT_S,
                uri=not create,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {path!r}: {exc}") from exc
        try:
            for attempt in itertools.count():
                try:
                    Store._check_or_init(conn, path, create)
                    break
                except StoreError as exc:
                    # two processes creating one new store: switching it to WAL needs a
                    # moment alone, and SQLite answers "locked" without waiting; the probe
                    # and the DDL are idempotent, so try again
                    if "database is locked" not in str(exc) or attempt >= _CREATE_TRIES:
                        raise
                    time.sleep(_CREATE_PAUSE_S * (1 + random.random()))
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _check_header(path: str) -> None:
        """Refuse a file that is not SQLite, or shorter than its header says (truncated)."""
        try:
            with open(path, "rb") as f:
                head = f.read(_HEADER_BYTES)
                size = f.seek(0, os.SEEK_END)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(f"cannot read store {path!r}: {exc}") from exc
        if size == 0:
            return  # a new, empty database
        if len(head) < _HEADER_BYTES or not head.startswith(SQLITE_MAGIC):
            raise StoreError(f"{path!r} is not a veo-notebook store (not an SQLite file)")
        page = int.from_bytes(head[16:18], "big")
        page = 65536 if page == 1 else page
        pages = int.from_bytes(head[28:32], "big")
        valid = head[92:96] == head[24:28]  # the in-header size is trustworthy
        if valid and pages and size < pages * page:
            raise StoreError(
                f"store {path!r} is truncated ({size} bytes, its header says {pages * page}); "
                "refusing to modify it"
            )

    @staticmethod
    def _check_or_init(conn: sqlite3.Connection, path: str, create: bool = True) -> None:
        try:  # read-only probe first: a corrupt file must not be touched
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{path!r} is not a veo-notebook store (not an SQLite file: {exc})"
            ) from exc
        if not tables and not create:
            raise StoreNotFoundError(f"{path} holds no veo-notebook store (an empty database)")
        try:
            if tables:
                if "meta" not in tables or "records" not in tables:
                    raise StoreError(
                        f"{path!r} is an SQLite file but not a veo-notebook store "
                        f"(tables: {', '.join(sorted(tables))}); refusing to modify it"
                    )
                row = conn.execute("SELECT value FROM meta WHERE key='store_version'").fetchone()
                try:
                    version = int(row[0])
                except (TypeError, ValueError):
                    raise StoreError(
                        f"{path!r} has no readable store_version ({row!r}); refusing to modify it"
                    ) from None
                if version > STORE_VERSION:
                    raise SchemaVersionError(
                        f"store {path!r} was written by a newer veo-notebook (store version "
                        f"{version}, this one knows {STORE_VERSION}); upgrade veo-notebook"
                    )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if not tables:
                from ._version import __version__

                conn.execute("BEGIN IMMEDIATE")  # one transaction: a kill leaves no half-store
                try:
                    for statement in _DDL.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.executemany(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                        [
                            ("store_version", str(STORE_VERSION)),
                            ("created_at", repr(time.time())),
                            ("created_by", f"veo-notebook {__version__}"),
                        ],
                    )
                    Store._add_versions(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.rollback()
                    raise
            elif not Store._has_versions(conn):
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if "readonly" not in str(exc):
                        raise
                    log.debug("store %s is read-only: no row versions (no frame cache)", path)
                    return
                try:
                    if not Store._has_versions(conn):  # another process may have just done it
                        Store._add_versions(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.rollback()
                    raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot use store {path!r}: {exc}") from exc

    @staticmethod
    def _has_versions(conn: sqlite3.Connection) -> bool:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(records)")}
        trig = conn.execute(
            "SELECT count(*) FROM sqlite_master "
            "WHERE type = 'trigger' AND name LIKE 'records_version_%'"
        ).fetchone()[0]
        return "version" in cols and trig == 2

    @staticmethod
    def _add_versions(conn: sqlite3.Connection) -> None:
        """Row versions for a store made before them (additive: older code still reads it)."""
        cols = {r[1] for r in conn.execute("PRAGMA table_info(records)")}
        if "version" not in cols:
            conn.execute("ALTER TABLE records ADD COLUMN version INTEGER")
        conn.execute("UPDATE records SET version = rowid WHERE version IS NULL")
        top = conn.execute("SELECT coalesce(max(version), 0) FROM records").fetchone()[0]
        conn.executemany(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
            [("row_version", str(top)), ("store_id", uuid.uuid4().hex)],
        )
        for statement in _VERSIONING:
            conn.execute(statement)

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
            a = row if isinstance(row, Answer) else Answer(*row)
            flag, settled, create_time = _index(a)
            when = now if a.fetched_at is None else float(a.fetched_at)
            params.append((a.task_id, a.raw, when, a.fetch_error, flag, int(settled), create_time))
        if not params:
            return 0
        with self._writing() as conn:
            conn.executemany(_UPSERT, params)
        return len(params)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any
        error), under the store's lock; an SQLite error is a :class:`StoreError`."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to store {self.path!r}: {exc}") from exc

    def put_archive(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record archive rows (mappings keyed by :data:`ARCHIVE_FIELDS`; ``kind`` defaults
        to "video") in one transaction; a task's new row of a kind replaces its old one.
        Returns the number written.

        >>> with Store(":memory:") as s:
        ...     s.put_archive([{"task_id": "t", "archived_at": 0.0, "error": "HTTP 404"}])
        ...     s.archive_rows()[0]["error"]
        1
        'HTTP 404'
        """
        params = []
        for row in rows:
            values = dict(row, kind=row.get("kind") or ARCHIVE_VIDEO)
            _check_kind(values["kind"])
            params.append(tuple(values.get(k) for k in ARCHIVE_FIELDS))
        if not params:
            return 0
        marks = ",".join("?" * len(ARCHIVE_FIELDS))
        sql = f"INSERT OR REPLACE INTO archive ({','.join(ARCHIVE_FIELDS)}) VALUES ({marks})"
        with self._writing() as conn:
            conn.execute(_ARCHIVE_DDL)
            conn.executemany(sql, params)
        return len(params)

    def archive_rows(
        self, ids: Iterable[str] | None = None, *, kind: str = ARCHIVE_VIDEO
    ) -> list[dict[str, Any]]:
        """Archive rows of one ``kind`` (dicts keyed by :data:`ARCHIVE_FIELDS`) of ``ids``
        (those held), or all of them.

        >>> with Store(":memory:") as s:
        ...     s.archive_rows()
        []
        """
        sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='archive'"
        if not self._query(sql):
            return []
        _check_kind(kind)  # one of two literals: safe inside the SQL text
        cols = f"SELECT {','.join(ARCHIVE_FIELDS)} FROM archive WHERE kind = '{kind}'"
        if ids is None:
            rows = self._query(cols + " ORDER BY rowid")
        else:
            order = list(dict.fromkeys(ids))
            rows = list(self._chunked(cols + " AND task_id IN ({marks})", order))
        return [dict(zip(ARCHIVE_FIELDS, r, strict=True)) for r in rows]

    def archived_ids(self) -> set[str]:
        """Task ids whose video is archived (a file saved, with no error).

        >>> with Store(":memory:") as s:
        ...     s.put_archive([{"task_id": "t", "archived_at": 0.0, "sha256": "ab"}])
        ...     s.archived_ids()
        1
        {'t'}
        """
        return {r["task_id"] for r in self.archive_rows() if r["sha256"] and r["error"] is None}

    # ----------------------------------------------------------------- reading
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read store {self.path!r}: {exc}") from exc

    def _chunked(self, sql: str, ids: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            yield from self._query(sql.format(marks=",".join("?" * len(chunk))), chunk)

    def get(self, task_id: str) -> StoreRow | None:
        """The stored row of ``task_id``, or None.

        >>> with Store(":memory:") as s:
        ...     s.get("nope") is None
        True
        """
        rows = self._query(
            "SELECT task_id, raw, fetched_at, fetch_error FROM records WHERE task_id = ?",
            (task_id,),
        )
        return _row(rows[0]) if rows else None

    def terminal_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` not worth asking again (:func:`veo_notebook.schema.is_pending` is
        false: successFlag 1, 2 or 3, an unknown flag, expired, or refused for good)."""
        sql = "SELECT task_id FROM records WHERE terminal = 1 AND task_id IN ({marks})"
        return {r[0] for r in self._chunked(sql, list(ids))}

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
            return self._query(cols + " ORDER BY rowid")
        order = list(dict.fromkeys(ids))
        found = {r[0]: r for r in self._chunked(cols + " WHERE task_id IN ({marks})", order)}
        return [found[i] for i in order if i in found]

    # ----------------------------------------------------------------- versions
    @contextmanager
    def snapshot(self) -> Iterator[Store]:
        """Reads inside see one state of the store (one read transaction; writers of other
        connections go on, and are seen after). Other threads' calls wait meanwhile."""
        with self._lock:
            if self._conn.in_transaction:  # already inside one
                yield self
                return
            try:
                self._conn.execute("BEGIN")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read store {self.path!r}: {exc}") from exc
            try:
                yield self
            finally:
                self._conn.execute("COMMIT")

    @property
    def versioned(self) -> bool:
        """True if the rows carry versions (a read-only store made before them does not)."""
        with self._lock:
            return self._has_versions(self._conn)

    @property
    def store_id(self) -> str:
        """A random id given to this store when it was made (a copy keeps it)."""
        return str(self._query("SELECT value FROM meta WHERE key = 'store_id'")[0][0])

    def row_version(self) -> int:
        """The version of the latest row written (versions only grow, never reused)."""
        return int(self._query("SELECT value FROM meta WHERE key = 'row_version'")[0][0])

    def changes_since(
        self, version: int, *, after: int = 0, limit: int | None = None
    ) -> RawChanges:
        """The rows written (inserted, or changed) after row ``version``, in rowid order,
        with the store's version now: ``changes_since(0)`` is every row. ``after`` and
        ``limit`` page through them (rowids above ``after``, at most ``limit`` rows; page
        inside one :meth:`snapshot` for a consistent whole)."""
        with self.snapshot():
            now = self.row_version()
            found = self._query(
                "SELECT rowid, task_id, CAST(raw AS BLOB), fetched_at, fetch_error FROM records "
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

    def rowids(self, upto: int | None = None) -> list[int]:
        """Rowids of the rows whose version is at most ``upto`` (all rows if None), in order."""
        if upto is None:
            return [r[0] for r in self._query("SELECT rowid FROM records ORDER BY rowid")]
        sql = "SELECT rowid FROM records WHERE version <= ? ORDER BY rowid"
        return [r[0] for r in self._query(sql, (upto,))]

    def count(self, upto: int | None = None) -> int:
        """How many rows have a version of at most ``upto`` (all rows if None)."""
        if upto is None:
            return len(self)
        return int(self._query("SELECT count(*) FROM records WHERE version <= ?", (upto,))[0][0])

    def ids(self) -> list[str]:
        """Every task id held, in insertion order."""
        return [r[0] for r in self._query("SELECT task_id FROM records ORDER BY rowid")]

    def __len__(self) -> int:
        return int(self._query("SELECT count(*) FROM records")[0][0])

    def counts(self) -> dict[str, Any]:
        """What the store holds, from its own columns (no parse): for ``store info``.

        ``records``, ``terminal`` (never asked again), ``fetch_errors`` (no record was
        read) and ``by_flag`` (``successFlag`` → records; None for none).

        >>> with Store(":memory:") as s:
        ...     s.put("t", '{"code":200,"data":{"successFlag":1}}', fetched_at=1.0)
        ...     s.counts()["by_flag"]
        {1: 1}
        """
        rows = self._query(
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
        return bool(self._query("SELECT 1 FROM records WHERE task_id = ?", (task_id,)))

    # ----------------------------------------------------------------- callbacks
    def put_callback(
        self,
        task_id: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        received_at: float | None = None,
        signature_ok: bool | None = None,
    ) -> CallbackRow:
        """Keep one callback delivery, in one short transaction; return the kept row.

        A delivery for a task that already has one is kept too, marked ``duplicate``.

        >>> with Store(":memory:") as s:
        ...     _ = s.put_callback("t1", b'{"code":200}', {}, received_at=1.0)
        ...     s.put_callback("t1", b'{"code":200}', {}, received_at=2.0)["duplicate"]
        True
        """
        when = time.time() if received_at is None else float(received_at)
        head = orjson.dumps(dict(headers)).decode()
        ok = None if signature_ok is None else int(bool(signature_ok))
        with self._lock:
            try:
                self._ensure_callbacks()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to store {self.path!r}: {exc}") from exc
            with self._writing() as conn:
                seen = conn.execute(
                    "SELECT 1 FROM callbacks WHERE task_id = ? LIMIT 1", (task_id,)
                ).fetchone()
                cur = conn.execute(
                    "INSERT INTO callbacks (task_id, received_at, body, headers, "
                    "signature_ok, duplicate) VALUES (?, ?, ?, ?, ?, ?)",
                    (task_id, when, bytes(body), head, ok, int(seen is not None)),
                )
        return {
            "id": int(cur.lastrowid or 0),
            "task_id": task_id,
            "received_at": when,
            "body": bytes(body),
            "headers": dict(headers),
            "signature_ok": signature_ok,
            "duplicate": seen is not None,
        }

    def callbacks(self) -> list[CallbackRow]:
        """Every kept callback delivery, in the order received (none: an empty list)."""
        if not self._callbacks_exist():
            return []
        rows = self._query(
            "SELECT id, task_id, received_at, body, headers, signature_ok, duplicate "
            "FROM callbacks ORDER BY id"
        )
        return [
            {
                "id": r[0],
                "task_id": r[1],
                "received_at": r[2],
                "body": bytes(r[3]),
                "headers": orjson.loads(r[4]),
                "signature_ok": None if r[5] is None else bool(r[5]),
                "duplicate": bool(r[6]),
            }
            for r in rows
        ]

    def callback_ids(self) -> list[str]:
        """The task ids of the kept callbacks, each once, in the order first received."""
        if not self._callbacks_exist():
            return []
        sql = "SELECT task_id FROM callbacks GROUP BY task_id ORDER BY min(id)"
        return [r[0] for r in self._query(sql)]

    def callback_count(self) -> int:
        """How many callback deliveries are kept."""
        if not self._callbacks_exist():
            return 0
        return int(self._query("SELECT count(*) FROM callbacks")[0][0])

    def _callbacks_exist(self) -> bool:
        if not self._has_callbacks:
            sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='callbacks'"
            self._has_callbacks = bool(self._query(sql))
        return self._has_callbacks

    def _ensure_callbacks(self) -> None:
        """Add the callbacks table to a store that lacks it (idempotent; caller holds the lock)."""
        if not self._callbacks_exist():
            for statement in _CALLBACKS_DDL.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._has_callbacks = True

    # ----------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"


def _check_kind(kind: object) -> None:
    if kind not in _ARCHIVE_KINDS:
        raise ValueError(f"archive kind must be one of {_ARCHIVE_KINDS}, not {kind!r}")


def _row(r: Sequence[Any]) -> StoreRow:
    return {"task_id": r[0], "raw": r[1], "fetched_at": r[2], "fetch_error": r[3]}
