"""The DuckDB engine: the SQL of :mod:`._sql` run in process (private).

A source is a Parquet file, a hive dataset (a folder, or a URL DuckDB reaches), a DuckDB
relation, or a pandas DataFrame (scanned in place). Results come back as Arrow tables
of aggregates; nothing here ever asks DuckDB for a whole relation.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import InputError
from ..export import DERIVED_PARTITIONS
from ._sql import Dialect, SqlEngine

__all__ = ["DuckDBEngine", "parquet_glob"]

DIALECT = Dialect(
    quote='"',
    micros="epoch_us(CAST({} AS TIMESTAMPTZ))",
    string="VARCHAR",
    hash="hash({})",
    join="array_to_string({}, chr(31))",
    null_eq="{a} IS NOT DISTINCT FROM {b}",
)


#: per connection: no order kept that a query does not ask for; each file's footer read
#: once per engine, not at every query (a call asks several queries of one dataset)
_SETTINGS = ("SET preserve_insertion_order = false", "SET parquet_metadata_cache = true")


def parquet_glob(path: str) -> str:
    """What ``read_parquet`` is given for a file, a dataset folder or a URL."""
    text = str(path).rstrip("/")
    return text if text.endswith(".parquet") else f"{text}/**/*.parquet"


class DuckDBEngine(SqlEngine):
    """Aggregates computed by DuckDB (an in-process connection, or a relation's own)."""

    name = "duckdb"
    dialect = DIALECT

    def __init__(self, relation: Any = None, *, path: str | None = None) -> None:
        import duckdb

        self.src = f"veo_src_{uuid.uuid4().hex[:8]}"
        self._relation = relation
        self.path = path
        if relation is None:
            if path is None:
                raise InputError("a DuckDB engine needs a relation or a Parquet path")
            self._con = duckdb.connect()
            for setting in _SETTINGS:
                self._con.execute(setting)
            glob = parquet_glob(path).replace("'", "''")
            try:
                union = ", union_by_name = true" if self._mixed(glob) else ""
                self._con.execute(
                    f"CREATE VIEW {self.src} AS SELECT * FROM read_parquet('{glob}', "
                    f"hive_partitioning = true{union})"
                )
            except duckdb.Error as exc:
                raise InputError(f"{path}: not a readable Parquet file or dataset ({exc})") from exc

    def _mixed(self, glob: str) -> bool:
        """Whether the files' columns differ (names or types): only then are they read
        by name (``union_by_name``, which opens every file's footer anew at each query)."""
        kind = "coalesce(type, '') || ' ' || coalesce(CAST(logical_type AS VARCHAR), '')"
        sig = f"name || ' ' || {kind}"
        found = self._con.sql(
            f"SELECT count(DISTINCT s) FROM (SELECT file_name, string_agg({sig}, ',' "
            f"ORDER BY name) AS s FROM parquet_schema('{glob}') GROUP BY file_name) AS f"
        ).fetchall()
        return int(found[0][0]) > 1

    def _source_columns(self) -> list[str]:
        if self._relation is not None:
            names = list(self._relation.columns)
        else:
            names = list(self._con.sql(f"SELECT * FROM {self.src} LIMIT 0").columns)
        return [c for c in names if c not in DERIVED_PARTITIONS]

    def write_parquet(self, out: Path, partition_by: str | None = None) -> Path:
        """The whole source as one zstd Parquet file (times in µs, UTC), or as a hive
        dataset partitioned by a column, streamed by DuckDB (memory bounded by its row
        groups, never the history). Written under a temporary name, then renamed."""
        out = Path(out)
        if out.exists() and partition_by is not None:
            raise InputError(f"--out {out}: already exists; give a new dataset folder")
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
        keep = ", ".join(self.q(c) for c in self.columns())
        target = str(tmp).replace("'", "''")
        if partition_by is None:
            options = "FORMAT parquet, COMPRESSION zstd"
            select = f"SELECT {keep} FROM {self.src}"
        else:
            part = self.q(partition_by)
            options = f"FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({part})"
            extra = "" if partition_by in self.columns() else f", {part}"
            select = f"SELECT {keep}{extra} FROM {self.src}"
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._run(f"COPY ({select}) TO '{target}' ({options})")
            os.replace(tmp, out)
        finally:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        return out

    def _run(self, sql: str) -> None:
        if self._relation is not None:
            self._relation.query(self.src, sql).fetchall()
        else:
            self._con.execute(sql)

    def _fetch(self, sql: str) -> pa.Table:
        if self._relation is not None:
            result = self._relation.query(self.src, sql)
        else:
            result = self._con.sql(sql)
        return result.to_arrow_table()
