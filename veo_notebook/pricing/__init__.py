"""What a task cost: the dated price table and how a task's credits are found.

No answer of record-info carries a price, and prices change, so a cost is one of:

* **reported** — the API said so (``creditsConsumed`` of a 4K callback, in the frame's
  ``credits_consumed`` column where the frame has it);
* **estimated** — from a dated, sourced price table the user can replace
  (:func:`default_prices` is shipped in ``prices.csv``: credits by model × task type ×
  resolution × duration, a missing key a wildcard, the most specific row winning);
* **NA** — no row of the table applies (an unread record, an unknown model or task type).

Failed tasks (``failed``, ``generation_failed``) cost 0 — reported as not billed —
unless ``bill_failed=True``. Tasks still generating are estimated at their price: the
credits are committed once a task is accepted.

:func:`with_credits` adds the ``credits`` and ``credits_source`` columns to a copy of
the frame; the analysis functions (:func:`veo_notebook.cost_summary`, …) call it. The
columns are not part of the parsed frame (:mod:`veo_notebook.schema`) on purpose: the
frame is what the API answered, cached and exported as such; a price is a choice of the
reader, made again whenever the table changes.

>>> import veo_notebook as veo
>>> priced = veo.with_credits(df)                              # doctest: +SKIP
>>> priced.groupby("model")["credits"].sum()                   # doctest: +SKIP
>>> veo.with_credits(df, prices={"veo3_fast": 55, "veo3": 240})  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import FAILED_STATUSES
from ._table import (
    DURATION_COLUMNS,
    KEYS,
    PricesLike,
    PriceTable,
    default_prices,
    load_prices,
    usd_rate,
)

__all__ = [
    "CREDIT_SOURCES",
    "DURATION_COLUMNS",
    "KEYS",
    "NOT_BILLED",
    "REPORTED_COLUMN",
    "PriceTable",
    "default_prices",
    "load_prices",
    "usd_rate",
    "with_credits",
]

#: The frame column holding the credits the API reported (``creditsConsumed``), if any.
REPORTED_COLUMN = "credits_consumed"
#: Values of ``credits_source`` (NA where no price applies).
CREDIT_SOURCES = ("reported", "estimated")
#: Statuses reported as not billed (they cost 0 unless ``bill_failed=True``).
NOT_BILLED = tuple(sorted(FAILED_STATUSES))


def with_credits(
    df: pd.DataFrame, prices: PricesLike = None, bill_failed: bool = False
) -> pd.DataFrame:
    """A copy of ``df`` with ``credits`` (float) and ``credits_source`` (category).

    ``credits`` is the reported figure where the frame has one, else the estimate from
    ``prices`` (see :func:`load_prices` for what it accepts; default: the shipped
    table), 0 for failed tasks unless ``bill_failed``; NaN where no price applies.
    ``credits_source`` says ``reported`` / ``estimated`` (NA with NaN credits).

    >>> with_credits(df, prices={"veo3_fast": 60})[["credits", "credits_source"]]  # doctest: +SKIP
    """
    table = load_prices(prices)
    estimate = table.lookup(df)
    if not bill_failed and "status" in df.columns:
        failed = df["status"].isin(NOT_BILLED).to_numpy(dtype=bool, na_value=False)
        estimate[failed] = 0.0
    if REPORTED_COLUMN in df.columns:
        reported = pd.to_numeric(df[REPORTED_COLUMN], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
    else:
        reported = np.full(len(df), np.nan)
    is_reported = ~np.isnan(reported)
    credits = np.where(is_reported, reported, estimate)
    codes = np.where(is_reported, 0, np.where(np.isnan(credits), -1, 1)).astype(np.int8)
    source = pd.Categorical.from_codes(codes, categories=list(CREDIT_SOURCES))
    return df.assign(
        credits=pd.Series(credits, index=df.index, dtype="float64"),
        credits_source=pd.Series(source, index=df.index),
    )
