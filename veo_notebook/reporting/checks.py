"""The "Checks" section: the last run of each rule, and what tripped and when."""

from __future__ import annotations

import pandas as pd

from ..checks import shown
from ._cells import LISTED
from .blocks import Block, Section, Table, Text
from .context import Context

__all__ = ["checks_section", "trips"]

_KEY = ["rule", "group", "window"]
TRIPPED, CLEARED = "tripped", "cleared"


def trips(history: pd.DataFrame) -> pd.DataFrame:
    """The runs where a rule x group changed state (clear → breached: ``tripped``, and
    back: ``cleared``), newest first; a key's first run counts as a change if breached."""
    runs = history.sort_values("run_at", kind="stable")
    before = runs.groupby(_KEY, sort=False)["breached"].shift(1, fill_value=False)
    changed = runs[runs["breached"].to_numpy(dtype=bool) != before.to_numpy(dtype=bool)]
    changed = changed.assign(change=changed["breached"].map({True: TRIPPED, False: CLEARED}))
    return changed.sort_values("run_at", ascending=False, kind="stable")


def checks_section(ctx: Context) -> Section | None:
    """The checks kept in the store (``veo-notebook check``); shown when there are runs."""
    if ctx.checks is None or ctx.checks.empty:
        return None
    history = ctx.checks
    latest = history.sort_values("run_at", ascending=False, kind="stable")
    latest = latest.groupby(_KEY, sort=False).head(1)
    changes = trips(history)
    n_runs = history["run_at"].nunique()
    blocks: list[Block] = [
        Text(
            f"{n_runs:,} runs of veo-notebook check are kept. Breached: the whole 95 % "
            "interval is beyond the threshold; suspect: only the point estimate is (it may "
            "be noise). The latest run of each rule:"
        ),
        Table(shown(latest)),
    ]
    if changes.empty:
        blocks.append(Text("No rule has tripped in the runs kept."))
    else:
        listed = f"the latest {LISTED}" if len(changes) > LISTED else "all"
        table = shown(changes.head(LISTED))
        table.insert(1, "change", changes["change"].head(LISTED).to_numpy())
        blocks += [Text(f"What tripped and when ({listed} changes of state):"), Table(table)]
    return Section("Checks", blocks)
