"""A stage's own table in the store: :class:`Table`, which the stage subclasses and owns.

The store holds the connection, the migrations and the records; a stage that keeps
rows of its own (the archive's files, the callbacks' deliveries) declares them as a
:class:`Table` beside its code, the way sqlite-utils splits ``Database`` and ``Table``.
A new table is one subclass: its ``NAME``, its ``DDL`` (``CREATE ... IF NOT EXISTS``,
made on the first write: an additive table, so the store version does not change and
older versions ignore it) and the methods the stage needs::

    class Checks(Table):
        NAME = "checks"
        DDL = "CREATE TABLE IF NOT EXISTS checks (name TEXT PRIMARY KEY, state TEXT)"

        def put(self, name: str, state: str) -> None:
            with self.writing() as conn:
                conn.execute("INSERT OR REPLACE INTO checks VALUES (?, ?)", (name, state))

        def get(self, name: str) -> str | None:
            if not self.exists():
                return None
            rows = self.store.query("SELECT state FROM checks WHERE name = ?", (name,))
            return rows[0][0] if rows else None

Reads go through :meth:`Database.query` and writes through :meth:`writing`, so an
SQLite error is a :class:`~veo_notebook.errors.StoreError` here too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from ._db import Database
from ._migrations import statements

__all__ = ["Table"]


class Table:
    """One table of a :class:`~veo_notebook.store.Store`, created on its first write.

    Parameters
    ----------
    store : Store
        The open store the table lives in (the table keeps no connection of its own).
    """

    NAME: ClassVar[str]
    DDL: ClassVar[str]  # CREATE TABLE / INDEX ... IF NOT EXISTS; ";"-separated

    def __init__(self, store: Database) -> None:
        self.store = store
        self._exists = False

    def exists(self) -> bool:
        """Whether the table is in the store yet (a store made before it reads as empty)."""
        if not self._exists:
            self._exists = self.store.table_exists(self.NAME)
        return self._exists

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction of the store, the table made first if it is missing."""
        with self.store.writing() as conn:
            if not self._exists:
                for statement in statements(self.DDL):
                    conn.execute(statement)
            yield conn
        self._exists = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"
