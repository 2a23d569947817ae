"""Why and how often tasks fail: rates with Wilson intervals, error categories, the Pareto.

Definitions are in :mod:`veo_notebook.analysis` (the package docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..engine import Engine, resolve
from ..engine import _plan as p
from ..errors import InputError
from ..schema import FAILED_STATUSES, TERMINAL_STATUSES, Status
from . import _kernels as _stats
from ._groups import By, Upgrades
from ._keys import apart, group_index, noted, plan_keys
from .error_rules import ERROR_RULES, ErrorRule, classify

__all__ = ["FailureBreakdown", "classify_errors", "failure_breakdown", "failure_rates"]

_STR = pd.StringDtype("pyarrow")
Source = Any  # a DataFrame, a Parquet path/URL, a Store, a DuckDB relation, a Spark DataFrame


def _rate_frame(counts: pd.DataFrame, confidence: float) -> pd.DataFrame:
    n = counts["n"].to_numpy()
    bad = counts["failed"].to_numpy() + counts["generation_failed"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        counts["rate"] = np.where(n > 0, bad / np.maximum(n, 1), np.nan)
    counts["ci_low"], counts["ci_high"] = _stats.wilson_interval(bad, n, confidence)
    return counts


def failure_rates(
    df: Source,
    by: By = None,
    *,
    freq: str | None = None,
    confidence: float = _stats.CONFIDENCE,
    rolling: int | str | None = None,
    engine: str | None = None,
    upgrades: Upgrades = "apart",
) -> pd.DataFrame:
    """Failure rate per group (and per ``freq`` bucket of ``create_time``), with Wilson intervals.

    Only terminal tasks count: ``n`` = ``succeeded`` + ``failed`` (flag 2) +
    ``generation_failed`` (flag 3); ``rate`` = (failed + generation_failed) / n;
    ``ci_low``/``ci_high`` = Wilson score interval at ``confidence``. With ``rolling``
    (a number of buckets, or a span such as ``"7D"``; needs a time bucket) the counts
    are summed over the trailing window before the rate is taken. ``upgrades="apart"``
    (default): when ``by`` names no column and the frame holds both, generations and
    1080p/4K upgrades are grouped apart by a first key ``work`` (the table's
    ``attrs["note"]`` says so); ``"pooled"`` mixes them. ``df`` is the typed frame or
    any source :func:`veo_notebook.engine.resolve` takes; ``engine`` forces one.

    >>> failure_rates(df, by="model", freq="1D", rolling=7)   # doctest: +SKIP
    """
    eng = resolve(df, engine)
    by, split = apart(eng, by, upgrades)
    keys, names = plan_keys(eng, by, freq)
    agg = eng.grouped(
        keys,
        {
            "n": p.Count(),
            "succeeded": p.Count(p.In("status", (Status.SUCCESS.value,))),
            "failed": p.Count(p.In("status", (Status.FAILED.value,))),
            "generation_failed": p.Count(p.In("status", (Status.GENERATION_FAILED.value,))),
        },
        where=p.In("status", tuple(sorted(TERMINAL_STATUSES))),
    )
    groups = group_index(agg, keys, names)
    cols = ["n", "succeeded", "failed", "generation_failed"]
    counts = pd.DataFrame(
        {c: groups.frame[c].to_numpy(dtype=np.int64) for c in cols}, index=groups.index
    )
    if rolling is not None:
        counts = _roll(counts, rolling, freq)
    return noted(_rate_frame(counts, confidence), split)


def _roll(counts: pd.DataFrame, rolling: int | str, freq: str | None) -> pd.DataFrame:
    if "period" not in (counts.index.names or []):
        raise InputError("rolling needs a time bucket: pass freq='1D' (or a bucket in by)")
    if isinstance(rolling, int):
        step = freq or "1D"
        window = pd.tseries.frequencies.to_offset(step) * rolling
        try:
            window = pd.Timedelta(window)
        except ValueError as exc:
            raise InputError(f"rolling={rolling} needs a fixed bucket size, not {step!r}") from exc
    else:
        window = pd.Timedelta(rolling)
    cols = list(counts.columns)
    others = [nm for nm in counts.index.names if nm != "period"]
    flat = counts.reset_index().dropna(subset=["period"]).sort_values([*others, "period"])

    def roll(part: pd.DataFrame) -> pd.DataFrame:
        summed = part.rolling(window, on="period", min_periods=1)[cols].sum()[cols]
        return pd.concat([part[[*others, "period"]], summed.astype(np.int64)], axis=1)

    if others:  # one rolling pass per group (groups are few: models, task types, ...)
        parts = [roll(p) for _, p in flat.groupby(others, sort=False, dropna=False, observed=True)]
        flat = pd.concat(parts) if parts else flat
    else:
        flat = roll(flat)
    return flat.set_index([*others, "period"])


# --- why: error categories and the Pareto ----------------------------------------
PARAM_COLUMNS = ("model", "generation_type", "aspect_ratio")


def classify_errors(df: Source, rules: Sequence[ErrorRule] | None = None) -> pd.Series:
    """Error category of each failed task, from ``error_code`` + ``error_message``.

    Table-driven: the first matching rule of ``rules`` (default
    :data:`~veo_notebook.analysis.ERROR_RULES`) wins; unmatched failures are
    ``unknown``; rows that did not fail are NA. The raw message stays in ``df``.

    Returns a categorical Series named ``error_category``, aligned on ``df.index``.

    >>> df["error_category"] = classify_errors(df)            # doctest: +SKIP
    >>> df["error_category"].value_counts()                    # doctest: +SKIP
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            "classify_errors gives one category per row of a DataFrame; for a dataset, a "
            "store or an engine use failure_breakdown (categories counted by the engine)"
        )
    return classify(df["error_code"], df["error_message"], df["status"], rules or ERROR_RULES)


@dataclass(frozen=True)
class FailureBreakdown:
    """The tables of :func:`failure_breakdown` (each a DataFrame; shown together in Jupyter).

    ``categories``: count, share and cumulative share per category, largest first (per
    group when ``by`` was given). ``messages``: the most frequent raw messages per
    category. ``params``: the (model, generation_type, aspect_ratio) combinations with
    the most failures, with rate and Wilson interval. ``prompts``: the prompts that
    failed most often.
    """

    categories: pd.DataFrame
    messages: pd.DataFrame
    params: pd.DataFrame
    prompts: pd.DataFrame

    def _repr_html_(self) -> str:
        parts = []
        for name in ("categories", "messages", "params", "prompts"):
            parts.append(f"<h4>{name}</h4>")
            parts.append(getattr(self, name).to_html(escape=True, float_format="{:.3g}".format))
        return "\n".join(parts)


def _pareto(counts: pd.Series) -> pd.DataFrame:
    counts = counts[counts > 0].sort_values(ascending=False, kind="stable")
    total = counts.sum()
    out = pd.DataFrame({"count": counts.astype("int64")})
    out["share"] = counts / total if total else 0.0
    out["cumulative_share"] = out["share"].cumsum()
    return out


def failure_breakdown(
    df: Source,
    by: str | Sequence[str] | None = None,
    top: int = 5,
    *,
    rules: Sequence[ErrorRule] | None = None,
    engine: str | None = None,
) -> FailureBreakdown:
    """Failures by category (a Pareto), with the top raw messages, params and prompts.

    ``by`` splits the category table by column(s) (shares are then within each group);
    the other tables are over the whole frame. ``top`` rows are kept per category in
    ``messages`` and in total in ``params`` and ``prompts``. An engine counts failures
    per distinct (error code, message, status); the rules classify those few rows.

    >>> fb = failure_breakdown(df)                            # doctest: +SKIP
    >>> fb.categories.head(3)                                  # doctest: +SKIP
    """
    eng = resolve(df, engine)
    rules = rules or ERROR_RULES
    failed = p.In("status", tuple(sorted(FAILED_STATUSES)))
    base = _classified(eng, (), failed, rules)
    if by is None:
        categories = _pareto(base.groupby("error_category", observed=False)["count"].sum())
        categories.index.name = "error_category"
    else:
        categories = _category_table(eng, by, failed, rules)
    by_message = ["error_category", "error_code", "error_message"]
    msg = base.groupby(by_message, observed=True, dropna=False)["count"].sum().reset_index()
    msg = msg[msg["count"] > 0].sort_values(["count"], ascending=False, kind="stable")
    messages = msg.groupby("error_category", observed=True, sort=False).head(top)
    messages = messages.sort_values(
        ["error_category", "count"], ascending=[True, False], kind="stable"
    )
    messages = messages.reset_index(drop=True)
    cols = [c for c in PARAM_COLUMNS if c in eng.columns()]
    rates = failure_rates(eng, by=cols) if cols else failure_rates(eng)
    rates.insert(1, "failures", rates["failed"] + rates["generation_failed"])
    params = rates.sort_values(["failures", "rate"], ascending=False, kind="stable").head(top)
    params = params[params["failures"] > 0]
    prompts = _prompts(eng, failed, rules, top)
    return FailureBreakdown(categories, messages, params, prompts)


def _classified(
    eng: Engine, keys: p.Keys, where: p.Cond, rules: Sequence[ErrorRule], extra: tuple = ()
) -> pd.DataFrame:
    """Failures counted per group and distinct (code, message, status), classified."""
    cols = ("error_code", "error_message", "status")
    agg = eng.grouped(keys, {"count": p.Count()}, where=where, extra=(*extra, *cols))
    first = len(extra)
    out = agg.rename(columns={f"x{first + i}": c for i, c in enumerate(cols)})
    out["error_code"] = pd.array(out["error_code"].tolist(), dtype="Int64")
    out["error_message"] = pd.array(out["error_message"].tolist(), dtype=_STR)
    out["status"] = pd.array(out["status"].tolist(), dtype=_STR)
    out["error_category"] = classify(out["error_code"], out["error_message"], out["status"], rules)
    out["count"] = out["count"].astype(np.int64)
    return out


def _category_table(
    eng: Engine, by: str | Sequence[str], failed: p.Cond, rules: Sequence[ErrorRule]
) -> pd.DataFrame:
    keys, names = plan_keys(eng, by)
    groups = group_index(eng.grouped(keys, {"n": p.Count()}, where=failed), keys, names)
    agg = _classified(eng, keys, failed, rules)
    where = groups.positions(agg, len(keys))
    labels = groups.index.take(where).to_frame(index=False)
    labels.columns = names
    frame = pd.concat([labels, agg[["error_category", "count"]]], axis=1)
    counts = frame.groupby([*names, "error_category"], observed=True, dropna=False)["count"].sum()
    parts = [
        _pareto(grp.droplevel(names)).assign(
            **dict(zip(names, k if isinstance(k, tuple) else (k,), strict=True))
        )
        for k, grp in counts.groupby(level=names, observed=True, dropna=False, sort=True)
    ]
    if not parts:
        return pd.DataFrame(columns=["count", "share", "cumulative_share"])
    return pd.concat(parts).reset_index().set_index([*names, "error_category"])


def _prompts(eng: Engine, failed: p.Cond, rules: Sequence[ErrorRule], top: int) -> pd.DataFrame:
    """The prompts that failed most (ties: by prompt) and each one's main category."""
    if "prompt" not in eng.columns():
        return pd.DataFrame(columns=["failures"])
    with_prompt = p.All((failed, p.NotNull("prompt")))
    best = eng.grouped((), {"failures": p.Count()}, where=with_prompt, extra=("prompt",), top=top)
    if best.empty:
        return pd.DataFrame(columns=["failures"])
    names = tuple(str(x) for x in best["x0"])
    prompts = pd.DataFrame(
        {"failures": best["failures"].to_numpy(dtype=np.int64)},
        index=pd.Index(pd.array(names, dtype=_STR), name="prompt"),
    )
    mine = _classified(eng, (), p.All((with_prompt, p.In("prompt", names))), rules, ("prompt",))
    main = (
        mine.groupby(["x0", "error_category"], observed=True)["count"]
        .sum()
        .sort_values(ascending=False, kind="stable")
        .reset_index()
        .drop_duplicates("x0")
        .set_index("x0")["error_category"]
    )
    prompts["main_category"] = main.reindex(list(names)).astype("string").to_numpy()
    return prompts
