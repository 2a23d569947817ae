"""The "Money" section: credits per model, how they were found, duplicate submissions."""

from __future__ import annotations

import pandas as pd

from .. import analysis, fmt, plots, pricing, schema
from ..analysis.duplicates import DEFAULT_WINDOW
from ._cells import LISTED, count, credits, flat, in_words, table_times
from .blocks import Block, Section, Table, Text
from .context import Context, on_ax

__all__ = ["money"]


def _facts(df: pd.DataFrame, priced: pd.DataFrame, dups: pd.DataFrame) -> str:
    """Credits in total, estimated vs reported, unpriced, and what duplicates wasted."""
    spent = priced["credits"]
    source = priced.get("credits_source", spent.notna().map({True: "estimated"}))
    source = source.astype("string")
    estimated = spent[(source == "estimated").fillna(False)].sum()
    reported = spent[(source == "reported").fillna(False)].sum()
    if "credits" in df.columns:
        origin, failed = "as given in the frame", ""
    else:
        dates = sorted(set(pricing.default_prices().rows["as_of"].dropna()))
        origin = f"the shipped price table, figures as of {', '.join(dates) or 'no date'}"
        failed = "Failed tasks cost 0. "
    defaulted = _defaulted_models(df)
    return (
        f"{credits(spent.sum())} credits for {len(df):,} tasks: {credits(estimated)} "
        f"estimated ({origin}), {credits(reported)} reported by the API; "
        f"{int(spent.isna().sum())} tasks without a price (unread, or no price applies: "
        f"'{fmt.UNPRICED}'). {failed}{defaulted}"
        f"{len(dups)} duplicate submissions (the same request within "
        f"{in_words(DEFAULT_WINDOW)}) wasted {credits(dups['wasted_credits'].sum())} credits."
    )


def _defaulted_models(df: pd.DataFrame) -> str:
    """A sentence on the requests that named no model (priced as kie.ai's default)."""
    if "defaults_applied" not in df.columns:
        return ""
    return defaulted_sentence(sum("model" in list(v) for v in df["defaults_applied"].dropna()))


def defaulted_sentence(n: int) -> str:
    """The sentence on ``n`` requests that named no model (nothing when there are none)."""
    if not n:
        return ""
    model = schema.REQUEST_DEFAULTS["model"]
    return (
        f"{n:,} requests named no model: they are {model} tasks (kie.ai's default; the "
        "frame's defaults_applied column says which) and priced as such. "
    )


def _by_model(priced: pd.DataFrame) -> pd.DataFrame:
    return _by_model_view(analysis.cost_summary(fmt.labelled(priced, "model"), by="model"))


def _by_model_view(table: pd.DataFrame) -> pd.DataFrame:
    """``cost_summary(by="model")`` as the report's cells."""
    view = pd.DataFrame(
        {
            "tasks": [count(v) for v in table["n"]],
            "succeeded": [count(v) for v in table["succeeded"]],
            "credits": [credits(v, fmt.UNPRICED) for v in table["credits"]],
            "credits / success": [
                fmt.num(v, "{:,.1f}", fmt.UNPRICED if u else fmt.MISSING)
                for v, u in zip(table["credits_per_success"], table["unpriced"], strict=True)
            ],
            "reported": [credits(v) for v in table["reported_credits"]],
            "unpriced": [count(v) for v in table["unpriced"]],
            "duplicates": [count(v) for v in table["duplicates"]],
            "wasted": [credits(v) for v in table["wasted_credits"]],
        },
        index=table.index,
    )
    return flat(view, "model")


def _worst_duplicates(dups: pd.DataFrame) -> pd.DataFrame:
    worst = dups.sort_values("wasted_credits", ascending=False, kind="stable").head(LISTED)
    return pd.DataFrame(
        {
            "task_id": worst["task_id"],
            "first submission": worst["first_task_id"],
            "created (UTC)": table_times(worst["create_time"]),
            "after (s)": [fmt.num(v, "{:.0f}") for v in worst["delay_s"]],
            "status": fmt.group_column(worst, "status"),
            "wasted credits": [credits(v) for v in worst["wasted_credits"]],
        }
    ).reset_index(drop=True)


def money(ctx: Context) -> Section | None:
    """Credits per model, how they were found, and what duplicate submissions wasted."""
    if not len(ctx.read):
        return None
    df = ctx.df
    priced = df if "credits" in df.columns else pricing.with_credits(df)
    dups = analysis.duplicate_submissions(priced)
    blocks: list[Block] = [
        Text(_facts(df, priced, dups)),
        Text(f"By model ({fmt.UPGRADE}: a 1080p/4k upgrade, which has no model of its own)."),
        Table(_by_model(priced), "No task has a price."),
    ]
    blocks += ctx.figure(
        "spend",
        f"Credits spent per {ctx.freq} of creation time, by model (estimated unless reported): "
        "look for a day whose bar towers over the rest, and for the dashed line (credits "
        "wasted on duplicate submissions) above zero.",
        on_ax(plots.spend_over_time, priced, freq=ctx.freq),
    )
    if len(dups):
        blocks += [
            Text(f"Duplicate submissions wasting the most credits (up to {LISTED}):"),
            Table(_worst_duplicates(dups)),
        ]
    return Section("Money", blocks)
