"""The report's figures over an engine, drawn from aggregate tables (never from rows).

Each function draws one figure of :mod:`veo_notebook.plots` from what an engine returned:
the status bars from counts per (model, status), the latency ECDF and histogram from
counts per log-scale bin (the ECDF exact at each bin's edge; the Kaplan–Meier curve from
its event-time counts), the percentiles over time from ``latency_summary`` per bucket,
the failure-rate panels from counts per (group, bucket), the spend from ``cost_summary``
per bucket. The look (colours, axes, legends) is the one of :mod:`veo_notebook.plots`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from .. import fmt, plots
from ..analysis._kernels import CONFIDENCE, pct_name, wilson_interval
from ..engine._sql import _LOW_BIN, BINS_PER_OCTAVE
from ..plots import (
    LATENCY_LABEL,
    MAX_GROUPS,
    MAX_PANELS,
    MIN_PANEL_TASKS,
    POOLED,
    _date_axis,
    _dated,
    _legend,
    _rate_top,
    _say,
    _seconds_axis,
    _thin,
    _utc_naive,
)
from ..schema import STATUS_COLOURS, STATUS_ORDER

__all__ = [
    "HIST_PER_OCTAVE",
    "failure_panels",
    "latency_ecdf",
    "latency_hist",
    "latency_over_time",
    "spend_bars",
    "status_bars",
]

#: Bars of the latency histogram per doubling of latency (the engine counts 64 an octave).
HIST_PER_OCTAVE = 8


def status_bars(ax: Axes, counts: pd.DataFrame, by: str) -> Axes:
    """Tasks per status stacked per group: ``counts`` is groups × statuses."""
    total = int(counts.to_numpy().sum())
    title = f"Task status ({total:,} tasks) by {by}"
    if not total:
        return _say(ax, plots.NO_TASKS, "Task status")
    order = [s for s in STATUS_ORDER if s in counts.columns and counts[s].sum() > 0]
    table = counts.reindex(columns=order, fill_value=0)
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


def latency_ecdf(ax: Axes, naive: pd.DataFrame, km: pd.DataFrame, by: str) -> Axes:
    """Share succeeded by time: Kaplan–Meier (solid, from ``km_curve``'s table) and the
    naive ECDF (dashed, ``naive``: ``group``, ``value``, ``share``, a point per bin)."""
    title = f"Time to success by {by}"
    if not len(naive) and not len(km):
        return _say(ax, "No task succeeded and none is generating.", title)
    names = list(dict.fromkeys([*naive["group"], *km[by]]))[:MAX_GROUPS]
    # a curve's rows taken by position from the columns drawn: no copy of the whole
    # table per group (a row per distinct time: a million and more at 20M tasks)
    times, survival = km["time_s"].to_numpy(dtype=float), km["survival"].to_numpy(dtype=float)
    for i, key in enumerate(names):
        color = f"C{i % 10}"
        at = np.flatnonzero((km[by] == key).to_numpy(dtype=bool))
        if len(at):
            t, cdf = times[at], 1.0 - survival[at]
            keep = _thin(len(t), cdf)
            label = f"{fmt.label(key)} (n={int(km['at_risk'].iloc[at[0]]):,})"
            ax.step(t[keep], cdf[keep], where="post", color=color, lw=1.6, label=label)
        mine = naive[(naive["group"] == key).to_numpy(dtype=bool)]
        if len(mine):
            ax.step(mine["value"], mine["share"], where="post", color=color, lw=1.0, ls="--")
    done = naive["value"].to_numpy(dtype=float)
    done = done[done > 0]
    lo, hi = (done.min() / 1.5, done.max() * 3) if len(done) else (1.0, 10.0)
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


def latency_hist(ax: Axes, hist: pd.DataFrame, by: str) -> Axes:
    """Successful tasks per log-scale latency bin, one outline per group: ``hist`` has
    ``group``, ``b`` (the engine's bin) and ``c`` (tasks)."""
    title = f"Latency of successful tasks by {by}"
    hist = hist[hist["b"].to_numpy() != _LOW_BIN]
    if not len(hist):
        return _say(ax, "No task has succeeded yet.", title)
    coarse = np.floor_divide(hist["b"].to_numpy(np.int64), BINS_PER_OCTAVE // HIST_PER_OCTAVE)
    hist = hist.assign(d=coarse)
    lo, hi = int(coarse.min()), int(coarse.max()) + 1
    edges = 2.0 ** (np.arange(lo, hi + 1) / HIST_PER_OCTAVE)
    sizes = hist.groupby("group", sort=False)["c"].sum().sort_values(ascending=False)
    for i, key in enumerate(list(sizes.index[:MAX_GROUPS])):
        part = hist[(hist["group"] == key).to_numpy(dtype=bool)]
        counts = part.groupby("d")["c"].sum().reindex(range(lo, hi), fill_value=0)
        label = f"{fmt.label(key)} (n={int(sizes[key]):,})"
        ax.stairs(counts.to_numpy(), edges, color=f"C{i % 10}", lw=1.5, label=label)
    _seconds_axis(ax, edges[0], edges[-1])
    ax.set_xlim(edges[0], edges[-1])
    _legend(ax)
    ax.set_xlabel(LATENCY_LABEL)
    ax.set_ylabel("successful tasks per bin")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return ax


def latency_over_time(
    ax: Axes, summary: pd.DataFrame, freq: str, percentiles: Sequence[float]
) -> Axes:
    """Percentiles per bucket with their interval bands, from ``latency_summary(by=freq)``."""
    title = f"Latency percentiles over time (bands: {CONFIDENCE:.0%} intervals)"
    summary = _dated(summary[summary["completed"].to_numpy() > 0])
    if not len(summary):
        return _say(ax, "No task has succeeded yet.", title)
    x = _utc_naive(summary.index)
    for i, q in enumerate(percentiles):
        name = pct_name(q)
        ax.plot(x, summary[name], marker="o", ms=3, color=f"C{i}", label=name)
        low = summary[f"{name}_ci_low"].to_numpy(dtype=float)
        high = summary[f"{name}_ci_high"].to_numpy(dtype=float)
        ax.fill_between(x, low, high, color=f"C{i}", alpha=0.2, lw=0)
    ax.set_xlabel(f"task created (UTC, {freq} buckets)")
    ax.set_ylabel("latency, creation → completion (s)")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    _legend(ax)
    _date_axis(ax)
    return ax


def _pool(rates: pd.DataFrame, by: str) -> tuple[pd.DataFrame, list, list]:
    """The largest groups (of at least :data:`MIN_PANEL_TASKS` finished tasks) kept, the
    rest summed into :data:`POOLED` (its rate and Wilson band from the summed counts)."""
    flat = rates.reset_index()
    sizes = flat.groupby(by, sort=False)["n"].sum().sort_values(ascending=False, kind="stable")
    big = [k for k in sizes.index[:MAX_PANELS] if sizes[k] >= MIN_PANEL_TASKS]
    rest = [k for k in sizes.index if k not in big]
    if len(rest) == 1 and sizes[rest[0]] >= MIN_PANEL_TASKS:
        big, rest = big + rest, []
    if rest:
        other = flat[flat[by].isin(rest)].groupby("period", sort=True)
        summed = other[["n", "failed", "generation_failed"]].sum().reset_index()
        bad = (summed["failed"] + summed["generation_failed"]).to_numpy()
        n = summed["n"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            summed["rate"] = np.where(n > 0, bad / np.maximum(n, 1), np.nan)
        summed["ci_low"], summed["ci_high"] = wilson_interval(bad, n, CONFIDENCE)
        flat = pd.concat([flat[flat[by].isin(big)], summed.assign(**{by: POOLED})])
    keys = big + ([POOLED] if rest else [])
    return flat, keys, rest


def failure_panels(fig: Figure, overall: pd.DataFrame, rates: pd.DataFrame, by: str, freq: str):
    """Failure rate over time, one panel per group over all tasks (grey), from
    ``failure_rates(by=[by], freq=freq)`` and ``failure_rates(freq=freq)``."""
    title = f"Failure rate over time by {by} (bands: {CONFIDENCE:.0%} Wilson intervals)"
    if not len(rates) or not int(rates["n"].sum()):
        return [_say(fig.add_subplot(), "No task finished.", title)]
    flat, keys, pooled = _pool(rates, by)
    parts = {k: flat[(flat[by] == k).to_numpy(dtype=bool)].set_index("period") for k in keys}
    label = f"task created (UTC, {freq} buckets); grey line: all tasks"
    return plots._rate_panels(fig, keys, parts, overall, pooled, _rate_top(flat), label, title)


def spend_bars(ax: Axes, summary: pd.DataFrame, by: str, freq: str) -> Axes:
    """Credits per bucket stacked by group, and (dashed) the part wasted on duplicates,
    from ``cost_summary(by=by, freq=freq)``."""
    title = f"Credits spent over time by {by}"
    flat = summary.reset_index()
    flat = flat[[isinstance(t, pd.Timestamp) for t in flat["period"]]]
    total = float(np.nansum(flat["credits"].to_numpy(dtype=float)))
    if not len(flat) or total <= 0:
        return _say(ax, "No task has a price.", title)
    periods = pd.DatetimeIndex(sorted(set(flat["period"])))
    sizes = flat.groupby(by, sort=False)["n"].sum().sort_values(ascending=False, kind="stable")
    x = _utc_naive(periods)
    width = 0.8 * plots._bucket_days(periods, freq)
    bottom = np.zeros(len(periods))
    for i, key in enumerate(list(sizes.index[:MAX_GROUPS])):
        part = flat[(flat[by] == key).to_numpy(dtype=bool)].set_index("period")["credits"]
        values = part.groupby(level=0).sum().reindex(periods, fill_value=0.0).to_numpy()
        color = f"C{i % 10}"
        ax.bar(
            x, values, width=width, bottom=bottom, align="edge", color=color, label=fmt.label(key)
        )
        bottom += values
    lost = flat.groupby("period")["wasted_credits"].sum().reindex(periods, fill_value=0.0)
    if float(lost.sum()) > 0:
        centre = x + pd.to_timedelta(width / 2, unit="D").to_numpy()
        ax.plot(
            centre,
            lost.to_numpy(dtype=float),
            "k--o",
            ms=3,
            lw=1,
            label="of which wasted on duplicates",
        )
    _legend(ax)
    _date_axis(ax)
    ax.set_xlabel(f"task created (UTC, {freq} buckets)")
    ax.set_ylabel("credits")
    ax.set_title(f"{title} ({total:,.0f} credits)")
    ax.grid(True, axis="y", alpha=0.3)
    return ax
