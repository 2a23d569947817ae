"""Duplicate submissions: requests made again within a window, and the credits wasted.

* **duplicate submission** — a task whose request (prompt, model, generation type,
  aspect ratio, image URLs, seeds, duration where the frame has it, parent task and task
  type) repeats an earlier one within ``window`` of the previous identical submission: a
  client that timed out and re-submitted. A run of identical requests, each within the
  window of the one before, is one intended request; every submission after the first is
  an extra. Its credits are **wasted** when an earlier submission of the run did not fail
  (it delivered, or is still generating), so a retry after a failure is not waste.

Over an engine the runs are found by the engine (:meth:`~veo_notebook.engine.Engine.
extras` counts them per group for :func:`~veo_notebook.analysis.cost_summary`,
:meth:`~veo_notebook.engine.Engine.worst_extras` lists the worst); on a frame, by
:func:`~veo_notebook.engine._pandas.run_flags`, the same rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..engine import Engine, resolve
from ..engine import _plan as p
from ..engine._pandas import row_codes, run_flags
from ..errors import InputError
from ..frame._request_gaps import REQUEST_COLUMNS, request_names
from ..frame._request_gaps import REQUEST_HINTS as _REQUEST_HINTS
from ..pricing import DURATION_COLUMNS, NOT_BILLED, PricesLike, PriceTable
from ._credits import combo_credits, price_keys, price_measures, priced, row_credit
from ._groups import span as _span
from ._keys import Groups

__all__ = [
    "DEFAULT_WINDOW",
    "REQUEST_COLUMNS",
    "duplicate_submissions",
    "wasted_by_group",
    "worst_duplicates",
]

DEFAULT_WINDOW = "15min"
Source = Any  # a DataFrame, a Parquet path/URL, a Store, a DuckDB relation, a Spark DataFrame

#: Columns a duplicate's row needs besides the request (credits, labels, the table).
_DUP_COLUMNS = (
    "task_id",
    "create_time",
    "status",
    "fetch_error",
    "credits",
    "credits_source",
    "credits_consumed",
    "resolution",
)


def _has_request(columns: list[str]) -> p.Cond:
    return p.Any(tuple(p.NotNull(c) for c in _REQUEST_HINTS if c in columns))


def _ns(times: pd.Series) -> np.ndarray:
    return times.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _runs(df: pd.DataFrame, window: pd.Timedelta) -> dict[str, np.ndarray]:
    """Positions of the extra submissions, their run's first position and whether wasted."""
    empty = np.zeros(0, dtype=np.intp)
    none = {"extra": empty, "first": empty, "wasted": np.zeros(0, dtype=bool)}
    if len(df) == 0 or "create_time" not in df.columns:
        return none
    request = np.zeros(len(df), dtype=bool)
    for col in _REQUEST_HINTS:
        if col in df.columns:
            request |= df[col].notna().to_numpy(dtype=bool)
    pos = np.flatnonzero(df["create_time"].notna().to_numpy(dtype=bool) & request)
    if len(pos) == 0:
        return none
    group = row_codes(df, request_names(df.columns))[pos]
    t = _ns(df["create_time"])[pos]
    order = np.lexsort((pos, t, group))
    failed = df["status"].isin(NOT_BILLED).to_numpy(dtype=bool, na_value=False)
    at = pos[order]
    repeat, first, wasted = run_flags(group[order], t[order], window.value, ~failed[at])
    return {"extra": at[repeat], "first": at[first][repeat], "wasted": wasted[repeat]}


def _candidates(eng: Engine, within: pd.Timedelta) -> pd.DataFrame:
    """The rows that may be duplicate submissions (an identical request within
    ``within``), in creation order: a bounded set the exact rule (:func:`_runs`) reads."""
    columns = eng.columns()
    names = request_names(columns)
    wanted = list(dict.fromkeys([*names, *_DUP_COLUMNS, *DURATION_COLUMNS]))
    us = -(-within.value // 1000)  # µs, rounded up: a superset
    rows = eng.repeats(names, us, _has_request(columns), wanted)
    return rows.sort_values(["create_time", "task_id"], kind="stable").reset_index(drop=True)


def duplicate_submissions(
    df: Source,
    window: str | pd.Timedelta = DEFAULT_WINDOW,
    *,
    prices: PricesLike = None,
    bill_failed: bool = False,
    engine: str | None = None,
) -> pd.DataFrame:
    """One row per extra submission of a request already made within ``window``.

    Columns: ``task_id``, ``first_task_id`` (the run's first submission), ``create_time``,
    ``delay_s`` (seconds after the first), ``model`` (when the source has one),
    ``status``, ``credits`` (of this submission) and ``wasted_credits`` (its credits when
    an earlier submission of the run did not fail, else 0). Rows in creation order (ties:
    by task id). Requests an hour apart are not duplicates at the default window of 15
    minutes. ``df`` is the typed frame or any source :func:`veo_notebook.engine.resolve`
    takes: the engine finds the candidate rows, the rule above runs on them.

    >>> duplicate_submissions(df, window="15min")["wasted_credits"].sum()  # doctest: +SKIP
    """
    within = _span(window, "window")
    eng = resolve(df, engine)
    rows = priced(_candidates(eng, within), prices, bill_failed)
    runs = _runs(rows, within)
    extra, first = runs["extra"], runs["first"]
    t = _ns(rows["create_time"]) if len(rows) else np.zeros(0, dtype=np.int64)
    credits = rows["credits"].to_numpy(dtype=float, na_value=np.nan)[extra]
    out = _table(
        rows["task_id"].take(extra),
        rows["task_id"].take(first),
        t[extra],
        (t[extra] - t[first]) / 1e9,
        rows.take(extra),
        credits,
        np.where(runs["wasted"], np.nan_to_num(credits), 0.0),
    )
    return out.sort_values(["create_time", "task_id"], kind="stable").reset_index(drop=True)


def worst_duplicates(
    df: Source,
    n: int,
    window: str | pd.Timedelta = DEFAULT_WINDOW,
    *,
    prices: PricesLike = None,
    bill_failed: bool = False,
    engine: str | None = None,
) -> pd.DataFrame:
    """The ``n`` rows of :func:`duplicate_submissions` that wasted the most credits (ties:
    in creation order), found by the engine however many duplicates there are: the same
    rows as ``duplicate_submissions(df).sort_values("wasted_credits", ascending=False,
    kind="stable").head(n)``. The credits of a row are priced per distinct (price keys,
    status), which the engine then looks up row by row.

    >>> worst_duplicates("history/", 20)["wasted_credits"].sum()  # doctest: +SKIP
    """
    within = _span(window, "window")
    if int(n) < 0:
        raise InputError(f"n: {n!r} is not a number of rows (0 or more)")
    eng = resolve(df, engine)
    columns = eng.columns()
    got = eng.worst_extras(
        request_names(columns),
        within.value // 1000,
        _has_request(columns),
        p.Not(p.In("status", NOT_BILLED)),
        row_credit(eng, prices, bill_failed),
        ("task_id", "create_time", "model", "status"),
        int(n),
    )
    t = _ns(got["create_time"]) if len(got) else np.zeros(0, dtype=np.int64)
    return _table(
        got["task_id"],
        got["veo_first_id"].astype(got["task_id"].dtype),
        t,
        (t // 1000 - got["veo_first_t"].to_numpy(dtype=np.int64)) / 1e6,
        got,
        got["veo_credit"].to_numpy(dtype=float, na_value=np.nan),
        got["veo_wasted"].to_numpy(dtype=float),
    )


def _table(
    task: pd.Series,
    first: pd.Series,
    t_ns: np.ndarray,
    delay_s: np.ndarray,
    rows: pd.DataFrame,
    credits: np.ndarray,
    wasted: np.ndarray,
) -> pd.DataFrame:
    """The table of extra submissions; ``rows`` (one per extra) give ``model`` and
    ``status``. No ``model`` column when the source has none (never a column of blanks)."""

    def plain(s: pd.Series) -> pd.Series:
        return s.reset_index(drop=True)

    out = {
        "task_id": plain(task),
        "first_task_id": plain(first),
        "create_time": pd.Series(t_ns.view("datetime64[ns]")).dt.tz_localize("UTC"),
        "delay_s": delay_s,
        **({"model": plain(rows["model"])} if "model" in rows.columns else {}),
        "status": plain(rows["status"]),
        "credits": credits,
        "wasted_credits": wasted,
    }
    return pd.DataFrame(out)


def wasted_by_group(
    eng: Engine,
    keys: p.Keys,
    groups: Groups,
    within: pd.Timedelta,
    table: PriceTable | None,
    bill_failed: bool,
    own: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Extra submissions and the credits they wasted, per group of ``groups`` (for
    :func:`~veo_notebook.analysis.cost_summary`): the engine counts the extras (and the
    price combinations) per group and whether their run had an earlier submission that
    did not fail; the credits are priced here, as for the totals (``own``: the source's
    own ``credits`` column)."""
    columns = eng.columns()
    ok = p.Not(p.In("status", NOT_BILLED))
    us = within.value // 1000  # the frame's times are µs on every engine
    same, where = request_names(columns), _has_request(columns)
    if own:
        measures: dict[str, p.Measure] = {"rows": p.Count(), "credits": p.Sum("credits")}
        agg = eng.extras(same, us, where, ok, keys, measures)
        credits = agg["credits"].to_numpy(dtype=float)
        n_extra = 0
    else:
        combo = price_keys(columns)
        extra = (*combo, "status")
        agg = eng.extras(same, us, where, ok, keys, price_measures(columns), extra)
        credits = combo_credits(agg, combo, table, bill_failed)["credits"]
        n_extra = len(extra)
    wasted = agg[f"x{n_extra}"].astype(bool).to_numpy()
    n = len(keys)
    dups = groups.spread(agg, n, "rows").astype(np.int64)
    return dups, groups.spread(agg, n, np.where(wasted, credits, 0.0))
