"""The "Callbacks" section: deliveries kept by the receiver, audited against record-info."""

from __future__ import annotations

import pandas as pd

from .. import fmt, plots
from ._cells import LISTED, flat
from .blocks import Block, Facts, Section, Table, Text
from .context import Context

__all__ = ["callbacks_section"]

NONE_YET = "no delivery yet"
_FIRST = {"no record": 1, "no callback": 2}  # contradictions first, then these


def _count(mask: pd.Series) -> str:
    return f"{int(mask.fillna(False).sum()):,}"


def _delays(values: pd.Series) -> list[str]:
    """First delays in seconds, one format for all (sub-second delays read as such)."""
    form = fmt.seconds_format(values)
    return [fmt.num(v, form, NONE_YET) + (" s" if not fmt.is_missing(v) else "") for v in values]


def _facts(ctx: Context, audit: pd.DataFrame) -> list[tuple[str, str]]:
    assert ctx.callbacks is not None
    delay = audit["first_delay_s"].dropna()
    p50, p90, top = _delays(pd.Series([delay.median(), delay.quantile(0.9), delay.max()]))
    return [
        ("deliveries kept", f"{len(ctx.callbacks):,}"),
        ("of which duplicates", _count(ctx.callbacks["duplicate"])),
        ("tasks with a callback", _count(audit["callback_received"])),
        ("tasks delivered more than once", _count(audit["deliveries"] > 1)),
        ("terminal tasks with no callback", _count(audit["disagreement"] == "no callback")),
        ("callbacks with no record", _count(audit["disagreement"] == "no record")),
        ("callbacks that disagree with record-info", _count(audit["agrees"] == False)),  # noqa: E712
        ("first delay p50", p50),
        ("first delay p90", p90),
        ("first delay max", top),
    ]


def _problems(problems: pd.DataFrame) -> pd.DataFrame:
    return (
        pd.DataFrame(
            {
                "task_id": problems["task_id"],
                "record status": problems["status"].astype("string").fillna("no record"),
                "callback status": problems["callback_status"].astype("string").fillna("none kept"),
                "deliveries": problems["deliveries"].astype("int64"),
                "first delay": _delays(problems["first_delay_s"]),
                "what differs": problems["disagreement"],
            }
        )
        .head(LISTED)
        .reset_index(drop=True)
    )


def callbacks_section(ctx: Context) -> Section | None:
    """Callbacks kept by the receiver, audited against record-info (shown when given)."""
    if ctx.callbacks is None:
        return None
    from ..callbacks import callback_audit

    audit = callback_audit(ctx.df, ctx.callbacks, expect=ctx.callback_url)
    problems = audit[audit["disagreement"].notna()]
    rank = problems["disagreement"].map(_FIRST).fillna(0)
    problems = problems.iloc[rank.argsort(kind="stable")]
    shown = f"the first {LISTED}" if len(problems) > LISTED else "all"
    blocks: list[Block] = [
        Text(
            "Callbacks kept by the receiver, against record-info (the authority). First delay: "
            "first delivery − completeTime."
        ),
        Facts(_facts(ctx, audit)),
        Text(f"{len(problems):,} tasks with a problem; {shown}:")
        if len(problems)
        else Text("Every callback agrees with record-info, and every terminal task got one."),
    ]
    if len(problems):
        blocks.append(Table(flat(_problems(problems))))
    if audit["first_delay_s"].notna().any():
        blocks += ctx.figure(
            "callback_delay",
            "Delay of the first callback delivery after completeTime: a long tail means "
            "callbacks you cannot wait for; poll record-info instead.",
            lambda fig: plots.callback_delay(audit, ax=fig.subplots()),
        )
    return Section("Callbacks", blocks)
