"""The report over an engine, continued: money, families, videos at risk, and what is
not built there (private; see :mod:`.over_engine`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import analysis, fmt, pricing
from ..analysis.duplicates import DEFAULT_WINDOW, worst_duplicates
from ..engine import _plan as p
from ..engine._pandas import PandasEngine
from ..schema import MEDIA_RETENTION, Status
from . import figures
from ._cells import LISTED, TABLE_TIME, credits, flat, in_words, table_times
from .blocks import Block, Section, Table, Text
from .families import CHILD_TYPES, upgrade_view
from .money import _by_model_view, _defaulted_models, _worst_duplicates, defaulted_sentence
from .over_engine import SourceContext, by_label, micros
from .videos import AT_RISK_WITHIN

__all__ = ["at_risk", "callbacks_section", "delivery", "families_section", "money"]

NO_FAMILIES = (
    "Each video's story (its generate task with the extends and upgrades under it) is not "
    "built over an engine: linking every task to its parent needs every row in memory "
    "(veo.families on a frame that fits gives it). Extends and upgrades, finished tasks "
    "only (failure rate with its Wilson interval):"
)


def _facts(ctx: SourceContext, total: pd.Series) -> str:
    """The in-memory report's sentence on credits, from ``cost_summary``'s totals."""
    spent = float(np.nan_to_num(total["credits"]))
    reported = float(total["reported_credits"])
    if "credits" in ctx.eng.columns():
        origin, failed = "as given in the frame", ""
    else:
        dates = sorted(set(pricing.default_prices().rows["as_of"].dropna()))
        origin = f"the shipped price table, figures as of {', '.join(dates) or 'no date'}"
        failed = "Failed tasks cost 0. "
    return (
        f"{credits(spent)} credits for {ctx.n:,} tasks: {credits(spent - reported)} "
        f"estimated ({origin}), {credits(reported)} reported by the API; "
        f"{int(total['unpriced'])} tasks without a price (unread, or no price applies: "
        f"'{fmt.UNPRICED}'). {failed}{_defaulted(ctx)}"
        f"{int(total['duplicates'])} duplicate submissions (the same request within "
        f"{in_words(DEFAULT_WINDOW)}) wasted {credits(total['wasted_credits'])} credits."
    )


def _defaulted(ctx: SourceContext) -> str:
    """The requests that named no model, counted over the distinct ``defaults_applied``
    lists (a handful: which request fields kie.ai filled in)."""
    if "defaults_applied" not in ctx.eng.columns():
        return ""
    if isinstance(ctx.eng, PandasEngine):  # numpy does not group list cells
        return _defaulted_models(ctx.eng.df)
    named = p.NotNull("defaults_applied")
    lists = ctx.eng.grouped((), {"n": p.Count()}, named, extra=("defaults_applied",))
    n = sum(int(c) for v, c in zip(lists["x0"], lists["n"], strict=True) if "model" in list(v))
    return defaulted_sentence(n)


def money(ctx: SourceContext) -> Section | None:
    """Credits per model, what duplicate submissions wasted, spend over time."""
    if not ctx.n_read:
        return None
    # over every task; unread tasks only repeat each other, so their row is all they change
    total = analysis.cost_summary(ctx.eng, by=None).iloc[0]
    cost = analysis.cost_summary(ctx.eng, by="model")
    cost = cost[cost.index != fmt.UNREAD]
    blocks: list[Block] = [
        Text(_facts(ctx, total)),
        Text(f"By model ({fmt.UPGRADE}: a 1080p/4k upgrade, which has no model of its own)."),
        Table(by_label(_by_model_view(cost)), "No task has a price."),
    ]

    def draw(fig: Figure) -> None:
        summary = analysis.cost_summary(ctx.eng, by="model", freq=ctx.freq)
        figures.spend_bars(fig.add_subplot(), summary, "model", ctx.freq)

    blocks += ctx.figure(
        "spend",
        f"Credits spent per {ctx.freq} of creation time, stacked by model (estimated unless "
        "reported): look for a bucket whose bar towers over the rest, and for the dashed "
        "line (credits wasted on duplicate submissions) above zero.",
        draw,
    )
    if int(total["duplicates"]):  # the worst few, found by the engine (a bounded list)
        blocks += [
            Text(f"Duplicate submissions wasting the most credits (up to {LISTED}):"),
            Table(_worst_duplicates(worst_duplicates(ctx.eng, LISTED))),
        ]
    ctx.eng.forget()  # the duplicate runs' near times, kept for the two queries above
    return Section("Money", blocks)


def families_section(ctx: SourceContext) -> Section | None:
    """Over an engine: the upgrade failures only, and one sentence on why."""
    if not ctx.n_read:
        return None
    children = ctx.read.subset(p.In("task_type", CHILD_TYPES))
    rates = analysis.failure_rates(children, by="task_type")
    rates = rates[rates.index.isin(CHILD_TYPES)]
    return Section(
        "Families", [Text(NO_FAMILIES), Table(upgrade_view(rates), "No extend or upgrade task.")]
    )


def at_risk(ctx: SourceContext) -> Section | None:
    """Videos kie.ai is about to delete: counted by the engine, the soonest listed."""
    if not ctx.n_read:
        return None
    now = ctx.now
    gone_by = micros(now - MEDIA_RETENTION) + 1  # completed at or before: deleted by now
    soon_by = micros(now + pd.Timedelta(AT_RISK_WITHIN) - MEDIA_RETENTION) + 1
    success = p.In("status", (Status.SUCCESS.value,))
    soon = p.All(
        (
            success,
            p.Not(p.TimeBefore("complete_time", gone_by)),
            p.NotNull("complete_time"),
            p.TimeBefore("complete_time", soon_by),
        )
    )
    gone = p.All((success, p.TimeBefore("complete_time", gone_by)))
    n = ctx.read.grouped((), {"soon": p.Count(soon), "gone": p.Count(gone)}).iloc[0]
    text = (
        f"At {now:{TABLE_TIME}} UTC: {int(n['soon'])} succeeded tasks' videos are deleted by "
        f"kie.ai within {in_words(AT_RISK_WITHIN)}, and {int(n['gone'])} are already deleted "
        f"({in_words(MEDIA_RETENTION)} after completion). Archive them before they go; a "
        "video already archived is left out by veo.expiring(df, archived=...)."
        + (
            " This report's archive is not subtracted over an engine."
            if ctx.archive is not None
            else ""
        )
    )
    blocks: list[Block] = [Text(text)]
    if int(n["soon"]):
        cols = ["task_id", "model", "task_type", "complete_time"]
        rows = ctx.read.first(cols, soon, "complete_time", LISTED)
        expires = rows["complete_time"] + MEDIA_RETENTION
        view = pd.DataFrame(
            {
                "task_id": rows["task_id"],
                "model": fmt.group_column(rows, "model"),
                "completed (UTC)": table_times(rows["complete_time"]),
                "deleted at (UTC)": table_times(expires),
                "hours left": [fmt.num(v / 3600) for v in (expires - now).dt.total_seconds()],
            }
        )
        blocks.append(Table(flat(view)))
    return Section("At risk (videos about to expire)", blocks)


def _not_built(heading: str, what: str) -> Section:
    return Section(
        heading,
        [
            Text(
                f"Not built over an engine: it matches {what} with every task in memory; "
                "give the report a pandas frame for this section."
            )
        ],
    )


def delivery(ctx: SourceContext) -> Section | None:
    """The archive check needs every task beside the files: a sentence, when asked for."""
    return None if ctx.archive is None else _not_built("Delivery", "the archive's files")


def callbacks_section(ctx: SourceContext) -> Section | None:
    """The callback audit needs every task beside the callbacks: a sentence, when asked for."""
    return None if ctx.callbacks is None else _not_built("Callbacks", "the callbacks received")
