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
from typing import Any

import numpy as np
import pandas as pd

from ..engine import Engine, resolve
from ..engine import _plan as p
from ..engine._pandas import row_codes, run_flags
from ..errors import InputError
from ..pricing import (
    DURATION_COLUMNS,
    NOT_BILLED,
    REPORTED_COLUMN,
    PricesLike,
    PriceTable,
    load_prices,
    usd_rate,
    with_credits,
)
from ..pricing import KEYS as PRICE_KEYS
from ..schema import MEDIA_RETENTION, Status
from ._groups import By
from ._groups import now_utc as _now_utc
from ._keys import Groups, group_index, plan_keys

__all__ = [
    "REQUEST_COLUMNS",
    "cost_summary",
    "duplicate_submissions",
    "expiring",
    "worst_duplicates",
]

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
def _request_names(columns: Iterable[str]) -> list[str]:
    """The columns that make two submissions the same request, of those present."""
    present = list(columns)
    names = [c for c in REQUEST_COLUMNS if c in present]
    return names + [c for c in DURATION_COLUMNS if c in present][:1]


def _request_codes(df: pd.DataFrame) -> np.ndarray:
    """One integer per row, equal for rows whose request columns are all equal (NA = NA)."""
    return row_codes(df, _request_names(df.columns))


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
    failed = df["status"].isin(NOT_BILLED).to_numpy(dtype=bool, na_value=False)
    p = pos[order]
    repeat, first, wasted = run_flags(group[order], t[order], window.value, ~failed[p])
    return {"extra": p[repeat], "first": p[first][repeat], "wasted": wasted[repeat]}


def _candidates(eng: Engine, span: pd.Timedelta, more: Iterable[str] = ()) -> pd.DataFrame:
    """The rows that may be duplicate submissions (an identical request within ``span``),
    in creation order: a bounded set the exact rule (:func:`_runs`) then reads."""
    columns = eng.columns()
    names = _request_names(columns)
    has_request = p.Any(tuple(p.NotNull(c) for c in ("prompt", "parent_task_id") if c in columns))
    wanted = list(dict.fromkeys([*names, *_DUP_COLUMNS, *DURATION_COLUMNS, *more]))
    within = -(-span.value // 1000)  # µs, rounded up: a superset
    rows = eng.repeats(names, within, has_request, wanted)
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
    ``delay_s`` (seconds after the first), ``model``, ``status``, ``credits`` (of this
    submission) and ``wasted_credits`` (its credits when an earlier submission of the run
    did not fail, else 0). Rows in creation order (ties: by task id). Requests an hour
    apart are not duplicates at the default window of 15 minutes. ``df`` is the typed
    frame or any source :func:`veo_notebook.engine.resolve` takes: the engine finds the
    candidate rows, the rule above runs on them.

    >>> duplicate_submissions(df, window="15min")["wasted_credits"].sum()  # doctest: +SKIP
    """
    span = _timedelta(window, "window")
    eng = resolve(df, engine)
    priced = _priced(_candidates(eng, span), prices, bill_failed)
    return _duplicates(priced, span)


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
    span = _timedelta(window, "window")
    eng = resolve(df, engine)
    columns = eng.columns()
    has_request = p.Any(tuple(p.NotNull(c) for c in ("prompt", "parent_task_id") if c in columns))
    weight = _row_credit(eng, prices, bill_failed)
    shown = ("task_id", "create_time", "model", "status")
    got = eng.worst_extras(
        _request_names(columns),
        span.value // 1000,
        has_request,
        p.Not(p.In("status", NOT_BILLED)),
        weight,
        shown,
        int(n),
    )
    t = _ns(got["create_time"]) if len(got) else np.zeros(0, dtype=np.int64)
    first = got["veo_first_t"].to_numpy(dtype=np.int64)
    out = pd.DataFrame(
        {
            "task_id": got["task_id"].reset_index(drop=True),
            "first_task_id": got["veo_first_id"]
            .astype(got["task_id"].dtype)
            .reset_index(drop=True),
            "create_time": pd.Series(t.view("datetime64[ns]")).dt.tz_localize("UTC"),
            "delay_s": (t // 1000 - first) / 1e6,
            "model": got["model"].reset_index(drop=True) if "model" in got else None,
            "status": got["status"].reset_index(drop=True),
            "credits": got["veo_credit"].to_numpy(dtype=float, na_value=np.nan),
            "wasted_credits": got["veo_wasted"].to_numpy(dtype=float),
        }
    )
    return out


def _row_credit(eng: Engine, prices: PricesLike, bill_failed: bool) -> p.Credit:
    """A row's credits as :func:`_priced` gives them, for the engine: the source's own
    ``credits``, else reported where told and the price table's estimate per distinct
    (price keys, status) — the few combinations the source holds."""
    columns = eng.columns()
    if prices is None and not bill_failed and "credits" in columns:
        return p.Credit(column="credits")
    price_keys = _price_keys(columns)
    agg = eng.grouped((), _price_measures(columns), extra=(*price_keys, "status"))
    table = load_prices(prices) if prices is not None else None
    estimate = _estimates(agg, price_keys, table, bill_failed)
    names = (*price_keys, "status")
    combos = agg[[f"x{i}" for i in range(len(names))]].itertuples(index=False, name=None)
    pairs = tuple((tuple(v), float(x)) for v, x in zip(combos, estimate, strict=True))
    reported = REPORTED_COLUMN if REPORTED_COLUMN in columns else None
    return p.Credit(keys=names, table=pairs, column=reported)


def _duplicates(priced: pd.DataFrame, span: pd.Timedelta) -> pd.DataFrame:
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
    ``duplicates`` (extra submissions, see :func:`duplicate_submissions` with
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
    span = _timedelta(window, "window")
    table = None if prices is None else load_prices(prices, usd_per_credit)
    rate = usd_rate(usd_per_credit) if table is None else table.usd_per_credit
    eng = resolve(df, engine)
    keys, names = plan_keys(eng, by, freq)
    success = p.In("status", (Status.SUCCESS.value,))
    counted = eng.grouped(keys, {"n": p.Count(), "succeeded": p.Count(success)})
    groups = group_index(counted, keys, names)
    own = table is None and not bill_failed and "credits" in eng.columns()
    sums = (_own_credits if own else _priced_credits)(eng, keys, groups, table, bill_failed)
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
    out["duplicates"], out["wasted_credits"] = _wasted_by_group(
        eng, keys, groups, span, table, bill_failed, own
    )
    if rate is not None:
        out["usd"] = out["credits"] * rate
        out["usd_per_success"] = out["credits_per_success"] * rate
        out["wasted_usd"] = out["wasted_credits"] * rate
    return out


def _spread(groups: Groups, agg: pd.DataFrame, n_keys: int, column: str | np.ndarray):
    values = agg[column].to_numpy(dtype=float) if isinstance(column, str) else column
    return np.bincount(groups.positions(agg, n_keys), weights=values, minlength=len(groups))


def _own_credits(eng: Engine, keys: p.Keys, groups: Groups, table: object, bill: bool):
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
    reported = _spread(groups, agg, n, "reported") if "reported" in agg else np.zeros(len(groups))
    return {
        "spent": _spread(groups, agg, n, "credits"),
        "unpriced": _spread(groups, agg, n, "unpriced").astype(np.int64),
        "reported": reported,
        "priced_ok": _spread(groups, agg, n, "priced_ok").astype(np.int64),
        "spent_ok": _spread(groups, agg, n, "spent_ok"),
    }


def _price_keys(columns: list[str]) -> list[str]:
    keys = [c for c in PRICE_KEYS[:3] if c in columns]
    return keys + [c for c in DURATION_COLUMNS if c in columns][:1]


def _price_measures(columns: list[str]) -> dict[str, p.Measure]:
    """What pricing a combination needs: its rows, and those with reported credits."""
    measures: dict[str, p.Measure] = {"rows": p.Count()}
    if REPORTED_COLUMN in columns:
        measures["reported_n"] = p.Count(p.NotNull(REPORTED_COLUMN))
        measures["reported_sum"] = p.Sum(REPORTED_COLUMN)
    return measures


def _estimates(
    agg: pd.DataFrame, price_keys: list[str], table: PriceTable | None, bill_failed: bool
) -> np.ndarray:
    """The table's credits for each (price keys ``x0..``, status) row of ``agg`` (failed:
    0 unless billed; NaN where no price applies)."""
    combos = pd.DataFrame({c: agg[f"x{i}"].tolist() for i, c in enumerate(price_keys)})
    estimate = (table or load_prices(None)).lookup(combos)
    if not bill_failed:
        status = agg[f"x{len(price_keys)}"]
        estimate[status.isin(NOT_BILLED).to_numpy(dtype=bool)] = 0.0
    return estimate


def _combo_credits(
    agg: pd.DataFrame, price_keys: list[str], table: PriceTable | None, bill_failed: bool
) -> dict[str, np.ndarray]:
    """Credits of each (price keys ``x0..``, status) row of ``agg``, as :func:`with_credits`
    prices a row: reported where told, else the table's estimate (failed: 0 unless billed)."""
    estimate = _estimates(agg, price_keys, table, bill_failed)
    status = agg[f"x{len(price_keys)}"]
    rows = agg["rows"].to_numpy(dtype=np.int64)
    told = agg["reported_n"].to_numpy(dtype=np.int64) if "reported_n" in agg else 0 * rows
    told_sum = agg["reported_sum"].to_numpy(dtype=float) if "reported_n" in agg else 0.0 * rows
    rest = rows - told
    priced = ~np.isnan(estimate)
    credits = told_sum + np.where(priced & (rest > 0), rest * np.nan_to_num(estimate), 0.0)
    return {
        "credits": credits,
        "told": told,
        "told_sum": told_sum,
        "rest": rest,
        "priced": priced,
        "ok": status.eq(Status.SUCCESS.value).to_numpy(dtype=bool),
    }


def _priced_credits(
    eng: Engine, keys: p.Keys, groups: Groups, table: PriceTable | None, bill_failed: bool
):
    """Credits per group: reported where the source has them, else the price table's
    estimate for each distinct (price keys, status) — as :func:`with_credits` prices a row."""
    columns = eng.columns()
    price_keys = _price_keys(columns)
    agg = eng.grouped(keys, _price_measures(columns), extra=(*price_keys, "status"))
    c = _combo_credits(agg, price_keys, table, bill_failed)
    credits, told, rest, priced, ok = c["credits"], c["told"], c["rest"], c["priced"], c["ok"]
    n = len(keys)
    priced_rows = told + np.where(priced, rest, 0)
    return {
        "spent": _spread(groups, agg, n, credits),
        "unpriced": _spread(groups, agg, n, np.where(priced, 0, rest).astype(float)).astype(
            np.int64
        ),
        "reported": _spread(groups, agg, n, c["told_sum"]),
        "priced_ok": _spread(groups, agg, n, np.where(ok, priced_rows, 0).astype(float)).astype(
            np.int64
        ),
        "spent_ok": _spread(groups, agg, n, np.where(ok, credits, 0.0)),
    }


def _wasted_by_group(
    eng: Engine,
    keys: p.Keys,
    groups: Groups,
    span: pd.Timedelta,
    table: PriceTable | None,
    bill_failed: bool,
    own: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Extra submissions and the credits they wasted, per group: the engine counts the
    extras (and prices' combinations) per group and whether their run had an earlier
    submission that did not fail; the credits are priced here, as for the totals."""
    columns = eng.columns()
    has_request = p.Any(tuple(p.NotNull(c) for c in ("prompt", "parent_task_id") if c in columns))
    ok = p.Not(p.In("status", NOT_BILLED))
    within = span.value // 1000  # µs: the frame's times are µs on every engine
    same = _request_names(columns)
    if own:
        measures: dict[str, p.Measure] = {"rows": p.Count(), "credits": p.Sum("credits")}
        agg = eng.extras(same, within, has_request, ok, keys, measures)
        credits = agg["credits"].to_numpy(dtype=float)
        n_extra = 0
    else:
        price_keys = _price_keys(columns)
        extra = (*price_keys, "status")
        agg = eng.extras(same, within, has_request, ok, keys, _price_measures(columns), extra)
        credits = _combo_credits(agg, price_keys, table, bill_failed)["credits"]
        n_extra = len(extra)
    wasted = agg[f"x{n_extra}"].astype(bool).to_numpy()
    n = len(keys)
    dups = _spread(groups, agg, n, "rows").astype(np.int64)
    return dups, _spread(groups, agg, n, np.where(wasted, credits, 0.0))


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
    span = _timedelta(within, "within")
    now_ts = pd.Timestamp.now(tz="UTC") if now is None else _now_utc(pd.DataFrame(), now)
    eng = resolve(df, engine)
    cutoff = (now_ts + span - MEDIA_RETENTION).value // 1000 + 1  # µs, a superset
    where = p.All((p.In("status", (Status.SUCCESS.value,)), p.TimeBefore("complete_time", cutoff)))
    shown = ("task_id", "model", "task_type", "video_url")
    cols = [c for c in shown if c in eng.columns()]
    done = eng.rows([*cols, "complete_time"], where)
    done = done.sort_values("task_id", kind="stable")  # one order, whatever the engine's
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
