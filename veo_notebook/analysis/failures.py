"""Why and how often tasks fail: rates with Wilson intervals, error categories, the Pareto.

Definitions are in :mod:`veo_notebook.analysis` (the package docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from ..schema import TERMINAL_STATUSES
from . import _kernels as _stats
from ._groups import APART_NOTE, By, Upgrades
from ._groups import apart as _apart
from ._groups import codes as _codes
from ._groups import status_mask as _status_mask
from .error_rules import ERROR_RULES, ErrorRule, classify

__all__ = ["FailureBreakdown", "classify_errors", "failure_breakdown", "failure_rates"]


def _rate_frame(counts: pd.DataFrame, confidence: float) -> pd.DataFrame:
    n = counts["n"].to_numpy()
    bad = counts["failed"].to_numpy() + counts["generation_failed"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        counts["rate"] = np.where(n > 0, bad / np.maximum(n, 1), np.nan)
    counts["ci_low"], counts["ci_high"] = _stats.wilson_interval(bad, n, confidence)
    return counts


def failure_rates(
    df: pd.DataFrame,
    by: By = None,
    *,
    freq: str | None = None,
    confidence: float = _stats.CONFIDENCE,
    rolling: int | str | None = None,
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
    ``attrs["note"]`` says so); ``"pooled"`` mixes them.

    >>> failure_rates(df, by="model", freq="1D", rolling=7)   # doctest: +SKIP
    """
    by, split = _apart(df, by, upgrades)
    terminal = _status_mask(df, tuple(TERMINAL_STATUSES))
    codes, index = _codes(df, by, freq, mask=terminal)
    g = len(index)

    def count(status: str) -> np.ndarray:
        return np.bincount(codes[_status_mask(df, (status,))[terminal]], minlength=g)

    data = {
        "n": np.bincount(codes, minlength=g),
        "succeeded": count("success"),
        "failed": count("failed"),
        "generation_failed": count("generation_failed"),
    }
    counts = pd.DataFrame(data, index=index)
    if rolling is not None:
        counts = _roll(counts, rolling, freq)
    out = _rate_frame(counts, confidence)
    if split:
        out.attrs["note"] = APART_NOTE
    return out


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


def classify_errors(df: pd.DataFrame, rules: Sequence[ErrorRule] | None = None) -> pd.Series:
    """Error category of each failed task, from ``error_code`` + ``error_message``.

    Table-driven: the first matching rule of ``rules`` (default
    :data:`~veo_notebook.analysis.ERROR_RULES`) wins; unmatched failures are
    ``unknown``; rows that did not fail are NA. The raw message stays in ``df``.

    Returns a categorical Series named ``error_category``, aligned on ``df.index``.

    >>> df["error_category"] = classify_errors(df)            # doctest: +SKIP
    >>> df["error_category"].value_counts()                    # doctest: +SKIP
    """
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
    df: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    top: int = 5,
    *,
    rules: Sequence[ErrorRule] | None = None,
) -> FailureBreakdown:
    """Failures by category (a Pareto), with the top raw messages, params and prompts.

    ``by`` splits the category table by column(s) (shares are then within each group);
    the other tables are over the whole frame. ``top`` rows are kept per category in
    ``messages`` and in total in ``params`` and ``prompts``.

    >>> fb = failure_breakdown(df)                            # doctest: +SKIP
    >>> fb.categories.head(3)                                  # doctest: +SKIP
    """

    cat = classify_errors(df, rules)
    failed = cat.notna().to_numpy()
    sub = df.loc[failed]
    fcat = cat[failed]
    if by is None:
        categories = _pareto(fcat.value_counts(sort=False))
        categories.index.name = "error_category"
    else:
        keys = [by] if isinstance(by, str) else list(by)
        counts = (
            sub[keys]
            .assign(error_category=fcat)
            .groupby([*keys, "error_category"], observed=True, dropna=False)
            .size()
        )
        parts = [
            _pareto(grp.droplevel(keys)).assign(
                **dict(zip(keys, k if isinstance(k, tuple) else (k,), strict=True))
            )
            for k, grp in counts.groupby(level=keys, observed=True, dropna=False, sort=True)
        ]
        categories = (
            pd.concat(parts).reset_index().set_index([*keys, "error_category"])
            if parts
            else pd.DataFrame(columns=["count", "share", "cumulative_share"])
        )
    msg = (
        pd.DataFrame(
            {
                "error_category": fcat,
                "error_code": sub["error_code"],
                "error_message": sub["error_message"],
            }
        )
        .groupby(["error_category", "error_code", "error_message"], observed=True, dropna=False)
        .size()
        .rename("count")
        .reset_index()
    )
    msg = msg[msg["count"] > 0].sort_values(["count"], ascending=False, kind="stable")
    messages = msg.groupby("error_category", observed=True, sort=False).head(top)
    messages = messages.sort_values(
        ["error_category", "count"], ascending=[True, False], kind="stable"
    )
    messages = messages.reset_index(drop=True)
    cols = [c for c in PARAM_COLUMNS if c in df.columns]
    rates = failure_rates(df, by=cols) if cols else failure_rates(df)
    rates.insert(1, "failures", rates["failed"] + rates["generation_failed"])
    params = rates.sort_values(["failures", "rate"], ascending=False, kind="stable").head(top)
    params = params[params["failures"] > 0]
    if "prompt" in df.columns and len(sub):
        pr = pd.DataFrame({"prompt": sub["prompt"], "error_category": fcat})
        counts = pr.groupby("prompt", dropna=True).size().rename("failures")
        prompts = counts.sort_values(ascending=False, kind="stable").head(top).to_frame()
        mine = pr[pr["prompt"].isin(prompts.index)]
        main = (
            mine.groupby(["prompt", "error_category"], observed=True)
            .size()
            .sort_values(ascending=False)
            .reset_index()
            .drop_duplicates("prompt")
            .set_index("prompt")["error_category"]
        )
        prompts["main_category"] = main.reindex(prompts.index).astype("string")
    else:
        prompts = pd.DataFrame(columns=["failures"])
    return FailureBreakdown(categories, messages, params, prompts)
