"""The store's ``callbacks`` table: every genuine callback delivery, kept raw.

Owned by the receiver (:mod:`._app` writes a row per delivery) and read by
:func:`~veo_notebook.callbacks.read_callbacks`. Made on the first delivery: an additive
table, so the store version does not change and older versions ignore it.

::

    callbacks(id INTEGER PRIMARY KEY, task_id TEXT, received_at REAL, body BLOB,
              headers TEXT, signature_ok INTEGER, duplicate INTEGER)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TypedDict

import orjson

from ..store import Table

__all__ = ["CallbackRow", "CallbackTable"]


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


_COLUMNS = "id, task_id, received_at, body, headers, signature_ok, duplicate"


class CallbackTable(Table):
    """Kept callback deliveries, in a :class:`~veo_notebook.store.Store`.

    >>> from veo_notebook.store import Store
    >>> with Store(":memory:") as s:
    ...     table = CallbackTable(s)
    ...     _ = table.put("t1", b'{"code":200}', {}, received_at=1.0)
    ...     table.put("t1", b'{"code":200}', {}, received_at=2.0)["duplicate"]
    True
    """

    NAME = "callbacks"
    DDL = """
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

    def put(
        self,
        task_id: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        received_at: float | None = None,
        signature_ok: bool | None = None,
    ) -> CallbackRow:
        """Keep one delivery, in one short transaction; return the kept row.

        A delivery for a task that already has one is kept too, marked ``duplicate``.
        """
        when = time.time() if received_at is None else float(received_at)
        head = orjson.dumps(dict(headers)).decode()
        ok = None if signature_ok is None else int(bool(signature_ok))
        with self.writing() as conn:
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

    def rows(self) -> list[CallbackRow]:
        """Every kept delivery, in the order received (none: an empty list)."""
        if not self.exists():
            return []
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
            for r in self.store.query(f"SELECT {_COLUMNS} FROM callbacks ORDER BY id")
        ]

    def task_ids(self) -> list[str]:
        """The task ids of the kept deliveries, each once, in the order first received."""
        if not self.exists():
            return []
        sql = "SELECT task_id FROM callbacks GROUP BY task_id ORDER BY min(id)"
        return [r[0] for r in self.store.query(sql)]

    def count(self) -> int:
        """How many deliveries are kept."""
        if not self.exists():
            return 0
        return int(self.store.query("SELECT count(*) FROM callbacks")[0][0])
