"""The "Families" section: each video's whole story, generate to final file.

How many videos reach each final form, how often upgrades fail (with intervals),
what a finished video cost in total by model, and how long it took to the final file
(:func:`veo_notebook.families`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import analysis, fmt
from ..analysis.family import FORM_CATEGORIES, NO_VIDEO
from ..schema import TaskType
from ._cells import count, credits, flat
from .blocks import Block, Section, Table, Text
from .context import Context

__all__ = ["families_section"]

#: The task types whose failure rates the section shows (an extend and the two upgrades).
CHILD_TYPES = (TaskType.EXTEND.value, TaskType.P1080.value, TaskType.K4.value)
#: Percentiles of the time to the final file.
TIME_PERCENTILES = (0.5, 0.9)
#: How the model of a family whose root the history lacks reads.
NO_ROOT = "root not in history"
NOTHING = "no video (nothing succeeded)"


def _forms(fam: pd.DataFrame) -> pd.DataFrame:
    counts = fam["final_form"].value_counts().reindex(list(FORM_CATEGORIES), fill_value=0)
    return pd.DataFrame(
        {
            "final form": [f if f != NO_VIDEO else NOTHING for f in counts.index],
            "videos": [count(v) for v in counts],
            "share": [fmt.pct(v / max(len(fam), 1)) for v in counts],
        }
    )


def _upgrade_failures(df: pd.DataFrame) -> pd.DataFrame:
    children = df[df["task_type"].isin(CHILD_TYPES).to_numpy(dtype=bool, na_value=False)]
    return upgrade_view(
        analysis.failure_rates(children.astype({"task_type": "string"}), by="task_type")
    )


def upgrade_view(rates: pd.DataFrame) -> pd.DataFrame:
    """``failure_rates(by="task_type")`` of the extends and upgrades as the report's cells."""
    rates = rates.reindex([t for t in CHILD_TYPES if t in rates.index])
    view = pd.DataFrame(
        {
            "finished": [count(v) for v in rates["n"]],
            "failed": [count(v) for v in rates["n"] - rates["succeeded"]],
            "failure rate [95% CI]": [
                fmt.rate_interval(r, lo, hi)
                for r, lo, hi in zip(rates["rate"], rates["ci_low"], rates["ci_high"], strict=True)
            ],
        },
        index=rates.index,
    )
    return flat(view, "task type")


def _cost(fam: pd.DataFrame) -> pd.DataFrame:
    done = fam[(fam["final_form"] != NO_VIDEO).to_numpy(dtype=bool)]
    model = done["model"].astype("string").fillna(fmt.MISSING)
    model = model.mask(done["root_status"] == "unread", fmt.UNREAD)
    model = model.mask(done["root_status"] == "missing", NO_ROOT).to_numpy(dtype=object)
    groups = done.groupby(model, sort=True)["credits"]
    table = pd.DataFrame({"videos": groups.size(), "total": groups.sum(), "mean": groups.mean()})
    view = pd.DataFrame(
        {
            "finished videos": [count(v) for v in table["videos"]],
            "credits": [credits(v) for v in table["total"]],
            "credits per finished video": [fmt.num(v, "{:,.1f}") for v in table["mean"]],
        },
        index=table.index,
    )
    return flat(view, "model")


def _time(fam: pd.DataFrame) -> pd.DataFrame:
    rows = {}
    for form in FORM_CATEGORIES[:-1]:
        t = fam.loc[(fam["final_form"] == form).to_numpy(dtype=bool), "time_to_final_s"].dropna()
        q = np.quantile(t, TIME_PERCENTILES) if len(t) else [np.nan] * len(TIME_PERCENTILES)
        rows[form] = [count(len(t)), *(fmt.num(v, "{:,.0f}") for v in q)]
    names = ["videos timed", *(f"p{int(p * 100)} (s)" for p in TIME_PERCENTILES)]
    return flat(pd.DataFrame.from_dict(rows, orient="index", columns=names), "final form")


def families_section(ctx: Context) -> Section | None:
    """How videos end (final form), upgrade failures, cost per finished video, time to final."""
    if not len(ctx.read):
        return None
    fam = analysis.families(ctx.df)
    grown = int((fam["n_tasks"] > 1).sum())
    missing = int(fam["missing_parent"].notna().sum())
    blocks: list[Block] = [
        Text(
            f"{count(len(fam))} videos (a family: a generate task with its extends and 1080p/4K "
            f"upgrades, each a task of its own); {count(grown)} have more than one task. The "
            "final file is the best member that succeeded: 4K first, then 1080p, then "
            "extended, then the base clip. "
            f"Families that start from a parent this history does not hold: {count(missing)} "
            "(fetch_records(..., with_parents=True) fetches such parents)."
        ),
        Table(_forms(fam)),
        Text("Extends and upgrades, finished tasks only (failure rate with its Wilson interval):"),
        Table(_upgrade_failures(ctx.read), "No extend or upgrade task."),
        Text(
            "Videos with a failed task that no later task of the same type in the family made "
            "good (a failed generate counts: nothing links a new try to it): "
            f"{count(fam['failed_unreplaced'].astype(bool).sum())}. Total credits per finished "
            "video (every member, reported or estimated; failed members cost 0), by the model of "
            "its generate task:"
        ),
        Table(_cost(fam), "No video was finished."),
        Text(
            "Time from the first request (the root's creation) to the final file's completion, "
            "by final form, queueing included:"
        ),
        Table(_time(fam), "No video was finished."),
    ]
    return Section("Families", blocks)
