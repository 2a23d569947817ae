"""The DuckDB engine: the SQL of :mod:`._sql` run in process (private).

A source is a Parquet file, a hive dataset (a folder, or a URL: ``s3://`` and every
other fsspec protocol, read through fsspec with the environment's credentials), a DuckDB
relation, or a pandas DataFrame (scanned in place). Results come back as Arrow tables
of aggregates; nothing here ever asks DuckDB for a whole relation.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import InputError
from ..export import DERIVED_PARTITIONS
from . import _plan as p
from ._sql import Dialect, SqlEngine

__all__ = ["DuckDBEngine", "one_schema", "parquet_glob"]

DIALECT = Dialect(
    quote='"',
    micros="epoch_us(CAST({} AS TIMESTAMPTZ))",
    string="VARCHAR",
    hash="hash({})",
    null_eq="{a} IS NOT DISTINCT FROM {b}",
)


def parquet_glob(path: str) -> str:
    """What ``read_parquet`` is given for a file, a dataset folder or a URL."""
    text = str(path).rstrip("/")
    return text if text.endswith(".parquet") else f"{text}/**/*.parquet"


def one_schema(path: str) -> bool:
    """Whether every file of a local Parquet file or dataset has the same columns and
    types (read once from the footers): then DuckDB need not unify the files' schemas at
    every query (``union_by_name``), which costs more than a small aggregate at 20M rows
    in ~1,000 files. A URL, or any file that cannot be read here, counts as mixed."""
    import pyarrow.parquet as pq

    local = Path(path)
    if "://" in str(path) or not local.exists():
        return False
    files = [local] if local.is_file() else sorted(local.rglob("*.parquet"))
    first = None
    try:
        for f in files:
            schema = pq.read_schema(f).remove_metadata()
            if first is None:
                first = schema
            elif not schema.equals(first):
                return False
    except (OSError, ValueError):
        return False
    return first is not None


def _reach(con: Any, path: str) -> None:
    """Let ``con`` read a URL through fsspec (``s3://``, ``gs://``, ...): the credentials
    and backends the toolkit writes with, no DuckDB extension to download."""
    protocol = path.split("://", 1)[0].lower() if "://" in path else "file"
    if protocol == "file":
        return
    from ..extras import require_url

    fsspec = require_url(path, f"reading {path!r} with DuckDB")
    try:
        con.register_filesystem(fsspec.filesystem(protocol))
    except (ImportError, ValueError) as exc:
        raise InputError(f"cannot read {path!r}: {exc}") from exc


class DuckDBEngine(SqlEngine):
    """Aggregates computed by DuckDB (an in-process connection, or a relation's own)."""

    name = "duckdb"
    dialect = DIALECT
    _parent: DuckDBEngine | None = None  # a subset's source: keeps its connection open

    def __init__(self, relation: Any = None, *, path: str | None = None) -> None:
        import duckdb

        self.src = f"veo_src_{uuid.uuid4().hex[:8]}"
        self._relation = relation
        self.path = path
        if relation is None:
            if path is None:
                raise InputError("a DuckDB engine needs a relation or a Parquet path")
            self._con = duckdb.connect()
            self._con.execute("SET preserve_insertion_order = false")
            _reach(self._con, path)
            glob = parquet_glob(path).replace("'", "''")
            try:
                self._con.execute(
                    f"CREATE VIEW {self.src} AS SELECT * FROM read_parquet('{glob}', "
                    f"hive_partitioning = true, union_by_name = {not one_schema(path)!s})"
                )
            except duckdb.Error as exc:
                why = str(exc).strip().splitlines()[0]  # DuckDB adds the query, line by line
                raise InputError(f"{path}: not a readable Parquet file or dataset ({why})") from exc

    def _source_columns(self) -> list[str]:
        if self._relation is not None:
            names = list(self._relation.columns)
        else:
            names = list(self._con.sql(f"SELECT * FROM {self.src} LIMIT 0").columns)
        return [c for c in names if c not in DERIVED_PARTITIONS]

    def subset(self, where: p.Cond) -> DuckDBEngine:
        cond = self.cond(where)
        if self._relation is not None:
            narrowed = self._relation.filter(cond)
        else:
            narrowed = self._con.sql(f"SELECT * FROM {self.src} WHERE {cond}")
        out = DuckDBEngine(narrowed)
        out._parent = self  # the connection the view lives on stays open
        return out

    def project(self, columns: Sequence[str]) -> DuckDBEngine:
        names = ", ".join(self.q(c) for c in columns if self.has(c))
        if self._relation is not None:
            narrowed = self._relation.project(names)
        else:
            narrowed = self._con.sql(f"SELECT {names} FROM {self.src}")
        out = DuckDBEngine(narrowed)
        out._parent = self
        return out

    def _fetch(self, sql: str) -> pa.Table:
        if self._relation is not None:
            result = self._relation.query(self.src, sql)
        else:
            result = self._con.sql(sql)
        return result.to_arrow_table()
