"""How a value reads to a person: the ONE vocabulary for missing values, numbers and intervals.

The report, the figures and the notebooks format through these functions, so a reader
never meets ``NaN``, ``<NA>``, ``None`` or ``nan%``:

* **unread** — a task whose record could not be read (``fetch_error`` set). Unread tasks
  are counted on their own line, never as a model or a task type.
* **n/a** — a field that does not apply; where the reason is known it is said instead
  (``upgrade task``: a 1080p / 4K upgrade has no model of its own).
* **unpriced** — credits no price applies to (a model the price table omits, an unread
  record): counted apart, never 0.
* an interval with a bound the sample cannot give reads ``≥ 182.0`` or ``≤ 95.0``; with
  neither bound, ``n/a (too few)``.

>>> from veo_notebook import fmt
>>> fmt.interval(188.7, 182.0, float("nan"))
'188.7 [≥ 182.0]'
>>> fmt.label(None)
'n/a'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from .schema import UNREAD, TaskType

__all__ = [
    "MISSING",
    "NOT_REACHED",
    "TOO_FEW",
    "UNPRICED",
    "UNREAD",
    "UPGRADE",
    "UPGRADE_TYPES",
    "group_column",
    "interval",
    "is_missing",
    "label",
    "labelled",
    "missing_labels",
    "num",
    "pct",
    "rate_interval",
    "readable",
    "seconds_format",
    "table",
    "task_rows",
    "unread_mask",
]

MISSING = "n/a"
UPGRADE = "upgrade task"
TOO_FEW = "n/a (too few)"
NOT_REACHED = "not reached"
UNPRICED = "unpriced"
#: Task types that upgrade another task's video and so have no model of their own.
UPGRADE_TYPES = frozenset({TaskType.P1080.value, TaskType.K4.value})
_SECONDS = "{:.1f}"


def is_missing(value: Any) -> bool:
    """Whether ``value`` is None, NaN, NaT or pandas' NA (a string never is)."""
    if value is None:
        return True
    if isinstance(value, str):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, arrays: present
        return False


def num(value: Any, fmt: str = _SECONDS, missing: str = MISSING) -> str:
    """A number as text; ``missing`` where there is none."""
    return missing if is_missing(value) else fmt.format(value)


#: (below this many seconds, decimals): a column of durations shows its smallest value
#: with two significant digits, so 0.06 s never reads "0 s" nor 1.0 s "1 s" beside it.
_SECONDS_DECIMALS = ((1.0, 2), (10.0, 1))


def seconds_format(values: Iterable[Any]) -> str:
    """One format for a column of seconds: enough decimals for its smallest value.

    >>> seconds_format([0.06, 1.0]), seconds_format([3.5, 240.0]), seconds_format([98, 240.9])
    ('{:,.2f}', '{:,.1f}', '{:,.0f}')
    """
    present = [abs(float(v)) for v in values if not is_missing(v) and float(v) != 0]
    smallest = min(present, default=float("inf"))
    for below, decimals in _SECONDS_DECIMALS:
        if smallest < below:
            return f"{{:,.{decimals}f}}"
    return "{:,.0f}"


def pct(value: Any, digits: int = 1, missing: str = MISSING) -> str:
    """A share in [0, 1] as a percentage (``0.052`` → ``5.2%``)."""
    return missing if is_missing(value) else f"{value * 100:.{digits}f}%"


def interval(
    value: Any,
    lo: Any,
    hi: Any,
    fmt: str = _SECONDS,
    *,
    unit: str = "",
    missing: str = MISSING,
) -> str:
    """``value [lo–hi]``; a bound the data cannot give becomes ``≥ lo`` / ``≤ hi``.

    ``missing`` is what a missing ``value`` reads as (say why when you know:
    :data:`NOT_REACHED`, :data:`TOO_FEW`). With a missing value and a lower bound the
    text is ``missing [≥ lo]``: what is known is still said.
    """
    f = (lambda v: fmt.format(v) + unit) if unit else fmt.format
    has_lo, has_hi = not is_missing(lo), not is_missing(hi)
    if has_lo and has_hi:
        bounds = f"{f(lo)}–{f(hi)}"
    elif has_lo:
        bounds = f"≥ {f(lo)}"
    elif has_hi:
        bounds = f"≤ {f(hi)}"
    else:
        bounds = TOO_FEW
    if is_missing(value):
        return missing if not (has_lo or has_hi) else f"{missing} [{bounds}]"
    return f"{f(value)} [{bounds}]"


def rate_interval(rate: Any, lo: Any, hi: Any, missing: str = MISSING) -> str:
    """A share with its interval, in percent: ``5.2% [3.5–7.7%]``."""
    if is_missing(rate):
        return missing
    text = interval(rate, lo, hi, "{:.1%}")
    if not (is_missing(lo) or is_missing(hi)):  # 5.2% [3.5–7.7%], not [3.5%–7.7%]
        text = text.replace("%–", "–", 1)
    return text


def label(key: Any, missing: str = MISSING) -> str:
    """A group key as text: tuples joined by `` / ``, times as ``YYYY-MM-DD HH:MM``."""
    if isinstance(key, tuple):
        return " / ".join(label(k, missing) for k in key)
    if is_missing(key):
        return missing
    if isinstance(key, pd.Timestamp):
        return key.strftime("%Y-%m-%d %H:%M")
    if isinstance(key, float | np.floating) and float(key).is_integer():
        return str(int(key))
    return str(key)


def unread_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows whose record could not be read (``fetch_error`` set)."""
    if "fetch_error" not in df.columns:
        return np.zeros(len(df), dtype=bool)
    return df["fetch_error"].notna().to_numpy(dtype=bool)


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """The rows whose record was read (unread tasks are reported apart, not as a group).

    ``df`` itself (not a copy) when every record was read.
    """
    unread = unread_mask(df)
    return df[~unread] if unread.any() else df


def missing_labels(df: pd.DataFrame, column: str, rows: np.ndarray) -> np.ndarray:
    """The label of each missing ``column`` cell at positions ``rows`` of ``df`` (the one
    rule): ``unread`` (record not read), ``upgrade task`` (the model of a 1080p/4k
    upgrade), else ``n/a``. Only those rows are looked at."""
    fill = np.full(len(rows), MISSING, dtype=object)
    if column == "model" and "task_type" in df.columns:
        kind = df["task_type"].iloc[rows]  # isin on the categorical: no text conversion
        fill[kind.isin(list(UPGRADE_TYPES)).to_numpy(dtype=bool)] = UPGRADE
    fill[unread_mask(df)[rows]] = UNREAD
    return fill


def group_column(df: pd.DataFrame, column: str, values: pd.Series | None = None) -> pd.Series:
    """``df[column]`` as display labels: missing → ``upgrade task`` (model of an upgrade),
    ``unread`` (record not read), else ``n/a`` (:func:`missing_labels`).

    ``values`` replaces ``df[column]`` (a key derived from it, e.g. a time bucket): its
    missing cells are labelled by the same rule; present values keep their type.

    >>> group_column(df, "model").value_counts()              # doctest: +SKIP
    """
    values = df[column] if values is None else values
    text = isinstance(values.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(
        values.dtype
    )
    if text:
        values = values.astype("string")
    values = values.rename(column)
    missing = values.isna().to_numpy(dtype=bool)
    if not missing.any():
        return values
    rows = np.flatnonzero(missing)
    out = values.copy() if text else values.astype(object)
    out.iloc[rows] = missing_labels(df, column, rows)  # only the missing cells are touched
    return out


def labelled(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """The read rows with ``columns`` as display labels: ready to group by.

    >>> veo.latency_summary(labelled(df, "model"), by="model")  # doctest: +SKIP
    """
    read = readable(df)
    return read.assign(**{c: group_column(read, c) for c in columns})


def task_rows(df: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Task rows for people: a missing cell reads ``unread`` in an unread row, else as
    :func:`group_column` and :func:`table` say (``upgrade task``, ``n/a``).

    >>> task_rows(df.head(8), ["task_id", "status", "model"])  # doctest: +SKIP
    """
    cols = list(df.columns if columns is None else columns)
    out = df[cols].copy()
    for c in cols:
        if isinstance(out[c].dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(
            out[c].dtype
        ):
            out[c] = group_column(df, c)
    unread = unread_mask(df)
    shown = table(out)
    if unread.any():
        missing = out.isna().to_numpy() & unread[:, None]
        shown = shown.mask(missing, UNREAD)
    return shown


def _cell(value: Any) -> Any:
    if isinstance(value, str | int | np.integer):
        return value
    if is_missing(value):
        return MISSING
    if isinstance(value, float | np.floating):
        return np.format_float_positional(float(value), precision=3, trim="-")
    return value


def table(df: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A copy of ``df`` for people: missing cells and index labels read ``n/a``.

    >>> table(veo.latency_summary(df, by="model").round(1))   # doctest: +SKIP
    """
    out = df if columns is None else df[list(columns)]
    out = out.astype(object).map(_cell) if len(out.columns) else out.copy()
    if isinstance(out.index, pd.MultiIndex):
        out.index = pd.MultiIndex.from_tuples(
            [tuple(label(k) for k in key) for key in out.index], names=out.index.names
        )
    elif not isinstance(out.index, pd.RangeIndex):
        out.index = pd.Index([label(k) for k in out.index], name=out.index.name)
    return out
