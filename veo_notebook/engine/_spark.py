"""The Spark engine: the SQL of :mod:`._sql` run by the active SparkSession (private).

The session is the caller's: ``SparkSession.builder.getOrCreate()`` finds the one
``spark-submit``, Databricks or a notebook made, and Spark Connect when ``SPARK_REMOTE``
is set. Each query's small result comes back through Arrow (``DataFrame.toArrow``);
the source DataFrame itself is never collected.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ..export import DERIVED_PARTITIONS
from . import _plan as p
from ._sql import Dialect, SqlEngine

__all__ = ["SparkEngine", "active_session"]

DIALECT = Dialect(
    quote="`",
    micros="unix_micros({})",
    string="STRING",
    hash="xxhash64({})",
    join="array_join({}, char(31))",
    last_seen="last({}, true)",
    null_eq="{a} <=> {b}",
    tie_join=False,
)


def active_session() -> Any:
    """The active SparkSession (made if there is none, as ``getOrCreate`` does)."""
    from pyspark.sql import SparkSession

    return SparkSession.builder.getOrCreate()


class SparkEngine(SqlEngine):
    """Aggregates computed by Spark SQL over a Spark DataFrame (a temporary view)."""

    name = "spark"
    dialect = DIALECT

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self.session = frame.sparkSession
        self.src = f"veo_src_{uuid.uuid4().hex[:8]}"
        frame.createOrReplaceTempView(self.src)

    @classmethod
    def from_path(cls, path: str) -> SparkEngine:
        """A Parquet file or hive dataset read by the active session."""
        return cls(active_session().read.parquet(str(path)))

    def _source_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c not in DERIVED_PARTITIONS]

    def subset(self, where: p.Cond) -> SparkEngine:
        return SparkEngine(self.session.sql(f"SELECT * FROM {self.src} WHERE {self.cond(where)}"))

    def project(self, columns: Sequence[str]) -> SparkEngine:
        names = ", ".join(self.q(c) for c in columns if self.has(c))
        return SparkEngine(self.session.sql(f"SELECT {names} FROM {self.src}"))

    def _fetch(self, sql: str) -> pa.Table:
        return self.session.sql(sql).toArrow()
