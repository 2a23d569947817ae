"""The store's ``archive`` table: one row per task and kind of file the archive saved.

Owned by :func:`~veo_notebook.archive.archive_videos` (it writes the rows) and read by
:func:`veo_notebook.expiring` (``archived=store``). Made on the first write: a store made
before it reads as "nothing archived".

::

    archive(task_id, kind, url, path, bytes, sha256, archived_at REAL, error, media_width,
            media_height, media_duration_s, media_fps, media_codec, media_has_audio,
            PRIMARY KEY (task_id, kind))     -- kind: "video" (the final one) or "origin"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ..errors import InputError
from ..store import Table

__all__ = [
    "ARCHIVE_DTYPES",
    "ARCHIVE_FIELDS",
    "ARCHIVE_KINDS",
    "ARCHIVE_ORIGIN",
    "ARCHIVE_VIDEO",
    "COLUMNS",
    "ArchiveTable",
]

_STR = pd.StringDtype("pyarrow")
_UTC = pd.DatetimeTZDtype("ns", "UTC")
#: The one list of archive columns, in order: each one's SQLite type, and its dtype in
#: :func:`~veo_notebook.archive.archive_videos`' frame (None: not a column of the frame).
COLUMNS: dict[str, tuple[str, Any]] = {
    "task_id": ("TEXT NOT NULL", _STR),
    "kind": ("TEXT NOT NULL", None),
    "url": ("TEXT", _STR),
    "path": ("TEXT", _STR),
    "bytes": ("INTEGER", "Int64"),
    "sha256": ("TEXT", _STR),
    "archived_at": ("REAL NOT NULL", _UTC),
    "error": ("TEXT", _STR),
    "media_width": ("INTEGER", "Int64"),
    "media_height": ("INTEGER", "Int64"),
    "media_duration_s": ("REAL", "float64"),
    "media_fps": ("REAL", "float64"),
    "media_codec": ("TEXT", _STR),
    "media_has_audio": ("INTEGER", "boolean"),
}
#: The table's column names, in order (what :meth:`ArchiveTable.rows` keys rows by).
ARCHIVE_FIELDS = tuple(COLUMNS)
#: A table column named otherwise in the frame.
FRAME_NAMES = {"error": "archive_error"}
#: The columns :func:`~veo_notebook.archive.archive_videos` returns, with their dtypes.
ARCHIVE_DTYPES: dict[str, Any] = {
    FRAME_NAMES.get(name, name): dtype for name, (_, dtype) in COLUMNS.items() if dtype
}
ARCHIVE_VIDEO, ARCHIVE_ORIGIN = "video", "origin"  # the kinds of archived file
ARCHIVE_KINDS = (ARCHIVE_VIDEO, ARCHIVE_ORIGIN)


class ArchiveTable(Table):
    """The files the archive saved, in a :class:`~veo_notebook.store.Store`.

    >>> from veo_notebook.store import Store
    >>> with Store(":memory:") as s:
    ...     table = ArchiveTable(s)
    ...     table.put([{"task_id": "t", "archived_at": 0.0, "error": "HTTP 404"}])
    ...     table.rows()[0]["error"]
    1
    'HTTP 404'
    """

    NAME = "archive"
    DDL = (
        "CREATE TABLE IF NOT EXISTS archive ("
        + ", ".join(f"{name} {sql}" for name, (sql, _) in COLUMNS.items())
        + ", PRIMARY KEY (task_id, kind))"
    )

    def put(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record rows (mappings keyed by :data:`ARCHIVE_FIELDS`; ``kind`` defaults to
        "video") in one transaction; a task's new row of a kind replaces its old one.
        Returns the number written."""
        params = []
        for row in rows:
            values = dict(row, kind=row.get("kind") or ARCHIVE_VIDEO)
            _check_kind(values["kind"])
            params.append(tuple(values.get(k) for k in ARCHIVE_FIELDS))
        if not params:
            return 0
        marks = ",".join("?" * len(ARCHIVE_FIELDS))
        sql = f"INSERT OR REPLACE INTO archive ({','.join(ARCHIVE_FIELDS)}) VALUES ({marks})"
        with self.writing() as conn:
            conn.executemany(sql, params)
        return len(params)

    def rows(
        self, ids: Iterable[str] | None = None, *, kind: str = ARCHIVE_VIDEO
    ) -> list[dict[str, Any]]:
        """Rows of one ``kind`` (dicts keyed by :data:`ARCHIVE_FIELDS`) of ``ids`` (those
        held), or all of them; none before the first write."""
        _check_kind(kind)
        if not self.exists():
            return []
        cols = f"SELECT {','.join(ARCHIVE_FIELDS)} FROM archive WHERE kind = ?"
        if ids is None:
            found = self.store.query(cols + " ORDER BY rowid", (kind,))
        else:
            order = list(dict.fromkeys(ids))
            found = list(self.store.chunked(cols + " AND task_id IN ({marks})", order, (kind,)))
        return [dict(zip(ARCHIVE_FIELDS, r, strict=True)) for r in found]

    def archived_ids(self) -> set[str]:
        """Task ids whose video is archived (a file saved, with no error)."""
        return {r["task_id"] for r in self.rows() if r["sha256"] and r["error"] is None}


def _check_kind(kind: object) -> None:
    if kind not in ARCHIVE_KINDS:
        raise InputError(f"archive kind must be one of {ARCHIVE_KINDS}, not {kind!r}")
