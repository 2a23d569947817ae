"""How a check row reads to a person: one line (the command, the webhook), or a table
(the notebook, the report). Values go through :mod:`veo_notebook.fmt`: never NaN."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import fmt
from ._rules import COUNT, CREDITS, METRICS, SECONDS, SHARE, parse_rule

__all__ = ["BREACHED", "CLEAR", "SUSPECT", "describe", "format_value", "shown", "verdict"]

BREACHED, SUSPECT, CLEAR = "breached", "suspect", "clear"
NO_TASKS = "no tasks"


def format_value(kind: str, value: Any) -> str:
    """A value of a metric's kind (share, seconds, count, credits), as people read it."""
    if kind == SHARE:
        return fmt.pct(value)
    if kind == SECONDS:
        return fmt.num(value, "{:.0f}s")
    if kind == CREDITS:
        return fmt.num(value, "{:,.0f} credits")
    return fmt.num(value, "{:.0f}")


def value_text(rule: str, value: Any, lo: Any, hi: Any) -> str:
    """``value [interval]`` of a rule's row; counts and sums are exact: the value alone."""
    kind = METRICS[parse_rule(rule).metric].kind
    if kind in (COUNT, CREDITS):
        return format_value(kind, value)
    if kind == SHARE:
        return fmt.rate_interval(value, lo, hi)
    return fmt.interval(value, lo, hi, "{:.0f}", unit="s")


def describe(row: dict[str, Any]) -> str:
    """One line for a check row: rule, group, value [interval], n, window."""
    shown_value = value_text(row["rule"], row["value"], row["ci_low"], row["ci_high"])
    n = int(row["n"])
    return f"{row['rule']}  {row['group']}  {shown_value}  n={n}  window {row['window']}"


def verdict(breached: bool, suspect: bool, n: int) -> str:
    """``breached``, ``suspect``, ``clear``, or ``no tasks`` for a row with n = 0."""
    if breached:
        return BREACHED
    if suspect:
        return SUSPECT
    return CLEAR if n else NO_TASKS


def shown(rows: pd.DataFrame) -> pd.DataFrame:
    """Check rows (of ``check`` or ``history``) for people: rule, group, window, value
    with its interval, n and the verdict; a ``run_at`` column is kept as text.

    >>> shown(veo.check(df, "failure_rate > 5%"))              # doctest: +SKIP
    """
    out = pd.DataFrame(
        {
            "rule": rows["rule"].astype(str),
            "group": rows["group"].astype(str),
            "window": rows["window"].astype(str),
            "value [95 % interval]": [
                value_text(r, v, lo, hi)
                for r, v, lo, hi in zip(
                    rows["rule"], rows["value"], rows["ci_low"], rows["ci_high"], strict=True
                )
            ],
            "n": rows["n"].astype("int64"),
            "verdict": [
                verdict(b, s, n)
                for b, s, n in zip(rows["breached"], rows["suspect"], rows["n"], strict=True)
            ],
        },
        index=rows.index,
    )
    if "run_at" in rows.columns:
        out.insert(0, "run at (UTC)", rows["run_at"].dt.strftime("%Y-%m-%d %H:%M"))
    return out.reset_index(drop=True)
