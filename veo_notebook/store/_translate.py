"""The one place an ``sqlite3`` error becomes a :class:`~veo_notebook.errors.StoreError`.

Every call of the store that touches SQLite runs inside :func:`sqlite_errors`, with a
message saying what was being done; so no ``sqlite3`` exception escapes a public call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import StoreError

__all__ = ["NOT_SQLITE", "OPEN", "READ", "USE", "WRITE", "sqlite_errors"]

# What went wrong, by what was being done (``{path}``: the store, ``{exc}``: SQLite's words)
OPEN = "cannot open store {path!r}: {exc}"
READ = "cannot read store {path!r}: {exc}"
WRITE = "cannot write to store {path!r}: {exc}"
USE = "cannot use store {path!r}: {exc}"
NOT_SQLITE = "{path!r} is not a veo-notebook store (not an SQLite file: {exc})"


@contextmanager
def sqlite_errors(path: str, message: str) -> Iterator[None]:
    """Turn any ``sqlite3.Error`` inside into a :class:`StoreError` saying ``message``.

    The only ``except sqlite3.Error`` of the store that translates: an error already in
    the VeoError tree passes through unchanged.
    """
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(message.format(path=path, exc=exc)) from exc
