"""One function per figure: each takes the typed frame (or a summary), ``ax=`` and returns the Axes.

Figures are drawn from aggregates (histogram counts, thinned curves, per-bucket
summaries), never from one point per task, so a million rows plot in a second. Times
are UTC; latencies are seconds from creation to completion (queueing included: the API
gives no start time). Labels follow :mod:`veo_notebook.fmt` (``unread``, ``n/a``,
``upgrade task``); unread tasks are left out of every figure but :func:`status_counts`.
With nothing to draw, the Axes says so in one sentence and shows no empty frame.

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from veo_notebook import plots
>>> ax = plots.latency_ecdf(df, by="model")                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, PercentFormatter

from . import analysis, fmt
from .analysis._groups import now_utc
from .analysis._kernels import CONFIDENCE, pct_name
from .analysis.failures import FailureBreakdown
from .analysis.latency import Failed
from .pricing import PricesLike, with_credits
from .schema import STATUS_COLOURS, STATUS_ORDER, TERMINAL_STATUSES

__all__ = [
    "NO_TASKS",
    "callback_delay",
    "failure_pareto",
    "failure_rate_over_time",
    "failure_rate_panels",
    "latency_ecdf",
    "latency_hist",
    "latency_percentiles_over_time",
    "spend_over_time",
    "status_counts",
]

MAX_GROUPS = 8  # more lines than this are unreadable: the largest groups are drawn
MAX_LINES = 3  # failure rate over time on one Axes: lines beyond these are pooled
MAX_PANELS = 6  # small multiples: the largest groups get a panel, the rest are pooled
MIN_PANEL_TASKS = 100  # terminal tasks a group needs for a panel of its own
MIN_BUCKET_TASKS = 5  # a bucket with fewer terminal tasks is drawn hollow and grey
MAX_POINTS = 1500  # per curve
PAGE_WIDTH_IN = 10.0  # figures fill a page (the report's column) at this width
DEFAULT_SIZE = (PAGE_WIDTH_IN, 4.6)
POOLED = "other"
NO_TASKS = "No tasks in this frame."
_SMALL = "#9a9a9a"
_SECOND_TICKS: tuple[float, ...] = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_SECOND_TICKS += (7200, 14400, 43200, 86400, 172800, 604800)
LATENCY_LABEL = "latency: creation → completion, queueing included (s, log scale)"


def _ax(ax: Axes | None, size: tuple[float, float] = DEFAULT_SIZE) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def _say(ax: Axes, sentence: str, title: str = "") -> Axes:
    """Nothing to draw: one sentence in place of the plot, no empty axes."""
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    ax.text(0.5, 0.5, sentence, ha="center", va="center", transform=ax.transAxes, fontsize=12)
    return ax


def _legend(ax: Axes, **kwargs: Any) -> None:
    """A legend only when something carries a label (matplotlib warns otherwise)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize="small", **kwargs)


def _dated(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a per-bucket table whose bucket is a time (a task without a creation
    time is in a labelled bucket, ``n/a`` or ``unread``: counted in tables, not drawn)."""
    return frame[[isinstance(k, pd.Timestamp) for k in frame.index]]


def _utc_naive(index: pd.Index) -> np.ndarray:
    """Timestamps as naive UTC datetime64 (matplotlib's date axis then reads as UTC)."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_numpy()


def _is(df: pd.DataFrame, status: str) -> np.ndarray:
    return (df["status"] == status).fillna(False).to_numpy(dtype=bool)


def _keyed(df: pd.DataFrame, by: str | None) -> pd.DataFrame:
    """The read rows, with ``by`` as display labels (``upgrade task``, ``n/a``)."""
    read = fmt.readable(df)
    if by is None or by not in read.columns:
        return read
    return read.assign(**{by: fmt.group_column(read, by)})


def _in_group(df: pd.DataFrame, by: str | None, key: Any) -> np.ndarray:
    if by is None:
        return np.ones(len(df), dtype=bool)
    return (df[by].astype("string") == str(key)).fillna(False).to_numpy(dtype=bool)


def _date_axis(ax: Axes, maxticks: int = 9) -> None:
    """Concise UTC dates: ``17 Nov`` … with the year (or day) once, at the axis' end.

    Spans of three days to ten weeks tick every k days counted from the first day
    (matplotlib's day ticks restart each month and crowd the turn of the month); others
    use its automatic locator.
    """
    x0, x1 = ax.dataLim.intervalx
    days = x1 - x0 if np.isfinite(x1 - x0) else 0.0
    locator: mdates.DateLocator
    if 3 <= days <= 70:
        step = max(1, int(np.ceil(days / maxticks)))
        start = mdates.num2date(np.floor(x0))
        rule = mdates.rrulewrapper(mdates.DAILY, interval=step, dtstart=start)
        locator = mdates.RRuleLocator(rule)
    else:
        locator = mdates.AutoDateLocator(minticks=2, maxticks=maxticks)
    formatter = mdates.ConciseDateFormatter(
        locator,
        formats=["%Y", "%b", "%d %b", "%H:%M", "%H:%M", "%S.%f"],
        zero_formats=["", "%Y", "%d %b", "%d %b", "%H:%M", "%H:%M"],
        offset_formats=["", "%Y", "%b %Y", "%d %b %Y", "%d %b %Y", "%d %b %Y %H:%M"],
    )
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)


def _seconds_axis(ax: Axes, lo: float, hi: float) -> None:
    """A log-scale seconds axis with a few round ticks (no crowded minor labels)."""
    ax.set_xscale("log")
    ticks = [t for t in _SECOND_TICKS if lo <= t <= hi] or [lo, hi]
    if len(ticks) > 8:
        ticks = ticks[:: int(np.ceil(len(ticks) / 8))]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _top_groups(df: pd.DataFrame, by: str | None, limit: int = MAX_GROUPS) -> list[Any]:
    if by is None:
        return ["all"]
    counts = df[by].value_counts()
    return list(counts[counts > 0].index[:limit])


def _thin(n: int, level: np.ndarray) -> np.ndarray:
    """Indices keeping at most MAX_POINTS of a monotone curve (evenly in index and level)."""
    if n <= MAX_POINTS:
        return np.arange(n)
    by_index = np.linspace(0, n - 1, MAX_POINTS // 2).astype(np.intp)
    targets = np.linspace(level[0], level[-1], MAX_POINTS // 2)
    by_level = np.clip(np.searchsorted(level, targets), 0, n - 1)
    return np.unique(np.concatenate([by_index, by_level, [n - 1]]))


def latency_ecdf(
    df: pd.DataFrame,
    by: str | None = "model",
    ax: Axes | None = None,
    *,
    now: object = None,
    failed: Failed = "censor",
) -> Axes:
    """Share of tasks succeeded by time since creation: Kaplan–Meier (solid) and naive (dashed).

    The solid curve is 1 − Ŝ(t) with still-generating tasks censored at their age; ticks
    on it mark those censored tasks. The dashed curve is the naive ECDF of finished
    successful tasks, which looks faster when slow tasks are still running. ``now`` and
    ``failed`` are as in :func:`veo_notebook.analysis.km_latency`.

    >>> ax = latency_ecdf(df, by="task_type")                  # doctest: +SKIP
    """
    ax = _ax(ax)
    title = "Time to success" + (f" by {by}" if by else "")
    now_ts = now_utc(df, now)
    df = _keyed(df, by)
    lat = df["latency_s"].to_numpy(dtype=float, na_value=np.nan)
    success = _is(df, "success") & ~np.isnan(lat)
    generating = _is(df, "generating")
    if not len(df):
        return _say(ax, NO_TASKS, title)
    if not (success.any() or generating.any()):
        return _say(ax, "No task succeeded and none is generating.", title)
    curve = analysis.km_curve(df, by=by, now=now_ts, failed=failed)
    age = (now_ts - df["create_time"]).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
    for i, key in enumerate(_top_groups(df, by)):
        color = f"C{i % 10}"
        in_group = _in_group(df, by, key)
        part = curve if by is None else curve[_in_group(curve, by, key)]
        if len(part) == 0:
            continue
        t = part["time_s"].to_numpy()
        cdf = 1.0 - part["survival"].to_numpy()
        keep = _thin(len(t), cdf)
        n_gen = int((generating & in_group).sum())
        name = fmt.label(key) if by else "all tasks"
        label = f"{name} (n={int(part['at_risk'].iloc[0]):,}, {n_gen:,} generating)"
        ax.step(t[keep], cdf[keep], where="post", color=color, lw=1.6, label=label)
        ages = np.sort(age[generating & in_group & ~np.isnan(age)])
        if len(ages):  # censored tasks: a tick on the KM curve at their age
            ages = ages[np.linspace(0, len(ages) - 1, min(len(ages), 80)).astype(np.intp)]
            at = np.clip(np.searchsorted(t, ages, side="right") - 1, 0, len(t) - 1)
            ax.plot(np.maximum(ages, t[0]), cdf[at], "|", color=color, ms=8, alpha=0.8)
        x = np.sort(lat[success & in_group])
        if len(x):
            y = np.arange(1, len(x) + 1) / len(x)
            keep = _thin(len(x), y)
            ax.step(x[keep], y[keep], where="post", color=color, lw=1.0, ls="--", alpha=0.8)
    done = lat[success]
    if len(done):  # tasks stuck for days would squash the curves: cut at 3× the slowest success
        lo, hi = max(np.nanmin(done), 0.1) / 1.5, np.nanmax(done) * 3
    else:
        lo, hi = 1.0, max(float(np.nanmax(age[generating])), 10.0) * 1.5
    _seconds_axis(ax, lo, hi)
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("time since creation, queueing included (s, log scale)")
    ax.set_ylabel("tasks succeeded")
    ax.set_title(f"{title}: Kaplan–Meier (solid) vs naive (dashed)")
    ax.grid(True, which="major", alpha=0.3)
    _legend(ax, loc="lower right")
    return ax


def latency_hist(
    df: pd.DataFrame, by: str | None = None, ax: Axes | None = None, *, bins: int = 60
) -> Axes:
    """Histogram of successful tasks' latency (log-spaced bins), one outline per group.

    >>> ax = latency_hist(df, by="model")                      # doctest: +SKIP
    """
    ax = _ax(ax)
    title = "Latency of successful tasks" + (f" by {by}" if by else "")
    df = _keyed(df, by)
    if not len(df):
        return _say(ax, NO_TASKS, title)
    lat = df["latency_s"].to_numpy(dtype=float, na_value=np.nan)
    ok = _is(df, "success") & (lat > 0)
    if not ok.any():
        return _say(ax, "No task has succeeded yet.", title)
    lo, hi = np.nanmin(lat[ok]), np.nanmax(lat[ok])
    edges = np.geomspace(lo, max(hi, lo * 1.01), bins + 1)
    for i, key in enumerate(_top_groups(df[ok], by)):
        mask = ok & _in_group(df, by, key)
        counts, _ = np.histogram(lat[mask], bins=edges)
        label = f"{fmt.label(key)} (n={int(mask.sum()):,})" if by else None
        ax.stairs(counts, edges, color=f"C{i % 10}", lw=1.5, label=label)
    _seconds_axis(ax, edges[0], edges[-1])
    ax.set_xlim(edges[0], edges[-1])
    _legend(ax)
    ax.set_xlabel(LATENCY_LABEL)
    ax.set_ylabel("successful tasks per bin")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return ax


def latency_percentiles_over_time(
    df: pd.DataFrame,
    freq: str = "1D",
    ax: Axes | None = None,
    *,
    percentiles: Sequence[float] = (0.5, 0.9, 0.99),
    confidence: float = CONFIDENCE,
) -> Axes:
    """Latency percentiles of successful tasks per ``freq`` bucket of creation time, with intervals.

    A missing interval bound (a bucket too small to give it) leaves the band open there.

    >>> ax = latency_percentiles_over_time(df, freq="1h")      # doctest: +SKIP
    """
    ax = _ax(ax)
    title = f"Latency percentiles over time (bands: {confidence:.0%} intervals)"
    df = fmt.readable(df)
    if not len(df):
        return _say(ax, NO_TASKS, title)
    summary = analysis.latency_summary(
        df, by=freq, percentiles=percentiles, confidence=confidence, upgrades="pooled"
    )
    summary = _dated(summary[summary["completed"].to_numpy() > 0])
    if not len(summary):
        return _say(ax, "No task has succeeded yet.", title)
    x = _utc_naive(summary.index)
    for i, q in enumerate(percentiles):
        name = pct_name(q)
        ax.plot(x, summary[name], marker="o", ms=3, color=f"C{i}", label=name)
        ax.fill_between(
            x,
            summary[f"{name}_ci_low"].to_numpy(dtype=float),
            summary[f"{name}_ci_high"].to_numpy(dtype=float),
            color=f"C{i}",
            alpha=0.2,
            lw=0,
        )
    ax.set_xlabel(f"task created (UTC, {freq} buckets)")
    ax.set_ylabel("latency, creation → completion (s)")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    _legend(ax)
    _date_axis(ax)
    return ax


def _rate_line(
    ax: Axes, part: pd.DataFrame, color: str, label: str | None, top: float, alpha: float = 0.18
) -> tuple[int, int]:
    """One group's rate per bucket: line and Wilson band through the buckets with enough
    tasks; thinner buckets are hollow grey points, and one above the scale is a ▲ at the
    top edge with its rate written beside it. Returns (thin buckets, of them above)."""
    part = _dated(part[part["n"].to_numpy() > 0])
    x = _utc_naive(part.index)
    small = part["n"].to_numpy() < MIN_BUCKET_TASKS
    rate = part["rate"].to_numpy(dtype=float)
    solid = part[~small]
    xs = x[~small]
    ax.plot(xs, solid["rate"], color=color, lw=1.4, marker="o", ms=3, label=label)
    if alpha:
        ax.fill_between(xs, solid["ci_low"], solid["ci_high"], color=color, alpha=alpha, lw=0)
    off = rate[small] > top
    if small.any():
        y = np.minimum(rate[small], top * 0.97)
        ax.plot(x[small][~off], y[~off], "o", ms=4, mfc="white", mec=_SMALL)
        ax.plot(x[small][off], y[off], "^", ms=5, mfc="white", mec=_SMALL)
        for xi, r in zip(x[small][off], rate[small][off], strict=True):
            where = (xi, top * 0.97)
            ax.annotate(
                fmt.pct(r, 0),
                where,
                xytext=(4, -3),
                textcoords="offset points",
                fontsize="x-small",
                color=_SMALL,
            )
    return int(small.sum()), int(off.sum())


def _thin_note(small: int, off: int) -> str:
    """What the hollow points and ▲ markers mean (empty when none was drawn)."""
    if not small:
        return ""
    text = f"hollow points: buckets with fewer than {MIN_BUCKET_TASKS} finished tasks"
    return text + ("; ▲: one above the scale, its rate written beside it" if off else "")


def _rate_top(rates: pd.DataFrame) -> float:
    """A y limit that holds every bucket with enough tasks, its interval included (a 1-of-1
    spike must not set the scale: a thin bucket above it is marked, see :func:`_rate_line`)."""
    solid = rates[rates["n"] >= MIN_BUCKET_TASKS]
    top = float(np.nanmax(solid[["rate", "ci_high"]].to_numpy())) if len(solid) else 1.0
    return min(1.0, max(top * 1.1, 0.1))


def failure_rate_over_time(
    df: pd.DataFrame,
    freq: str = "1D",
    ax: Axes | None = None,
    *,
    by: str | None = None,
    rolling: int | str | None = None,
    confidence: float = CONFIDENCE,
) -> Axes:
    """Failure rate per ``freq`` bucket with its Wilson band (per group: at most 3 lines).

    With ``by``, the three largest groups get a line and the rest are pooled as
    ``other``; for one panel per group see :func:`failure_rate_panels`. Buckets with
    fewer than :data:`MIN_BUCKET_TASKS` terminal tasks are hollow grey points.

    >>> ax = failure_rate_over_time(df, freq="1D", by="model")  # doctest: +SKIP
    """
    ax = _ax(ax)
    title = f"Failure rate over time (bands: {confidence:.0%} Wilson intervals)"
    df = _keyed(df, by)
    if not len(df):
        return _say(ax, NO_TASKS, title)
    if by is not None:
        df, _ = _pooled(df, by, MAX_LINES, min_tasks=0)
    rates = analysis.failure_rates(
        df, by=by, freq=freq, rolling=rolling, confidence=confidence, upgrades="pooled"
    )
    if not (rates["n"] > 0).any():
        return _say(ax, "No task has finished yet.", title)
    top = _rate_top(rates)
    keys = _top_groups(df, by)
    keys = [k for k in keys if k != POOLED] + [k for k in keys if k == POOLED]
    thin = (0, 0)
    for i, key in enumerate(keys):
        if by is None:
            part = rates
        elif key in rates.index.get_level_values(by):
            part = rates.xs(key, level=by)
        else:
            continue
        if not (part["n"] > 0).any():
            continue
        color = _SMALL if key == POOLED else f"C{i % 10}"
        # several groups: faint bands (one band per group is for failure_rate_panels)
        alpha = 0.18 if by is None else 0.0 if key == POOLED else 0.07
        got = _rate_line(ax, part, color, fmt.label(key) if by else "failure rate", top, alpha)
        thin = (thin[0] + got[0], thin[1] + got[1])
    _rate_axes(ax, freq, rolling, _thin_note(*thin))
    ax.set_ylim(0, top)
    ax.set_title(title)
    _legend(ax)
    return ax


def _rate_axes(ax: Axes, freq: str, rolling: int | str | None, note: str = "") -> None:
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    win = f", rolling {rolling}" if rolling is not None else ""
    ax.set_xlabel(f"task created (UTC, {freq} buckets{win})" + (f"\n{note}" if note else ""))
    ax.set_ylabel("failed / finished tasks")
    ax.grid(True, alpha=0.3)
    _date_axis(ax)


def _finished(df: pd.DataFrame) -> np.ndarray:
    return df["status"].isin(list(TERMINAL_STATUSES)).fillna(False).to_numpy(dtype=bool)


def _pooled(df: pd.DataFrame, by: str, keep: int, min_tasks: int) -> tuple[pd.DataFrame, list]:
    """``by`` with the ``keep`` largest groups (of at least ``min_tasks`` finished tasks)
    kept and the rest relabelled :data:`POOLED`; also the names pooled. A lone group
    left over keeps its name when it is not small (pooling one group says nothing)."""
    counts = df.loc[_finished(df), by].value_counts()
    big = [k for k in counts.index[:keep] if counts[k] >= min_tasks]
    rest = [k for k in counts.index if k not in big]
    if len(rest) == 1 and counts[rest[0]] >= min_tasks:
        big, rest = big + rest, []
    labels = df[by].astype("string")
    return df.assign(**{by: labels.where(labels.isin(big) | labels.isna(), POOLED)}), rest


def failure_rate_panels(
    df: pd.DataFrame,
    freq: str = "1D",
    by: str = "model",
    fig: Figure | None = None,
    *,
    rolling: int | str | None = None,
    confidence: float = CONFIDENCE,
) -> list[Axes]:
    """Failure rate over time as small multiples: one panel per group, shared axes.

    Each panel shows one group's rate and Wilson band over the rate of all tasks (grey).
    Groups with fewer than :data:`MIN_PANEL_TASKS` finished tasks, and any beyond the
    :data:`MAX_PANELS` largest, are pooled in one ``other`` panel. Returns the Axes
    drawn on (one sentence in a single Axes when there is nothing to show).

    >>> axes = failure_rate_panels(df, freq="1D", by="model")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    title = f"Failure rate over time by {by} (bands: {confidence:.0%} Wilson intervals)"
    df = _keyed(df, by)
    terminal = df[_finished(df)]
    if fig is None:
        fig = plt.figure(figsize=(PAGE_WIDTH_IN, 5.0), layout="constrained")
    if not len(terminal):
        return [_say(fig.add_subplot(), NO_TASKS if not len(df) else "No task finished.", title)]
    df, pooled = _pooled(df, by, MAX_PANELS, MIN_PANEL_TASKS)
    keys = [k for k in _top_groups(df, by, MAX_PANELS + 1) if k != POOLED]
    if (df[by] == POOLED).any():
        keys.append(POOLED)
    overall = analysis.failure_rates(
        df, freq=freq, rolling=rolling, confidence=confidence, upgrades="pooled"
    )
    rates = analysis.failure_rates(
        df, by=by, freq=freq, rolling=rolling, confidence=confidence, upgrades="pooled"
    )
    parts = {k: rates.xs(k, level=by) for k in keys if k in rates.index.get_level_values(by)}
    win = f", rolling {rolling}" if rolling is not None else ""
    label = f"task created (UTC, {freq} buckets{win}); grey line: all tasks"
    return _rate_panels(fig, keys, parts, overall, pooled, _rate_top(rates), label, title)


def _rate_panels(
    fig: Figure,
    keys: list,
    parts: dict,
    overall: pd.DataFrame,
    pooled: list,
    top: float,
    label: str,
    title: str,
) -> list[Axes]:
    """Draw the failure-rate panels: one per key of ``keys`` (its rows in ``parts``,
    indexed by period; a key absent draws no line), each over ``overall`` (grey), the y
    axis up to ``top``, the x label ``label``. Shared by :func:`failure_rate_panels` and
    the report over an engine (:mod:`veo_notebook.reporting.figures`), which pool their
    groups differently."""
    ncols = min(3, len(keys))
    nrows = int(np.ceil(len(keys) / ncols))
    if nrows > 1:
        fig.set_size_inches(PAGE_WIDTH_IN, 2.6 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    base = _dated(overall[overall["n"].to_numpy() > 0])
    thin = (0, 0)
    for i, (ax, key) in enumerate(zip(axes, keys, strict=False)):
        part = parts.get(key)
        ax.plot(_utc_naive(base.index), base["rate"], color="#bbbbbb", lw=1.0, zorder=1)
        n = 0 if part is None else int(part["n"].sum())
        if part is not None and n:
            color = _SMALL if key == POOLED else f"C{i % 10}"
            got = _rate_line(ax, part, color, None, top)
            thin = (thin[0] + got[0], thin[1] + got[1])
        name = fmt.label(key)
        if key == POOLED:
            names = ", ".join(fmt.label(k) for k in pooled[:3]) + (", …" if len(pooled) > 3 else "")
            name = f"other ({names})"
        ax.set_title(f"{name} · {n:,} finished", fontsize="medium")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(True, alpha=0.3)
        _date_axis(ax, maxticks=4)
    for ax in axes[len(keys) :]:
        ax.set_axis_off()
    axes[0].set_ylim(0, top)
    for ax in axes[::ncols]:
        ax.set_ylabel("failed / finished")
    note = _thin_note(*thin)
    fig.supxlabel(label + (f"\n{note}" if note else ""), fontsize=10)
    fig.suptitle(title)
    return list(axes[: len(keys)])


def failure_pareto(data: pd.DataFrame | FailureBreakdown, ax: Axes | None = None) -> Axes:
    """Failures per error category, largest first, with the cumulative share (a Pareto chart).

    ``data`` is the typed frame, a :class:`FailureBreakdown` or its ``categories`` table.

    >>> ax = failure_pareto(df)                                # doctest: +SKIP
    """
    ax = _ax(ax)
    if isinstance(data, FailureBreakdown):
        cats = data.categories
    elif "count" in data.columns and "cumulative_share" in data.columns:
        cats = data
    else:
        if not len(data):
            return _say(ax, NO_TASKS, "Why tasks failed")
        cats = analysis.failure_breakdown(data).categories
    if not len(cats):
        return _say(ax, "No task failed.", "Why tasks failed")
    labels = [fmt.label(k) for k in cats.index]
    pos = np.arange(len(cats))
    bars = ax.bar(pos, cats["count"], color="C3", alpha=0.8)
    ax.bar_label(bars, padding=2, fontsize="small")
    ax.set_xticks(pos, labels, rotation=30, ha="right")
    ax.set_ylabel("failed tasks")
    ax.set_xlabel("error category")
    twin = ax.twinx()
    twin.plot(pos, cats["cumulative_share"], color="k", marker="o", ms=3)
    twin.set_ylim(0, 1.05)
    twin.yaxis.set_major_formatter(PercentFormatter(1.0))
    twin.set_ylabel("cumulative share of failures")
    ax.set_title(f"Why tasks failed ({int(cats['count'].sum()):,} failures)")
    return ax


def status_counts(df: pd.DataFrame, ax: Axes | None = None, *, by: str | None = None) -> Axes:
    """Tasks per status (stacked per group when ``by`` is given); unread records shown too.

    >>> ax = status_counts(df, by="model")                     # doctest: +SKIP
    """
    ax = _ax(ax)
    title = f"Task status ({len(df):,} tasks)" + (f" by {by}" if by else "")
    if not len(df):
        return _say(ax, NO_TASKS, "Task status")
    status = df["status"].astype("string").fillna(fmt.UNREAD)
    order = [s for s in STATUS_ORDER if (status == s).any()]
    if by is None:
        counts = status.value_counts().reindex(order, fill_value=0)
        bars = ax.barh(order, counts.to_numpy(), color=[STATUS_COLOURS[s] for s in order])
        ax.bar_label(bars, padding=2, fontsize="small")
        ax.set_ylabel("status")
        ax.invert_yaxis()
    else:
        table = pd.crosstab(fmt.group_column(df, by), status).reindex(columns=order, fill_value=0)
        table = table.loc[table.sum(axis=1).sort_values(kind="stable").index]
        left = np.zeros(len(table))
        for s in order:
            ax.barh(table.index, table[s], left=left, color=STATUS_COLOURS[s], label=s)
            left += table[s].to_numpy()
        _legend(ax, loc="lower right")
        ax.set_ylabel(by)
    ax.set_xlabel("tasks")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    return ax


def _bucket_days(periods: pd.DatetimeIndex, freq: str) -> float:
    """Width of one ``freq`` bucket in days (matplotlib's date unit); calendar buckets
    (weeks, months) by the smallest gap between buckets."""
    try:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(freq)) / pd.Timedelta("1D")
    except ValueError:
        gaps = np.diff(periods.asi8)
        return float(gaps.min()) / 86400e9 if len(gaps) else 1.0


def spend_over_time(
    df: pd.DataFrame,
    freq: str = "1D",
    ax: Axes | None = None,
    *,
    by: str | None = "model",
    prices: PricesLike = None,
    bill_failed: bool = False,
) -> Axes:
    """Credits spent per ``freq`` bucket of creation time, stacked by ``by`` (default model).

    Credits as in :func:`veo_notebook.with_credits` (reported, else estimated from the
    price table; failed tasks 0 unless ``bill_failed``); the black dashed line is the
    part wasted on duplicate submissions (:func:`veo_notebook.duplicate_submissions`).
    Unread tasks have no price; an upgrade's missing model reads ``upgrade task``.

    >>> ax = spend_over_time(df, freq="1D", by="model")        # doctest: +SKIP
    """
    ax = _ax(ax)
    title = "Credits spent over time" + (f" by {by}" if by else "")
    if not len(df):
        return _say(ax, NO_TASKS, title)
    priced = with_credits(df, prices, bill_failed) if prices is not None or bill_failed else df
    if "credits" not in priced.columns:
        priced = with_credits(priced)
    priced = _keyed(priced, by)  # credits are found before the labels replace the model
    summary = analysis.cost_summary(priced, by=by, freq=freq)
    total = float(summary["credits"].sum()) if len(summary) else 0.0
    if by is None:
        spent = {"credits": summary["credits"]}
        wasted = summary["wasted_credits"]
    else:
        flat = summary.reset_index()
        names = _top_groups(priced, by)
        spent = {fmt.label(k): flat[flat[by] == k].set_index("period")["credits"] for k in names}
        wasted = flat.groupby("period")["wasted_credits"].sum()
    times = {t for v in spent.values() for t in v.index if isinstance(t, pd.Timestamp)}
    periods = pd.DatetimeIndex(sorted(times))
    if len(periods) == 0 or total <= 0:
        return _say(ax, "No task has a price.", title)
    x = _utc_naive(periods)
    width = 0.8 * _bucket_days(periods, freq)
    bottom = np.zeros(len(periods))
    for i, (name, part) in enumerate(spent.items()):
        values = part.groupby(level=0).sum().reindex(periods, fill_value=0.0).to_numpy()
        ax.bar(x, values, width=width, bottom=bottom, align="edge", color=f"C{i % 10}", label=name)
        bottom += values
    lost = wasted.reindex(periods, fill_value=0.0).to_numpy(dtype=float)
    if lost.sum() > 0:
        centre = x + pd.to_timedelta(width / 2, unit="D").to_numpy()
        ax.plot(centre, lost, "k--o", ms=3, lw=1, label="of which wasted on duplicates")
    _legend(ax)
    _date_axis(ax)
    ax.set_xlabel(f"task created (UTC, {freq} buckets)")
    ax.set_ylabel("credits")
    ax.set_title(f"{title} ({total:,.0f} credits)")
    ax.grid(True, axis="y", alpha=0.3)
    return ax


CALLBACK_DELAY_BINS = 30


def callback_delay(audit: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """First-delivery delay of callbacks (first delivery − completeTime), a histogram.

    ``audit`` is :func:`veo_notebook.callbacks.callback_audit`'s frame; tasks with several
    deliveries are drawn apart, and the terminal tasks with no callback are counted in the
    title.

    >>> ax = callback_delay(audit)                             # doctest: +SKIP
    """
    ax = _ax(ax)
    delay = pd.to_numeric(audit["first_delay_s"], errors="coerce").to_numpy(dtype=float)
    many = (audit["deliveries"].fillna(0) > 1).to_numpy(dtype=bool)
    ok = np.isfinite(delay)
    missing = int((audit["disagreement"] == "no callback").fillna(False).sum())
    if ok.any():
        edges = np.histogram_bin_edges(delay[ok], bins=CALLBACK_DELAY_BINS)
        once, _ = np.histogram(delay[ok & ~many], bins=edges)
        twice, _ = np.histogram(delay[ok & many], bins=edges)
        width = np.diff(edges)
        ax.bar(edges[:-1], once, width=width, align="edge", color="C0", label="delivered once")
        if twice.any():
            ax.bar(
                edges[:-1],
                twice,
                width=width,
                align="edge",
                bottom=once,
                color="C1",
                label="delivered more than once",
            )
        ax.legend(fontsize="small")
    else:
        ax.text(
            0.5,
            0.5,
            "no callback with a record to compare",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    ax.set_xlabel("first delivery − completeTime (s)")
    ax.set_ylabel("tasks")
    ax.set_title(f"Callback delay ({int(ok.sum())} tasks; {missing} terminal with no callback)")
    ax.grid(True, alpha=0.3)
    return ax
