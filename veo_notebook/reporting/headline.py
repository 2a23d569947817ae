"""The "Headline" section: the answer first, and the change against the period before.

Tasks, success rate, latency, the top failure category, the change of the latest
period against the one before it (:data:`CHANGE_PERIODS`, :data:`CHANGE_COVER`), and the
tasks in flight.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import analysis, fmt, plots
from ..analysis._kernels import pct_name
from ..analysis.error_rules import CATEGORY_MEANINGS
from ..analysis.latency import STUCK_AFTER
from ..schema import Status
from ._cells import SECONDS, day, in_words, seconds, span
from .blocks import Facts, Section, Text
from .context import Context
from .latency import BRIEF_PERCENTILES, NONE_SUCCEEDED

__all__ = ["CHANGE_COVER", "CHANGE_PERIODS", "change_rows", "headline"]

#: Lengths tried for "the latest period vs the one before", longest first.
CHANGE_PERIODS = (("30 days", "30D"), ("7 days", "7D"), ("day", "1D"), ("hour", "1h"))
CHANGE_COVER = 1.5  # a period is used when the tasks span at least this many of it

Interval = tuple[float, float, float]  # (value, lo, hi)
Row = tuple[str, str]


def _success_and_p50(frame: pd.DataFrame) -> tuple[Interval, Interval, int]:
    """(success rate, lo, hi), (p50, lo, hi) and the finished count of ``frame``."""
    r = analysis.failure_rates(frame, upgrades="pooled").iloc[0]
    n = int(r["n"])
    success = (1 - r["rate"], 1 - r["ci_high"], 1 - r["ci_low"]) if n else (np.nan,) * 3
    s = analysis.latency_summary(frame, percentiles=(0.5,), upgrades="pooled").iloc[0]
    return success, (s["p50"], s["p50_ci_low"], s["p50_ci_high"]), n


def _apart(a: tuple, b: tuple) -> bool | None:
    """Whether two intervals (value, lo, hi) do not overlap; None when a bound is missing."""
    if any(fmt.is_missing(v) for v in (*a[1:], *b[1:])):
        return None
    return bool(a[2] < b[1] or b[2] < a[1])


def _verdict(apart: bool | None, now: object, before: object, up: str, down: str) -> str:
    if apart is None:
        return "cannot tell (an interval is open)"
    if not apart:
        return "within noise (intervals overlap)"
    way = up if now > before else down  # type: ignore[operator]
    return f"CHANGED, {way}: the intervals do not overlap"


def change_rows(ctx: Context) -> list[Row]:
    """Success rate and p50 of the latest period against the period before, same length."""
    created = ctx.read["create_time"].dropna()
    if len(created) < 2:
        return [("Change", "n/a (fewer than two tasks with a creation time)")]
    end = created.max()
    fits = [
        (n, pd.Timedelta(p))
        for n, p in CHANGE_PERIODS
        if end - created.min() >= CHANGE_COVER * pd.Timedelta(p)
    ]
    if not fits:
        shortest = CHANGE_COVER * pd.Timedelta(CHANGE_PERIODS[-1][1])
        return [("Change", f"n/a (the tasks span less than {in_words(shortest)})")]
    name, length = fits[0]
    times = ctx.read["create_time"]
    s1, p1, n1 = _success_and_p50(ctx.read[(times > end - length) & (times <= end)])
    s0, p0, n0 = _success_and_p50(ctx.read[(times > end - 2 * length) & (times <= end - length)])
    when = f"last {name} ({day(end - length)} – {day(end)}) vs the {name} before"
    rate_txt = (
        f"{fmt.rate_interval(*s1)} of {n1:,} finished vs "
        f"{fmt.rate_interval(*s0)} of {n0:,}: "
        f"{_verdict(_apart(s1, s0), s1[0], s0[0], 'higher', 'lower')}"
    )
    p50_txt = (
        f"{seconds(p1, NONE_SUCCEEDED)} s vs {seconds(p0, NONE_SUCCEEDED)} s: "
        f"{_verdict(_apart(p1, p0), p1[0], p0[0], 'slower', 'faster')}"
    )
    return [("Change", when), ("· success rate", rate_txt), ("· p50 latency", p50_txt)]


def _unread_rows(df: pd.DataFrame, unread: int) -> list[Row]:
    if not unread:
        return []
    reasons = df["fetch_error"].dropna().value_counts()
    top = f"; most often: {reasons.index[0]}" if len(reasons) else ""
    return [("Unread", f"{unread:,} tasks whose record could not be read (left out below{top})")]


def _latency_row(read: pd.DataFrame) -> Row:
    s = analysis.latency_summary(read, percentiles=BRIEF_PERCENTILES, upgrades="pooled")
    s = s.iloc[0]
    if not int(s["completed"]):
        return ("Latency", "n/a (no task has succeeded yet)")
    parts = [
        f"{p} {fmt.interval(s[p], s[f'{p}_ci_low'], s[f'{p}_ci_high'], SECONDS)} s"
        for p in (pct_name(q) for q in BRIEF_PERCENTILES)
    ]
    return (
        "Latency",
        f"{', '.join(parts)} ({int(s['completed']):,} successful tasks; "
        "creation → completion, queueing included)",
    )


def _top_failure_row(ctx: Context) -> Row:
    cats = ctx.breakdown.categories
    if not len(cats):
        return ("Top failure", "no task failed")
    top = str(cats.index[0])
    meaning = CATEGORY_MEANINGS.get(top, "")
    return (
        "Top failure",
        f"{top}: {int(cats['count'].iloc[0]):,} of {int(cats['count'].sum()):,} "
        f"failures ({fmt.pct(cats['share'].iloc[0])})" + (f" — {meaning}" if meaning else ""),
    )


def _in_flight_row(ctx: Context) -> Row:
    generating = int((ctx.read["status"] == Status.GENERATING.value).fillna(False).sum())
    return (
        "In flight",
        f"{generating:,} still generating, {len(ctx.stuck):,} stuck (generating for more "
        f"than {in_words(STUCK_AFTER)} at {day(ctx.now)} UTC)",
    )


def headline(ctx: Context) -> Section:
    """The answer first: tasks, success, latency, top failure, change, tasks in flight."""
    df, read = ctx.df, ctx.read
    if not len(df):
        return Section("Headline", [Text(plots.NO_TASKS)])
    rows = [("Tasks", f"{len(df):,} tasks, created {span(df['create_time'])}")]
    rows += _unread_rows(df, len(df) - len(read))
    if not len(read):
        rows.append(("Read", "no task record could be read"))
        return Section("Headline", [Facts(rows)])
    (rate, lo, hi), _, n = _success_and_p50(read)
    rows.append(("Success rate", f"{fmt.rate_interval(rate, lo, hi)} of {n:,} finished tasks"))
    rows += [_latency_row(read), _top_failure_row(ctx), *change_rows(ctx), _in_flight_row(ctx)]
    return Section("Headline", [Facts(rows)])
