"""``check``: every rule over its window, one row per rule x group, from the analysis functions.

A rule is **breached** when its whole 95 % interval lies beyond the threshold: the data
say the true value crossed the line, not just this sample. It is **suspect** when the
point estimate is beyond the threshold but the interval still reaches back over it: it
may be noise, and more tasks will tell. Counts and sums (stuck tasks, spend) are
observed, not estimated: their interval is the value itself, so they are breached or
clear, never suspect. ``strict=True`` compares point estimates only (noisy on small
windows: the naive rule that pages at night).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import analysis, fmt
from ..analysis._kernels import CONFIDENCE, pct_name, wilson_interval
from ..analysis.duplicates import DEFAULT_WINDOW as DUPLICATE_WINDOW
from ..errors import InputError
from ..schema import MEDIA_RETENTION, TERMINAL_STATUSES, Status
from ._rules import (
    EXACT,
    LATENCY_CI,
    METRICS,
    NOW,
    OWN_SPAN,
    STUCK_AFTER,
    WILSON,
    Rule,
    parse_rules,
    span_text,
)
from ._source import Source, open_source

__all__ = ["ALL", "CHECK_COLUMNS", "DEFAULT_WINDOW", "check"]

DEFAULT_WINDOW = "1D"
#: How far before its window a rule reads tasks: a repeat's first submission may be there.
_LEAD = {"duplicates_wasted": pd.Timedelta(DUPLICATE_WINDOW)}
#: The group label of a check without ``by``.
ALL = "all"
#: The ``window`` of a rule that looks at every task as it is now.
NOW_LABEL = "now"
#: The columns of :func:`check`, in order.
CHECK_COLUMNS = (
    "rule",
    "group",
    "window",
    "start",
    "end",
    "value",
    "ci_low",
    "ci_high",
    "threshold",
    "n",
    "breached",
    "suspect",
    "interval",
)
_ORDER_STATS, _KM = "order statistics", "Kaplan–Meier"


@dataclass(frozen=True)
class _Scope:
    """What a metric is evaluated on: the tasks of its window, or all (for NOW metrics)."""

    tasks: pd.DataFrame  # readable rows, ``by`` columns as display labels
    by: list[str]
    start: pd.Timestamp | None  # the rule's window (its tasks may reach back before it)
    now: pd.Timestamp
    now_given: object
    archived: object
    callbacks: object


def _groups(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    """The display label of each row's group (``all`` without ``by``)."""
    if not by:
        return pd.Series(ALL, index=frame.index, dtype=object)
    if len(by) == 1:
        return frame[by[0]].astype(object)
    keys = zip(*(frame[c].astype(object) for c in by), strict=True)
    return pd.Series([fmt.label(k) for k in keys], index=frame.index, dtype=object)


def _index_labels(index: pd.Index) -> list[str]:
    return [fmt.label(k) for k in index]


def _among(ids: pd.Series, chosen: pd.Series) -> np.ndarray:
    """Which of ``ids`` are in ``chosen`` (Arrow's hash set: no Python loop over rows)."""
    if len(chosen) == 0:
        return np.zeros(len(ids), dtype=bool)
    found = pc.is_in(pa.array(ids, type=pa.string()), value_set=pa.array(chosen, type=pa.string()))
    return found.to_numpy(zero_copy_only=False).astype(bool)


def _exact(groups: pd.Series, population: np.ndarray, weights: np.ndarray) -> pd.DataFrame:
    """Sum of ``weights`` over ``population`` rows per group: value = ci = the sum."""
    g = groups[population]
    w = pd.Series(weights[population], index=g.index)
    value = w.groupby(g, sort=True).sum()
    n = g.groupby(g, sort=True).size()
    return pd.DataFrame(
        {"value": value, "ci_low": value, "ci_high": value, "n": n, "interval": EXACT}
    )


def _from_index(table: pd.DataFrame, value: str, lo: str, hi: str, n: str, how: str):
    return pd.DataFrame(
        {
            "value": table[value].to_numpy(dtype=float),
            "ci_low": table[lo].to_numpy(dtype=float),
            "ci_high": table[hi].to_numpy(dtype=float),
            "n": table[n].to_numpy(dtype=np.int64),
            "interval": how,
        },
        index=pd.Index(_index_labels(table.index)),
    )


def _by(scope: _Scope) -> list[str] | None:
    return scope.by or None


def _failure_rate(rule: Rule, scope: _Scope) -> pd.DataFrame:
    rates = analysis.failure_rates(scope.tasks, by=_by(scope), confidence=CONFIDENCE)
    return _from_index(rates, "rate", "ci_low", "ci_high", "n", WILSON)


def _latency(rule: Rule, scope: _Scope) -> pd.DataFrame:
    """Exact order-statistic interval where no task still generates; else Kaplan–Meier."""
    q = float(rule.quantile or 0.5)
    name = pct_name(q)
    naive = analysis.latency_summary(scope.tasks, _by(scope), (q,), confidence=CONFIDENCE)
    exact = _from_index(naive, name, f"{name}_ci_low", f"{name}_ci_high", "completed", _ORDER_STATS)
    use_km = naive["generating"].to_numpy() > 0
    if not use_km.any():  # nothing censored: the exact interval everywhere
        return exact
    km = analysis.km_latency(
        scope.tasks, _by(scope), (q,), now=scope.now, confidence=CONFIDENCE, failed="exclude"
    )
    censored = _from_index(km, f"km_{name}", f"km_{name}_ci_low", f"km_{name}_ci_high", "n", _KM)
    where = use_km[:, None]
    cols = ["value", "ci_low", "ci_high", "n"]
    merged = np.where(
        where, censored[cols].to_numpy(dtype=float), exact[cols].to_numpy(dtype=float)
    )
    out = pd.DataFrame(merged, columns=cols, index=exact.index)
    out["n"] = out["n"].astype(np.int64)
    out["interval"] = np.where(use_km, _KM, _ORDER_STATS)
    return out


def _generating_longer(span: str) -> Callable[[Rule, _Scope], pd.DataFrame]:
    def evaluate(rule: Rule, scope: _Scope) -> pd.DataFrame:
        tasks = scope.tasks
        stuck = analysis.stuck_tasks(tasks, span, now=scope.now)
        flagged = _among(tasks["task_id"], stuck["task_id"])
        generating = (tasks["status"] == Status.GENERATING.value).to_numpy(
            dtype=bool, na_value=False
        )
        return _exact(_groups(tasks, scope.by), generating, flagged.astype(float))

    return evaluate


def _expiring(rule: Rule, scope: _Scope) -> pd.DataFrame:
    tasks = scope.tasks
    now = None if scope.now_given is None else scope.now
    risky = analysis.expiring(tasks, within=rule.span or "3D", now=now, archived=scope.archived)
    at_risk = risky.loc[~risky["expired"].to_numpy(dtype=bool), "task_id"]
    flagged = _among(tasks["task_id"], at_risk)
    succeeded = (tasks["status"] == Status.SUCCESS.value).to_numpy(dtype=bool, na_value=False)
    return _exact(_groups(tasks, scope.by), succeeded, flagged.astype(float))


def _cost(column: str) -> Callable[[Rule, _Scope], pd.DataFrame]:
    def evaluate(rule: Rule, scope: _Scope) -> pd.DataFrame:
        costs = analysis.cost_summary(scope.tasks, by=_by(scope))
        out = _from_index(costs, column, column, column, "n", EXACT)
        return out

    return evaluate


def _wasted(rule: Rule, scope: _Scope) -> pd.DataFrame:
    """Credits wasted by the repeats created in the span; their earlier submissions may
    lie up to the duplicate window before it (the tasks are read from there)."""
    tasks = scope.tasks
    dups = analysis.duplicate_submissions(tasks)
    inside = (tasks["create_time"] > scope.start).to_numpy(dtype=bool, na_value=False)
    late = (dups["create_time"] > scope.start).to_numpy(dtype=bool, na_value=False)
    wasted = pd.Series(
        dups.loc[late, "wasted_credits"].to_numpy(dtype=float),
        index=dups.loc[late, "task_id"].astype(str).to_numpy(),
    )
    wasted = wasted.groupby(level=0).sum()
    ids = tasks["task_id"].astype(str).to_numpy()
    weights = wasted.reindex(ids).fillna(0.0).to_numpy(dtype=float)
    return _exact(_groups(tasks, scope.by), inside, weights)


def _callbacks_missing(rule: Rule, scope: _Scope) -> pd.DataFrame:
    from ..callbacks import callback_audit
    from ..callbacks._audit import NO_CALLBACK

    if scope.callbacks is None:
        raise InputError(
            f"rule {rule.text!r} needs the callbacks: check a store (its callbacks table), "
            "or pass callbacks= (read_callbacks' frame, a store or a JSONL file)"
        )
    tasks = scope.tasks
    audit = callback_audit(tasks, scope.callbacks)
    audit = audit[audit["has_record"].to_numpy(dtype=bool, na_value=False)]
    missing = (audit["disagreement"] == NO_CALLBACK).to_numpy(dtype=bool, na_value=False)
    terminal = audit["status"].astype(object).isin(TERMINAL_STATUSES).to_numpy(dtype=bool)
    got = audit["callback_received"].to_numpy(dtype=bool, na_value=False)
    expected = terminal & (got | missing)
    label = pd.Series(_groups(tasks, scope.by).to_numpy(), index=tasks["task_id"].to_numpy())
    label = label[~label.index.duplicated()]
    g = pd.Series(label.reindex(audit["task_id"].to_numpy()).to_numpy(), dtype=object)
    k = pd.Series(missing[expected].astype(float)).groupby(g[expected].to_numpy()).sum()
    n = g[expected].groupby(g[expected].to_numpy()).size()
    k = k.reindex(n.index, fill_value=0.0)
    lo, hi = wilson_interval(k.to_numpy(), n.to_numpy(), CONFIDENCE)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = k.to_numpy() / n.to_numpy()
    return pd.DataFrame(
        {"value": value, "ci_low": lo, "ci_high": hi, "n": n.to_numpy(), "interval": WILSON},
        index=pd.Index([str(x) for x in n.index]),
    )


def _evaluator(rule: Rule) -> Callable[[Rule, _Scope], pd.DataFrame]:
    if rule.metric == "stuck":
        return _generating_longer(STUCK_AFTER)
    if rule.metric == "generating_longer_than":
        return _generating_longer(rule.span or STUCK_AFTER)
    table: dict[str, Callable[[Rule, _Scope], pd.DataFrame]] = {
        "failure_rate": _failure_rate,
        "latency": _latency,
        "expiring_unarchived": _expiring,
        "spend": _cost("credits"),
        "duplicates_wasted": _wasted,
        "callbacks_missing": _callbacks_missing,
    }
    return table[rule.metric]


# ---------------------------------------------------------------- windows
def _span(rule: Rule, window: str) -> str | None:
    """The span of tasks a rule looks at (None: every task)."""
    where = METRICS[rule.metric].window
    if where == NOW:
        return None
    if where == OWN_SPAN:
        return rule.window or rule.span
    return rule.window or window


#: The one status a rule that looks at every task now is about (other rows are left out first).
_NOW_STATUS = {
    "stuck": Status.GENERATING.value,
    "generating_longer_than": Status.GENERATING.value,
    "expiring_unarchived": Status.SUCCESS.value,
}


def _tasks(
    src: Source,
    rule: Rule,
    start: pd.Timestamp | None,
    end: pd.Timestamp,
    clock: pd.Timestamp,
    cols: list[str],
) -> pd.DataFrame:
    """The rows a rule is about: created in its window, or (now) of the status it counts;
    media already deleted by ``clock`` can no longer expire, so it is left out early."""
    if start is not None:
        return src.window(start, end)
    alive = clock - MEDIA_RETENTION if rule.metric == "expiring_unarchived" else None
    return src.current(_NOW_STATUS[rule.metric], cols, alive)


def _by_columns(columns: Sequence[str], by: str | Sequence[str] | None) -> list[str]:
    cols = [] if by is None else [by] if isinstance(by, str) else [str(b) for b in by]
    for c in cols:
        if c not in columns:
            raise InputError(f"by: {c!r} is not a column of the frame; try by='model'")
    return cols


def check(
    source: object,
    rules: object,
    *,
    window: str = DEFAULT_WINDOW,
    by: str | Sequence[str] | None = None,
    now: object = None,
    strict: bool = False,
    archived: object = None,
    callbacks: object = None,
) -> pd.DataFrame:
    """Evaluate ``rules`` on ``source``: one row per rule x group (columns :data:`CHECK_COLUMNS`).

    Parameters
    ----------
    source : the typed frame, a :class:`~veo_notebook.Store`, a store path or a Parquet file.
    rules : a rule (``"failure_rate > 5%"``), several (a list, or one per line), or a
        ``.toml`` file; the metrics are in :data:`veo_notebook.checks.METRICS`.
    window : the tasks created in the last ``window`` before ``now`` are checked (a rule
        with its own span, like ``spend(1D)``, uses that; ``stuck`` and
        ``expiring_unarchived`` look at every task as it is now).
    by : column(s) to check each group apart (``"model"``); labels as in the report.
        Without it, rates and percentiles keep generations and upgrades apart (groups
        ``generation`` and ``upgrade``, as the analysis functions do); counts are ``all``.
    now : the end of the window; default the latest ``fetched_at`` (the data's now).
    strict : compare point estimates instead of intervals (noisy on small windows).
    archived, callbacks : for ``expiring_unarchived`` and ``callbacks_missing``; a store
        source provides both.

    ``breached``: the interval lies wholly beyond the threshold. ``suspect``: the point
    estimate is beyond, the interval is not. ``n`` counts the tasks the value rests on.

    >>> rows = check(df, ["failure_rate > 5%", "p90_latency > 300s"], window="1D")  # doctest: +SKIP
    >>> rows[rows["breached"]]                                 # doctest: +SKIP
    """
    parsed = parse_rules(rules)
    window = span_text(window, "window")
    src, store, opened = open_source(source)
    try:
        cols = _by_columns(src.columns, by)
        end = src.now(now)
        clock = pd.Timestamp.now(tz="UTC") if now is None else end  # as expiring's default
        subsets: dict[str, pd.DataFrame] = {}
        parts = []
        for rule in parsed:
            span = _span(rule, window)
            start = None if span is None else end - pd.Timedelta(span)
            lead = _LEAD.get(rule.metric, pd.Timedelta(0))
            key = f"{span}+{lead}" if span is not None else rule.metric
            if key not in subsets:
                read_from = None if start is None else start - lead
                subsets[key] = fmt.labelled(_tasks(src, rule, read_from, end, clock, cols), *cols)
            scope = _Scope(
                subsets[key],
                cols,
                start,
                end,
                now,
                store if archived is None else archived,
                store if callbacks is None else callbacks,
            )
            rows = _evaluator(rule)(rule, scope)
            parts.append(_finish(rule, rows, span, start, end, strict))
    finally:
        if opened and store is not None:
            store.close()
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CHECK_COLUMNS)
    return out[list(CHECK_COLUMNS)]


def _finish(
    rule: Rule,
    rows: pd.DataFrame,
    span: str | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp,
    strict: bool,
) -> pd.DataFrame:
    if rows.empty:  # no task in the window: one honest row saying so
        rows = pd.DataFrame(
            {
                "value": [np.nan],
                "ci_low": [np.nan],
                "ci_high": [np.nan],
                "n": [0],
                "interval": [_interval_name(rule)],
            },
            index=pd.Index([ALL]),
        )
    value = rows["value"].to_numpy(dtype=float)
    lo, hi = rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float)
    bound = lo if rule.op in (">", ">=") else hi
    beyond_value = np.array([rule.beyond(v) for v in value], dtype=bool)
    beyond_bound = np.array([rule.beyond(b) for b in bound], dtype=bool)
    breached = beyond_value if strict else beyond_bound
    suspect = np.zeros(len(rows), dtype=bool) if strict else beyond_value & ~beyond_bound
    return pd.DataFrame(
        {
            "rule": rule.text,
            "group": [str(g) for g in rows.index],
            "window": span or NOW_LABEL,
            "start": pd.Series([start] * len(rows), dtype="datetime64[ns, UTC]"),
            "end": pd.Series([end] * len(rows), dtype="datetime64[ns, UTC]"),
            "value": value,
            "ci_low": lo,
            "ci_high": hi,
            "threshold": rule.threshold,
            "n": rows["n"].to_numpy(dtype=np.int64),
            "breached": breached,
            "suspect": suspect,
            "interval": rows["interval"].astype(str).to_numpy(),
        }
    )


def _interval_name(rule: Rule) -> str:
    return {WILSON: WILSON, LATENCY_CI: _ORDER_STATS}.get(METRICS[rule.metric].interval, EXACT)
