"""What every section formats the same way: counts, seconds, times, spans in words, tables.

Values go through :mod:`veo_notebook.fmt` (``n/a``, ``unread``, never NaN); this module
adds the report's own choices (whole seconds, the two time formats, a table's index
as columns) so that no section writes them again.
"""

from __future__ import annotations

import pandas as pd

from .. import fmt
from ..analysis._kernels import CONFIDENCE

__all__ = [
    "CONFIDENCE",
    "LISTED",
    "SECONDS",
    "TABLE_TIME",
    "TEXT_TIME",
    "cell",
    "count",
    "credits",
    "day",
    "flat",
    "generated",
    "in_words",
    "seconds",
    "span",
    "table_times",
]

SECONDS = "{:.0f}"  # the API's times are whole seconds
LISTED = 20  # rows of a list of tasks (stuck, duplicates, at risk, problems)
TEXT_TIME = "%d %b %Y %H:%M"  # a time in a sentence
TABLE_TIME = "%Y-%m-%d %H:%M"  # a time in a table cell (sorts as text)
_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))


def day(ts: pd.Timestamp) -> str:
    """A time in a sentence (UTC, to the minute)."""
    return f"{ts:{TEXT_TIME}}"


def table_times(times: pd.Series) -> pd.Series:
    """Times as table cells (UTC, to the minute)."""
    return times.dt.strftime(TABLE_TIME)


def span(times: pd.Series) -> str:
    """``first – last UTC`` of some times, or a sentence when there are none."""
    times = times.dropna()
    if not len(times):
        return "no creation times"
    return f"{day(times.min())} – {day(times.max())} UTC"


def in_words(length: str | pd.Timedelta) -> str:
    """A Timedelta in words, in its largest whole unit: ``"30min"`` → ``"30 minutes"``.

    The prose names the constants it describes through this, so that changing
    ``STUCK_AFTER`` changes the sentence too.
    """
    total = pd.Timedelta(length).total_seconds()
    for unit, size in _UNITS:
        n, rest = divmod(total, size)
        if n and not rest:
            return f"{n:.0f} {unit}{'s' * (n != 1)}"
    return f"{total:g} seconds"


def flat(frame: pd.DataFrame, index_name: str | None = None) -> pd.DataFrame:
    """Display cells, the index as ordinary column(s) (one header row per table)."""
    out = fmt.table(frame)
    if not isinstance(out.index, pd.RangeIndex):
        if index_name:
            out.index.name = index_name
        # an unnamed whole-number index is the rows' places in a bigger frame (a listing
        # of tasks, sorted): not data, and over an engine only the order it came back in
        places = out.index.name is None and pd.api.types.is_integer_dtype(frame.index)
        out = out.reset_index(drop=places)
    return out


def count(n: object) -> str:
    """A whole number with thousands separators."""
    return f"{int(n):,}"  # type: ignore[call-overload]


def credits(value: object, missing: str = fmt.MISSING) -> str:
    """Credits, whole, with thousands separators (``missing`` when there are none)."""
    return fmt.num(value, "{:,.0f}", missing)


def seconds(v: tuple, missing: str = fmt.MISSING) -> str:
    """``(value, lo, hi)`` in whole seconds with its interval."""
    return fmt.interval(v[0], v[1], v[2], SECONDS, missing=missing)


def cell(value: object) -> str:
    """A table cell as text: ``n/a`` for a missing value (renderers never show NaN)."""
    return fmt.MISSING if fmt.is_missing(value) else str(value)


def generated() -> str:
    """The line under the title: when and by what the report was written."""
    return f"Generated {pd.Timestamp.now(tz='UTC'):{TABLE_TIME}} UTC by veo-notebook."
