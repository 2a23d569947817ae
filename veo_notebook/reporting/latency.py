"""The "Latency (time to success)" section: naive and Kaplan–Meier percentiles, figures."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from .. import analysis, fmt, plots
from ..analysis._kernels import order_stat_ci, pct_name
from ._cells import CONFIDENCE, SECONDS, count, flat
from .blocks import Block, Section, Table, Text
from .context import Context, on_ax

__all__ = [
    "BRIEF_PERCENTILES",
    "KM_PERCENTILES",
    "LATENCY_IS",
    "PERCENTILES",
    "latency",
    "min_n_for_interval",
]

PERCENTILES = (0.5, 0.9, 0.99)  # the naive columns
KM_PERCENTILES = (0.5, 0.9)  # the Kaplan–Meier columns
BRIEF_PERCENTILES = (0.5, 0.9)  # the headline and time to failure
NONE_SUCCEEDED = "n/a (none succeeded)"
LATENCY_IS = (
    "Latency is creation → completion (complete_time − create_time), queueing included: "
    "the API gives no start time."
)


@functools.cache
def min_n_for_interval(q: float, confidence: float = CONFIDENCE) -> int:
    """The fewest tasks for which the ``q`` percentile's interval has both bounds."""
    n = np.arange(1, 1001)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    xs = np.concatenate([np.arange(k, dtype=float) for k in n])
    lo, hi = order_stat_ci(xs, starts, n, q, confidence)
    ok = ~np.isnan(lo) & ~np.isnan(hi)
    return int(n[ok][0]) if ok.any() else int(n[-1])


def _intervals(frame: pd.DataFrame, name: str, missing: str = fmt.MISSING) -> list[str]:
    """Column ``name`` with its ``_ci_low`` / ``_ci_high`` bounds, in whole seconds."""
    return [
        fmt.interval(v, lo, hi, SECONDS, missing=missing)
        for v, lo, hi in zip(
            frame[name], frame[f"{name}_ci_low"], frame[f"{name}_ci_high"], strict=True
        )
    ]


def _latency_table(ctx: Context, frame: pd.DataFrame, by: str) -> pd.DataFrame:
    naive = analysis.latency_summary(frame, by=by, percentiles=PERCENTILES)
    km = analysis.km_latency(frame, by=by, percentiles=KM_PERCENTILES, now=ctx.now)
    out = pd.DataFrame(index=naive.index)
    out["tasks"] = [count(v) for v in naive["n"]]
    out["succeeded"] = [count(v) for v in naive["completed"]]
    out["generating"] = [count(v) for v in naive["generating"]]
    for q in PERCENTILES:
        out[f"{pct_name(q)} s"] = _intervals(naive, pct_name(q), NONE_SUCCEEDED)
    for q in KM_PERCENTILES:
        out[f"KM {pct_name(q)} s"] = _intervals(km, f"km_{pct_name(q)}", fmt.NOT_REACHED)
    out["max s"] = [fmt.num(v, SECONDS) for v in naive["max_s"]]
    return flat(out, by)


def _time_to_failure(ctx: Context) -> pd.DataFrame:
    failed = analysis.latency_summary(
        ctx.by_model, by="model", percentiles=BRIEF_PERCENTILES, outcome="failed"
    )
    failed = failed[failed["completed"] > 0]
    ttf = pd.DataFrame(index=failed.index)
    ttf["failed tasks"] = [count(v) for v in failed["completed"]]
    for q in BRIEF_PERCENTILES:
        ttf[f"{pct_name(q)} s"] = _intervals(failed, pct_name(q))
    return flat(ttf)


def latency(ctx: Context) -> Section | None:
    """Latency by model and task type (naive and Kaplan–Meier), time to failure, figures."""
    if not len(ctx.read):
        return None
    read = ctx.read
    blocks: list[Block] = [
        Text(
            f"{LATENCY_IS} Successful tasks only; brackets: {fmt.pct(CONFIDENCE, 0)} intervals. "
            "KM: Kaplan–Meier, counting tasks still generating (see Definitions)."
        ),
        Text("By model."),
        Table(_latency_table(ctx, ctx.by_model, "model")),
        Text("By task type."),
        Table(_latency_table(ctx, read, "task_type")),
        Text("Time to failure, by model."),
        Table(_time_to_failure(ctx), "No task failed."),
    ]
    blocks += ctx.figure(
        "latency_ecdf",
        "Share of tasks succeeded by time since creation: a curve further right is a slower "
        "model; solid (Kaplan–Meier) right of dashed means slow tasks are still generating.",
        on_ax(plots.latency_ecdf, read, by="model", now=ctx.now),
    )
    blocks += ctx.figure(
        "latency_hist",
        "Latency of successful tasks by task type: 4k upgrades take several times longer "
        "than the rest; a second hump is a slow channel.",
        on_ax(plots.latency_hist, read, by="task_type"),
    )
    blocks += ctx.figure(
        "latency_over_time",
        f"Latency percentiles per {ctx.freq} of creation time: a rising line whose band "
        "clears the earlier ones is a real slow-down (no band where a bucket has too few "
        "tasks for an interval).",
        on_ax(plots.latency_percentiles_over_time, read, freq=ctx.freq),
    )
    return Section("Latency (time to success)", blocks)
