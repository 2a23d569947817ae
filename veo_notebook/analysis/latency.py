"""Latency: percentiles with exact intervals, Kaplan–Meier, stuck tasks (pure functions).

Definitions are in :mod:`veo_notebook.analysis` (the package docstring).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from ..engine import Engine, resolve
from ..engine import _plan as p
from ..engine._base import key_columns
from ..engine._pandas import PandasEngine
from ..errors import InputError
from ..schema import FAILED_STATUSES, Status
from . import _kernels as _stats
from ._groups import By, Upgrades, now_utc
from ._groups import age_s as _age_s
from ._keys import Groups, apart, group_index, noted, plan_keys

__all__ = [
    "DEFAULT_PERCENTILES",
    "STUCK_AFTER",
    "km_curve",
    "km_latency",
    "latency_summary",
    "stuck_tasks",
]

log = logging.getLogger(__name__)

Source = Any  # a DataFrame, a Parquet path/URL, a Store, a DuckDB relation, a Spark DataFrame

DEFAULT_PERCENTILES = (0.5, 0.9, 0.95, 0.99)
#: A task still generating this long after creation is stuck (stuck_tasks, the report).
STUCK_AFTER = "30min"
_OUTCOMES = {"success": (Status.SUCCESS.value,), "failed": tuple(sorted(FAILED_STATUSES))}


def latency_summary(
    df: Source,
    by: By = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    *,
    confidence: float = _stats.CONFIDENCE,
    outcome: Literal["success", "failed"] = "success",
    engine: str | None = None,
    upgrades: Upgrades = "apart",
) -> pd.DataFrame:
    """Latency percentiles per group, with exact confidence intervals.

    Parameters
    ----------
    df : the typed frame, or any source :func:`veo_notebook.engine.resolve` takes (a
        Parquet file or dataset, a Store, a DuckDB relation, a Spark DataFrame).
    by : column name(s) and/or a time bucket on ``create_time`` (``"1D"``, ``"1h"``).
    percentiles : quantiles in [0, 1]; columns are named ``p50``, ``p99.5``, ...
    confidence : level of the order-statistic intervals (``p90_ci_low``/``p90_ci_high``).
    outcome : ``"success"`` (time-to-success) or ``"failed"`` (time-to-failure, flags 2/3).
    engine : ``"pandas"``, ``"duckdb"`` or ``"spark"`` (default: chosen by the source).
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
    eng = resolve(df, engine)
    by, split = apart(eng, by, upgrades)
    keys, names = plan_keys(eng, by)
    return noted(_summary(eng, keys, names, percentiles, confidence, outcome)[0], split)


def _use(outcome: str) -> p.Cond:
    return p.All((p.In("status", _OUTCOMES[outcome]), p.NotNull("latency_s")))


def _summary(
    eng: Engine,
    keys: p.Keys,
    names: list[str],
    percentiles: Sequence[float],
    confidence: float | None,
    outcome: str,
) -> tuple[pd.DataFrame, Groups]:
    """latency_summary on an engine (``confidence=None``: no intervals) and its groups."""
    use = _use(outcome)
    eng.will_rank(keys, "latency_s", use)
    agg = eng.grouped(
        keys,
        {
            "n": p.Count(),
            "completed": p.Count(use),
            "generating": p.Count(p.In("status", (Status.GENERATING.value,))),
            "sum_us": p.SumMicros("latency_s", use),
            "max_s": p.Max("latency_s", use),
        },
    )
    groups = group_index(agg, keys, names)
    frame = groups.frame
    counts = frame["completed"].to_numpy(dtype=np.int64)
    plan: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    cis: list[tuple[str, np.ndarray, np.ndarray]] = []
    for q in percentiles:
        name = _stats.pct_name(q)
        lo, hi, gamma = _stats.linear_ranks(counts, q)
        plan.append((name, lo, hi, gamma))
        if confidence is not None:
            lr, ur = _stats.order_stat_ranks(counts, q, confidence)
            cis.append((name, lr, ur))
    wanted = [r for _, lo, hi, _ in plan for r in (lo, hi)] + [r for _, a, b in cis for r in (a, b)]
    at = _values_at_ranks(eng, keys, use, groups, counts, wanted)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = frame["sum_us"].to_numpy(dtype=float) / 1e6 / counts
    out: dict[str, np.ndarray] = {
        "n": frame["n"].to_numpy(dtype=np.int64),
        "completed": counts,
        "generating": frame["generating"].to_numpy(dtype=np.int64),
        "mean_s": mean,
    }
    for name, lo, hi, gamma in plan:
        value = np.full(len(counts), np.nan)
        ok = counts > 0
        value[ok] = _stats.linear_combine(at(lo)[ok], at(hi)[ok], gamma[ok])
        out[name] = value
    out["max_s"] = frame["max_s"].to_numpy(dtype=float)
    for name, lr, ur in cis:
        out[f"{name}_ci_low"] = at(lr)
        out[f"{name}_ci_high"] = at(ur)
    return pd.DataFrame(out, index=groups.index), groups


def _values_at_ranks(
    eng: Engine,
    keys: p.Keys,
    use: p.Cond,
    groups: Groups,
    counts: np.ndarray,
    wanted: list[np.ndarray],
):
    """Ask the engine once for every (group, rank) in ``wanted``; return a lookup
    ``at(ranks) -> values`` (NaN where the rank is outside 1..n). An engine that keeps
    answers (:attr:`Engine.answers`: the report) keeps the values found, and is asked
    only for the ranks it has not answered yet (the report's latency table asks the
    naive percentiles twice, with their intervals and beside the Kaplan–Meier ones)."""
    g = len(counts)
    kept = eng.answers
    asked = ("ranks", keys, use, tuple(groups.index))
    found: dict[tuple[int, int], float] = {} if kept is None else kept.setdefault(asked, {})
    pairs: set[tuple[int, int]] = set()
    for ranks in wanted:
        ok = (ranks >= 1) & (ranks <= counts)
        pairs.update(zip(np.flatnonzero(ok).tolist(), ranks[ok].tolist(), strict=True))
    pairs.difference_update(found)
    if pairs:
        cols = key_columns(len(keys))
        table = pd.DataFrame(sorted(pairs), columns=["_g", "rank"])
        ask = groups.frame[cols].iloc[table["_g"].to_numpy()].reset_index(drop=True)
        ask["rank"] = table["rank"].to_numpy(dtype=np.int64)
        got = eng.ranks(keys, "latency_s", use, ask)
        found.update(
            zip(
                zip(groups.positions(got, len(keys)).tolist(), got["rank"].tolist(), strict=True),
                got["value"].tolist(),
                strict=True,
            )
        )

    def at(ranks: np.ndarray) -> np.ndarray:
        return np.array(
            [found.get((i, int(r)), np.nan) for i, r in zip(range(g), ranks, strict=True)],
            dtype=float,
        )

    return at


Failed = Literal["censor", "exclude"]


class KmCounts(NamedTuple):
    """Event and censoring counts per distinct (group, time), sorted by group then time,
    as compact arrays (a row per distinct event time: a million and more at 20M tasks)."""

    group: np.ndarray  # group position
    time_s: np.ndarray
    events: np.ndarray
    censored: np.ndarray


def _km_counts(
    eng: Engine, keys: p.Keys, groups: Groups, now: pd.Timestamp, failed: Failed
) -> tuple[KmCounts, np.ndarray, np.ndarray, np.ndarray]:
    """Event and censoring counts per (group, time) for time-to-success, and per group
    the tasks used, the generating ones used and the failed ones used."""
    if failed not in ("censor", "exclude"):
        raise InputError(f"failed must be 'censor' or 'exclude', not {failed!r}")
    statuses = ("success", *(_OUTCOMES["failed"] if failed == "censor" else ()))
    success = p.In("status", ("success",))
    g = len(groups)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    fails = np.zeros(g)
    for done in eng.grouped_pieces(
        keys,
        {"events": p.Count(success), "censored": p.Count(p.Not(success))},
        p.All((p.In("status", statuses), p.NotNull("latency_s"))),
        "latency_s",
    ):  # each piece's keys (objects, a row per distinct time) dropped once placed
        at, censored = groups.positions(done, len(keys)), done["censored"].to_numpy(np.int64)
        fails += np.bincount(at, weights=censored, minlength=g)
        parts.append(
            (at, done["x0"].to_numpy(dtype=float), done["events"].to_numpy(np.int64), censored)
        )
        del done, at, censored
    running = eng.grouped(
        keys,
        {"censored": p.Count()},
        where=p.All((p.In("status", ("generating",)), p.NotNull("create_time"))),
        extra=(p.Micros("create_time"),),
    )
    created = pd.to_datetime(running["x0"].to_numpy(dtype=np.int64), unit="us", utc=True)
    age = np.clip((now - pd.Series(created)).dt.total_seconds().to_numpy(dtype=float), 0.0, None)
    run_at = groups.positions(running, len(keys))
    run_censored = running["censored"].to_numpy(np.int64)
    parts.append((run_at, age, np.zeros(len(run_at), np.int64), run_censored))
    gen = np.bincount(run_at, weights=run_censored, minlength=g)
    counts = _merged(parts)
    used = np.bincount(counts.group, weights=counts.events + counts.censored, minlength=g)
    return counts, used.astype(np.int64), gen.astype(np.int64), fails.astype(np.int64)


def _merged(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> KmCounts:
    """The pieces' counts (group, time, events, censored) summed per distinct (group,
    time), sorted by group then time; ``parts`` is emptied (each column sorted alone:
    one full-length copy at a time)."""
    pieces = [[part[j] for part in parts] for j in range(4)]
    parts.clear()
    merged = []
    for column in pieces:  # each column's pieces freed once joined
        merged.append(np.concatenate(column))
        column.clear()
    order = np.lexsort((merged[1], merged[0]))
    for j in range(4):  # one sorted copy at a time
        merged[j] = merged[j][order]
    del order
    group, time, events, censored = merged
    merged.clear()
    new = np.ones(len(group), dtype=bool)
    new[1:] = (group[1:] != group[:-1]) | (time[1:] != time[:-1])
    if new.all():
        return KmCounts(group, time, events, censored)
    starts = np.flatnonzero(new)
    return KmCounts(
        group[starts],
        time[starts],
        np.add.reduceat(events, starts),
        np.add.reduceat(censored, starts),
    )


def _now(eng: Engine, now: object) -> pd.Timestamp:
    """``now`` as UTC; by default the latest ``fetched_at`` of the source, else the clock."""
    if now is not None or "fetched_at" not in eng.columns():
        return now_utc(pd.DataFrame(), now)
    agg = eng.grouped((), {"last": p.Max(p.Micros("fetched_at"))})
    last = agg["last"].iloc[0]
    if last is None or pd.isna(last):
        return pd.Timestamp.now(tz="UTC")
    return pd.Timestamp(int(last), unit="us", tz="UTC")


def _km(eng: Engine, keys: p.Keys, groups: Groups, now: object, failed: Failed):
    """The Kaplan–Meier table and the per-group counts. An engine that keeps answers
    (:attr:`Engine.answers`) keeps them for the next caller asking the same curve (the
    report's latency table, then its figure); that caller takes them away."""
    now_ts = _now(eng, now)
    asked = ("km", keys, tuple(groups.index), now_ts, failed)
    kept = eng.answers
    if kept is not None and asked in kept:
        return kept.pop(asked)
    counts, used, gen, fails = _km_counts(eng, keys, groups, now_ts, failed)
    table = _stats.km_from_counts(*counts, len(groups))
    del counts
    if kept is not None:  # the table is only read (copy on write); the small arrays copied
        kept[asked] = (table, used.copy(), gen.copy(), fails.copy())
        kept[("km groups", keys)] = groups  # km_curve then needs no query for its groups
    return table, used, gen, fails


def km_curve(
    df: Source,
    by: By = None,
    *,
    now: object = None,
    failed: Failed = "censor",
    engine: str | None = None,
) -> pd.DataFrame:
    """The Kaplan–Meier curve of time-to-success, one row per group and distinct time.

    Columns: the group keys, ``time_s``, ``at_risk``, ``events`` (successes at that
    time), ``censored`` (still generating, or failed, at that time), ``survival`` (share
    of tasks not yet succeeded) and ``greenwood`` (variance of log survival). ``now``
    (default: the latest ``fetched_at``, else the clock) sets the age of tasks still
    generating; ``failed`` is as in :func:`km_latency`; ``df`` and ``engine`` as in
    :func:`latency_summary`.

    >>> km_curve(df, by="model").head()                       # doctest: +SKIP
    """
    eng = resolve(df, engine)
    keys, names = plan_keys(eng, by)
    kept = eng.answers
    groups = None if kept is None else kept.get(("km groups", keys))
    if groups is None:
        groups = group_index(eng.grouped(keys, {"n": p.Count()}), keys, names)
    table = _km(eng, keys, groups, now, failed)[0]
    curve = table.drop(columns="group")  # the table may be kept: never changed here
    if by is None:
        return curve
    keys_frame = groups.index.take(table["group"].to_numpy()).to_frame(index=False)
    return pd.concat([keys_frame, curve], axis=1)


def km_latency(
    df: Source,
    by: By = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    *,
    now: object = None,
    confidence: float = _stats.CONFIDENCE,
    failed: Failed = "censor",
    engine: str | None = None,
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
    Time-to-failure is ``latency_summary(df, outcome="failed")``. ``df``, ``engine`` and
    ``upgrades`` as in :func:`latency_summary` (generations and upgrades apart by default).

    >>> km_latency(df, by="model")[["p50", "km_p50"]]        # doctest: +SKIP
    """
    eng = resolve(df, engine)
    by, split = apart(eng, by, upgrades)
    keys, names = plan_keys(eng, by)
    naive, groups = _summary(eng, keys, names, percentiles, None, "success")
    g = len(groups)
    table, used, gen, fails = _km(eng, keys, groups, now, failed)
    cis: dict[str, np.ndarray] = {}
    out: dict[str, np.ndarray] = {
        "n": used,
        "succeeded": naive["completed"].to_numpy(),
        "generating": gen,
        "failed": fails if failed == "censor" else np.zeros(g, dtype=np.int64),
    }
    for q in percentiles:
        name = _stats.pct_name(q)
        out[name] = naive[name].to_numpy()
        out[f"km_{name}"] = _stats.km_quantiles(table, g, q)
    for side, end in ((-1, "low"), (1, "high")):  # one band held at a time
        band = _stats.km_band(table, side, confidence)
        for q in percentiles:
            cis[f"km_{_stats.pct_name(q)}_ci_{end}"] = _stats.km_quantiles(table, g, q, band)
        del band
    follow = np.full(g, np.nan)
    if len(table):  # sorted by group, then time: a group's last row is its latest time
        group = table["group"].to_numpy()
        last = np.ones(len(group), dtype=bool)
        last[:-1] = group[1:] != group[:-1]
        follow[group[last]] = table["time_s"].to_numpy()[last]
    out["max_followup_s"] = follow
    for q in percentiles:  # each percentile's low, then its high
        for end in ("low", "high"):
            name = f"km_{_stats.pct_name(q)}_ci_{end}"
            out[name] = cis[name]
    return noted(pd.DataFrame(out, index=groups.index), split)


def _to_seconds(value: str | float | timedelta | pd.Timedelta) -> float:
    if isinstance(value, int | float):
        return float(value)
    return pd.Timedelta(value).total_seconds()


def stuck_tasks(
    df: Source,
    older_than: str | float | timedelta = STUCK_AFTER,
    now: object = None,
    *,
    engine: str | None = None,
) -> pd.DataFrame:
    """Tasks still generating for longer than ``older_than``, oldest first.

    ``older_than`` is a Timedelta string (``"30min"``, ``"2h"``), a timedelta or seconds.
    The rows of ``df`` are returned with an ``age_s`` column (seconds since creation, at
    ``now``: default the latest ``fetched_at``, else the clock). From an engine only the
    stuck rows come back (a bounded set: tasks still generating), never the history.

    >>> stuck_tasks(df, "15min")[["task_id", "age_s"]]       # doctest: +SKIP
    """
    limit = _to_seconds(older_than)
    eng = resolve(df, engine)
    now_ts = _now(eng, now)
    cutoff = (now_ts - pd.Timedelta(seconds=limit)).value // 1000 + 1  # a superset, exact below
    where = p.All((p.In("status", ("generating",)), p.TimeBefore("create_time", cutoff)))
    rows = eng.rows(eng.columns(), where)
    if isinstance(eng, PandasEngine):
        rows = rows.copy()
    age = _age_s(rows, now_ts)
    keep = age > limit
    out = rows.loc[keep].copy()
    out["age_s"] = age[keep]
    return out.sort_values(["age_s", "task_id"], ascending=[False, True], kind="stable")
