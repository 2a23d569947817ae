"""The report over an engine (DuckDB, Spark): the same sections, built from aggregates.

:func:`veo_notebook.report` comes here for a source too big to hold — a Parquet dataset
above :data:`~veo_notebook.engine.PANDAS_MAX_ROWS`, a store's dataset, a DuckDB relation,
a Spark DataFrame — or when ``engine=`` names one. :class:`SourceContext` holds the
engine of every task and the engine of the read ones (a lazy subset). Each section asks
the engine-capable analysis functions (``latency_summary``, ``km_latency``,
``failure_rates``, ``failure_breakdown``, ``stuck_tasks``, ``cost_summary``,
``worst_duplicates``) and formats their tables with the same helpers as the
in-memory report, so a table reads the same on every engine; the figures are drawn from
aggregates (:mod:`.figures`). What comes back as rows is bounded: the stuck tasks (still
generating) and ``LIMIT``-ed lists (the worst duplicate submissions among them).

A section that needs every row (the video families) says so in one sentence.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import analysis, fmt
from ..analysis._keys import plan_keys
from ..analysis.latency import STUCK_AFTER
from ..engine import Engine
from ..engine import _plan as p
from ..engine._base import missing_labels
from ..engine._sql import _LOW_BIN as LOW_BIN
from ..engine._sql import BINS_PER_OCTAVE, SqlEngine
from ..schema import Status
from . import figures
from ._cells import count, day, in_words, span
from ._rollup import share_counts
from .blocks import Block, Facts, Section, Table, Text
from .context import TOP_CATEGORIES, figure_block
from .failures import NONE_FINISHED, RATES_ARE, _rate_table
from .headline import (
    CHANGE_COVER,
    CHANGE_PERIODS,
    Interval,
    _latency_row,
    _success_and_p50,
    _top_failure_row,
    _verdict,
)
from .headline import _apart as apart
from .latency import LATENCY_IS, PERCENTILES, _latency_table, _time_to_failure

__all__ = [
    "SourceContext",
    "auto_freq_of",
    "by_label",
    "failure_rates",
    "headline",
    "latency",
    "micros",
    "overview",
    "remember",
]

_US = 1000  # ns per µs
#: The successful tasks' latencies, as the latency table ranks them: its grouped scan
#: counted their bins (Engine.answers), which the latency figures then draw.
SUCCEEDED = p.All((p.In("status", (Status.SUCCESS.value,)), p.NotNull("latency_s")))
#: What the stuck tasks are read with: the columns shown, and those their labels need.
STUCK_COLUMNS = ("task_id", "status", "model", "task_type", "create_time", "fetch_error")


def _when(us: int) -> pd.Timestamp:
    return pd.Timestamp(int(us), unit="us", tz="UTC")


def micros(ts: pd.Timestamp) -> int:
    """A time as µs since the epoch (what the engines compare times in)."""
    return int(ts.value // _US)


def _window(lo: pd.Timestamp, hi: pd.Timestamp) -> p.Cond:
    """Created in (lo, hi] (µs resolution: a dataset holds µs)."""
    return p.All(
        (
            p.NotNull("create_time"),
            p.Not(p.TimeBefore("create_time", micros(lo) + 1)),
            p.TimeBefore("create_time", micros(hi) + 1),
        )
    )


#: The largest answer :func:`remember` keeps (rows).
KEPT_ROWS = 100_000


def remember(eng: Engine) -> None:
    """Let a SQL engine answer a query it already answered from memory: the sections ask
    some aggregates more than once (the price combinations for each cost table, the
    windows the headline and the sections share). An answer of more than
    :data:`KEPT_ROWS` rows (the Kaplan–Meier event times) is not kept: the engine keeps
    what the analysis computes from it instead (:attr:`Engine.answers`)."""
    if not isinstance(eng, SqlEngine) or "_fetch" in vars(eng):
        return
    eng.answers = {}
    fetch = eng._fetch
    answers: dict[str, object] = {}

    def fetch_once(sql: str):  # type: ignore[no-untyped-def]
        if sql in answers:
            return answers[sql]
        got = fetch(sql)
        if got.num_rows <= KEPT_ROWS:
            answers[sql] = got
        return got

    eng._fetch = fetch_once  # type: ignore[method-assign]


@dataclass
class SourceContext:
    """What every section over an engine may use: the engines, the counts, the clock."""

    eng: Engine  # every task
    now: pd.Timestamp
    freq: str
    figures: bool = True
    callbacks: pd.DataFrame | None = None
    callback_url: str | Sequence[str] | None = None
    archive: pd.DataFrame | None = None
    checks: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        remember(self.eng)
        unread = "fetch_error" in self.eng.columns()
        self.read = self.eng.subset(p.Not(p.NotNull("fetch_error"))) if unread else self.eng
        remember(self.read)
        share_counts(self.read, self.freq)
        share_counts(self.eng, self.freq)  # the money section's, over every task
        self.n = self.eng.count()
        self.n_read = self.read.count() if unread else self.n
        self.span = self.eng.time_span("create_time")

    @property
    def by_model(self) -> Engine:
        """The read tasks; an engine labels a missing model itself (``upgrade task``)."""
        return self.read

    @functools.cached_property
    def breakdown(self) -> analysis.FailureBreakdown:
        return analysis.failure_breakdown(self.read, top=TOP_CATEGORIES)

    @functools.cached_property
    def stuck(self) -> pd.DataFrame:
        """Tasks generating for longer than STUCK_AFTER: still generating, a bounded set,
        with only the columns the report shows (a third of the time at 20M tasks)."""
        return analysis.stuck_tasks(self.read.project(STUCK_COLUMNS), STUCK_AFTER, now=self.now)

    def figure(self, name: str, caption: str, draw: Callable[[Figure], object]) -> list[Block]:
        return figure_block(self.figures, name, caption, draw)

    def created(self) -> str:
        """``first – last UTC`` of the creation times (the in-memory report's words)."""
        if self.span is None:
            return span(pd.Series([], dtype="datetime64[us, UTC]"))
        return span(pd.Series([_when(self.span[0]), _when(self.span[1])]))


def auto_freq_of(eng: Engine) -> str:
    """The over-time bucket from the creation times' span (the rule of ``auto_freq``)."""
    from .context import auto_freq

    got = eng.time_span("create_time")
    times = [] if got is None else [_when(got[0]), _when(got[1])]
    return auto_freq(pd.DataFrame({"create_time": pd.Series(times, dtype="datetime64[us, UTC]")}))


# --- the headline --------------------------------------------------------------------
def _change_rows(ctx: SourceContext) -> list[tuple[str, str]]:
    # every task read: the read ones' creation times are every task's (no query)
    got = ctx.span if ctx.n_read == ctx.n else ctx.read.time_span("create_time")
    if got is None or got[0] == got[1]:
        return [("Change", "n/a (fewer than two tasks with a creation time)")]
    first, end = _when(got[0]), _when(got[1])
    fits = [
        (n, pd.Timedelta(q))
        for n, q in CHANGE_PERIODS
        if end - first >= CHANGE_COVER * pd.Timedelta(q)
    ]
    if not fits:
        shortest = CHANGE_COVER * pd.Timedelta(CHANGE_PERIODS[-1][1])
        return [("Change", f"n/a (the tasks span less than {in_words(shortest)})")]
    name, length = fits[0]
    (s1, p1, n1), (s0, p0, n0) = _two_windows(ctx.read, got[1], int(length.value // _US))
    from ._cells import seconds
    from .latency import NONE_SUCCEEDED

    when = f"last {name} ({day(end - length)} – {day(end)}) vs the {name} before"
    rate_txt = (
        f"{fmt.rate_interval(*s1)} of {n1:,} finished vs {fmt.rate_interval(*s0)} of {n0:,}: "
        f"{_verdict(apart(s1, s0), s1[0], s0[0], 'higher', 'lower')}"
    )
    p50_txt = (
        f"{seconds(p1, NONE_SUCCEEDED)} s vs {seconds(p0, NONE_SUCCEEDED)} s: "
        f"{_verdict(apart(p1, p0), p1[0], p0[0], 'slower', 'faster')}"
    )
    return [("Change", when), ("· success rate", rate_txt), ("· p50 latency", p50_txt)]


def _two_windows(read: Engine, end: int, step: int) -> list[tuple[Interval, Interval, int]]:
    """:func:`~.headline._success_and_p50` of the ``step`` µs up to ``end`` (µs) and of
    the ``step`` before, each window (lo, hi] a bucket of one grouping: the same numbers
    as each window asked alone, in half the queries."""
    lo, hi = _when(end - 2 * step), _when(end)
    both = read.subset(_window(lo, hi))
    bucket = p.Bucket(step, missing_labels("create_time"), offset=(end + 1) % step)
    rates = analysis.failure_rates(both, by=bucket, upgrades="pooled")  # type: ignore[arg-type]
    p50 = analysis.latency_summary(
        both,
        by=bucket,  # type: ignore[arg-type]
        percentiles=(0.5,),
        upgrades="pooled",
    )
    out = []
    for start in (end + 1 - step, end + 1 - 2 * step):  # the window (start - 1, start - 1 + step]
        at = _when(start)
        nan = (np.nan, np.nan, np.nan)
        n, success = 0, nan
        if at in rates.index and int(rates.loc[at, "n"]):
            r = rates.loc[at]
            n, success = int(r["n"]), (1 - r["rate"], 1 - r["ci_high"], 1 - r["ci_low"])
        s = p50.loc[at] if at in p50.index else None
        latency = nan if s is None else (s["p50"], s["p50_ci_low"], s["p50_ci_high"])
        out.append((success, latency, n))
    return out


def _unread_row(ctx: SourceContext) -> list[tuple[str, str]]:
    unread = ctx.n - ctx.n_read
    if not unread:
        return []
    keys = (p.Key("fetch_error"),)
    top = ctx.eng.grouped(keys, {"n": p.Count()}, p.NotNull("fetch_error"), top=1)
    why = f"; most often: {top['k0'].iloc[0]}" if len(top) else ""
    return [("Unread", f"{unread:,} tasks whose record could not be read (left out below{why})")]


def headline(ctx: SourceContext) -> Section:
    if not ctx.n:
        return Section("Headline", [Text("No tasks in this frame.")])
    rows = [("Tasks", f"{ctx.n:,} tasks, created {ctx.created()}"), *_unread_row(ctx)]
    if not ctx.n_read:
        rows.append(("Read", "no task record could be read"))
        return Section("Headline", [Facts(rows)])
    (rate, lo, hi), _, n = _success_and_p50(ctx.read)
    rows.append(("Success rate", f"{fmt.rate_interval(rate, lo, hi)} of {n:,} finished tasks"))
    generating = ctx.read.grouped((), {"n": p.Count(p.In("status", (Status.GENERATING.value,)))})
    flight = (
        f"{int(generating['n'].iloc[0]):,} still generating, {len(ctx.stuck):,} stuck "
        f"(generating for more than {in_words(STUCK_AFTER)} at {day(ctx.now)} UTC)"
    )
    rows += [
        _latency_row(ctx.read),
        _top_failure_row(ctx),  # type: ignore[arg-type]
        *_change_rows(ctx),
        ("In flight", flight),
    ]
    return Section("Headline", [Facts(rows)])


# --- tasks, latency, failures ----------------------------------------------------------
def by_label(table: pd.DataFrame, column: str = "model") -> pd.DataFrame:
    """A by-model table in the order of its labels as text: the in-memory report groups
    the labelled models (``upgrade task`` among them), an engine puts missing keys last."""
    order = table[column].astype(str).sort_values(kind="stable").index
    return table.loc[order].reset_index(drop=True)


def _label(frame: pd.DataFrame, i: int) -> list:
    """Key ``i``'s display value per row: the value, else its missing label."""
    return [
        v if v is not None else na for v, na in zip(frame[f"k{i}"], frame[f"k{i}_na"], strict=True)
    ]


def overview(ctx: SourceContext) -> Section | None:
    if not ctx.n:
        return None
    counts = ctx.eng.grouped((p.Key("status"),), {"n": p.Count()})
    names = [fmt.UNREAD if v is None else str(v) for v in counts["k0"]]
    status = pd.Series(counts["n"].to_numpy(np.int64), index=names).sort_values(
        ascending=False, kind="stable"
    )
    table = pd.DataFrame(
        {
            "status": status.index,
            "tasks": [count(v) for v in status],
            "share": [fmt.pct(v / ctx.n) for v in status],
        }
    )
    table.loc[len(table)] = ["all", count(ctx.n), fmt.pct(1.0)]
    blocks: list[Block] = [
        Text(
            f"Tasks created {ctx.created()}. "
            f"{fmt.UNREAD}: the record could not be read (the reason is in fetch_error)."
        ),
        Table(table),
    ]

    def draw(fig: Figure) -> None:
        keys, _ = plan_keys(ctx.eng, "model")
        both = ctx.eng.grouped((*keys, p.Key("status")), {"n": p.Count()})
        both = both.assign(
            model=_label(both, 0), status=[fmt.UNREAD if v is None else v for v in both["k1"]]
        )
        crossed = both.pivot_table(
            index="model", columns="status", values="n", aggfunc="sum", fill_value=0
        )
        figures.status_bars(fig.add_subplot(), crossed, "model")

    blocks += ctx.figure(
        "status",
        "Tasks by status and model (one bar per model, its length the tasks, coloured by "
        "status): look for a model whose bar is mostly red or orange (failed) or blue "
        "(still generating).",
        draw,
    )
    return Section("Overview", blocks)


def _ecdf(ctx: SourceContext) -> pd.DataFrame:
    """The naive ECDF of successful tasks' latency by model, exact at the upper edge of
    each of the engine's log-scale bins (``group``, ``value``, ``share``): one count per
    (model, bin), a cumulative sum here."""
    keys, _ = plan_keys(ctx.read, "model")
    h = ctx.read.histogram(keys, "latency_s", SUCCEEDED)
    h = h.assign(group=_label(h, 0))
    h = h[h["b"].to_numpy() != LOW_BIN]
    running = h.groupby("group", sort=False)["c"]
    return pd.DataFrame(
        {
            "group": h["group"],
            "value": 2.0 ** ((h["b"].to_numpy(np.int64) + 1) / BINS_PER_OCTAVE),
            "share": running.cumsum() / running.transform("sum"),
        }
    ).reset_index(drop=True)


def _latency_figures(ctx: SourceContext) -> list[Block]:
    read = ctx.read

    def ecdf(fig: Figure) -> None:
        km = analysis.km_curve(read, by="model", now=ctx.now)
        figures.latency_ecdf(fig.add_subplot(), _ecdf(ctx), km, "model")

    def hist(fig: Figure) -> None:
        keys, _ = plan_keys(read, "task_type")
        h = read.histogram(keys, "latency_s", SUCCEEDED)
        figures.latency_hist(fig.add_subplot(), h.assign(group=_label(h, 0)), "task_type")

    def over_time(fig: Figure) -> None:
        summary = analysis.latency_summary(
            read, by=ctx.freq, percentiles=PERCENTILES, upgrades="pooled"
        )
        figures.latency_over_time(fig.add_subplot(), summary, ctx.freq, PERCENTILES)

    step = 2 ** (1 / figures.HIST_PER_OCTAVE)
    return [
        *ctx.figure(
            "latency_ecdf",
            "Share of tasks succeeded by time since creation, one colour per model: solid, "
            "Kaplan–Meier (tasks still generating counted at their age); dashed, the naive "
            "share of successful tasks (counted by the engine in bins "
            f"{(2 ** (1 / BINS_PER_OCTAVE) - 1):.0%} wide, exact at each bin's upper edge). A "
            "curve further right is a slower model; solid right of "
            "dashed means slow tasks are still generating.",
            ecdf,
        ),
        *ctx.figure(
            "latency_hist",
            "Successful tasks per latency bin, one outline per task type (bins "
            f"{(step - 1):.0%} wide on the log scale, counted by the engine): 4k upgrades "
            "take several times longer than the rest; a second hump is a slow channel.",
            hist,
        ),
        *ctx.figure(
            "latency_over_time",
            f"Latency percentiles per {ctx.freq} of creation time (a line per percentile, "
            "its band the interval): a rising line whose band clears the earlier ones is a "
            "real slow-down (no band where a bucket has too few tasks for an interval).",
            over_time,
        ),
    ]


def _drop_curves(eng: Engine) -> None:
    """Forget the Kaplan–Meier tables the engine kept (a row per distinct time); the
    small answers (ranks, bins) stay for the figures."""
    if eng.answers is not None:
        for asked in [a for a in eng.answers if a[0] == "km"]:
            del eng.answers[asked]


def latency(ctx: SourceContext) -> Section | None:
    if not ctx.n_read:
        return None
    from ._cells import CONFIDENCE

    # by task type first, its curve dropped (no figure asks for it): the model's curve,
    # kept for the figure (Engine.answers), is then not held while those counts are made
    by_type = _latency_table(ctx, ctx.read, "task_type")  # type: ignore[arg-type]
    _drop_curves(ctx.read)
    blocks: list[Block] = [
        Text(
            f"{LATENCY_IS} Successful tasks only; brackets: {fmt.pct(CONFIDENCE, 0)} intervals. "
            "KM: Kaplan–Meier, counting tasks still generating (see Definitions)."
        ),
        Text("By model."),
        Table(by_label(_latency_table(ctx, ctx.read, "model"))),  # type: ignore[arg-type]
        Text("By task type."),
        Table(by_type),  # type: ignore[arg-type]
        Text("Time to failure, by model."),
        Table(by_label(_time_to_failure(ctx)), "No task failed."),  # type: ignore[arg-type]
    ]
    blocks += _latency_figures(ctx)
    ctx.read.forget()  # the curves kept for the figure (~100 MB at 20M)
    return Section("Latency (time to success)", blocks)


def failure_rates(ctx: SourceContext) -> Section | None:
    if not ctx.n_read:
        return None
    from ..plots import MIN_BUCKET_TASKS

    blocks: list[Block] = [
        Text(RATES_ARE),
        Table(by_label(_rate_table(ctx.read, "model")), NONE_FINISHED),  # type: ignore[arg-type]
        Table(_rate_table(ctx.read, "task_type"), NONE_FINISHED),  # type: ignore[arg-type]
    ]

    def draw(fig: Figure) -> None:
        overall = analysis.failure_rates(ctx.read, freq=ctx.freq, upgrades="pooled")
        rates = analysis.failure_rates(ctx.read, by="model", freq=ctx.freq, upgrades="pooled")
        figures.failure_panels(fig, overall, rates, "model", ctx.freq)

    blocks += ctx.figure(
        "failure_rate",
        f"Failure rate per {ctx.freq} of creation time, one panel per model (line and band: "
        f"its rate and interval; grey: all tasks; hollow points: fewer than "
        f"{MIN_BUCKET_TASKS} finished tasks that {ctx.freq}): look for a panel whose band "
        "sits above the grey line.",
        draw,
    )
    return Section("Failure rates", blocks)
