"""Which engine answers for a source (private): :func:`resolve`.

=============================================  ===========================================
source                                         engine (``engine=None``)
=============================================  ===========================================
pandas DataFrame                               pandas (what the analysis always did)
Parquet file, hive dataset folder, URL         pandas below :data:`PANDAS_MAX_ROWS` rows
                                               (read whole), DuckDB above (never read whole)
``Store`` or a store path (``.sqlite``)        its frame dataset (``frame.dataset.sync``),
                                               then as a dataset
DuckDB relation                                DuckDB (the relation's own connection)
PySpark DataFrame (classic or Connect)         Spark (the DataFrame's session)
=============================================  ===========================================

``engine="duckdb"`` / ``"spark"`` / ``"pandas"`` forces one: a path is then read by
that engine (Spark: the active ``SparkSession``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from ._base import Engine

__all__ = ["ENGINES", "PANDAS_MAX_ROWS", "is_spark_frame", "resolve"]

#: The engines a caller can name.
ENGINES = ("pandas", "duckdb", "spark")
#: A dataset up to this many rows is read into pandas by default; above, DuckDB answers.
PANDAS_MAX_ROWS = 250_000
_SQLITE_MAGIC = b"SQLite format 3\x00"
_STORE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def is_spark_frame(obj: object) -> bool:
    """Whether ``obj`` is a PySpark DataFrame (classic or Spark Connect), without importing
    pyspark."""
    module = type(obj).__module__ or ""
    return module.startswith("pyspark.") and hasattr(obj, "createOrReplaceTempView")


def _is_duckdb_relation(obj: object) -> bool:
    return type(obj).__name__ == "DuckDBPyRelation"


def _is_url(text: str) -> bool:
    return "://" in text and not text.startswith("file://")


def _is_store_path(path: Path) -> bool:
    if path.suffix.lower() in _STORE_SUFFIXES:
        return True
    if path.is_file() and path.suffix.lower() != ".parquet":
        with path.open("rb") as fh:
            return fh.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    return False


def _rows_in(path: str) -> int:
    """Rows of a Parquet file or dataset, from the footers only (no data read)."""
    import pyarrow as pa
    import pyarrow.dataset as pds

    try:
        return int(pds.dataset(path, format="parquet", partitioning="hive").count_rows())
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file or dataset ({exc})") from exc


def _dataset_of_store(store: Any) -> str:
    from ..frame import dataset

    return str(dataset.sync(store))


def _check(engine: str | None) -> str | None:
    if engine is not None and engine not in ENGINES:
        raise InputError(f"engine: {engine!r} is not one of {', '.join(ENGINES)}")
    return engine


def _from_path(path: str, engine: str | None) -> Engine:
    if engine is None:
        local = not _is_url(path)
        if local and not Path(path).exists():
            raise InputError(f"no such Parquet file or dataset: {path}")
        engine = "pandas" if local and _rows_in(path) <= PANDAS_MAX_ROWS else "duckdb"
    if engine == "pandas":
        from ..export import read_parquet
        from ._pandas import PandasEngine

        return PandasEngine(read_parquet(path))
    if engine == "spark":
        from ._spark import SparkEngine

        return SparkEngine.from_path(path)
    from ._duckdb import DuckDBEngine

    return DuckDBEngine(path=path)


def resolve(source: Any, engine: str | None = None) -> Engine:
    """The engine that answers for ``source`` (see the module docstring).

    >>> resolve(pd.DataFrame({"task_id": ["a"]})).name
    'pandas'
    """
    from ..store import Store

    engine = _check(engine)
    if isinstance(source, Engine):
        return source
    if isinstance(source, pd.DataFrame):
        if engine in (None, "pandas"):
            from ._pandas import PandasEngine

            return PandasEngine(source)
        if engine == "duckdb":
            import duckdb

            from ._duckdb import DuckDBEngine

            return DuckDBEngine(duckdb.connect().from_df(source))
        from ._spark import SparkEngine, active_session

        return SparkEngine(active_session().createDataFrame(source))
    if _is_duckdb_relation(source):
        from ._duckdb import DuckDBEngine

        return DuckDBEngine(source)
    if is_spark_frame(source):
        from ._spark import SparkEngine

        return SparkEngine(source)
    if isinstance(source, Store):
        return _from_path(_dataset_of_store(source), engine)
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        if not _is_url(text) and _is_store_path(Path(text)):
            with Store(text, create=False) as store:
                return _from_path(_dataset_of_store(store), engine)
        return _from_path(text, engine)
    raise InputError(
        f"a {type(source).__name__} is not a source of tasks; give a DataFrame, a Parquet "
        "file or dataset path/URL, a Store or store path, a DuckDB relation or a Spark DataFrame"
    )
