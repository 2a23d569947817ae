"""The "At risk" (videos kie.ai is about to delete) and "Delivery" (the archive) sections."""

from __future__ import annotations

import pandas as pd

from .. import analysis, fmt
from ..schema import MEDIA_RETENTION
from ._cells import LISTED, TABLE_TIME, flat, in_words, table_times
from .blocks import Block, Section, Table, Text
from .context import Context

__all__ = ["AT_RISK_WITHIN", "at_risk", "delivery"]

AT_RISK_WITHIN = "3D"  # videos deleted within this span are listed as at risk


def at_risk(ctx: Context) -> Section | None:
    """Videos kie.ai is about to delete (completion + ``MEDIA_RETENTION``), and those gone."""
    if not len(ctx.read):
        return None
    now = ctx.now
    risk = analysis.expiring(ctx.read, within=AT_RISK_WITHIN, now=now, archived=ctx.archive)
    soon = risk[~risk["expired"]]
    gone = int(risk["expired"].sum())
    text = (
        f"At {now:{TABLE_TIME}} UTC: {len(soon)} succeeded tasks' videos are deleted by kie.ai "
        f"within {in_words(AT_RISK_WITHIN)}, and {gone} are already deleted "
        f"({in_words(MEDIA_RETENTION)} after completion). Archive them before they go; a "
        "video already archived is left out by veo.expiring(df, archived=...)."
        + (" Videos this report's archive saved are left out." if ctx.archive is not None else "")
    )
    blocks: list[Block] = [Text(text)]
    if len(soon):
        view = pd.DataFrame(
            {
                "task_id": soon["task_id"],
                "model": fmt.group_column(soon, "model"),
                "completed (UTC)": table_times(soon["complete_time"]),
                "deleted at (UTC)": table_times(soon["expires_at"]),
                "hours left": [fmt.num(v / 3600) for v in soon["expires_in_s"]],
            }
        ).head(LISTED)
        blocks.append(Table(flat(view)))
    return Section("At risk (videos about to expire)", blocks)


def delivery(ctx: Context) -> Section | None:
    """What the archive saved, and each file against its request (shown when given)."""
    if ctx.archive is None:
        return None
    from ..archive import UNREADABLE, delivery_check

    archive = ctx.archive
    errors = archive["archive_error"]
    saved = archive[errors.isna() | (errors == UNREADABLE)]
    megabytes = float(saved["bytes"].sum()) / 1e6
    blocks: list[Block] = [
        Text(
            f"{len(archive):,} videos of succeeded tasks; {len(saved):,} archived "
            f"({megabytes:,.1f} MB), {int(errors.notna().sum()):,} with an error. Each file "
            "was read with PyAV and compared with what its task asked for (the request, "
            "else the record's response)."
        )
    ]
    failed = errors.dropna()
    if len(failed):
        kinds = failed.str.split(":").str[0].value_counts()
        table = pd.DataFrame({"videos": kinds.astype(int)}).rename_axis("archive error")
        blocks += [Text("Why videos could not be archived or read."), Table(flat(table))]
    problems = delivery_check(ctx.df, archive)
    if not len(problems):
        blocks.append(Text("No delivery problems: every file is what its task asked for."))
        return Section("Delivery", blocks)
    counts = problems["issue"].value_counts().loc[lambda v: v > 0]
    table = pd.DataFrame({"tasks": counts.astype(int)}).rename_axis("issue")
    shown = problems.head(LISTED).reset_index(drop=True)
    blocks += [
        Text(f"{len(problems):,} delivery problems in {problems['task_id'].nunique():,} tasks."),
        Table(flat(table)),
        Text(f"The first {LISTED}." if len(problems) > LISTED else "All of them."),
        Table(flat(shown)),
    ]
    return Section("Delivery", blocks)
