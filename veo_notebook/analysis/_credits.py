"""The credits of rows and of the combinations an engine counted (private): one pricing
for :func:`~veo_notebook.analysis.cost_summary` and the duplicate submissions.

A row's credits are what :func:`veo_notebook.pricing.with_credits` gives it: reported
where the API said so, else the price table's estimate (failed tasks 0 unless
``bill_failed``); a source with its own ``credits`` column and no ``prices`` keeps it.
An engine counts rows per distinct (price keys, status), so the table is looked up for
those few combinations only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine import Engine
from ..engine import _plan as p
from ..pricing import (
    DURATION_COLUMNS,
    NOT_BILLED,
    REPORTED_COLUMN,
    PricesLike,
    PriceTable,
    load_prices,
    with_credits,
)
from ..pricing import KEYS as PRICE_KEYS
from ..schema import Status

__all__ = ["combo_credits", "price_keys", "price_measures", "priced", "row_credit"]


def priced(df: pd.DataFrame, prices: PricesLike, bill_failed: bool) -> pd.DataFrame:
    """``df`` with a ``credits`` column (its own, when no ``prices`` are given)."""
    if prices is None and not bill_failed and "credits" in df.columns:
        return df
    return with_credits(df, prices, bill_failed)


def price_keys(columns: list[str]) -> list[str]:
    """The columns a price depends on, of those present."""
    keys = [c for c in PRICE_KEYS[:3] if c in columns]
    return keys + [c for c in DURATION_COLUMNS if c in columns][:1]


def price_measures(columns: list[str]) -> dict[str, p.Measure]:
    """What pricing a combination needs: its rows, and those with reported credits."""
    measures: dict[str, p.Measure] = {"rows": p.Count()}
    if REPORTED_COLUMN in columns:
        measures["reported_n"] = p.Count(p.NotNull(REPORTED_COLUMN))
        measures["reported_sum"] = p.Sum(REPORTED_COLUMN)
    return measures


def _estimates(
    agg: pd.DataFrame, keys: list[str], table: PriceTable | None, bill_failed: bool
) -> np.ndarray:
    """The table's credits for each (price keys ``x0..``, status) row of ``agg`` (failed:
    0 unless billed; NaN where no price applies)."""
    combos = pd.DataFrame({c: agg[f"x{i}"].tolist() for i, c in enumerate(keys)})
    estimate = (table or load_prices(None)).lookup(combos)
    if not bill_failed:
        status = agg[f"x{len(keys)}"]
        estimate[status.isin(NOT_BILLED).to_numpy(dtype=bool)] = 0.0
    return estimate


def combo_credits(
    agg: pd.DataFrame, keys: list[str], table: PriceTable | None, bill_failed: bool
) -> dict[str, np.ndarray]:
    """Credits of each (price keys ``x0..``, status) row of ``agg``, as :func:`with_credits`
    prices a row: reported where told, else the table's estimate (failed: 0 unless billed)."""
    estimate = _estimates(agg, keys, table, bill_failed)
    status = agg[f"x{len(keys)}"]
    rows = agg["rows"].to_numpy(dtype=np.int64)
    told = agg["reported_n"].to_numpy(dtype=np.int64) if "reported_n" in agg else 0 * rows
    told_sum = agg["reported_sum"].to_numpy(dtype=float) if "reported_n" in agg else 0.0 * rows
    rest = rows - told
    has_price = ~np.isnan(estimate)
    credits = told_sum + np.where(has_price & (rest > 0), rest * np.nan_to_num(estimate), 0.0)
    return {
        "credits": credits,
        "told": told,
        "told_sum": told_sum,
        "rest": rest,
        "priced": has_price,
        "ok": status.eq(Status.SUCCESS.value).to_numpy(dtype=bool),
    }


def row_credit(eng: Engine, prices: PricesLike, bill_failed: bool) -> p.Credit:
    """A row's credits as :func:`priced` gives them, for the engine: the source's own
    ``credits``, else reported where told and the price table's estimate per distinct
    (price keys, status) — the few combinations the source holds."""
    columns = eng.columns()
    if prices is None and not bill_failed and "credits" in columns:
        return p.Credit(column="credits")
    keys = price_keys(columns)
    agg = eng.grouped((), price_measures(columns), extra=(*keys, "status"))
    table = load_prices(prices) if prices is not None else None
    estimate = _estimates(agg, keys, table, bill_failed)
    names = (*keys, "status")
    combos = agg[[f"x{i}" for i in range(len(names))]].itertuples(index=False, name=None)
    pairs = tuple((tuple(v), float(x)) for v, x in zip(combos, estimate, strict=True))
    reported = REPORTED_COLUMN if REPORTED_COLUMN in columns else None
    return p.Credit(keys=names, table=pairs, column=reported)
