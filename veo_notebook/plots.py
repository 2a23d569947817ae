"""One function per figure: each takes the typed frame (or a summary), ``ax=`` and returns the Axes.

Figures are drawn from aggregates (histogram counts, thinned curves, per-bucket
summaries), never from one point per task, so a million rows plot in a second. Times
are UTC; latencies are seconds.

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
from matplotlib.ticker import PercentFormatter

from . import analysis
from .analysis._groups import now_utc
from .analysis._kernels import pct_name
from .analysis.failures import FailureBreakdown
from .analysis.latency import Failed
from .pricing import PricesLike
from .schema import STATUS_COLOURS, STATUS_ORDER, UNREAD

__all__ = [
    "callback_delay",
    "failure_pareto",
    "failure_rate_over_time",
    "latency_ecdf",
    "latency_hist",
    "latency_percentiles_over_time",
    "spend_over_time",
    "status_counts",
]

MAX_GROUPS = 8  # more lines than this are unreadable: the largest groups are drawn
MAX_POINTS = 1500  # per curve


def _ax(ax: Axes | None, size: tuple[float, float] = (7.0, 4.0)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def _label(key: Any) -> str:
    if isinstance(key, tuple):
        return " / ".join(_label(k) for k in key)
    if isinstance(key, pd.Timestamp):
        return key.strftime("%Y-%m-%d %H:%M")
    return "NA" if key is None or (not isinstance(key, str) and pd.isna(key)) else str(key)


def _utc_naive(index: pd.Index) -> np.ndarray:
    """Timestamps as naive UTC datetime64 (matplotlib's date axis then reads as UTC)."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_numpy()


def _is(df: pd.DataFrame, status: str) -> np.ndarray:
    return (df["status"] == status).fillna(False).to_numpy(dtype=bool)


def _in_group(df: pd.DataFrame, by: str | None, key: Any) -> np.ndarray:
    if by is None:
        return np.ones(len(df), dtype=bool)
    col = df[by]
    if not isinstance(key, str) and pd.isna(key):
        return col.isna().to_numpy(dtype=bool)
    return (col == key).fillna(False).to_numpy(dtype=bool)


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _top_groups(df: pd.DataFrame, by: str | None) -> list[Any]:
    if by is None:
        return ["all"]
    counts = df[by].value_counts(dropna=False)
    return list(counts[counts > 0].index[:MAX_GROUPS])


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
    now_ts = now_utc(df, now)
    curve = analysis.km_curve(df, by=by, now=now_ts, failed=failed)
    lat = df["latency_s"].to_numpy(dtype=float, na_value=np.nan)
    success = _is(df, "success") & ~np.isnan(lat)
    generating = _is(df, "generating")
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
        label = f"{_label(key)} (n={int(part['at_risk'].iloc[0])}, {n_gen} generating)"
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
    ax.set_xscale("log")
    done = lat[success]
    if len(done):  # tasks stuck for days would squash the curves: cut at 3× the slowest success
        ax.set_xlim(max(np.nanmin(done), 0.1) / 1.5, np.nanmax(done) * 3)
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("time since creation (s, log scale)")
    ax.set_ylabel("tasks succeeded")
    by_txt = f" by {by}" if by else ""
    ax.set_title(f"Time to success{by_txt}: Kaplan–Meier (solid, | = censored) vs naive (dashed)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return ax


def latency_hist(
    df: pd.DataFrame, by: str | None = None, ax: Axes | None = None, *, bins: int = 60
) -> Axes:
    """Histogram of successful tasks' latency (log-spaced bins), one outline per group.

    >>> ax = latency_hist(df, by="model")                      # doctest: +SKIP
    """
    ax = _ax(ax)
    lat = df["latency_s"].to_numpy(dtype=float, na_value=np.nan)
    ok = _is(df, "success") & (lat > 0)
    if not ok.any():
        ax.text(0.5, 0.5, "no completed tasks", ha="center", va="center", transform=ax.transAxes)
    else:
        lo, hi = np.nanmin(lat[ok]), np.nanmax(lat[ok])
        edges = np.geomspace(lo, max(hi, lo * 1.01), bins + 1)
        for i, key in enumerate(_top_groups(df, by)):
            mask = ok & _in_group(df, by, key)
            counts, _ = np.histogram(lat[mask], bins=edges)
            ax.stairs(
                counts, edges, color=f"C{i % 10}", lw=1.5, label=f"{_label(key)} (n={mask.sum()})"
            )
        ax.set_xscale("log")
        ax.legend(fontsize="small")
    ax.set_xlabel("latency: complete − create (s, log scale)")
    ax.set_ylabel("successful tasks per bin")
    ax.set_title("Latency of successful tasks" + (f" by {by}" if by else ""))
    ax.grid(True, alpha=0.3)
    return ax


def latency_percentiles_over_time(
    df: pd.DataFrame,
    freq: str = "1D",
    ax: Axes | None = None,
    *,
    percentiles: Sequence[float] = (0.5, 0.9, 0.99),
    confidence: float = 0.95,
) -> Axes:
    """Latency percentiles of successful tasks per ``freq`` bucket of creation time, with intervals.

    >>> ax = latency_percentiles_over_time(df, freq="1h")      # doctest: +SKIP
    """
    ax = _ax(ax)
    summary = analysis.latency_summary(df, by=freq, percentiles=percentiles, confidence=confidence)
    summary = summary[summary.index.notna()]
    x = _utc_naive(summary.index)
    for i, q in enumerate(percentiles):
        name = pct_name(q)
        ax.plot(x, summary[name], marker="o", ms=3, color=f"C{i}", label=name)
        ax.fill_between(
            x, summary[f"{name}_ci_low"], summary[f"{name}_ci_high"], color=f"C{i}", alpha=0.2, lw=0
        )
    ax.set_xlabel(f"task created (UTC, {freq} buckets)")
    ax.set_ylabel("latency (s)")
    ax.set_title(f"Latency percentiles over time (bands: {confidence:.0%} intervals)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    _date_axis(ax)
    return ax


def failure_rate_over_time(
    df: pd.DataFrame,
    freq: str = "1D",
    ax: Axes | None = None,
    *,
    by: str | None = None,
    rolling: int | str | None = None,
    confidence: float = 0.95,
) -> Axes:
    """Failure rate per ``freq`` bucket (optionally per group) with its Wilson interval band.

    >>> ax = failure_rate_over_time(df, freq="1D", by="model")  # doctest: +SKIP
    """
    ax = _ax(ax)
    rates = analysis.failure_rates(df, by=by, freq=freq, rolling=rolling, confidence=confidence)
    keys = _top_groups(df, by)
    for i, key in enumerate(keys):
        if by is None:
            part = rates
        else:
            sel = _in_group(rates.index.to_frame(index=False), by, key)
            part = rates[sel].droplevel(by)
        if len(part) == 0:
            continue
        part = part[part.index.notna()]
        x = _utc_naive(part.index)
        ax.plot(
            x,
            part["rate"],
            marker="o",
            ms=3,
            color=f"C{i % 10}",
            label=_label(key) if by else "failure rate",
        )
        ax.fill_between(x, part["ci_low"], part["ci_high"], color=f"C{i % 10}", alpha=0.2, lw=0)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(bottom=0)
    win = f", rolling {rolling}" if rolling is not None else ""
    ax.set_xlabel(f"task created (UTC, {freq} buckets{win})")
    ax.set_ylabel("failed / terminal tasks")
    ax.set_title(f"Failure rate over time (bands: {confidence:.0%} Wilson intervals)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    _date_axis(ax)
    return ax


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
        cats = analysis.failure_breakdown(data).categories
    labels = [_label(k) for k in cats.index]
    pos = np.arange(len(cats))
    ax.bar(pos, cats["count"], color="C3", alpha=0.8)
    ax.set_xticks(pos, labels, rotation=30, ha="right")
    ax.set_ylabel("failed tasks")
    ax.set_xlabel("error category")
    twin = ax.twinx()
    twin.plot(pos, cats["cumulative_share"], color="k", marker="o", ms=3)
    twin.set_ylim(0, 1.05)
    twin.yaxis.set_major_formatter(PercentFormatter(1.0))
    twin.set_ylabel("cumulative share of failures")
    total = int(cats["count"].sum()) if len(cats) else 0
    ax.set_title(f"Why tasks failed ({total} failures)")
    if not len(cats):
        ax.text(0.5, 0.5, "no failed tasks", ha="center", va="center", transform=ax.transAxes)
    return ax


def status_counts(df: pd.DataFrame, ax: Axes | None = None, *, by: str | None = None) -> Axes:
    """Tasks per status (stacked per group when ``by`` is given); unread records shown too.

    >>> ax = status_counts(df, by="model")                     # doctest: +SKIP
    """
    ax = _ax(ax)
    status = df["status"].astype("string").fillna(UNREAD)
    order = [s for s in STATUS_ORDER if (status == s).any()]
    colors = STATUS_COLOURS
    if by is None:
        counts = status.value_counts().reindex(order, fill_value=0)
        bars = ax.barh(order, counts.to_numpy(), color=[colors[s] for s in order])
        ax.bar_label(bars, padding=2, fontsize="small")
        ax.set_ylabel("status")
        ax.invert_yaxis()
    else:
        table = pd.crosstab(df[by].astype("string").fillna("NA"), status).reindex(
            columns=order, fill_value=0
        )
        left = np.zeros(len(table))
        for s in order:
            ax.barh(table.index, table[s], left=left, color=colors[s], label=s)
            left += table[s].to_numpy()
        ax.legend(fontsize="small")
        ax.set_ylabel(by)
    ax.set_xlabel("tasks")
    ax.set_title(f"Task status ({len(df)} tasks)" + (f" by {by}" if by else ""))
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

    >>> ax = spend_over_time(df, freq="1D", by="model")        # doctest: +SKIP
    """
    ax = _ax(ax)
    summary = analysis.cost_summary(df, by=by, freq=freq, prices=prices, bill_failed=bill_failed)
    keys = _top_groups(df, by)
    total = float(summary["credits"].sum()) if len(summary) else 0.0
    if by is None:
        table = summary[["credits", "wasted_credits"]]
        spent = {"all": table["credits"]}
        wasted = table["wasted_credits"]
    else:
        flat = summary.reset_index()
        missing = f"no {by}"  # tasks without the key (upgrades have no model)
        flat[by] = flat[by].astype("string").fillna(missing)
        names = [missing if _label(k) == "NA" else _label(k) for k in keys]
        spent = {name: flat[flat[by] == name].set_index("period")["credits"] for name in names}
        wasted = flat.groupby("period")["wasted_credits"].sum()
    periods = pd.DatetimeIndex(sorted({t for s in spent.values() for t in s.index if pd.notna(t)}))
    if len(periods) == 0 or total <= 0:
        ax.text(0.5, 0.5, "no priced tasks", ha="center", va="center", transform=ax.transAxes)
    else:
        x = _utc_naive(periods)
        width = 0.8 * _bucket_days(periods, freq)
        bottom = np.zeros(len(periods))
        for i, (name, part) in enumerate(spent.items()):
            values = part.groupby(level=0).sum().reindex(periods, fill_value=0.0).to_numpy()
            ax.bar(
                x,
                values,
                width=width,
                bottom=bottom,
                align="edge",
                color=f"C{i % 10}",
                label=name if by else "credits",
            )
            bottom += values
        lost = wasted.reindex(periods, fill_value=0.0).to_numpy(dtype=float)
        if lost.sum() > 0:
            centre = x + pd.to_timedelta(width / 2, unit="D").to_numpy()
            ax.plot(centre, lost, "k--o", ms=3, lw=1, label="of which wasted on duplicates")
        ax.legend(fontsize="small")
        _date_axis(ax)
    ax.set_xlabel(f"task created (UTC, {freq} buckets)")
    ax.set_ylabel("credits")
    ax.set_title(f"Credits spent over time{f' by {by}' if by else ''} ({total:,.0f} credits)")
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
