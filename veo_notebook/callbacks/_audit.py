"""``callback_audit``: callbacks against record-info (the authority), one row per task.

A task appears if it is in the record frame or in the callbacks. What the audit calls a
problem, in the ``disagreement`` column:

* ``no record``: callbacks arrived for a task the frame has no readable record of;
* ``no callback``: record-info says the task is terminal, its request named a
  ``callBackUrl`` (one of ``expect``, when given), and no callback was kept;
* ``status: …`` / ``video: …``: the first delivery and the record differ;
* ``deliveries differ``: later deliveries for the task say something else than the first.

Duplicates are counted in ``deliveries`` and never make a task count twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..schema import FAILED_STATUSES, STATUS_CATEGORIES, TERMINAL_STATUSES, Column, Status
from ..store import Store
from ._read import read_callbacks

__all__ = ["AUDIT_COLUMNS", "NO_CALLBACK", "NO_RECORD", "callback_audit"]

_STR = pd.StringDtype("pyarrow")
_STATUS = pd.CategoricalDtype(STATUS_CATEGORIES)
NO_RECORD = "no record"
NO_CALLBACK = "no callback"

#: The columns of :func:`callback_audit`, in order: one row per task.
AUDIT_COLUMNS: tuple[Column, ...] = (
    Column("task_id", _STR, "string", "The task (from the frame, then callback-only ids)."),
    Column("has_record", "boolean", "boolean", "The frame holds a readable record of it."),
    Column("status", _STATUS, "category", "Its status in record-info (NA without a record)."),
    Column("callback_status", _STATUS, "category", "success / failed, from the first delivery."),
    Column("callback_received", "boolean", "boolean", "At least one delivery was kept."),
    Column("deliveries", "Int64", "Int64", "Deliveries kept, duplicates included."),
    Column(
        "first_delay_s",
        "float64",
        "float",
        "First delivery − completeTime, in seconds (NaN without both).",
    ),
    Column(
        "agrees",
        "boolean",
        "boolean",
        "Status and video URL of the first delivery agree with record-info; NA when one "
        "side is missing.",
    ),
    Column(
        "disagreement",
        _STR,
        "string",
        "What differs or is missing ('no record', 'no callback', 'status: …', 'video: …', "
        "'deliveries differ'); NA when nothing.",
    ),
)


def _first(urls: object) -> str | None:
    if not pd.api.types.is_list_like(urls):
        return None  # NA / None: no URLs
    items = list(urls)  # type: ignore[call-overload]
    return str(items[0]) if items else None


Outcome = tuple[object, "str | None"]  # (status, first result URL) of a delivery


def _outcome(status: object, urls: object) -> Outcome:
    return status, _first(urls) if status == Status.SUCCESS.value else None


def _compare(cb_status: str, cb_url: str | None, rec: pd.Series) -> list[str]:
    """What differs between a task's first delivery and its record."""
    st = rec["status"]
    problems = []
    same = (cb_status == st) or (cb_status == Status.FAILED.value and st in FAILED_STATUSES)
    if not same:
        problems.append(f"status: callback {cb_status}, record {st}")
    elif cb_status == Status.SUCCESS.value:
        known = {u for u in (rec["video_url"], _first(rec["result_urls"])) if isinstance(u, str)}
        if cb_url is None:
            problems.append("video: the callback has no resultUrls")
        elif cb_url not in known:
            problems.append(f"video: callback {cb_url}, record {rec['video_url']}")
    return problems


def _expected(rec: pd.DataFrame, ids: pd.Index, expect: str | Iterable[str] | None) -> np.ndarray:
    """Which tasks should have had a callback: those whose request named a callBackUrl
    (one of ``expect``, when given); every task when the frame does not say."""
    if "callback_url" not in rec.columns:
        return np.ones(len(ids), dtype=bool)
    urls = rec["callback_url"].reindex(ids).astype(object)
    if expect is None:
        return urls.notna().to_numpy(dtype=bool)
    wanted = {expect} if isinstance(expect, str) else set(expect)
    return urls.isin(wanted).to_numpy(dtype=bool)


def _outcomes(cb: pd.DataFrame) -> dict[str, set[Outcome]]:
    """The distinct outcomes (status, first URL) each task's deliveries carry."""
    return {
        t: {_outcome(s, u) for s, u in zip(g["status"], g["result_urls"], strict=True)}
        for t, g in cb.groupby("task_id", sort=False, observed=True)
    }


def _problems(first: pd.Series, record: pd.Series, outcomes: set[Outcome]) -> list[str]:
    """How a task's first delivery (and its others) disagrees with its record."""
    problems = _compare(str(first["status"]), _first(first["result_urls"]), record)
    if len(outcomes) > 1:
        problems.append("deliveries differ")
    return problems


def callback_audit(
    frame: pd.DataFrame,
    callbacks: pd.DataFrame | Store | str | os.PathLike[str],
    *,
    expect: str | Iterable[str] | None = None,
) -> pd.DataFrame:
    """One row per task in ``frame`` or in ``callbacks`` (columns :data:`AUDIT_COLUMNS`).

    Parameters
    ----------
    frame : DataFrame
        The typed record frame (``fetch_records``, ``frame.from_store``): the authority.
    callbacks : DataFrame, Store or path
        :func:`read_callbacks`'s frame, or what it reads.
    expect : str or iterable of str, optional
        The receiver's callback URL(s): a finished task with no delivery is listed as
        ``no callback`` only when its request named one of them. Default: any
        ``callBackUrl`` (tasks created without one are never expected to call back).

    >>> import pandas as pd
    >>> from veo_notebook import to_frame
    >>> audit = callback_audit(to_frame([]), read_callbacks(Store(":memory:")))
    >>> len(audit)
    0
    """
    cb = callbacks if isinstance(callbacks, pd.DataFrame) else read_callbacks(callbacks)
    rec = frame.drop_duplicates("task_id").set_index("task_id")
    readable = rec["fetch_error"].isna() & rec["status"].notna()
    rec = rec[readable]
    rec_ids = pd.Index(frame["task_id"].drop_duplicates(), dtype=object)

    cb = cb.reset_index(drop=True)
    by = cb.groupby("task_id", sort=False, observed=True)
    deliveries = by.size()
    first_at = by["received_at"].min()
    first = cb.drop_duplicates("task_id", keep="first").set_index("task_id")
    cb_ids = pd.Index(first.index, dtype=object)
    ids = rec_ids.append(cb_ids[~cb_ids.isin(rec_ids)])

    has_record = ids.isin(rec.index)
    got = ids.isin(cb_ids)
    status = rec["status"].reindex(ids)
    complete = rec["complete_time"].reindex(ids)
    delay = (first_at.reindex(ids) - complete).dt.total_seconds()

    agrees = pd.array([pd.NA] * len(ids), dtype="boolean")
    text: list[object] = [pd.NA] * len(ids)
    terminal = status.astype(object).isin(TERMINAL_STATUSES).to_numpy()
    for i in np.flatnonzero(~got & terminal & _expected(rec, ids, expect)):
        text[i] = NO_CALLBACK
    for i in np.flatnonzero(got & ~has_record):
        text[i] = NO_RECORD
    repeated = cb_ids[deliveries.reindex(cb_ids).to_numpy() > 1]
    outcomes = _outcomes(cb[cb["task_id"].isin(repeated)])
    for i in np.flatnonzero(got & has_record):
        problems = _problems(first.loc[ids[i]], rec.loc[ids[i]], outcomes.get(ids[i], set()))
        agrees[i] = not problems
        text[i] = "; ".join(problems) if problems else pd.NA

    out = pd.DataFrame(
        {
            "task_id": pd.array(ids, dtype=_STR),
            "has_record": pd.array(has_record, dtype="boolean"),
            "status": pd.Categorical(status.astype(object), dtype=_STATUS),
            "callback_status": pd.Categorical(
                first["status"].reindex(ids).astype(object), dtype=_STATUS
            ),
            "callback_received": pd.array(got, dtype="boolean"),
            "deliveries": pd.array(deliveries.reindex(ids).fillna(0).to_numpy(), dtype="Int64"),
            "first_delay_s": delay.to_numpy(dtype="float64", na_value=np.nan),
            "agrees": agrees,
            "disagreement": pd.array(text, dtype=_STR),
        }
    )
    return out
