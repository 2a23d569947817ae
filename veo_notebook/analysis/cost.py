"""What it cost, what was wasted, what will be lost: credits per group (with what duplicate
submissions wasted), media about to expire.

Credits come from :func:`veo_notebook.pricing.with_credits` (reported where the API said
so, else estimated from a dated price table; failed tasks 0 unless ``bill_failed``). A
frame that already has a ``credits`` column is used as it is when no ``prices`` are given.

* **duplicates** — extra submissions of a request and the credits they wasted:
  :mod:`veo_notebook.analysis.duplicates` defines them; here they are counted per group.
* **expiring** — kie.ai deletes generated media :data:`~veo_notebook.schema.MEDIA_RETENTION`
  after completion; a succeeded task not archived whose deletion time falls within
  ``within`` of ``now`` is at risk; one already past it is ``expired`` (flagged, never
  mixed with the at-risk ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..engine import Engine, resolve
from ..engine import _plan as p
from ..engine._base import key_columns
from ..errors import InputError
from ..pricing import PricesLike, PriceTable, load_prices, usd_rate
from ..schema import MEDIA_RETENTION, Status
from ._credits import combo_credits, price_keys, price_measures
from ._groups import By
from ._groups import now_utc as _now_utc
from ._groups import span as _span
from ._keys import Groups, group_index, plan_keys
from .duplicates import DEFAULT_WINDOW, wasted_by_group

__all__ = ["cost_summary", "expiring"]

Source = Any  # a DataFrame, a Parquet path/URL, a Store, a DuckDB relation, a Spark DataFrame


# --- cost per group -------------------------------------------------------------------
def cost_summary(
    df: Source,
    by: By = "model",
    prices: PricesLike = None,
    freq: str | None = None,
    usd_per_credit: float | None = None,
    *,
    bill_failed: bool = False,
    window: str | pd.Timedelta = DEFAULT_WINDOW,
    engine: str | None = None,
) -> pd.DataFrame:
    """Credits per group (and per ``freq`` bucket of ``create_time``).

    Columns: ``n`` tasks, ``succeeded``, ``credits`` (sum; tasks without a price left
    out; NaN, never 0, when the group has tasks without a price and none of its priced
    tasks costs anything, failed ones being free), ``unpriced`` (tasks no
    price applies to: a model the price table omits, an unread record), ``reported_credits``
    (the part the API reported), ``credits_per_success`` (credits of the priced successes /
    their number; NaN with none),
    ``duplicates`` (extra submissions, see
    :func:`~veo_notebook.analysis.duplicates.duplicate_submissions` with
    ``window``) and ``wasted_credits``; with a USD rate (``usd_per_credit``, else the
    price table's own) also ``usd``, ``usd_per_success`` and ``wasted_usd``.
    ``prices`` is anything :func:`veo_notebook.pricing.load_prices` takes, at least a
    ``{model: credits}`` mapping. ``df`` is the typed frame or any source
    :func:`veo_notebook.engine.resolve` takes: an engine counts tasks per group and per
    distinct (model, task type, resolution, duration, status), and the price table is
    looked up for those few combinations.

    >>> cost_summary(df, by="model", usd_per_credit=0.005)     # doctest: +SKIP
    >>> cost_summary(df, by=None, freq="1D", prices={"veo3_fast": 60})  # doctest: +SKIP
    """
    within = _span(window, "window")
    table = None if prices is None else load_prices(prices, usd_per_credit)
    rate = usd_rate(usd_per_credit) if table is None else table.usd_per_credit
    eng = resolve(df, engine)
    keys, names = plan_keys(eng, by, freq)
    own = table is None and not bill_failed and "credits" in eng.columns()
    if own:
        success = p.In("status", (Status.SUCCESS.value,))
        groups = group_index(
            eng.grouped(keys, {"n": p.Count(), "succeeded": p.Count(success)}), keys, names
        )
        sums = _own_credits(eng, keys, groups)
    else:
        combo = price_keys(eng.columns())
        agg = eng.grouped(keys, price_measures(eng.columns()), extra=(*combo, "status"))
        groups = group_index(_counts(agg, len(keys), f"x{len(combo)}"), keys, names)
        sums = _priced_credits(agg, combo, len(keys), groups, table, bill_failed)
    spent, unpriced = sums["spent"], sums["unpriced"]
    succeeded = groups.frame["succeeded"].to_numpy(dtype=np.int64)
    out = pd.DataFrame(
        {
            "n": groups.frame["n"].to_numpy(dtype=np.int64),
            "succeeded": succeeded,
            # unpriced tasks beside nothing that costs (failed ones are 0): NaN, never 0
            "credits": np.where((unpriced > 0) & (spent == 0), np.nan, spent),
            "unpriced": unpriced,
            "reported_credits": sums["reported"],
        },
        index=groups.index,
    )
    priced_ok, spent_ok = sums["priced_ok"], sums["spent_ok"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["credits_per_success"] = np.where(
            priced_ok > 0, spent_ok / np.maximum(priced_ok, 1), np.nan
        )
    out["duplicates"], out["wasted_credits"] = wasted_by_group(
        eng, keys, groups, within, table, bill_failed, own
    )
    if rate is not None:
        out["usd"] = out["credits"] * rate
        out["usd_per_success"] = out["credits_per_success"] * rate
        out["wasted_usd"] = out["wasted_credits"] * rate
    return out


def _counts(agg: pd.DataFrame, n_keys: int, status: str) -> pd.DataFrame:
    """Tasks (``n``) and successes per group, added up from the rows per (group, price
    combination, status) that pricing asks for anyway: a grouped count without a scan."""
    rows = agg["rows"].to_numpy(dtype=np.int64)
    ok = np.where(
        agg[status].eq(Status.SUCCESS.value).to_numpy(dtype=bool, na_value=False), rows, 0
    )
    cols = key_columns(n_keys)
    if not cols:  # one group, even of no rows
        return pd.DataFrame({"n": [int(rows.sum())], "succeeded": [int(ok.sum())]})
    parts = agg[cols].astype(object).where(agg[cols].notna(), "\x00")  # None: a key
    which = parts.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
    first = np.unique(which, return_index=True)[1]
    frame = agg[cols].iloc[first].reset_index(drop=True)
    frame["n"] = np.bincount(which, weights=rows).astype(np.int64)
    frame["succeeded"] = np.bincount(which, weights=ok).astype(np.int64)
    return frame


def _own_credits(eng: Engine, keys: p.Keys, groups: Groups):
    """The source's own ``credits`` column, summed per group."""
    success = p.In("status", (Status.SUCCESS.value,))
    measures: dict[str, p.Measure] = {
        "credits": p.Sum("credits"),
        "unpriced": p.Count(p.Not(p.NotNull("credits"))),
        "priced_ok": p.Count(p.All((success, p.NotNull("credits")))),
        "spent_ok": p.Sum("credits", success),
    }
    if "credits_source" in eng.columns():
        measures["reported"] = p.Sum("credits", p.In("credits_source", ("reported",)))
    agg = eng.grouped(keys, measures)
    n = len(keys)
    reported = groups.spread(agg, n, "reported") if "reported" in agg else np.zeros(len(groups))
    return {
        "spent": groups.spread(agg, n, "credits"),
        "unpriced": groups.spread(agg, n, "unpriced").astype(np.int64),
        "reported": reported,
        "priced_ok": groups.spread(agg, n, "priced_ok").astype(np.int64),
        "spent_ok": groups.spread(agg, n, "spent_ok"),
    }


def _priced_credits(
    agg: pd.DataFrame,
    combo: list[str],
    n: int,
    groups: Groups,
    table: PriceTable | None,
    bill_failed: bool,
):
    """Credits per group from ``agg`` (rows per group and (price keys ``combo``, status)):
    reported where the source has them, else the price table's estimate for each
    combination — as :func:`~veo_notebook.pricing.with_credits` prices a row."""
    c = combo_credits(agg, combo, table, bill_failed)
    credits, told, rest, priced, ok = c["credits"], c["told"], c["rest"], c["priced"], c["ok"]
    priced_rows = told + np.where(priced, rest, 0)
    return {
        "spent": groups.spread(agg, n, credits),
        "unpriced": groups.spread(agg, n, np.where(priced, 0, rest).astype(float)).astype(np.int64),
        "reported": groups.spread(agg, n, c["told_sum"]),
        "priced_ok": groups.spread(agg, n, np.where(ok, priced_rows, 0).astype(float)).astype(
            np.int64
        ),
        "spent_ok": groups.spread(agg, n, np.where(ok, credits, 0.0)),
    }


# --- media about to be deleted --------------------------------------------------------
def _archived_ids(archived: object) -> set[str]:
    """Task ids saved without error, from an archive frame, a Store or an iterable of ids."""
    from ..store import Store

    if archived is None:
        return set()
    if isinstance(archived, pd.DataFrame):
        frame = archived
    elif isinstance(archived, Store):
        from ..archive._table import ArchiveTable  # (the archive stage owns the table)

        return ArchiveTable(archived).archived_ids()
    elif isinstance(archived, Iterable) and not isinstance(archived, str | bytes):
        return {str(t) for t in archived}
    else:
        raise InputError(
            f"archived: a {type(archived).__name__} is not an archive; give the frame "
            "archive_videos returned, a Store, or task ids"
        )
    if frame.empty:
        return set()
    if "task_id" not in frame.columns:
        raise InputError("archived: the frame has no task_id column")
    ok = pd.Series(True, index=frame.index)
    for col in ("archive_error", "error"):
        if col in frame.columns:
            ok &= frame[col].isna()
    return set(frame.loc[ok, "task_id"].astype(str))


def expiring(
    df: Source,
    within: str | pd.Timedelta = "3D",
    now: object = None,
    archived: object = None,
    *,
    engine: str | None = None,
) -> pd.DataFrame:
    """Succeeded tasks whose media kie.ai deletes within ``within`` of ``now``, not archived.

    Deletion time = ``complete_time`` + :data:`~veo_notebook.schema.MEDIA_RETENTION`.
    Media already deleted is in the result too, flagged ``expired=True`` (listed after
    the ones still at risk). ``now`` defaults to the wall clock (what is lost depends on
    today, not on the last fetch). ``archived`` (optional): the frame
    ``archive_videos`` returned (rows with an ``archive_error`` do not count), a
    :class:`~veo_notebook.Store` (its ``archive`` table, if it has one), or task ids.
    ``df`` is the typed frame or any source :func:`veo_notebook.engine.resolve` takes;
    an engine returns only the succeeded rows past the cut-off, four columns of them.

    Columns: ``task_id``, ``model``, ``task_type``, ``video_url``, ``complete_time``,
    ``expires_at``, ``expires_in_s`` (negative once expired), ``expired``.

    >>> at_risk = expiring(df, within="3D", archived=store)    # doctest: +SKIP
    >>> at_risk[~at_risk["expired"]]                           # doctest: +SKIP
    """
    ahead = _span(within, "within")
    now_ts = pd.Timestamp.now(tz="UTC") if now is None else _now_utc(pd.DataFrame(), now)
    eng = resolve(df, engine)
    cutoff = (now_ts + ahead - MEDIA_RETENTION).value // 1000 + 1  # µs, a superset
    where = p.All((p.In("status", (Status.SUCCESS.value,)), p.TimeBefore("complete_time", cutoff)))
    shown = ("task_id", "model", "task_type", "video_url")
    cols = [c for c in shown if c in eng.columns()]
    done = eng.rows([*cols, "complete_time"], where)
    done = done.sort_values("task_id", kind="stable")  # one order, whatever the engine's
    saved = _archived_ids(archived)
    if saved:
        done = done[~done["task_id"].isin(saved).to_numpy(dtype=bool, na_value=False)]
    expires_at = done["complete_time"] + MEDIA_RETENTION
    risky = (expires_at <= now_ts + ahead).to_numpy(dtype=bool)
    done, expires_at = done[risky], expires_at[risky]
    left = (expires_at - now_ts).dt.total_seconds()
    out = done.copy()
    out["expires_at"] = expires_at
    out["expires_in_s"] = left.astype("float64")
    out["expired"] = (left <= 0).astype(bool)
    return out.sort_values(["expired", "expires_at"], kind="stable").reset_index(drop=True)
