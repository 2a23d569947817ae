"""``report(df, path)``: one self-contained HTML file (or Markdown + PNGs) about a batch of tasks.

The report leads with the answer (a headline: tasks, success rate, latency, the top
failure category, the change against the previous period, tasks in flight), then the
detail. It is built from **section functions**: each takes the :class:`Context` and
returns a :class:`Section` (a heading and a list of blocks: :class:`Text`,
:class:`Facts`, :class:`Table`, :class:`Fig`), or None to leave itself out. Adding a
section is one function and one line in :data:`SECTIONS`.

Every value is formatted through :mod:`veo_notebook.fmt` (``unread``, ``n/a``,
``≥ 182.0``; never NaN). An empty table is a sentence and an empty frame draws no
figure. The HTML embeds its figures as base64 PNG and its style inline: it opens
offline, can be mailed, and loads nothing from the network. Every piece of text that
came from the API or from users (prompts, error messages, ids, model names) is
HTML-escaped. Only aggregates are drawn, so a million rows render in well under a minute.

>>> from veo_notebook import report
>>> report(df, "report.html")                              # doctest: +SKIP
PosixPath('report.html')
"""

from __future__ import annotations

import base64
import functools
import html
import io
import logging
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import analysis, fmt, plots, pricing
from .analysis._groups import now_utc
from .analysis._kernels import order_stat_ci, pct_name
from .analysis.error_rules import CATEGORY_MEANINGS
from .export import atomic_path
from .schema import Status

__all__ = [
    "DEFINITIONS",
    "SECTIONS",
    "Context",
    "Facts",
    "Fig",
    "Section",
    "Table",
    "Text",
    "report",
]

log = logging.getLogger(__name__)

PERCENTILES = (0.5, 0.9, 0.99)
KM_PERCENTILES = (0.5, 0.9)
CONFIDENCE = 0.95
STUCK_AFTER = "30min"
STUCK_SHOWN = 20
AT_RISK_WITHIN = "3D"  # videos deleted within this span are listed as at risk
LISTED = 20  # rows of a list of tasks (duplicates, at risk)
FIGURE_DPI = 150  # 10 in wide → 1500 px: sharp on HiDPI screens at the page's width
#: Lengths tried for "the latest period vs the one before", longest first.
CHANGE_PERIODS = (("30 days", "30D"), ("7 days", "7D"), ("day", "1D"), ("hour", "1h"))
CHANGE_COVER = 1.5  # a period is used when the tasks span at least this many of it
SECONDS = "{:.0f}"  # the API's times are whole seconds
LATENCY_IS = (
    "Latency is creation → completion (complete_time − create_time), queueing included: "
    "the API gives no start time."
)


# ---------------------------------------------------------------- blocks and sections


@dataclass(frozen=True)
class Text:
    """A paragraph."""

    text: str


@dataclass(frozen=True)
class Facts:
    """Label → value lines (the headline)."""

    rows: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Table:
    """A table; ``empty`` is the sentence shown instead when it has no rows."""

    frame: pd.DataFrame
    empty: str = "Nothing to show."


@dataclass(frozen=True)
class Fig:
    """A figure as PNG bytes, with a one-line caption saying what to look at."""

    name: str
    caption: str
    png: bytes


Block = Text | Facts | Table | Fig


@dataclass(frozen=True)
class Section:
    """A heading and its blocks."""

    heading: str
    blocks: Sequence[Block]


@dataclass
class Context:
    """What every section may use: the frame, its read rows, the clock, the options."""

    df: pd.DataFrame
    now: pd.Timestamp
    freq: str
    figures: bool = True
    callbacks: pd.DataFrame | None = None  # read_callbacks' frame: adds the Callbacks section
    callback_url: str | Sequence[str] | None = None  # the receiver's URL(s), for the audit
    archive: pd.DataFrame | None = None  # archive_videos' rows: adds the Delivery section
    read: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.read = fmt.readable(self.df)

    @functools.cached_property
    def by_model(self) -> pd.DataFrame:
        """The read rows with ``model`` as display labels (``upgrade task``, ``n/a``)."""
        return self.read.assign(model=fmt.group_column(self.read, "model"))

    @functools.cached_property
    def breakdown(self) -> analysis.FailureBreakdown:
        return analysis.failure_breakdown(self.by_model, top=5)

    @functools.cached_property
    def stuck(self) -> pd.DataFrame:
        return analysis.stuck_tasks(self.read, STUCK_AFTER, now=self.now)

    def figure(self, name: str, caption: str, draw: Callable[[Figure], object]) -> list[Block]:
        """``[Fig]`` drawn by ``draw(fig)``, or ``[]`` without figures or if drawing fails."""
        if not self.figures:
            return []
        try:
            fig = Figure(figsize=plots.DEFAULT_SIZE, layout="constrained")
            draw(fig)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
        except Exception:  # a figure that cannot be drawn must not sink the report
            log.exception("report: figure %s could not be drawn", name)
            return []
        return [Fig(name, caption, buf.getvalue())]


def _on_ax(plot: Callable[..., object], *args: object, **kwargs: object):
    return lambda fig: plot(*args, ax=fig.add_subplot(), **kwargs)


# ---------------------------------------------------------------- helpers


def _auto_freq(df: pd.DataFrame) -> str:
    times = df["create_time"].dropna()
    if len(times) < 2:
        return "1D"
    span = times.max() - times.min()
    if span > pd.Timedelta("3D"):
        return "1D"
    if span > pd.Timedelta("6h"):
        return "1h"
    return "10min"


def _day(ts: pd.Timestamp) -> str:
    return f"{ts:%d %b %Y %H:%M}"


def _span(times: pd.Series) -> str:
    times = times.dropna()
    if not len(times):
        return "no creation times"
    return f"{_day(times.min())} – {_day(times.max())} UTC"


@functools.cache
def min_n_for_interval(q: float, confidence: float = CONFIDENCE) -> int:
    """The fewest tasks for which the ``q`` percentile's interval has both bounds."""
    n = np.arange(1, 1001)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    xs = np.concatenate([np.arange(k, dtype=float) for k in n])
    lo, hi = order_stat_ci(xs, starts, n, q, confidence)
    ok = ~np.isnan(lo) & ~np.isnan(hi)
    return int(n[ok][0]) if ok.any() else int(n[-1])


def _flat(frame: pd.DataFrame, index_name: str | None = None) -> pd.DataFrame:
    """Display cells, the index as ordinary column(s) (one header row per table)."""
    out = fmt.table(frame)
    if not isinstance(out.index, pd.RangeIndex):
        if index_name:
            out.index.name = index_name
        out = out.reset_index()
    return out


def _count(n: object) -> str:
    return f"{int(n):,}"  # type: ignore[call-overload]


def _latency_table(ctx: Context, frame: pd.DataFrame, by: str) -> pd.DataFrame:
    naive = analysis.latency_summary(frame, by=by, percentiles=PERCENTILES)
    km = analysis.km_latency(frame, by=by, percentiles=KM_PERCENTILES, now=ctx.now)
    out = pd.DataFrame(index=naive.index)
    out["tasks"] = [_count(v) for v in naive["n"]]
    out["succeeded"] = [_count(v) for v in naive["completed"]]
    out["generating"] = [_count(v) for v in naive["generating"]]
    for q in PERCENTILES:
        p = pct_name(q)
        out[f"{p} s"] = [
            fmt.interval(v, lo, hi, SECONDS, missing="n/a (none succeeded)")
            for v, lo, hi in zip(naive[p], naive[f"{p}_ci_low"], naive[f"{p}_ci_high"], strict=True)
        ]
    for q in KM_PERCENTILES:
        p = pct_name(q)
        out[f"KM {p} s"] = [
            fmt.interval(v, lo, hi, SECONDS, missing=fmt.NOT_REACHED)
            for v, lo, hi in zip(
                km[f"km_{p}"], km[f"km_{p}_ci_low"], km[f"km_{p}_ci_high"], strict=True
            )
        ]
    out["max s"] = [fmt.num(v, SECONDS) for v in naive["max_s"]]
    return _flat(out, by)


def _rates(r: pd.DataFrame) -> list[str]:
    return [
        fmt.rate_interval(v, lo, hi, missing="n/a (none finished)")
        for v, lo, hi in zip(r["rate"], r["ci_low"], r["ci_high"], strict=True)
    ]


def _rate_table(frame: pd.DataFrame, by: str | Sequence[str]) -> pd.DataFrame:
    r = analysis.failure_rates(frame, by=by)
    out = pd.DataFrame(index=r.index)
    out["finished"] = [_count(v) for v in r["n"]]
    for c in ("succeeded", "failed", "generation_failed"):
        out[c] = [_count(v) for v in r[c]]
    out["failure rate"] = _rates(r)
    return _flat(out)


def _success_and_p50(frame: pd.DataFrame) -> tuple[tuple[float, float, float], tuple, int, int]:
    """(success rate, lo, hi), (p50, lo, hi), finished and succeeded counts of ``frame``."""
    r = analysis.failure_rates(frame).iloc[0]
    n = int(r["n"])
    success = (1 - r["rate"], 1 - r["ci_high"], 1 - r["ci_low"]) if n else (np.nan,) * 3
    s = analysis.latency_summary(frame, percentiles=(0.5,)).iloc[0]
    return success, (s["p50"], s["p50_ci_low"], s["p50_ci_high"]), n, int(s["completed"])


def _seconds(v: tuple, missing: str) -> str:
    return fmt.interval(v[0], v[1], v[2], SECONDS, missing=missing)


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


def _change_rows(ctx: Context) -> list[tuple[str, str]]:
    """Success rate and p50 of the latest period against the period before, same length."""
    created = ctx.read["create_time"].dropna()
    if len(created) < 2:
        return [("Change", "n/a (fewer than two tasks with a creation time)")]
    end = created.max()
    span = end - created.min()
    fits = [
        (n, pd.Timedelta(p)) for n, p in CHANGE_PERIODS if span >= CHANGE_COVER * pd.Timedelta(p)
    ]
    if not fits:
        return [("Change", "n/a (the tasks span less than two hours)")]
    name, length = fits[0]
    times = ctx.read["create_time"]
    now_part = ctx.read[(times > end - length) & (times <= end)]
    before = ctx.read[(times > end - 2 * length) & (times <= end - length)]
    s1, p1, n1, _ = _success_and_p50(now_part)
    s0, p0, n0, _ = _success_and_p50(before)
    when = f"last {name} ({_day(end - length)} – {_day(end)}) vs the {name} before"
    rate_txt = (
        f"{fmt.rate_interval(*s1)} of {n1:,} finished vs "
        f"{fmt.rate_interval(*s0)} of {n0:,}: "
        f"{_verdict(_apart(s1, s0), s1[0], s0[0], 'higher', 'lower')}"
    )
    p50_txt = (
        f"{_seconds(p1, missing='n/a (none succeeded)')} s vs "
        f"{_seconds(p0, missing='n/a (none succeeded)')} s: "
        f"{_verdict(_apart(p1, p0), p1[0], p0[0], 'slower', 'faster')}"
    )
    return [
        ("Change", when),
        ("· success rate", rate_txt),
        ("· p50 latency", p50_txt),
    ]


# ---------------------------------------------------------------- the sections


def headline(ctx: Context) -> Section:
    """The answer first: tasks, success, latency, top failure, change, tasks in flight."""
    df, read = ctx.df, ctx.read
    if not len(df):
        return Section("Headline", [Text(plots.NO_TASKS)])
    unread = len(df) - len(read)
    rows = [("Tasks", f"{len(df):,} tasks, created {_span(df['create_time'])}")]
    if unread:
        reasons = df["fetch_error"].dropna().value_counts()
        top = f"; most often: {reasons.index[0]}" if len(reasons) else ""
        rows.append(
            (
                "Unread",
                f"{unread:,} tasks whose record could not be read (left out below{top})",
            )
        )
    if not len(read):
        rows.append(("Read", "no task record could be read"))
        return Section("Headline", [Facts(rows)])
    (rate, lo, hi), _, n, _ = _success_and_p50(read)
    rows.append(("Success rate", f"{fmt.rate_interval(rate, lo, hi)} of {n:,} finished tasks"))
    s = analysis.latency_summary(read, percentiles=(0.5, 0.9)).iloc[0]
    if int(s["completed"]):
        lat = (
            f"p50 {fmt.interval(s['p50'], s['p50_ci_low'], s['p50_ci_high'], SECONDS)} s, "
            f"p90 {fmt.interval(s['p90'], s['p90_ci_low'], s['p90_ci_high'], SECONDS)} s "
            f"({int(s['completed']):,} successful tasks; creation → completion, queueing included)"
        )
    else:
        lat = "n/a (no task has succeeded yet)"
    rows.append(("Latency", lat))
    cats = ctx.breakdown.categories
    if len(cats):
        top_cat = str(cats.index[0])
        meaning = CATEGORY_MEANINGS.get(top_cat, "")
        rows.append(
            (
                "Top failure",
                f"{top_cat}: {int(cats['count'].iloc[0]):,} of {int(cats['count'].sum()):,} "
                f"failures ({fmt.pct(cats['share'].iloc[0])})"
                + (f" — {meaning}" if meaning else ""),
            )
        )
    else:
        rows.append(("Top failure", "no task failed"))
    rows += _change_rows(ctx)
    generating = int((read["status"] == Status.GENERATING.value).fillna(False).sum())
    rows.append(
        (
            "In flight",
            f"{generating:,} still generating, {len(ctx.stuck):,} stuck "
            f"(generating for more than 30 minutes at {_day(ctx.now)} UTC)",
        )
    )
    return Section("Headline", [Facts(rows)])


def overview(ctx: Context) -> Section | None:
    """Tasks per status (unread on its own line) and the status figure."""
    if not len(ctx.df):
        return None
    status = ctx.df["status"].astype("string").fillna(fmt.UNREAD).value_counts()
    table = pd.DataFrame(
        {
            "status": status.index,
            "tasks": [_count(v) for v in status],
            "share": [fmt.pct(v / len(ctx.df)) for v in status],
        }
    )
    table.loc[len(table)] = ["all", _count(len(ctx.df)), fmt.pct(1.0)]
    blocks: list[Block] = [
        Text(
            f"Tasks created {_span(ctx.df['create_time'])}. "
            "unread: the record could not be read (the reason is in fetch_error)."
        ),
        Table(table),
    ]
    blocks += ctx.figure(
        "status",
        "Tasks by status and model: look for a model whose bar is mostly red or orange "
        "(failed) or blue (still generating).",
        _on_ax(plots.status_counts, ctx.df, by="model"),
    )
    return Section("Overview", blocks)


def latency(ctx: Context) -> Section | None:
    """Latency by model and task type (naive and Kaplan–Meier), time to failure, figures."""
    if not len(ctx.read):
        return None
    read = ctx.read
    blocks: list[Block] = [
        Text(
            f"{LATENCY_IS} Successful tasks only; brackets: 95% intervals. "
            "KM: Kaplan–Meier, counting tasks still generating (see Definitions)."
        ),
        Text("By model."),
        Table(_latency_table(ctx, ctx.by_model, "model")),
        Text("By task type."),
        Table(_latency_table(ctx, read, "task_type")),
    ]
    failed = analysis.latency_summary(
        ctx.by_model, by="model", percentiles=(0.5, 0.9), outcome="failed"
    )
    failed = failed[failed["completed"] > 0]
    ttf = pd.DataFrame(index=failed.index)
    ttf["failed tasks"] = [_count(v) for v in failed["completed"]]
    for p in ("p50", "p90"):
        ttf[f"{p} s"] = [
            fmt.interval(v, lo, hi, SECONDS)
            for v, lo, hi in zip(
                failed[p], failed[f"{p}_ci_low"], failed[f"{p}_ci_high"], strict=True
            )
        ]
    blocks += [Text("Time to failure, by model."), Table(_flat(ttf), "No task failed.")]
    blocks += ctx.figure(
        "latency_ecdf",
        "Share of tasks succeeded by time since creation: a curve further right is a slower "
        "model; solid (Kaplan–Meier) right of dashed means slow tasks are still generating.",
        _on_ax(plots.latency_ecdf, read, by="model", now=ctx.now),
    )
    blocks += ctx.figure(
        "latency_hist",
        "Latency of successful tasks by task type: 4k upgrades take several times longer "
        "than the rest; a second hump is a slow channel.",
        _on_ax(plots.latency_hist, read, by="task_type"),
    )
    blocks += ctx.figure(
        "latency_over_time",
        f"Latency percentiles per {ctx.freq} of creation time: a rising line whose band "
        "clears the earlier ones is a real slow-down (no band where a bucket has too few "
        "tasks for an interval).",
        _on_ax(plots.latency_percentiles_over_time, read, freq=ctx.freq),
    )
    return Section("Latency (time to success)", blocks)


def failure_rates(ctx: Context) -> Section | None:
    """Failure rates by model and task type, and over time (small multiples)."""
    if not len(ctx.read):
        return None
    blocks: list[Block] = [
        Text(
            "Failed / finished tasks (tasks still generating are not counted); "
            "brackets: 95% Wilson score interval. By model, then by task type."
        ),
        Table(_rate_table(ctx.by_model, "model"), "No task has finished yet."),
        Table(_rate_table(ctx.read, "task_type"), "No task has finished yet."),
    ]
    blocks += ctx.figure(
        "failure_rate",
        f"Failure rate per {ctx.freq} of creation time, one panel per model (grey: all tasks; "
        f"hollow points: fewer than {plots.MIN_BUCKET_TASKS} finished tasks that {ctx.freq}): "
        "look for a panel whose band sits above the grey line.",
        lambda fig: plots.failure_rate_panels(ctx.by_model, freq=ctx.freq, by="model", fig=fig),
    )
    return Section("Failure rates", blocks)


def why_fail(ctx: Context) -> Section | None:
    """Error categories (a Pareto), their raw messages, parameters and prompts."""
    if not len(ctx.read):
        return None
    fb = ctx.breakdown
    if not len(fb.categories):
        return Section("Why tasks fail", [Text("No task failed.")])
    cats = pd.DataFrame(
        {
            "error category": [fmt.label(c) for c in fb.categories.index],
            "failures": [_count(v) for v in fb.categories["count"]],
            "share": [fmt.pct(v) for v in fb.categories["share"]],
            "cumulative": [fmt.pct(v) for v in fb.categories["cumulative_share"]],
            "meaning": [CATEGORY_MEANINGS.get(str(c), "n/a") for c in fb.categories.index],
        }
    )
    params = fb.params.copy()
    params["failure rate"] = _rates(params)
    params = params.drop(columns=["rate", "ci_low", "ci_high"])
    for c in ("n", "failures", "succeeded", "failed", "generation_failed"):
        if c in params.columns:
            params[c] = [_count(v) for v in params[c]]
    params = params.rename(columns={"n": "finished"})
    blocks: list[Block] = [
        Text("Error categories (a Pareto), from errorCode and errorMessage."),
        Table(cats),
    ]
    blocks += ctx.figure(
        "failure_pareto",
        "Failures by error category, largest first: the categories left of where the "
        "cumulative line passes 80% are the ones worth fixing first.",
        _on_ax(plots.failure_pareto, fb),
    )
    blocks += [
        Text("Most frequent raw messages per category."),
        Table(_flat(fb.messages)),
        Text(
            "Parameter combinations with the most failures "
            "(n/a: the field does not apply to the task, e.g. an extend has no aspect ratio)."
        ),
        Table(_flat(params)),
        Text("Prompts that failed most often."),
        Table(_flat(fb.prompts)),
    ]
    return Section("Why tasks fail", blocks)


def stuck(ctx: Context) -> Section | None:
    """Tasks generating for more than 30 minutes, oldest first."""
    if not len(ctx.read):
        return None
    s = ctx.stuck
    if not len(s):
        return Section("Stuck tasks", [Text("No task is stuck.")])
    view = pd.DataFrame(
        {
            "task_id": s["task_id"],
            "model": fmt.group_column(s, "model"),
            "task_type": s["task_type"].astype("string"),
            "created (UTC)": s["create_time"].dt.strftime("%Y-%m-%d %H:%M"),
            "age (min)": [fmt.num(v / 60) for v in s["age_s"]],
        }
    ).head(STUCK_SHOWN)
    shown = f"the {STUCK_SHOWN} oldest" if len(s) > STUCK_SHOWN else "oldest first"
    return Section(
        "Stuck tasks",
        [
            Text(f"{len(s):,} tasks generating for more than 30 minutes; {shown}:"),
            Table(_flat(view)),
        ],
    )


def _credits(value: object) -> str:
    return fmt.num(value, "{:,.0f}")


def money(ctx: Context) -> Section | None:
    """Credits per model, how they were found, and what duplicate submissions wasted."""
    if not len(ctx.read):
        return None
    df = ctx.df
    priced = df if "credits" in df.columns else pricing.with_credits(df)
    read = fmt.labelled(priced, "model")  # credits found first; then the model as labels
    table = analysis.cost_summary(read, by="model")
    dups = analysis.duplicate_submissions(priced)
    credits = priced["credits"]
    source = priced.get("credits_source", credits.notna().map({True: "estimated"}))
    source = source.astype("string")
    estimated = credits[(source == "estimated").fillna(False)].sum()
    reported = credits[(source == "reported").fillna(False)].sum()
    if "credits" in df.columns:
        origin, failed = "as given in the frame", ""
    else:
        dates = sorted(set(pricing.default_prices().rows["as_of"].dropna()))
        origin = f"the shipped price table, figures as of {', '.join(dates) or 'no date'}"
        failed = "Failed tasks cost 0. "
    facts = (
        f"{_credits(credits.sum())} credits for {len(df):,} tasks: {_credits(estimated)} "
        f"estimated ({origin}), {_credits(reported)} reported by the API; "
        f"{int(credits.isna().sum())} tasks without a price (unread, or no price applies). "
        f"{failed}"
        f"{len(dups)} duplicate submissions (the same request within 15 minutes) wasted "
        f"{_credits(dups['wasted_credits'].sum())} credits."
    )
    view = pd.DataFrame(
        {
            "tasks": [_count(v) for v in table["n"]],
            "succeeded": [_count(v) for v in table["succeeded"]],
            "credits": [_credits(v) for v in table["credits"]],
            "credits / success": [fmt.num(v) for v in table["credits_per_success"]],
            "reported": [_credits(v) for v in table["reported_credits"]],
            "unpriced": [_count(v) for v in table["unpriced"]],
            "duplicates": [_count(v) for v in table["duplicates"]],
            "wasted": [_credits(v) for v in table["wasted_credits"]],
        },
        index=table.index,
    )
    blocks: list[Block] = [
        Text(facts),
        Text("By model (upgrade task: a 1080p/4k upgrade, which has no model of its own)."),
        Table(_flat(view, "model"), "No task has a price."),
    ]
    blocks += ctx.figure(
        "spend",
        f"Credits spent per {ctx.freq} of creation time, by model (estimated unless reported): "
        "look for a day whose bar towers over the rest, and for the dashed line (credits "
        "wasted on duplicate submissions) above zero.",
        _on_ax(plots.spend_over_time, priced, freq=ctx.freq),
    )
    if len(dups):
        worst = dups.sort_values("wasted_credits", ascending=False, kind="stable").head(LISTED)
        dup_view = pd.DataFrame(
            {
                "task_id": worst["task_id"],
                "first submission": worst["first_task_id"],
                "created (UTC)": worst["create_time"].dt.strftime("%Y-%m-%d %H:%M"),
                "after (s)": [fmt.num(v, "{:.0f}") for v in worst["delay_s"]],
                "status": fmt.group_column(worst, "status"),
                "wasted credits": [_credits(v) for v in worst["wasted_credits"]],
            }
        ).reset_index(drop=True)
        blocks += [
            Text(f"Duplicate submissions wasting the most credits (up to {LISTED}):"),
            Table(dup_view),
        ]
    return Section("Money", blocks)


def at_risk(ctx: Context) -> Section | None:
    """Videos kie.ai is about to delete (completion + 14 days), and those already gone."""
    if not len(ctx.read):
        return None
    now = ctx.now
    risk = analysis.expiring(ctx.read, within=AT_RISK_WITHIN, now=now, archived=ctx.archive)
    soon = risk[~risk["expired"]]
    gone = int(risk["expired"].sum())
    text = (
        f"At {now:%Y-%m-%d %H:%M} UTC: {len(soon)} succeeded tasks' videos are deleted by kie.ai "
        f"within {pd.Timedelta(AT_RISK_WITHIN).days} days, and {gone} are already deleted "
        "(14 days after completion). Archive them before they go; a video already archived is "
        "left out by veo.expiring(df, archived=...)."
        + (" Videos this report's archive saved are left out." if ctx.archive is not None else "")
    )
    blocks: list[Block] = [Text(text)]
    if len(soon):
        view = pd.DataFrame(
            {
                "task_id": soon["task_id"],
                "model": fmt.group_column(soon, "model"),
                "completed (UTC)": soon["complete_time"].dt.strftime("%Y-%m-%d %H:%M"),
                "deleted at (UTC)": soon["expires_at"].dt.strftime("%Y-%m-%d %H:%M"),
                "hours left": [fmt.num(v / 3600) for v in soon["expires_in_s"]],
            }
        ).head(LISTED)
        blocks.append(Table(_flat(view)))
    return Section("At risk (videos about to expire)", blocks)


def delivery(ctx: Context) -> Section | None:
    """What the archive saved, and each file against its request (shown when given)."""
    if ctx.archive is None:
        return None
    from .archive import UNREADABLE, delivery_check

    archive = ctx.archive
    errors = archive["archive_error"]
    saved = archive[errors.isna() | (errors == UNREADABLE)]
    megabytes = float(saved["bytes"].sum()) / 1e6
    blocks: list[Block] = [
        Text(
            f"{len(archive):,} videos of succeeded tasks; {len(saved):,} archived "
            f"({megabytes:,.1f} MB), {int(errors.notna().sum()):,} with an error. Each file "
            "was read with PyAV and compared with what its task asked for (the request, "
            "else the record's response)."
        )
    ]
    failed = errors.dropna()
    if len(failed):
        kinds = failed.str.split(":").str[0].value_counts()
        table = pd.DataFrame({"videos": kinds.astype(int)}).rename_axis("archive error")
        blocks += [Text("Why videos could not be archived or read."), Table(_flat(table))]
    problems = delivery_check(ctx.df, archive)
    if not len(problems):
        blocks.append(Text("No delivery problems: every file is what its task asked for."))
        return Section("Delivery", blocks)
    counts = problems["issue"].value_counts().loc[lambda v: v > 0]
    table = pd.DataFrame({"tasks": counts.astype(int)}).rename_axis("issue")
    shown = problems.head(LISTED).reset_index(drop=True)
    blocks += [
        Text(f"{len(problems):,} delivery problems in {problems['task_id'].nunique():,} tasks."),
        Table(_flat(table)),
        Text(f"The first {LISTED}." if len(problems) > LISTED else "All of them."),
        Table(_flat(shown)),
    ]
    return Section("Delivery", blocks)


def definitions(ctx: Context) -> Section | None:
    """What each number means (once, at the end)."""
    if not len(ctx.df):
        return None
    counts = {f"n_{pct_name(q)}": min_n_for_interval(q) for q in PERCENTILES}
    return Section("Definitions", [Facts([(k, v.format(**counts)) for k, v in DEFINITIONS])])


DEFINITIONS: list[tuple[str, str]] = [
    ("latency", LATENCY_IS + " Naive percentiles use the successful tasks only."),
    (
        "p50 … p99",
        "percentiles of latency, linear interpolation (as numpy.quantile); in brackets the "
        "exact 95% order-statistic interval. A small group gives one bound only "
        "(≥ a / ≤ b) or none (n/a (too few)): both bounds need at least "
        "{n_p50} successful tasks for the p50, {n_p90} for the p90 and {n_p99} for the p99.",
    ),
    (
        "KM p50, KM p90",
        "Kaplan–Meier percentiles of time to success: tasks still generating count as "
        "censored at their age, failed tasks as censored at their failure time. Larger than "
        "the naive value when slow tasks are still running; 'not reached' when the curve "
        "never gets there (late failures, such as timeouts, hold it up). In brackets the 95% "
        "Brookmeyer–Crowley interval (log-transformed Greenwood band).",
    ),
    ("time to failure", "complete_time − create_time of tasks that failed (successFlag 2 or 3)."),
    (
        "failure rate",
        "(failed + generation_failed) / finished tasks; tasks still generating, of unknown "
        "status or unread are left out. In brackets the 95% Wilson score interval. The "
        "success rate is 1 − the failure rate.",
    ),
    (
        "change",
        "the latest period (30 days, 7 days, a day or an hour: the longest that the tasks' "
        "span covers 1.5 times) against the period of the same length before it; CHANGED when the "
        "two 95% intervals do not overlap.",
    ),
    ("stuck", "still generating more than 30 minutes after creation, at the latest fetch."),
    (
        "credits",
        "reported by the API where an answer carries creditsConsumed, else estimated from a "
        "dated, sourced price table (veo_notebook/pricing/prices.csv, replaceable: "
        "veo.with_credits(df, prices=...) before the report); failed tasks cost 0 (reported "
        "as not billed).",
    ),
    (
        "duplicate submission",
        "a task whose request (prompt, model, generation type, aspect ratio, images, seeds, "
        "parent, task type) repeats one made less than 15 minutes before; its credits are "
        "wasted when an earlier identical submission did not fail.",
    ),
    (
        "at risk",
        "a succeeded task whose video kie.ai deletes (14 days after completion) within 3 days.",
    ),
    ("unread", "a task whose record could not be read; counted on its own line, not as a model."),
    ("upgrade task", "a 1080p or 4k upgrade: it has no model of its own."),
    ("n/a", "the value does not apply, or the reason is given beside it."),
    ("times", "all times are UTC."),
]

#: The report, in order. A new section: write ``def my_section(ctx) -> Section | None``
#: and add it here.
CALLBACK_PROBLEM_ROWS = 20  # rows of the callbacks problem list


def callbacks_section(ctx: Context) -> Section | None:
    """Callbacks kept by the receiver, audited against record-info (shown when given)."""
    if ctx.callbacks is None:
        return None
    from .callbacks import callback_audit

    audit = callback_audit(ctx.df, ctx.callbacks, expect=ctx.callback_url)
    got = audit["callback_received"].fillna(False)
    delay = audit["first_delay_s"].dropna()
    problems = audit[audit["disagreement"].notna()]
    rank = problems["disagreement"].map({"no record": 1, "no callback": 2}).fillna(0)
    problems = problems.iloc[rank.argsort(kind="stable")]  # contradictions first

    def count(mask: pd.Series) -> str:
        return f"{int(mask.fillna(False).sum()):,}"

    none_yet = "no delivery yet"

    def secs(v: object) -> str:
        return fmt.num(v, SECONDS + " s", none_yet)

    facts = [
        ("deliveries kept", f"{len(ctx.callbacks):,}"),
        ("of which duplicates", count(ctx.callbacks["duplicate"])),
        ("tasks with a callback", count(got)),
        ("tasks delivered more than once", count(audit["deliveries"] > 1)),
        ("terminal tasks with no callback", count(audit["disagreement"] == "no callback")),
        ("callbacks with no record", count(audit["disagreement"] == "no record")),
        ("callbacks that disagree with record-info", count(audit["agrees"] == False)),  # noqa: E712
        ("first delay p50", fmt.num(delay.median(), SECONDS, none_yet) + " s" * bool(len(delay))),
        (
            "first delay p90",
            fmt.num(delay.quantile(0.9), SECONDS, none_yet) + " s" * bool(len(delay)),
        ),
        ("first delay max", fmt.num(delay.max(), SECONDS, none_yet) + " s" * bool(len(delay))),
    ]
    view = pd.DataFrame(
        {
            "task_id": problems["task_id"],
            "record status": problems["status"].astype("string").fillna("no record"),
            "callback status": problems["callback_status"].astype("string").fillna("none kept"),
            "deliveries": problems["deliveries"].astype("int64"),
            "first delay s": [fmt.num(v, SECONDS, none_yet) for v in problems["first_delay_s"]],
            "what differs": problems["disagreement"],
        }
    ).head(CALLBACK_PROBLEM_ROWS)
    shown = f"the first {CALLBACK_PROBLEM_ROWS}" if len(problems) > CALLBACK_PROBLEM_ROWS else "all"
    blocks: list[Block] = [
        Text(
            "Callbacks kept by the receiver, against record-info (the authority). First delay: "
            "first delivery − completeTime."
        ),
        Facts(facts),
        Text(f"{len(problems):,} tasks with a problem; {shown}:")
        if len(problems)
        else Text("Every callback agrees with record-info, and every terminal task got one."),
    ]
    if len(problems):
        blocks.append(Table(_flat(view.reset_index(drop=True))))
    if len(delay):
        blocks += ctx.figure(
            "callback_delay",
            "Delay of the first callback delivery after completeTime: a long tail means "
            "callbacks you cannot wait for; poll record-info instead.",
            lambda fig: plots.callback_delay(audit, ax=fig.subplots()),
        )
    return Section("Callbacks", blocks)


SECTIONS: list[Callable[[Context], Section | None]] = [
    headline,
    overview,
    latency,
    failure_rates,
    why_fail,
    stuck,
    money,
    at_risk,
    delivery,
    callbacks_section,
    definitions,
]


def _sections(ctx: Context) -> list[Section]:
    out = []
    for make in SECTIONS:
        section = make(ctx)
        if section is not None:
            out.append(section)
    return out


# ---------------------------------------------------------------- rendering

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em;line-height:1.4}
h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.scroll{overflow-x:auto;margin:.6em 0 1.2em}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top;
font-variant-numeric:tabular-nums;white-space:nowrap}th{background:#f3f3f3}
td.wrap{white-space:normal;min-width:16em}
table.facts{font-size:15px;margin:.6em 0 1.2em}table.facts th{width:9em;background:#f7f7f7}
table.facts td{white-space:normal}
figure{margin:1.2em 0}figcaption{font-size:13px;color:#555;margin-top:.3em}
img{width:100%;height:auto}
"""
_WRAP = {"error_message", "prompt", "meaning"}


def _esc(text: str) -> str:
    """Text content escaped (<, >, &); attribute values use html.escape with quotes."""
    return html.escape(text, quote=False)


def _html_table(frame: pd.DataFrame) -> str:
    esc = _esc
    head = "".join(f"<th>{esc(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):  # aggregates only: a few dozen rows
        cells = []
        for col, value in zip(frame.columns, row, strict=True):
            cls = ' class="wrap"' if col in _WRAP else ""
            cells.append(f"<td{cls}>{esc(_text(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _text(value: object) -> str:
    return fmt.MISSING if fmt.is_missing(value) else str(value)


def _html(title: str, sections: list[Section]) -> str:
    esc = _esc
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>Generated {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC by veo-notebook.</p>",
    ]
    for section in sections:
        parts.append(f"<h2>{esc(section.heading)}</h2>")
        for block in section.blocks:
            if isinstance(block, Text):
                parts.append(f"<p>{esc(block.text)}</p>")
            elif isinstance(block, Facts):
                rows = "".join(
                    f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in block.rows
                )
                parts.append(f'<table class="facts">{rows}</table>')
            elif isinstance(block, Table):
                if len(block.frame):
                    parts.append(_html_table(block.frame))
                else:
                    parts.append(f"<p>{esc(block.empty)}</p>")
            else:
                data = base64.b64encode(block.png).decode("ascii")
                alt = html.escape(block.name)
                parts.append(
                    f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{esc(block.caption)}</figcaption></figure>"
                )
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_cell(value: object) -> str:
    return html.escape(_text(value), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(_md_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _markdown(title: str, sections: list[Section], fig_dir: Path) -> str:
    parts = [
        f"# {_md_cell(title)}",
        "",
        f"Generated {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC by veo-notebook.",
        "",
    ]
    for section in sections:
        parts += [f"## {_md_cell(section.heading)}", ""]
        for block in section.blocks:
            if isinstance(block, Text):
                parts += [_md_cell(block.text), ""]
            elif isinstance(block, Facts):
                parts += [f"- **{_md_cell(k)}**: {_md_cell(v)}" for k, v in block.rows] + [""]
            elif isinstance(block, Table):
                parts += [_md_table(block.frame) if len(block.frame) else _md_cell(block.empty)]
                parts += [""]
            else:
                fig_dir.mkdir(parents=True, exist_ok=True)
                with atomic_path(fig_dir / f"{block.name}.png") as tmp:
                    tmp.write_bytes(block.png)
                parts += [f"![{block.name}]({fig_dir.name}/{block.name}.png)", ""]
                parts += [f"*{_md_cell(block.caption)}*", ""]
    return "\n".join(parts) + "\n"


def report(
    df: pd.DataFrame,
    path: str | Path,
    *,
    title: str = "Veo task report",
    freq: str | None = None,
    now: object = None,
    figures: bool = True,
    callbacks: pd.DataFrame | None = None,
    callback_url: str | Sequence[str] | None = None,
    archive: pd.DataFrame | None = None,
) -> Path:
    """Write a one-file report on the tasks in ``df``; return its path.

    ``path`` ending in ``.md`` gives Markdown with the figures as PNG files in a
    ``<name>_figures`` folder beside it; anything else gives self-contained HTML.
    ``freq`` is the time bucket of the over-time figures (default: from the time span);
    ``now`` the time tasks still generating are aged at (default: the latest fetch);
    ``figures=False`` leaves the figures out (a quicker, text-only report);
    ``callbacks`` (:func:`veo_notebook.callbacks.read_callbacks`'s frame) adds a
    "Callbacks" section: the audit against record-info and the delivery delays;
    ``callback_url`` (the receiver's URL) limits "terminal with no callback" to the tasks
    that named it (default: any callBackUrl); ``archive`` (what
    :func:`~veo_notebook.archive_videos` returned) adds a "Delivery" section and leaves
    the videos it saved out of "At risk".

    >>> report(df, "out/report.html", title="March batch")     # doctest: +SKIP
    PosixPath('out/report.html')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        df,
        now_utc(df, now),
        freq or _auto_freq(df),
        figures,
        callbacks=callbacks,
        callback_url=callback_url,
        archive=archive,
    )
    sections = _sections(ctx)
    if path.suffix.lower() == ".md":
        text = _markdown(title, sections, path.with_name(f"{path.stem}_figures"))
    else:
        text = _html(title, sections)
    with atomic_path(path) as tmp:  # no half-written report under the final name
        tmp.write_text(text, encoding="utf-8")
    log.info("report: %d tasks → %s", len(df), path)
    return path


class _ReportModule(types.ModuleType):
    """This module, callable as :func:`report`.

    ``veo_notebook.report`` is both this module and the package's ``report`` function;
    importing the module (``from veo_notebook.report import SECTIONS``, or anything that
    imports it) rebinds the package attribute to the module, so calling it must still work.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Path:
        return report(*args, **kwargs)


sys.modules[__name__].__class__ = _ReportModule
