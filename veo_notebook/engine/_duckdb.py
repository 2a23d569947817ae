"""The DuckDB engine: the SQL of :mod:`._sql` run in process (private).

A source is a Parquet file, a hive dataset (a folder, or a URL: ``s3://`` and every
other fsspec protocol, read through fsspec with the environment's credentials), a DuckDB
relation, or a pandas DataFrame (scanned in place). Results come back as Arrow tables
of aggregates; nothing here ever asks DuckDB for a whole relation.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from ..errors import InputError
from ..export import DERIVED_PARTITIONS
from . import _plan as p
from ._sql import Dialect, SqlEngine

__all__ = ["MEMORY_LIMIT", "ROWS_PER_PIECE", "DuckDBEngine", "parquet_glob"]

DIALECT = Dialect(
    quote='"',
    micros="epoch_us(CAST({} AS TIMESTAMPTZ))",
    string="VARCHAR",
    hash="hash({})",
    join="array_to_string({}, chr(31))",
    last_seen="last_value({} IGNORE NULLS)",
    null_eq="{a} IS NOT DISTINCT FROM {b}",
    tie_join=True,
)


#: per connection: no order kept that a query does not ask for; each file's footer read
#: once per engine, not at every query (a call asks several queries of one dataset)
_SETTINGS = ("SET preserve_insertion_order = false", "SET parquet_metadata_cache = true")
#: DuckDB's own memory per connection (its default is 80 % of the machine): above it a
#: big hash table or sort (the duplicate runs' window) spills to a private temporary
#: folder instead of growing the process with the history. Each step down costs the
#: duplicate runs' windows seconds more of spilling at 20M tasks, each step up adds to
#: the report's peak (bench/README.md). The viewer's own table has its own limit.
MEMORY_LIMIT = "256MB"
#: A grouping by each distinct value of a column (Kaplan–Meier's event times: 1.7M rows
#: at 20M tasks) is asked in pieces of this many rows of the source, and a staged table
#: (the duplicate runs' near rows) is built in pieces of creation time of about as many:
#: DuckDB's hash table or sort is then a piece's (one piece up to this size).
ROWS_PER_PIECE = 5_000_000


#: A row's identity in a dataset: its file's place in the file list, then its place in the
#: file (2^40 rows a file, 2^23 files)
_ROW_ID = "(CAST(file_index AS BIGINT) << 40) + CAST(file_row_number AS BIGINT) AS veo_rid"


def parquet_glob(path: str) -> str:
    """What ``read_parquet`` is given for a file, a dataset folder or a URL."""
    text = str(path).rstrip("/")
    return text if text.endswith(".parquet") else f"{text}/**/*.parquet"


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
    rows_per_piece = ROWS_PER_PIECE
    _parent: DuckDBEngine | None = None  # a subset's source: keeps its connection open
    _gaps: tuple[str, list[str]] | bool | None = False  # False: not looked for yet
    _read = "hive_partitioning = true"

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
            self._bound(self._con)
            _reach(self._con, path)
            glob = parquet_glob(path).replace("'", "''")
            try:
                union = ", union_by_name = true" if self._mixed(glob) else ""
                self._read = f"hive_partitioning = true{union}"
                read = f"read_parquet('{glob}', {self._read})"
                self._con.execute(f"CREATE VIEW {self.src} AS SELECT * FROM {read}")
                self.row_src = f"{self.src}_rows"
                self._con.execute(f"CREATE VIEW {self.row_src} AS SELECT *, {_ROW_ID} FROM {read}")
            except duckdb.Error as exc:
                why = str(exc).strip().splitlines()[0]  # DuckDB adds the query, line by line
                raise InputError(f"{path}: not a readable Parquet file or dataset ({why})") from exc

    def request_gaps(self) -> tuple[str, list[str]] | None:
        """As :meth:`SqlEngine.request_gaps`: the dataset's gaps files, found once; the
        rows' view then reads the day files in the gaps files' order, so that a row's
        ``veo_rid`` is the same in both."""
        if self._gaps is False:
            from ..frame import _request_gaps

            found = _request_gaps.find(self.path) if self.path and self.row_src else None
            self._gaps = None
            if found is not None:
                files = ", ".join("'" + f.replace("'", "''") + "'" for f in found.data)
                gaps = ", ".join("'" + f.replace("'", "''") + "'" for f in found.gaps)
                name = f"{self.src}_gaps"
                self._con.execute(
                    f"CREATE OR REPLACE VIEW {self.row_src} AS SELECT *, {_ROW_ID} FROM "
                    f"read_parquet([{files}], {self._read})"
                )
                self._con.execute(
                    f"CREATE VIEW {name} AS SELECT *, {_ROW_ID} FROM read_parquet([{gaps}])"
                )
                self._gaps = (name, found.names)
        return None if isinstance(self._gaps, bool) else self._gaps

    def _bound(self, con: Any) -> None:
        """Cap ``con``'s memory at :data:`MEMORY_LIMIT`, spilling into a folder of its
        own (removed with the engine), never into the working directory."""
        spill = tempfile.mkdtemp(prefix="veo-duckdb-")
        weakref.finalize(self, shutil.rmtree, spill, True)
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        quoted = spill.replace("'", "''")
        con.execute(f"SET temp_directory = '{quoted}'")

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

    @contextmanager
    def staged(
        self,
        key: tuple,
        column: str | None,
        sql: Callable[[int | None, int | None], str],
        margin: int = 0,
    ) -> Iterator[str]:
        """A temporary table, built in pieces of :attr:`rows_per_piece` rows by ranges of
        ``column`` (each piece's sort then fits in :data:`MEMORY_LIMIT`: no spill), kept
        in :attr:`answers` when the caller keeps answers (the report's two duplicate
        queries read one), else dropped after the block. A relation's connection is the
        user's: there, the query inline."""
        kept = None if self.answers is None else self.answers.get(("staged", key))
        if kept is not None or self._relation is not None:
            yield kept or f"({sql(None, None)})"
            return
        name = f"veo_stage_{uuid.uuid4().hex[:8]}"
        dropped = name
        try:
            self._build(name, column, sql, margin)
            yield name
            if self.answers is not None:
                self.answers[("staged", key)] = name
                dropped = ""
        finally:  # done with, or not whole (an error, an interrupt mid-build)
            if dropped:
                self._con.execute(f"DROP TABLE IF EXISTS {dropped}")

    def forget(self) -> None:
        """As :meth:`Engine.forget`, the temporary tables kept dropped too."""
        for asked, name in list((self.answers or {}).items()):
            if asked[0] == "staged":
                self._con.execute(f"DROP TABLE IF EXISTS {name}")
        super().forget()

    def _build(
        self,
        name: str,
        column: str | None,
        sql: Callable[[int | None, int | None], str],
        margin: int,
    ) -> None:
        """``CREATE TEMP TABLE name`` from ``sql``, one piece of ``column``'s span at a
        time; fewer pieces where the ``margin`` each reads beyond its edges would make
        them read more than half as much again as their own rows (a long window)."""
        k = self.pieces() if column is not None else 1
        span = self.time_span(column) if k > 1 and column is not None else None
        if span is not None and margin > 0:
            k = min(k, (span[1] + 1 - span[0]) // (4 * margin))
        if span is None or k <= 1:
            self._con.execute(f"CREATE TEMP TABLE {name} AS {sql(None, None)}")
            return
        lo, hi = span
        step = -(-(hi + 1 - lo) // k)
        for i in range(k):
            a = lo + i * step
            made = "INSERT INTO" if i else "CREATE TEMP TABLE"
            self._con.execute(f"{made} {name} {'' if i else 'AS '}{sql(a, a + step)}")

    def _fetch(self, sql: str) -> pa.Table:
        if self._relation is not None:
            result = self._relation.query(self.src, sql)
        else:
            result = self._con.sql(sql)
        return result.to_arrow_table()
