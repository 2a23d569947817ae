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

from ..errors import InputError
from ..store import Table

__all__ = ["ARCHIVE_FIELDS", "ARCHIVE_KINDS", "ARCHIVE_ORIGIN", "ARCHIVE_VIDEO", "ArchiveTable"]

#: The columns of the ``archive`` table, in order (one row per archived task and kind).
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
    DDL = """
    CREATE TABLE IF NOT EXISTS archive (
        task_id TEXT NOT NULL, kind TEXT NOT NULL, url TEXT, path TEXT, bytes INTEGER,
        sha256 TEXT, archived_at REAL NOT NULL, error TEXT, media_width INTEGER,
        media_height INTEGER, media_duration_s REAL, media_fps REAL, media_codec TEXT,
        media_has_audio INTEGER, PRIMARY KEY (task_id, kind)
    )
    """

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
