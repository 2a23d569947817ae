"""Latency: percentiles with exact intervals, Kaplan–Meier, stuck tasks (pure functions).

Definitions are in :mod:`veo_notebook.analysis` (the package docstring).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import InputError
from ..schema import FAILED_STATUSES, Status
from . import _kernels as _stats
from ._groups import APART_NOTE, By, Upgrades, now_utc
from ._groups import age_s as _age_s
from ._groups import apart as _apart
from ._groups import codes as _codes
from ._groups import latency as _latency
from ._groups import status_mask as _status_mask

__all__ = [
    "DEFAULT_PERCENTILES",
    "STUCK_AFTER",
    "km_curve",
    "km_latency",
    "latency_summary",
    "stuck_tasks",
]

log = logging.getLogger(__name__)

DEFAULT_PERCENTILES = (0.5, 0.9, 0.95, 0.99)
#: A task still generating this long after creation is stuck (stuck_tasks, the report).
STUCK_AFTER = "30min"
_OUTCOMES = {"success": (Status.SUCCESS.value,), "failed": tuple(sorted(FAILED_STATUSES))}


def latency_summary(
    df: pd.DataFrame,
    by: By = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    *,
    confidence: float = _stats.CONFIDENCE,
    outcome: Literal["success", "failed"] = "success",
    upgrades: Upgrades = "apart",
) -> pd.DataFrame:
    """Latency percentiles per group, with exact confidence intervals.

    Parameters
    ----------
    df : the typed frame.
    by : column name(s) and/or a time bucket on ``create_time`` (``"1D"``, ``"1h"``).
    percentiles : quantiles in [0, 1]; columns are named ``p50``, ``p99.5``, ...
    confidence : level of the order-statistic intervals (``p90_ci_low``/``p90_ci_high``).
    outcome : ``"success"`` (time-to-success) or ``"failed"`` (time-to-failure, flags 2/3).
    upgrades : ``"apart"`` (default): when ``by`` names no column and the frame holds
        both, generations and 1080p/4K upgrades are grouped apart by a first key ``work``
        (``generation`` / ``upgrade``; the table's ``attrs["note"]`` says so); ``"pooled"``
        mixes them.

    Returns
    -------
    DataFrame indexed by the group keys: ``n`` (tasks), ``completed`` (tasks with the
    outcome and a latency), ``generating``, ``mean_s``, one column per percentile,
    ``max_s``, then the interval bounds. Still-generating tasks are not in the
    percentiles: see :func:`km_latency` for the censoring-aware estimate.

    >>> latency_summary(df, by=["model", "1D"])[["completed", "p50", "p90"]]  # doctest: +SKIP
    """
    if outcome not in _OUTCOMES:
        raise InputError(f"outcome must be 'success' or 'failed', not {outcome!r}")
    by, split = _apart(df, by, upgrades)
    codes, index = _codes(df, by)
    return _noted(_summary(df, codes, index, percentiles, confidence, outcome), split)


def _noted(out: pd.DataFrame, split: bool) -> pd.DataFrame:
    """The table, saying when generations and upgrades were kept apart."""
    if split:
        out.attrs["note"] = APART_NOTE
    return out


def _summary(
    df: pd.DataFrame,
    codes: np.ndarray,
    index: pd.Index,
    percentiles: Sequence[float],
    confidence: float | None,
    outcome: str,
) -> pd.DataFrame:
    """latency_summary on precomputed group codes (``confidence=None``: no intervals)."""
    g = len(index)
    lat = _latency(df)
    use = _status_mask(df, _OUTCOMES[outcome]) & ~np.isnan(lat)
    generating = np.bincount(codes[_status_mask(df, ("generating",))], minlength=g)
    x = lat[use]
    c = codes[use]
    xs, starts, counts = _stats.grouped_sort_values(x, c, g)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(c, weights=x, minlength=g) / counts
    out: dict[str, np.ndarray] = {
        "n": np.bincount(codes, minlength=g),
        "completed": counts,
        "generating": generating,
        "mean_s": mean,
    }
    cis: dict[str, np.ndarray] = {}
    for q in percentiles:
        name = _stats.pct_name(q)
        out[name] = _stats.linear_quantiles(xs, starts, counts, q)
        if confidence is not None:
            cis[f"{name}_ci_low"], cis[f"{name}_ci_high"] = _stats.order_stat_ci(
                xs, starts, counts, q, confidence
            )
    max_s = np.full(g, np.nan)
    ok = counts > 0
    max_s[ok] = xs[starts[ok] + counts[ok] - 1]
    out["max_s"] = max_s
    out.update(cis)
    return pd.DataFrame(out, index=index)


Failed = Literal["censor", "exclude"]


def _km_inputs(
    df: pd.DataFrame, now: pd.Timestamp, failed: Failed = "censor"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time, is_event, usable) per row for time-to-success."""
    if failed not in ("censor", "exclude"):
        raise InputError(f"failed must be 'censor' or 'exclude', not {failed!r}")
    lat = _latency(df)
    success = _status_mask(df, ("success",))
    is_failed = _status_mask(df, _OUTCOMES["failed"])
    generating = _status_mask(df, ("generating",))
    age = np.clip(_age_s(df, now), 0.0, None)
    time = np.where(generating, age, lat)
    usable = (success | generating | (is_failed if failed == "censor" else False)) & ~np.isnan(time)
    dropped = int(((success | is_failed) & np.isnan(lat)).sum())
    if dropped:
        log.debug("km: %d terminal tasks without a latency left out", dropped)
    return time, success, usable


def km_curve(
    df: pd.DataFrame, by: By = None, *, now: object = None, failed: Failed = "censor"
) -> pd.DataFrame:
    """The Kaplan–Meier curve of time-to-success, one row per group and distinct time.

    Columns: the group keys, ``time_s``, ``at_risk``, ``events`` (successes at that
    time), ``censored`` (still generating, or failed, at that time), ``survival`` (share
    of tasks not yet succeeded) and ``greenwood`` (variance of log survival). ``now``
    (default: the latest ``fetched_at``, else the clock) sets the age of tasks still
    generating; ``failed`` is as in :func:`km_latency`.

    >>> km_curve(df, by="model").head()                       # doctest: +SKIP
    """
    codes, index = _codes(df, by)
    time, event, usable = _km_inputs(df, now_utc(df, now), failed)
    table = _stats.km_table(time[usable], event[usable], codes[usable], len(index))
    keys = index.take(table.pop("group").to_numpy())
    keys_frame = keys.to_frame(index=False) if by is not None else None
    if keys_frame is None:
        return table
    return pd.concat([keys_frame, table], axis=1)


def km_latency(
    df: pd.DataFrame,
    by: By = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    *,
    now: object = None,
    confidence: float = _stats.CONFIDENCE,
    failed: Failed = "censor",
    upgrades: Upgrades = "apart",
) -> pd.DataFrame:
    """Censoring-aware time-to-success percentiles (Kaplan–Meier) beside the naive ones.

    A batch still running hides its slowest tasks: the naive percentiles only see the
    tasks that already finished. Here a task still generating counts as "at least this
    old" (right-censored at ``now − create_time``). ``now`` defaults to the latest
    ``fetched_at`` of the frame (else the clock).

    Failed tasks: with ``failed="censor"`` (default) a failure counts as "did not
    succeed within its failure time" (censored then): the estimate is the success time
    *had nothing failed*, and late failures (timeouts) keep the curve up, so high
    percentiles can be NaN. With ``failed="exclude"`` failed tasks are left out: the
    estimate is the success time of tasks that do not fail, and equals the naive one
    (``inverted_cdf``) when nothing is still generating.

    Returns one row per group: ``n`` (tasks used), ``succeeded``, ``generating``,
    ``failed`` (failed tasks used), then for each percentile the naive value (``p50``)
    and the KM value (``km_p50``, NaN when the curve does not fall that far),
    ``max_followup_s``, then
    the KM intervals ``km_p50_ci_low``/``km_p50_ci_high`` (Brookmeyer–Crowley with the
    log-transformed Greenwood band, as R's ``quantile.survfit``).
    Time-to-failure is ``latency_summary(df, outcome="failed")``. ``upgrades`` as in
    :func:`latency_summary` (generations and upgrades apart by default).

    >>> km_latency(df, by="model")[["p50", "km_p50"]]        # doctest: +SKIP
    """
    by, split = _apart(df, by, upgrades)
    codes, index = _codes(df, by)
    g = len(index)
    time, event, usable = _km_inputs(df, now_utc(df, now), failed)
    c = codes[usable]
    table = _stats.km_table(time[usable], event[usable], c, g)
    naive = _summary(df, codes, index, percentiles, None, "success")
    lower, upper = _stats.km_bands(table, confidence)
    cis: dict[str, np.ndarray] = {}
    out: dict[str, np.ndarray] = {
        "n": np.bincount(c, minlength=g),
        "succeeded": naive["completed"].to_numpy(),
        "generating": np.bincount(codes[usable & _status_mask(df, ("generating",))], minlength=g),
        "failed": np.bincount(codes[usable & _status_mask(df, _OUTCOMES["failed"])], minlength=g),
    }
    for q in percentiles:
        name = _stats.pct_name(q)
        out[name] = naive[name].to_numpy()
        out[f"km_{name}"] = _stats.km_quantiles(table, g, q)
        cis[f"km_{name}_ci_low"] = _stats.km_quantiles(table, g, q, lower)
        cis[f"km_{name}_ci_high"] = _stats.km_quantiles(table, g, q, upper)
    follow = np.full(g, np.nan)
    if len(table):
        last = table.groupby("group")["time_s"].max()
        follow[last.index.to_numpy()] = last.to_numpy()
    out["max_followup_s"] = follow
    out.update(cis)
    return _noted(pd.DataFrame(out, index=index), split)


def _to_seconds(value: str | float | timedelta | pd.Timedelta) -> float:
    if isinstance(value, int | float):
        return float(value)
    return pd.Timedelta(value).total_seconds()


def stuck_tasks(
    df: pd.DataFrame, older_than: str | float | timedelta = STUCK_AFTER, now: object = None
) -> pd.DataFrame:
    """Tasks still generating for longer than ``older_than``, oldest first.

    ``older_than`` is a Timedelta string (``"30min"``, ``"2h"``), a timedelta or seconds.
    The rows of ``df`` are returned with an ``age_s`` column (seconds since creation, at
    ``now``: default the latest ``fetched_at``, else the clock).

    >>> stuck_tasks(df, "15min")[["task_id", "age_s"]]       # doctest: +SKIP
    """
    limit = _to_seconds(older_than)
    age = _age_s(df, now_utc(df, now))
    mask = _status_mask(df, ("generating",)) & (age > limit)
    out = df.loc[mask].copy()
    out["age_s"] = age[mask]
    return out.sort_values("age_s", ascending=False, kind="stable")
