"""What SQL text differs between the engines (a :class:`Dialect`), and a value as a SQL
literal: the parts of a query both the query builder and the runs' SQL write (private)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import schema


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL engines."""

    quote: str  # identifier quote
    micros: str  # epoch µs of a timestamp: a format string with {}
    string: str  # the string type
    null_eq: str  # null-safe equality: a format string with {a} and {b}
    hash: str  # a 64-bit hash of several values: a format string with {}
    join: str  # a list's items joined by the unit separator (U+001F): a format string with {}
    #: the last non-null value of a window's frame: a format string with {}
    last_seen: str
    #: the runs ordered by task id only where a time ties, told by a join of the near
    #: times (DuckDB: cheaper than every id in the sort), or by every row's id (Spark:
    #: that join costs it more than the sort)
    tie_join: bool


def lit(value: object) -> str:
    """``value`` as a SQL literal (strings quoted and escaped)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | np.integer):
        return str(int(value))
    text = str(value).replace("\\", "\\\\").replace("'", "''")
    return f"'{text}'"


def arrow_type(column: str) -> pa.DataType:
    """The Arrow type the frame gives ``column`` (string for a column it does not know)."""
    dtype = schema.dtypes().get(column)
    if isinstance(dtype, pd.ArrowDtype):
        return dtype.pyarrow_dtype
    return pa.string()
