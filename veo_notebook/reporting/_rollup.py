"""Counts the report asks at several groupings, answered from one finer count (private).

The sections over an engine ask the same counts (same measures, same rows) by model,
by task type, by time bucket, by model and bucket, and overall: the failure rates of
the tables, the panels and the headline; the latency counts of the tables and the
over-time figure. Each is a full scan of the source. :func:`share_counts` lets an
engine answer such a question once, grouped by every one of those keys together, and
every coarser grouping from that answer by summing (counts and sums add; maxima take
the largest), so the numbers are those of the coarser query itself. The duplicate
submissions the cost tables count (:meth:`~veo_notebook.engine.Engine.extras`, the
costliest query: windows over every row) are shared the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..analysis._keys import plan_keys
from ..engine import Engine
from ..engine import _plan as p
from ..engine._base import key_columns
from ..engine._sql import SqlEngine

__all__ = ["share_counts"]

#: The keys one finer count is grouped by (those present in the source), plus the bucket.
SHARED_BY = ("model", "task_type")
_ADDS = (p.Count, p.SumMicros, p.Max)


def share_counts(eng: Engine, freq: str) -> None:
    """Let a SQL engine answer ``grouped`` questions whose keys are among the model, the
    task type and the ``freq`` bucket from one query per (measures, rows) asked."""
    if not isinstance(eng, SqlEngine) or "grouped" in vars(eng):
        return
    by = [c for c in SHARED_BY if c in eng.columns()]
    if "create_time" in eng.columns():
        by.append(freq)
    keys, _ = plan_keys(eng, by)
    fine = tuple(k for k in keys if not (isinstance(k, p.Bucket) and k.period is not None))
    columns = tuple(k for k in fine if not isinstance(k, p.Bucket))
    ask = eng.grouped
    answers: dict[tuple, pd.DataFrame] = {}

    def grouped(  # type: ignore[no-untyped-def]
        keys: p.Keys,
        measures: Mapping[str, p.Measure],
        where: p.Cond | None = None,
        extra: Sequence[p.Value] = (),
        top: int | None = None,
    ):
        shared = len(set(keys)) == len(keys) and all(k in fine for k in keys)
        additive = all(isinstance(m, _ADDS) for m in measures.values())
        if extra or top is not None or not shared or not additive or not measures:
            return ask(keys, measures, where, extra, top)
        picked = [fine.index(k) for k in keys]
        hint = eng.__dict__.get("_rank_hint")
        if hint is not None and hint[0] == keys and where is None:
            if any(isinstance(k, p.Bucket) for k in keys):  # the engine fuses them itself
                return ask(keys, measures, where, extra, top)
            del eng.__dict__["_rank_hint"]
            return _with_bins(eng, columns, keys, measures, hint[1:], answers)
        eng.__dict__.pop("_rank_hint", None)  # grouped() drops it: one use
        asked = (tuple(measures.items()), where)
        if asked not in answers:
            answers[asked] = ask(fine, measures, where)
        return _roll(answers[asked], picked, measures)

    eng.grouped = grouped  # type: ignore[method-assign]
    _share_extras(eng, fine)


def _with_bins(
    eng: SqlEngine,
    fine: p.Keys,
    keys: p.Keys,
    measures: Mapping[str, p.Measure],
    ranked: tuple[str, p.Cond | None],
    answers: dict[tuple, pd.DataFrame],
) -> pd.DataFrame:
    """A grouped question by columns (no time bucket) followed by
    :meth:`~SqlEngine.ranks` (``ranked``: its value and rows): counted once per
    (measures, ranks) by the ``fine`` columns and the ranks' bins
    (:meth:`~SqlEngine.will_rank`: a few thousand rows), each grouping's counts and bins
    summed from that (the bins kept for the histograms drawn of them)."""
    picked = [fine.index(k) for k in keys]
    asked = (tuple(measures.items()), None, ranked)
    if asked not in answers:
        answers[asked] = eng._grouped_and_bins(fine, measures, *ranked)
        answers[(*asked, "bins")] = eng.__dict__.pop("_bins")[1].rename(columns={"b": "x0"})
        if eng.answers is not None:  # kept here, not twice
            eng.answers.pop(("bins", fine, *ranked), None)
    bins = _roll(answers[(*asked, "bins")], picked, {"c": p.Count()}, 1)
    bins = bins.rename(columns={"x0": "b"})
    eng._bins = ((keys, *ranked), bins)
    if eng.answers is not None:
        eng.answers[("bins", keys, *ranked)] = bins
    return _roll(answers[asked], picked, measures)


def _share_extras(eng: SqlEngine, fine: p.Keys) -> None:
    """The same for :meth:`~veo_notebook.engine.Engine.extras` (the duplicate submissions
    the cost tables count by nothing, by model, by model and bucket): one run of the
    engine's windows per (request, rows, measures) asked, every grouping summed from it."""
    ask = eng.extras
    answers: dict[tuple, pd.DataFrame] = {}

    def extras(  # type: ignore[no-untyped-def]
        same, within_us, where, ok, keys, measures, extra=()
    ):
        shared = len(set(keys)) == len(keys) and all(k in fine for k in keys)
        # credit sums add too: the engine's own float sum has no fixed order either
        adds = all(isinstance(m, (*_ADDS, p.Sum)) for m in measures.values())
        if not shared or not adds:
            return ask(same, within_us, where, ok, keys, measures, extra)
        asked = (tuple(same), within_us, where, ok, tuple(measures.items()), tuple(extra))
        if asked not in answers:
            answers[asked] = ask(same, within_us, where, ok, fine, measures, extra)
        n_extra = len(extra) + 1  # the engine adds one: an earlier row of the run was ok
        return _roll(answers[asked], [fine.index(k) for k in keys], measures, n_extra)

    eng.extras = extras  # type: ignore[method-assign]


def _roll(
    frame: pd.DataFrame, picked: list[int], measures: Mapping[str, p.Measure], n_extra: int = 0
):
    """``frame`` (grouped by the fine keys and ``n_extra`` extra values ``x0, ...``)
    grouped by the fine keys at ``picked`` (and the extra values)."""
    how = {name: "max" if isinstance(m, p.Max) else "sum" for name, m in measures.items()}
    xs = [f"x{j}" for j in range(n_extra)]
    if not picked and not xs:
        row = {name: [_total(frame[name], how[name])] for name in measures}
        return _typed(pd.DataFrame(row), measures)
    source = [c for j in picked for c in (f"k{j}", f"k{j}_na")] + xs
    cols = key_columns(len(picked)) + xs
    part = frame[[*source, *measures]].copy()
    part.columns = [*cols, *measures]
    out = part.groupby(cols, dropna=False, sort=False).agg(how).reset_index()
    for c in cols:
        out[c] = pd.Series([_py(v) for v in out[c]], dtype=object)
    return _typed(out, measures)


def _total(values: pd.Series, how: str) -> object:
    if how == "sum":
        return values.sum()
    return values.max() if len(values) else np.nan


def _typed(frame: pd.DataFrame, measures: Mapping[str, p.Measure]) -> pd.DataFrame:
    """The measures typed as the engine types them (counts and sums int64, maxima float)."""
    for name, m in measures.items():
        kind = np.int64 if isinstance(m, p.Count | p.SumMicros) else float
        frame[name] = frame[name].astype(kind)
    return frame


def _py(value: object) -> object:
    """A key cell as the engine gives it: a plain Python value, None where missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    return value.item() if isinstance(value, np.generic) else value
