"""The "Overview" (tasks per status) and "Stuck tasks" sections."""

from __future__ import annotations

import pandas as pd

from .. import fmt, plots
from ..analysis.latency import STUCK_AFTER
from ._cells import LISTED, count, flat, in_words, span, table_times
from .blocks import Block, Section, Table, Text
from .context import Context, on_ax

__all__ = ["overview", "stuck"]


def overview(ctx: Context) -> Section | None:
    """Tasks per status (unread on its own line) and the status figure."""
    if not len(ctx.df):
        return None
    status = ctx.df["status"].astype("string").fillna(fmt.UNREAD).value_counts()
    table = pd.DataFrame(
        {
            "status": status.index,
            "tasks": [count(v) for v in status],
            "share": [fmt.pct(v / len(ctx.df)) for v in status],
        }
    )
    table.loc[len(table)] = ["all", count(len(ctx.df)), fmt.pct(1.0)]
    blocks: list[Block] = [
        Text(
            f"Tasks created {span(ctx.df['create_time'])}. "
            f"{fmt.UNREAD}: the record could not be read (the reason is in fetch_error)."
        ),
        Table(table),
    ]
    blocks += ctx.figure(
        "status",
        "Tasks by status and model: look for a model whose bar is mostly red or orange "
        "(failed) or blue (still generating).",
        on_ax(plots.status_counts, ctx.df, by="model"),
    )
    return Section("Overview", blocks)


def stuck(ctx: Context) -> Section | None:
    """Tasks generating for longer than ``STUCK_AFTER``, oldest first."""
    if not ctx.n_read:
        return None
    s = ctx.stuck
    if not len(s):
        return Section("Stuck tasks", [Text("No task is stuck.")])
    view = pd.DataFrame(
        {
            "task_id": s["task_id"],
            "model": fmt.group_column(s, "model"),
            "task_type": s["task_type"].astype("string"),
            "created (UTC)": table_times(s["create_time"]),
            "age (min)": [fmt.num(v / 60) for v in s["age_s"]],
        }
    ).head(LISTED)
    shown = f"the {LISTED} oldest" if len(s) > LISTED else "oldest first"
    return Section(
        "Stuck tasks",
        [
            Text(f"{len(s):,} tasks generating for more than {in_words(STUCK_AFTER)}; {shown}:"),
            Table(flat(view)),
        ],
    )
