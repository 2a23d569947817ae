"""The store's SQLite connection: opening (checked, migrated), transactions, and the
one place an ``sqlite3`` error becomes a :class:`~veo_notebook.errors.StoreError`.

:class:`Database` knows no table but ``meta`` and ``records`` (made by
:mod:`._migrations`); :class:`~veo_notebook.store.Store` adds the records, and each
stage's own table is a :class:`~veo_notebook.store.Table` over the same connection.
"""

from __future__ import annotations

import itertools
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StoreError, StoreNotFoundError
from . import _migrations
from ._translate import OPEN, READ, USE, WRITE, sqlite_errors

__all__ = ["SQLITE_MAGIC", "Database"]

CHUNK = 500  # ids per SQL "IN (...)" (SQLite's default limit is 32766 variables)
#: Seconds a writer waits for another's transaction before "database is locked".
_BUSY_TIMEOUT_S = 30
#: Tries (and the pause between them) of two processes creating one new store at once.
_CREATE_TRIES = 100
_CREATE_PAUSE_S = 0.05
#: The SQLite file header: its size and its first bytes.
_HEADER_BYTES = 100
SQLITE_MAGIC = b"SQLite format 3\x00"
_LOCKED = "database is locked"
_D = TypeVar("_D", bound="Database")


class Database:
    """One SQLite file (WAL), checked and migrated on opening; safe to share between threads.

    Subclassed by :class:`~veo_notebook.store.Store`; tables use :meth:`query`,
    :meth:`chunked`, :meth:`writing` and :meth:`table_exists`.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = _open(self.path, create)

    @property
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"store {self.path!r} is closed; open it again with Store(path)")
        return self._conn

    # ----------------------------------------------------------------- reading
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of one statement (an SQLite error is a :class:`StoreError`)."""
        with self._lock, sqlite_errors(self.path, READ):
            return self._connection.execute(sql, params).fetchall()

    def chunked(
        self, sql: str, ids: Sequence[str], params: Sequence[Any] = ()
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql`` (holding ``{marks}`` inside ``IN (...)``) for ``ids``, in chunks;
        ``params`` fill the placeholders before ``{marks}``."""
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            marks = ",".join("?" * len(chunk))
            yield from self.query(sql.format(marks=marks), (*params, *chunk))

    def table_exists(self, name: str) -> bool:
        """Whether the store holds table ``name`` (stages' tables are made on first write)."""
        sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
        return bool(self.query(sql, (name,)))

    @contextmanager
    def snapshot(self: _D) -> Iterator[_D]:
        """Reads inside see one state of the store (one read transaction; writers of other
        connections go on, and are seen after). Other threads' calls wait meanwhile."""
        with self._lock:
            conn = self._connection
            if conn.in_transaction:  # already inside one
                yield self
                return
            with sqlite_errors(self.path, READ):
                conn.execute("BEGIN")
            try:
                yield self
            finally:
                with sqlite_errors(self.path, READ):
                    conn.execute("COMMIT")

    # ----------------------------------------------------------------- writing
    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any
        error), under the store's lock; an SQLite error is a :class:`StoreError`."""
        with self._lock, sqlite_errors(self.path, WRITE):
            conn = self._connection
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # ----------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self: _D) -> _D:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


def _open(path: str, create: bool = True) -> sqlite3.Connection:
    """A connection to a checked store at ``path``, made (``create``) or migrated."""
    target = _check_path(path, create)
    with sqlite_errors(path, OPEN):
        conn = sqlite3.connect(
            target,
            check_same_thread=False,
            isolation_level=None,
            timeout=_BUSY_TIMEOUT_S,
            uri=not create,
        )
    try:
        for attempt in itertools.count():
            try:
                with sqlite_errors(path, USE):
                    _migrations.check_or_init(conn, path, create)
                break
            except StoreError as exc:
                # two processes creating one new store: switching it to WAL needs a
                # moment alone, and SQLite answers "locked" without waiting; the probe
                # and the DDL are idempotent, so try again
                if _LOCKED not in str(exc) or attempt >= _CREATE_TRIES:
                    raise
                time.sleep(_CREATE_PAUSE_S * (1 + random.random()))
    except BaseException:
        conn.close()
        raise
    return conn


def _check_path(path: str, create: bool) -> str:
    """What to hand sqlite3.connect for ``path``, after refusing what is not a store."""
    if path == ":memory:":
        return path
    p = Path(path)
    if p.is_dir():
        raise StoreError(f"store path {path!r} is a directory, not a file")
    if not create and not p.is_file():
        raise StoreNotFoundError(f"no store at {path}: check the path (nothing was created)")
    if not create and p.stat().st_size == 0:
        raise StoreNotFoundError(f"{path} is an empty file, not a veo-notebook store")
    if not p.parent.exists():
        raise StoreError(f"store folder {str(p.parent)!r} does not exist")
    _check_header(path)
    if not create:  # SQLite itself must not create the file if it vanished meanwhile
        return p.absolute().as_uri() + "?mode=rw"
    return path


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
