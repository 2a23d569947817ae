"""What it cost, what was wasted, what will be lost: credits per group, duplicate
submissions, media about to expire.

Credits come from :func:`veo_notebook.pricing.with_credits` (reported where the API said
so, else estimated from a dated price table; failed tasks 0 unless ``bill_failed``). A
frame that already has a ``credits`` column is used as it is when no ``prices`` are given.

* **duplicate submission** — a task whose request (prompt, model, generation type,
  aspect ratio, image URLs, seeds, duration where the frame has it, parent task and task
  type) repeats an earlier one within ``window`` of the previous identical submission: a
  client that timed out and re-submitted. A run of identical requests, each within the
  window of the one before, is one intended request; every submission after the first is
  an extra. Its credits are **wasted** when an earlier submission of the run did not fail
  (it delivered, or is still generating), so a retry after a failure is not waste.
* **expiring** — kie.ai deletes generated media :data:`~veo_notebook.schema.MEDIA_RETENTION`
  after completion; a succeeded task not archived whose deletion time falls within
  ``within`` of ``now`` is at risk; one already past it is ``expired`` (flagged, never
  mixed with the at-risk ones).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..pricing import (
    DURATION_COLUMNS,
    NOT_BILLED,
    PricesLike,
    load_prices,
    usd_rate,
    with_credits,
)
from ..schema import MEDIA_RETENTION, Status
from ._groups import By
from ._groups import codes as _codes
from ._groups import now_utc as _now_utc
from ._groups import status_mask as _status_mask

__all__ = ["REQUEST_COLUMNS", "cost_summary", "duplicate_submissions", "expiring"]

#: The columns that make two submissions the same request (plus a duration column, if any).
REQUEST_COLUMNS = (
    "prompt",
    "model",
    "generation_type",
    "aspect_ratio",
    "image_urls",
    "seeds",
    "parent_task_id",
    "task_type",
)
DEFAULT_WINDOW = "15min"
_LIST_SEP = "\x1f"  # joins image URLs into one key (a character no URL holds)
_MAX_CODE = 2**62  # combined request codes stay below this (int64)


def _priced(df: pd.DataFrame, prices: PricesLike, bill_failed: bool) -> pd.DataFrame:
    if prices is None and not bill_failed and "credits" in df.columns:
        return df
    return with_credits(df, prices, bill_failed)


def _timedelta(value: object, name: str) -> pd.Timedelta:
    try:
        td = pd.Timedelta(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        td = pd.NaT
    if pd.isna(td) or td < pd.Timedelta(0):
        raise InputError(f"{name}: {value!r} is not a time span like '15min', '3D' or '1h'")
    return td


# --- duplicate submissions ----------------------------------------------------------
def _request_codes(df: pd.DataFrame) -> np.ndarray:
    """One integer per row, equal for rows whose request columns are all equal (NA = NA).

    Like :func:`._kernels.group_codes` without the group index, and compacted whenever the
    mixed-radix code could overflow: prompts, seeds and image URLs have many values each.
    """
    names = [c for c in REQUEST_COLUMNS if c in df.columns]
    names += [c for c in DURATION_COLUMNS if c in df.columns][:1]
    combined = np.zeros(len(df), dtype=np.int64)
    size = 1
    for name in names:
        s = df[name]
        if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_list(s.dtype.pyarrow_dtype):
            joined = pc.fill_null(pc.binary_join(pa.array(s.array), _LIST_SEP), "")
            s = pd.Series(joined, index=s.index, dtype=pd.ArrowDtype(pa.string()))
        elif s.dtype == object:  # lists from outside the schema: compare their text
            s = s.astype("string")
        codes, uniques = pd.factorize(s, use_na_sentinel=False)
        radix = max(len(uniques), 1)
        if size * radix >= _MAX_CODE:
            combined, seen = pd.factorize(combined)
            size = max(len(seen), 1)
        combined = combined * radix + codes
        size *= radix
    return combined


def _ns(times: pd.Series) -> np.ndarray:
    return times.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _runs(df: pd.DataFrame, window: pd.Timedelta) -> dict[str, np.ndarray]:
    """Positions of the extra submissions, their run's first position and whether wasted."""
    empty = np.zeros(0, dtype=np.intp)
    none = {"extra": empty, "first": empty, "wasted": np.zeros(0, dtype=bool)}
    if len(df) == 0 or "create_time" not in df.columns:
        return none
    request = np.zeros(len(df), dtype=bool)
    for col in ("prompt", "parent_task_id"):  # an unread record has no request to compare
        if col in df.columns:
            request |= df[col].notna().to_numpy(dtype=bool)
    pos = np.flatnonzero(df["create_time"].notna().to_numpy(dtype=bool) & request)
    if len(pos) == 0:
        return none
    group = _request_codes(df)[pos]
    t = _ns(df["create_time"])[pos]
    order = np.lexsort((pos, t, group))
    g, ts, p = group[order], t[order], pos[order]
    repeat = np.zeros(len(p), dtype=bool)
    repeat[1:] = (g[1:] == g[:-1]) & (ts[1:] - ts[:-1] <= window.value)
    run = np.cumsum(~repeat) - 1
    starts = np.flatnonzero(~repeat)
    failed = df["status"].isin(NOT_BILLED).to_numpy(dtype=bool, na_value=False)
    ok = (~failed[p]).astype(np.int64)
    ok_before = np.cumsum(ok) - ok
    earlier_ok = ok_before - ok_before[starts][run]
    return {
        "extra": p[repeat],
        "first": p[starts][run][repeat],
        "wasted": (earlier_ok > 0)[repeat],
    }


def duplicate_submissions(
    df: pd.DataFrame,
    window: str | pd.Timedelta = DEFAULT_WINDOW,
    *,
    prices: PricesLike = None,
    bill_failed: bool = False,
) -> pd.DataFrame:
    """One row per extra submission of a request already made within ``window``.

    Columns: ``task_id``, ``first_task_id`` (the run's first submission), ``create_time``,
    ``delay_s`` (seconds after the first), ``model``, ``status``, ``credits`` (of this
    submission) and ``wasted_credits`` (its credits when an earlier submission of the run
    did not fail, else 0). Rows in creation order. Requests an hour apart are not
    duplicates at the default window of 15 minutes.

    >>> duplicate_submissions(df, window="15min")["wasted_credits"].sum()  # doctest: +SKIP
    """
    span = _timedelta(window, "window")
    priced = _priced(df, prices, bill_failed)
    runs = _runs(priced, span)
    extra, first = runs["extra"], runs["first"]
    t = _ns(priced["create_time"]) if len(priced) else np.zeros(0, dtype=np.int64)
    credits = priced["credits"].to_numpy(dtype=float, na_value=np.nan)[extra]

    def take(col: str) -> pd.Series:
        return priced[col].take(extra).reset_index(drop=True)

    out = pd.DataFrame(
        {
            "task_id": take("task_id"),
            "first_task_id": priced["task_id"].take(first).reset_index(drop=True),
            "create_time": pd.Series(t[extra].view("datetime64[ns]")).dt.tz_localize("UTC"),
            "delay_s": (t[extra] - t[first]) / 1e9,
            "model": take("model"),
            "status": take("status"),
            "credits": credits,
            "wasted_credits": np.where(runs["wasted"], np.nan_to_num(credits), 0.0),
        }
    )
    return out.sort_values(["create_time", "task_id"], kind="stable").reset_index(drop=True)


# --- cost per group -------------------------------------------------------------------
def cost_summary(
    df: pd.DataFrame,
    by: By = "model",
    prices: PricesLike = None,
    freq: str | None = None,
    usd_per_credit: float | None = None,
    *,
    bill_failed: bool = False,
    window: str | pd.Timedelta = DEFAULT_WINDOW,
) -> pd.DataFrame:
    """Credits per group (and per ``freq`` bucket of ``create_time``).

    Columns: ``n`` tasks, ``succeeded``, ``credits`` (sum; tasks without a price left
    out; NaN, never 0, when the group has tasks without a price and none of its priced
    tasks costs anything, failed ones being free), ``unpriced`` (tasks no
    price applies to: a model the price table omits, an unread record), ``reported_credits``
    (the part the API reported), ``credits_per_success`` (credits of the priced successes /
    their number; NaN with none),
    ``duplicates`` (extra submissions, see :func:`duplicate_submissions` with
    ``window``) and ``wasted_credits``; with a USD rate (``usd_per_credit``, else the
    price table's own) also ``usd``, ``usd_per_success`` and ``wasted_usd``.
    ``prices`` is anything :func:`veo_notebook.pricing.load_prices` takes, at least a
    ``{model: credits}`` mapping.

    >>> cost_summary(df, by="model", usd_per_credit=0.005)     # doctest: +SKIP
    >>> cost_summary(df, by=None, freq="1D", prices={"veo3_fast": 60})  # doctest: +SKIP
    """
    span = _timedelta(window, "window")
    table = None if prices is None else load_prices(prices, usd_per_credit)
    rate = usd_rate(usd_per_credit) if table is None else table.usd_per_credit
    priced = _priced(df, table, bill_failed)
    codes, index = _codes(priced, by, freq)
    g = len(index)
    credits = priced["credits"].to_numpy(dtype=float, na_value=np.nan)
    priced_mask = ~np.isnan(credits)
    source = priced.get("credits_source")  # a frame's own credits may come without a source
    reported = (
        np.zeros(len(priced), dtype=bool)
        if source is None
        else (source == "reported").to_numpy(dtype=bool, na_value=False)
    )
    runs = _runs(priced, span)
    extra = runs["extra"]
    wasted = np.where(runs["wasted"], np.nan_to_num(credits[extra]), 0.0)

    def total(weights: np.ndarray | None = None, mask: np.ndarray | None = None) -> np.ndarray:
        sel = codes if mask is None else codes[mask]
        return np.bincount(sel, weights=weights, minlength=g)

    success = _status_mask(priced, (Status.SUCCESS.value,))
    succeeded = total(mask=success)
    spent = total(np.where(priced_mask, credits, 0.0))
    unpriced = total(mask=~priced_mask)
    out = pd.DataFrame(
        {
            "n": total(),
            "succeeded": succeeded,
            # unpriced tasks beside nothing that costs (failed ones are 0): NaN, never 0
            "credits": np.where((unpriced > 0) & (spent == 0), np.nan, spent),
            "unpriced": unpriced,
            "reported_credits": total(np.where(reported, credits, 0.0)),
        },
        index=index,
    )
    priced_ok = total(mask=success & priced_mask)
    spent_ok = total(np.where(success & priced_mask, credits, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["credits_per_success"] = np.where(
            priced_ok > 0, spent_ok / np.maximum(priced_ok, 1), np.nan
        )
    out["duplicates"] = np.bincount(codes[extra], minlength=g)
    out["wasted_credits"] = np.bincount(codes[extra], weights=wasted, minlength=g)
    if rate is not None:
        out["usd"] = out["credits"] * rate
        out["usd_per_success"] = out["credits_per_success"] * rate
        out["wasted_usd"] = out["wasted_credits"] * rate
    return out


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
    df: pd.DataFrame,
    within: str | pd.Timedelta = "3D",
    now: object = None,
    archived: object = None,
) -> pd.DataFrame:
    """Succeeded tasks whose media kie.ai deletes within ``within`` of ``now``, not archived.

    Deletion time = ``complete_time`` + :data:`~veo_notebook.schema.MEDIA_RETENTION`.
    Media already deleted is in the result too, flagged ``expired=True`` (listed after
    the ones still at risk). ``now`` defaults to the wall clock (what is lost depends on
    today, not on the last fetch). ``archived`` (optional): the frame
    ``archive_videos`` returned (rows with an ``archive_error`` do not count), a
    :class:`~veo_notebook.Store` (its ``archive`` table, if it has one), or task ids.

    Columns: ``task_id``, ``model``, ``task_type``, ``video_url``, ``complete_time``,
    ``expires_at``, ``expires_in_s`` (negative once expired), ``expired``.

    >>> at_risk = expiring(df, within="3D", archived=store)    # doctest: +SKIP
    >>> at_risk[~at_risk["expired"]]                           # doctest: +SKIP
    """
    span = _timedelta(within, "within")
    now_ts = pd.Timestamp.now(tz="UTC") if now is None else _now_utc(df, now)
    success = _status_mask(df, (Status.SUCCESS.value,)) & df["complete_time"].notna().to_numpy()
    cols = [c for c in ("task_id", "model", "task_type", "video_url") if c in df.columns]
    done = df[[*cols, "complete_time"]][success]  # only the columns shown, never the whole frame
    saved = _archived_ids(archived)
    if saved:
        done = done[~done["task_id"].isin(saved).to_numpy(dtype=bool, na_value=False)]
    expires_at = done["complete_time"] + MEDIA_RETENTION
    risky = (expires_at <= now_ts + span).to_numpy(dtype=bool)
    done, expires_at = done[risky], expires_at[risky]
    left = (expires_at - now_ts).dt.total_seconds()
    out = done.copy()
    out["expires_at"] = expires_at
    out["expires_in_s"] = left.astype("float64")
    out["expired"] = (left <= 0).astype(bool)
    return out.sort_values(["expired", "expires_at"], kind="stable").reset_index(drop=True)
