"""The store's own tables (``meta``, ``records``), made on a new store, checked and
migrated on an old one; the row versions every record carries.

Migrations are additive: a store made before row versions gets them the first time it
is opened for writing, and its store version does not change (older code still reads
it). A stage's table (archive, callbacks, ...) is made by its
:class:`~veo_notebook.store.Table` on its first write, never here.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid

from ..errors import SchemaVersionError, StoreError, StoreNotFoundError
from ._translate import NOT_SQLITE, sqlite_errors

__all__ = ["STORE_VERSION", "check_or_init", "has_versions"]

log = logging.getLogger(__name__)

#: Version of the store's SQLite layout (not the frame's ``schema.SCHEMA_VERSION``).
STORE_VERSION = 1

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
_READ_ONLY = "readonly"  # SQLite's word when a store cannot be written


def statements(ddl: str) -> list[str]:
    """The statements of a DDL text (``;``-separated), blank ones left out."""
    return [s for s in ddl.split(";") if s.strip()]


def check_or_init(conn: sqlite3.Connection, path: str, create: bool = True) -> None:
    """Make a new store, or check an existing one (version, tables) and migrate it."""
    with sqlite_errors(path, NOT_SQLITE):  # read-only probe first: a corrupt file is not touched
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables and not create:
        raise StoreNotFoundError(f"{path} holds no veo-notebook store (an empty database)")
    if tables:
        _check_version(conn, path, tables)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if not tables:
        _init(conn)
    elif not has_versions(conn):
        _migrate_versions(conn, path)


def _check_version(conn: sqlite3.Connection, path: str, tables: set[str]) -> None:
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


def _init(conn: sqlite3.Connection) -> None:
    from .._version import __version__

    conn.execute("BEGIN IMMEDIATE")  # one transaction: a kill leaves no half-store
    try:
        for statement in statements(_DDL):
            conn.execute(statement)
        conn.executemany(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
            [
                ("store_version", str(STORE_VERSION)),
                ("created_at", repr(time.time())),
                ("created_by", f"veo-notebook {__version__}"),
            ],
        )
        _add_versions(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()
        raise


def _migrate_versions(conn: sqlite3.Connection, path: str) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:  # not a translation: a read-only store is fine
        if _READ_ONLY not in str(exc):
            raise
        log.debug("store %s is read-only: no row versions (no frame cache)", path)
        return
    try:
        if not has_versions(conn):  # another process may have just done it
            _add_versions(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()
        raise


def has_versions(conn: sqlite3.Connection) -> bool:
    """Whether the records carry row versions (the column and both triggers)."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(records)")}
    trig = conn.execute(
        "SELECT count(*) FROM sqlite_master "
        "WHERE type = 'trigger' AND name LIKE 'records_version_%'"
    ).fetchone()[0]
    return "version" in cols and trig == 2


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
