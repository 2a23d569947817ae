"""The "Failure rates" and "Why tasks fail" sections: Wilson rates, error categories."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .. import analysis, fmt, plots
from ..analysis.error_rules import CATEGORY_MEANINGS
from ._cells import CONFIDENCE, count, flat
from .blocks import Block, Section, Table, Text
from .context import Context, on_ax

__all__ = ["failure_rates", "why_fail"]

_COUNTS = ("succeeded", "failed", "generation_failed")
NONE_FINISHED = "No task has finished yet."


def _rates(r: pd.DataFrame) -> list[str]:
    return [
        fmt.rate_interval(v, lo, hi, missing="n/a (none finished)")
        for v, lo, hi in zip(r["rate"], r["ci_low"], r["ci_high"], strict=True)
    ]


def _rate_table(frame: pd.DataFrame, by: str | Sequence[str]) -> pd.DataFrame:
    r = analysis.failure_rates(frame, by=by)
    out = pd.DataFrame(index=r.index)
    out["finished"] = [count(v) for v in r["n"]]
    for c in _COUNTS:
        out[c] = [count(v) for v in r[c]]
    out["failure rate"] = _rates(r)
    return flat(out)


#: what the failure-rate tables show (in memory and over an engine alike)
RATES_ARE = (
    "Failed / finished tasks (tasks still generating are not counted); "
    f"brackets: {fmt.pct(CONFIDENCE, 0)} Wilson score interval. "
    "By model, then by task type."
)


def failure_rates(ctx: Context) -> Section | None:
    """Failure rates by model and task type, and over time (small multiples)."""
    if not ctx.n_read:
        return None
    blocks: list[Block] = [
        Text(RATES_ARE),
        Table(_rate_table(ctx.by_model, "model"), NONE_FINISHED),
        Table(_rate_table(ctx.read, "task_type"), NONE_FINISHED),
    ]
    blocks += ctx.figure(
        "failure_rate",
        f"Failure rate per {ctx.freq} of creation time, one panel per model (grey: all tasks; "
        f"hollow points: fewer than {plots.MIN_BUCKET_TASKS} finished tasks that {ctx.freq}): "
        "look for a panel whose band sits above the grey line.",
        lambda fig: plots.failure_rate_panels(ctx.by_model, freq=ctx.freq, by="model", fig=fig),
    )
    return Section("Failure rates", blocks)


def _categories(fb: analysis.FailureBreakdown) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "error category": [fmt.label(c) for c in fb.categories.index],
            "failures": [count(v) for v in fb.categories["count"]],
            "share": [fmt.pct(v) for v in fb.categories["share"]],
            "cumulative": [fmt.pct(v) for v in fb.categories["cumulative_share"]],
            "meaning": [CATEGORY_MEANINGS.get(str(c), fmt.MISSING) for c in fb.categories.index],
        }
    )


def _params(fb: analysis.FailureBreakdown) -> pd.DataFrame:
    params = fb.params.copy()
    params["failure rate"] = _rates(params)
    params = params.drop(columns=["rate", "ci_low", "ci_high"])
    for c in ("n", "failures", *_COUNTS):
        if c in params.columns:
            params[c] = [count(v) for v in params[c]]
    return flat(params.rename(columns={"n": "finished"}))


def why_fail(ctx: Context) -> Section | None:
    """Error categories (a Pareto), their raw messages, parameters and prompts."""
    if not ctx.n_read:
        return None
    fb = ctx.breakdown
    if not len(fb.categories):
        return Section("Why tasks fail", [Text("No task failed.")])
    blocks: list[Block] = [
        Text("Error categories (a Pareto), from errorCode and errorMessage."),
        Table(_categories(fb)),
    ]
    blocks += ctx.figure(
        "failure_pareto",
        "Failures by error category, largest first: the categories left of where the "
        "cumulative line passes 80% are the ones worth fixing first.",
        on_ax(plots.failure_pareto, fb),
    )
    blocks += [
        Text("Most frequent raw messages per category."),
        Table(flat(fb.messages)),
        Text(
            "Parameter combinations with the most failures "
            f"({fmt.MISSING}: the field does not apply to the task, e.g. an extend has no "
            "aspect ratio)."
        ),
        Table(_params(fb)),
        Text("Prompts that failed most often."),
        Table(flat(fb.prompts)),
    ]
    return Section("Why tasks fail", blocks)
