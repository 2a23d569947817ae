"""The typed frame's on-disk Arrow form: ONE rule for every Parquet file the toolkit writes.

Every reader opens what this makes as it is: ``pandas.read_parquet``, Dask, Spark,
DuckDB, Polars and pyarrow. Three choices make it so:

* **Times in microseconds, UTC** (``timestamp[us, tz=UTC]``): Spark reads micro- and
  milliseconds only (``TIMESTAMP(NANOS)`` is ``PARQUET_TYPE_ILLEGAL`` to it). The frame's
  times carry no finer digits (the parser rounds to the microsecond); a finer digit in a
  frame made elsewhere is dropped on write.
* **pandas metadata a pandas can rebuild**: pyarrow records a list column's dtype as
  ``list<item: string>[pyarrow]``, a string no pandas parses back (``TypeError: data type
  ... not understood``); such columns are recorded as ``object`` instead, so pandas and
  Dask give them as lists while every other column keeps its nullable dtype.
* **No null partition**: a hive dataset's row without a value for the partition column (a
  row without a creation time under ``create_date``: an unread record, a fetch error)
  goes to ``<column>=none`` (:data:`NO_VALUE`), not to Hive's
  ``__HIVE_DEFAULT_PARTITION__``, which pandas and Dask cannot read (pyarrow reads it as
  a null in a dictionary, and cannot unify those).
* **Our two keys** (``veo_notebook.schema_version``, ``veo_notebook.version``) beside it.

:func:`to_frame` turns such a table back into the exact typed frame (dtypes included).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import schema
from .._version import __version__
from ._read import frame_pool

__all__ = [
    "KEY_SCHEMA",
    "KEY_VERSION",
    "NO_VALUE",
    "TIME_TYPE",
    "day_of",
    "partition_values",
    "to_frame",
    "to_table",
    "without",
    "write_options",
]

KEY_SCHEMA = b"veo_notebook.schema_version"
KEY_VERSION = b"veo_notebook.version"
_PANDAS = b"pandas"
#: every time column on disk: what Spark, DuckDB, Polars and pandas all read
TIME_TYPE = pa.timestamp("us", tz="UTC")
_PANDAS_TIME = "datetime64[us]"
#: the compression of every file (small files, quick to read)
COMPRESSION = "zstd"
#: rows per row group
ROW_GROUP_ROWS = 65_536
#: columns with few distinct values, dictionary-encoded; the others (ids, prompts, URLs,
#: JSON texts) are plain-encoded: a dictionary there only costs time to build and to read
DICTIONARY_COLUMNS = frozenset(
    {
        "status",
        "task_type",
        "success_flag",
        "error_code",
        "error_message",
        "model",
        "aspect_ratio",
        "generation_type",
        "duration",
        "resolution",
        "fallback",
        "watermark",
        "callback_url",
        "enable_translation",
        "has_audio",
        "fetch_error",
        "parse_note",
    }
)


def write_options(table_schema: pa.Schema) -> dict[str, object]:
    """Keyword arguments of ``pq.write_table`` / ``pq.ParquetWriter`` for a frame table."""
    dictionary = [n for n in table_schema.names if n in DICTIONARY_COLUMNS]
    return {"compression": COMPRESSION, "use_dictionary": dictionary}


#: the partition value of a row without one (a hive dataset holds no null partition)
NO_VALUE = "none"
#: the format of a UTC creation day, the ``create_date`` partition
DAY_FORMAT = "%Y-%m-%d"


def day_of(times: pd.Series) -> pd.Series:
    """The UTC day (``YYYY-MM-DD``) of each time; :data:`NO_VALUE` where there is none.

    >>> day_of(pd.Series(pd.to_datetime(["2026-03-01T23:59Z", None], utc=True))).tolist()
    ['2026-03-01', 'none']
    """
    stamps = times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]")
    ok = ~np.isnat(stamps)
    day = stamps.astype("datetime64[D]")
    uniq, where = np.unique(day[ok], return_inverse=True)  # a name per distinct day only
    names = np.array([pd.Timestamp(d).strftime(DAY_FORMAT) for d in uniq], dtype=object)
    out = np.full(len(times), NO_VALUE, dtype=object)
    out[ok] = names[where]
    return pd.Series(out, index=times.index, dtype=object)


def partition_values(values: pd.Series) -> pd.Series:
    """A column's values as partition names: text, :data:`NO_VALUE` where missing."""
    return values.astype("string").astype(object).where(values.notna(), NO_VALUE)


def without(table_schema: pa.Schema, name: str) -> pa.Schema:
    """``table_schema`` less the column ``name``, its pandas metadata entry too (a hive
    dataset keeps a partition column in its folder names, not in its files)."""
    out = table_schema.remove(table_schema.get_field_index(name))
    meta = dict(table_schema.metadata or {})
    if _PANDAS in meta:
        pandas_meta = json.loads(meta[_PANDAS])
        cols = pandas_meta.get("columns", [])
        pandas_meta["columns"] = [c for c in cols if c.get("field_name") != name]
        meta[_PANDAS] = json.dumps(pandas_meta).encode()
    return out.with_metadata(meta)


def to_table(df: pd.DataFrame, meta: dict[bytes, bytes] | None = None) -> pa.Table:
    """The frame as an Arrow table every Parquet reader opens (see the module docstring).

    ``df`` is taken as it is (enforce the schema first); ``meta`` adds schema metadata keys.

    >>> from veo_notebook.schema import empty_frame
    >>> to_table(empty_frame()).schema.field("create_time").type
    TimestampType(timestamp[us, tz=UTC])
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = list(table.schema)
    for i, f in enumerate(fields):
        if pa.types.is_timestamp(f.type) and f.type != TIME_TYPE:
            col = table.column(i).cast(TIME_TYPE, safe=False)  # drops sub-microsecond digits
            table = table.set_column(i, f.with_type(TIME_TYPE), col)
    out = dict(table.schema.metadata or {})
    if _PANDAS in out:
        out[_PANDAS] = _pandas_meta(out[_PANDAS], table.schema)
    out[KEY_SCHEMA] = str(schema.SCHEMA_VERSION).encode()
    out[KEY_VERSION] = __version__.encode()
    out.update(meta or {})
    return table.replace_schema_metadata(out)


def _pandas_meta(raw: bytes, arrow: pa.Schema) -> bytes:
    """pyarrow's pandas metadata with every dtype named so that pandas parses it back."""
    meta = json.loads(raw)
    for col in meta.get("columns", []):
        name = col.get("field_name")
        if name not in arrow.names:
            continue
        t = arrow.field(name).type
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            col["numpy_type"] = "object"
        elif pa.types.is_timestamp(t):
            col["numpy_type"] = _PANDAS_TIME
    return json.dumps(meta).encode()


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A table written by :func:`to_table` (or any table of frame columns) as the typed frame:
    the schema's dtypes exactly, nanosecond times included.

    Raises ``TypeError`` or ``ValueError`` when a column does not fit its dtype.
    """
    df = table.to_pandas(
        memory_pool=frame_pool(), types_mapper=schema.pandas_type, ignore_metadata=True
    )
    return schema.enforce(df)
