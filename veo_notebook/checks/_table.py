"""The checks' two tables in the store: every run, and the state last announced.

Owned by this stage (:class:`~veo_notebook.store.Table` subclasses, made on the first
write: additive, so the store version does not change and older versions ignore them)::

    check_runs(run_at REAL, rule TEXT, grp TEXT, win TEXT, value REAL, ci_low REAL,
               ci_high REAL, threshold REAL, n INTEGER, breached INTEGER, suspect INTEGER,
               strict INTEGER)                  -- one row per rule x group per run
    check_state(rule TEXT, grp TEXT, win TEXT, breached INTEGER, since REAL,
                PRIMARY KEY (rule, grp, win))  -- what the webhook was last told

A key with no state reads as clear: the first run announces only what is breached.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..store import Database, Table

__all__ = ["Change", "RunsTable", "StateTable", "changes", "history", "record_run", "save_state"]

_RUN_COLUMNS = (
    "run_at",
    "rule",
    "grp",
    "win",
    "value",
    "ci_low",
    "ci_high",
    "threshold",
    "n",
    "breached",
    "suspect",
    "strict",
)
#: The stored columns whose names are SQL keywords, as :func:`history` shows them.
_SHOWN_AS = {"grp": "group", "win": "window"}


class RunsTable(Table):
    """Every run's rows (``check_runs``)."""

    NAME = "check_runs"
    DDL = """
    CREATE TABLE IF NOT EXISTS check_runs (
        run_at REAL NOT NULL, rule TEXT NOT NULL, grp TEXT NOT NULL, win TEXT NOT NULL,
        value REAL, ci_low REAL, ci_high REAL, threshold REAL, n INTEGER,
        breached INTEGER NOT NULL, suspect INTEGER NOT NULL, strict INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS check_runs_at ON check_runs (run_at);
    """


class StateTable(Table):
    """The state last announced per rule x group x window (``check_state``)."""

    NAME = "check_state"
    DDL = """
    CREATE TABLE IF NOT EXISTS check_state (
        rule TEXT NOT NULL, grp TEXT NOT NULL, win TEXT NOT NULL,
        breached INTEGER NOT NULL, since REAL NOT NULL, PRIMARY KEY (rule, grp, win)
    );
    """


@dataclass(frozen=True)
class Change:
    """A rule x group whose state differs from the one last announced."""

    rule: str
    group: str
    window: str
    breached: bool  # the new state
    row: dict[str, Any] | None  # the check row (None: the group has no tasks any more)


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def record_run(store: Database, rows: pd.DataFrame, run_at: float, strict: bool) -> None:
    """Keep one run's rows (every rule x group) in ``check_runs``."""
    params = [
        (
            run_at,
            r.rule,
            r.group,
            r.window,
            _num(float(r.value)),
            _num(float(r.ci_low)),
            _num(float(r.ci_high)),
            float(r.threshold),
            int(r.n),
            int(r.breached),
            int(r.suspect),
            int(strict),
        )
        for r in rows.itertuples(index=False)
    ]
    marks = ",".join("?" * len(_RUN_COLUMNS))
    with RunsTable(store).writing() as conn:
        conn.executemany(
            f"INSERT INTO check_runs ({','.join(_RUN_COLUMNS)}) VALUES ({marks})", params
        )


def _announced(store: Database) -> dict[tuple[str, str, str], bool]:
    if not StateTable(store).exists():
        return {}
    rows = store.query("SELECT rule, grp, win, breached FROM check_state")
    return {(r[0], r[1], r[2]): bool(r[3]) for r in rows}


def changes(store: Database, rows: pd.DataFrame) -> list[Change]:
    """What changed since the last announcement: clear → breached and breached → clear.

    A breached group that has no row now (no tasks in its window) has cleared; a rule
    no longer checked is left as it was.
    """
    before = _announced(store)
    out: list[Change] = []
    seen: set[tuple[str, str, str]] = set()
    for r in rows.to_dict("records"):
        key = (r["rule"], r["group"], r["window"])
        seen.add(key)
        if bool(r["breached"]) != before.get(key, False):
            out.append(Change(*key, bool(r["breached"]), r))
    rules = {(r, w) for r, w in zip(rows["rule"], rows["window"], strict=True)}
    for key, breached in before.items():
        if breached and key not in seen and (key[0], key[2]) in rules:
            out.append(Change(*key, False, None))
    return out


def save_state(store: Database, done: Iterable[Change], at: float) -> None:
    """Remember ``done`` as announced."""
    params = [(c.rule, c.group, c.window, int(c.breached), at) for c in done]
    with StateTable(store).writing() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO check_state (rule, grp, win, breached, since) "
            "VALUES (?,?,?,?,?)",
            params,
        )


def history(store: Database, last: int | None = None) -> pd.DataFrame:
    """The kept runs, newest first: ``run_at`` (UTC), ``rule``, ``group``, ``window``,
    ``value``, ``ci_low``, ``ci_high``, ``threshold``, ``n``, ``breached``, ``suspect``,
    ``strict``; ``last`` keeps each rule x group's latest ``last`` runs.

    >>> from veo_notebook.store import Store
    >>> with Store(":memory:") as s:
    ...     history(s).empty
    True
    """
    names = [_SHOWN_AS.get(c, c) for c in _RUN_COLUMNS]
    rows: list[tuple[Any, ...]] = []
    if RunsTable(store).exists():
        sql = f"SELECT {','.join(_RUN_COLUMNS)} FROM check_runs ORDER BY run_at DESC, rowid"
        rows = store.query(sql)
    out = pd.DataFrame(rows, columns=names)
    out["run_at"] = pd.to_datetime(out["run_at"].astype(float), unit="s", utc=True)
    for c in ("value", "ci_low", "ci_high", "threshold"):
        out[c] = out[c].astype(float)
    out["n"] = out["n"].astype("int64")
    for c in ("breached", "suspect", "strict"):
        out[c] = out[c].astype(bool)
    if last is not None:
        out = out.groupby(["rule", "group", "window"], sort=False).head(last)
    return out.reset_index(drop=True)
