"""The status viewer's table model over a dataset: every view is a DuckDB query.

:class:`DatasetModel` has the interface of :class:`~veo_notebook.viewer._model.TableModel`
(filters, counts, pages, one task, pending ids), so the widgets, the HTML and live refresh
are one code path; only the model differs. It never loads the history: facet options and
status counts are group-bys, a count is ``COUNT(*)``, a page is a ``LIMIT``/``OFFSET`` query
of the displayed columns, the detail pane reads one task. What comes back is counted in
:attr:`DatasetModel.rows_fetched` (the tests hold it to pages, not to the history).

Its answers are the in-memory model's, row for row: the same facet options (a categorical
column's categories, else its distinct values), the same case-insensitive substring search
over task id, prompt and error message, and the same order, missing values last either way
and ties in the order of a dataset read whole (creation time, then task id).

>>> import pandas as pd, tempfile, pathlib
>>> from veo_notebook import schema, to_parquet
>>> df = schema.enforce(pd.DataFrame({"task_id": ["a", "b"], "status": ["success", "failed"]}))
>>> p = to_parquet(df, pathlib.Path(tempfile.mkdtemp()) / "t.parquet")
>>> m = DatasetModel.from_path(p)
>>> m.set_facet("status", ["failed"])
>>> m.count(), m.rows(0, 10, "created", True, ["task_id"])["task_id"].tolist()
(1, ['b'])
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import uuid
import weakref
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pyarrow as pa

from .. import schema
from ..errors import InputError
from ..extras import require
from ..frame import _parquet
from ._model import FACETS, SORT_KEYS, Filters

__all__ = ["VIEW_MAX_ROWS", "DatasetModel", "connect"]

#: ``view()`` (what the export buttons write) refuses a filtered view bigger than this:
#: a dataset viewer never pulls a history into memory; ``veo.export_store`` writes it whole.
VIEW_MAX_ROWS = 1_000_000
#: the searched columns, as the in-memory model searches them
TEXT_COLUMNS = ("task_id", "prompt", "error_message")
#: the columns a dataset viewer copies into its own DuckDB table when it opens (on disk,
#: beside nothing: a temporary folder): facets, sort keys, searched and shown columns.
#: Pages and counts read that table (DuckDB's own storage, 10-100x faster than Parquet
#: read anew per query); the detail pane reads the one task from its Parquet file.
VIEW_COLUMNS = tuple(
    dict.fromkeys(
        [
            "task_id", *(f.column for f in FACETS), *SORT_KEYS.values(), *TEXT_COLUMNS,
            "create_time", "error_code", "fetch_error",
        ]
    )
)  # fmt: skip
_LIKE_SPECIAL = re.compile(r"[%_\\]")
#: DuckDB's memory while it builds and queries that table (it spills to disk past it)
MEMORY_LIMIT = "512MB"
#: ties are broken in the order of a dataset read whole (``export.read_parquet``)
_TIEBREAK = 'create_time ASC NULLS LAST, "task_id" ASC NULLS LAST'


def _duckdb() -> Any:
    """DuckDB, imported on first use (the ``duckdb`` extra), or one line saying how to get it."""
    return require("duckdb", "viewing a dataset")


#: per connection: no progress bar on stderr, no order kept that a query does not ask for.
#: (No Parquet footer cache: on a 20M-task dataset it took the peak RSS from 0.8 to 6.4 GB.)
_SETTINGS = (
    "SET enable_progress_bar = false",
    "SET preserve_insertion_order = false",
)


def connect(folder: Path | None = None) -> Any:
    """A new DuckDB connection, set up for the viewer's queries: in memory, or a database
    file in ``folder`` (spilling there too, within :data:`MEMORY_LIMIT`)."""
    if folder is None:
        con = _duckdb().connect()
    else:
        con = _duckdb().connect(str(folder / "view.duckdb"))
        where = str(folder).replace("'", "''")
        con.execute(f"SET temp_directory = '{where}'")
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    for statement in _SETTINGS:
        con.execute(statement)
    return con


def _glob(path: Path) -> str:
    text = str(path).rstrip("/")
    return f"{text}/**/*.parquet" if path.is_dir() else text


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DatasetModel(Filters):
    """Filter / sort / page state over a DuckDB view (see the module docstring).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection the views live in (the model's queries run there, under a lock).
    source : str
        The name of a view of the frame's columns in ``con`` (the detail pane and the
        export read it).
    view : str, optional
        A table in ``con`` of the columns the viewer filters, sorts, searches and shows,
        taken from ``source`` (and the file of each row, ``veo_file``): what every page
        and count query reads. None: ``source`` itself.
    store : Store, optional
        The store the dataset was synced from (live refresh writes there, then re-syncs).
    """

    in_memory = False

    def __init__(
        self, con: Any, source: str, view: str | None = None, *, store: Any = None
    ) -> None:
        self.con, self.source, self.view, self.store = con, source, view or source, store
        self._lock = threading.RLock()
        self.rows_fetched = 0  # rows brought back into Python, over the model's life
        cols = self._fetch(f"SELECT * FROM {source} LIMIT 0").column_names
        self.columns = [c for c in cols if c in set(schema.column_names())]
        missing = [c for c in ("task_id", "status", "create_time") if c not in self.columns]
        if missing:
            raise InputError(f"not a veo-notebook frame: no {', '.join(missing)} column")
        view = self.view
        names = self._fetch(f"SELECT * FROM {view} LIMIT 0").column_names
        #: the frame columns a page can show (those the view table holds)
        self.view_columns = [c for c in self.columns if c in set(names)]
        self.n = int(self._scalar(f"SELECT COUNT(*) FROM {view}"))
        self._spec: dict[str, object] = {}
        self._base = self.view  # what counts and pages read: the view, or a search's hits
        self._text: tuple[str, list[Any]] = ("", [])  # the search's condition, for exports
        self._where: dict[str, tuple[str, list[Any]]] = {}
        self._count = self.n
        self._options = {f.column: self._distinct(f.column) for f in FACETS}
        self._pending: list[str] | None = None

    # -- sources --------------------------------------------------------------------------
    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, store: Any = None) -> DatasetModel:
        """A model over a Parquet file or a hive dataset folder (read in place)."""
        p = Path(path)
        if not p.exists():
            raise InputError(f"no such Parquet file or dataset: {p}")
        folder = Path(tempfile.mkdtemp(prefix="veo-viewer-"))
        con = connect(folder)
        weakref.finalize(con, shutil.rmtree, folder, ignore_errors=True)
        source, view = "veo_source", "veo_view"
        glob = _glob(p).replace("'", "''")
        try:
            con.execute(
                f"CREATE VIEW {source} AS SELECT * FROM read_parquet('{glob}', "
                "hive_partitioning = true, filename = 'veo_file')"
            )
            have = set(con.sql(f"SELECT * FROM {source} LIMIT 0").columns)
            cols = ", ".join(_q(c) for c in VIEW_COLUMNS if c in have)
            con.execute(f"CREATE TABLE {view} AS SELECT {cols}, veo_file FROM {source}")
        except _duckdb().Error as exc:
            raise InputError(f"{p} is not a readable Parquet file or dataset: {exc}") from exc
        return cls(con, source, view, store=store)

    @classmethod
    def from_store(cls, store: Any) -> DatasetModel:
        """A model over a store's frame dataset, synced first (``frame.dataset.sync``)."""
        from ..frame import dataset

        return cls.from_path(dataset.sync(store), store=store)

    @classmethod
    def from_relation(cls, relation: Any) -> DatasetModel:
        """A model over a DuckDB relation (queried in its own connection, never pulled)."""
        source = f"veo_source_{uuid.uuid4().hex[:8]}"
        relation.create_view(source, replace=True)
        # the relation's own connection (DuckDB 2 keeps it as ``_con``); older: the default
        con = getattr(relation, "_con", None) or _duckdb().default_connection()
        return cls(con, source)

    def reopened(self) -> DatasetModel:
        """A new model over the same source (after a re-sync), with this model's filters."""
        from ..frame import dataset

        new = DatasetModel.from_path(dataset.sync(self.store), store=self.store)
        new.adopt_spec(self)
        return new

    # -- queries ----------------------------------------------------------------------------
    def _fetch(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        with self._lock:
            table = self.con.sql(sql, params=params or None).to_arrow_table()
        self.rows_fetched += table.num_rows
        return cast("pa.Table", table)

    def _scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        return self._fetch(sql, params).column(0)[0].as_py()

    def _distinct(self, col: str) -> list[str]:
        if col not in self.columns:  # a derived facet the dataset does not hold
            return []
        dtype = schema.dtypes().get(col)
        if isinstance(dtype, pd.CategoricalDtype):  # fixed categories, as the typed frame
            return [str(c) for c in dtype.categories]
        t = self._fetch(
            f"SELECT DISTINCT CAST({_q(col)} AS VARCHAR) AS v FROM {self.view} "
            f"WHERE {_q(col)} IS NOT NULL"
        )
        return sorted(str(v) for v in t.column(0).to_pylist())

    def _filter_sql(self) -> tuple[str, list[Any]]:
        parts = [w for w in self._where.values() if w[0]]
        if not parts:
            return "", []
        return " WHERE " + " AND ".join(f"({s})" for s, _ in parts), [
            p for _, ps in parts for p in ps
        ]

    # -- data -------------------------------------------------------------------------------
    def options(self, facet: str) -> list[str]:
        """The values a facet filter can take."""
        return list(self._options[facet])

    # -- filters (the setters: _model.Filters) -------------------------------------------------
    def _applied(self, name: str) -> bool:
        return name in self._where

    def _apply(self, name: str, value: object) -> None:
        self._where[name] = self._condition(name, value)
        if name != "text" and self._text[0] and self.view != self.source:
            self._search()  # the search's hits, under the filters as they are now
        where, params = self._filter_sql()
        self._count = (
            int(self._scalar(f"SELECT COUNT(*) FROM {self._base}{where}", params))
            if where or self._base != self.view
            else self.n
        )

    def _condition(self, name: str, value: object) -> tuple[str, list[Any]]:
        if name in self._options:
            chosen = [str(v) for v in cast("tuple[str, ...]", value)]
            if not chosen:
                return "", []
            if name not in self.columns:
                return "FALSE", []
            marks = ", ".join("?" for _ in chosen)
            return f"CAST({_q(name)} AS VARCHAR) IN ({marks})", chosen
        if name == "created":
            start, end = cast("tuple[pd.Timestamp | None, pd.Timestamp | None]", value)
            conds, params = [], []
            for bound, op in ((start, ">="), (end, "<=")):
                if bound is not None:
                    conds.append(f"create_time {op} ?")
                    params.append(_utc(bound).to_pydatetime())
            return " AND ".join(conds), params
        if name == "text":
            if not value:
                self._base, self._text = self.view, ("", [])
                return "", []
            # ILIKE, the needle's own wildcards escaped: a substring, any case (faster
            # than contains(lower(...)): no lower-cased copy of every text)
            needle = "%" + _LIKE_SPECIAL.sub(r"\\\g<0>", str(value)) + "%"
            cols = [c for c in TEXT_COLUMNS if c in self.view_columns]
            sql = " OR ".join(f"{_q(c)} ILIKE ? ESCAPE '\\'" for c in cols)
            cond, params = f"COALESCE({sql}, FALSE)", [needle] * len(cols)
            if self.view == self.source:  # a relation: searched by each query
                return cond, params
            self._text = (cond, params)
            self._search()
            return "", []
        raise KeyError(name)

    def _search(self) -> None:
        """Copy the rows the search and the other filters keep to a temp table, which the
        count and every page then read instead of the whole view: the texts are scanned
        once per search (and again when another filter changes), and only in the rows the
        other filters keep."""
        others = {k: w for k, w in self._where.items() if k != "text" and w[0]}
        conds = [f"({s})" for s, _ in others.values()] + [self._text[0]]
        params = [p for _, ps in others.values() for p in ps] + self._text[1]
        with self._lock:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE veo_hits AS SELECT * "
                f"FROM {self.view} WHERE {' AND '.join(conds)}",
                params,
            )
        self._base = "veo_hits"

    def count(self) -> int:
        """Rows matching every active filter."""
        return self._count

    # -- sort and page ------------------------------------------------------------------------
    def _order_sql(self, by: str, descending: bool) -> str:
        if by not in SORT_KEYS:
            raise KeyError(by)
        col = SORT_KEYS[by]
        if col not in self.columns:
            return _TIEBREAK
        key = _q(col)
        if by == "status":  # the categories' order, as the typed frame sorts them
            cats = self._options["status"]
            cases = " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(cats))
            key = f"(CASE {_q(col)} {cases} END)"
        return f"{key} {'DESC' if descending else 'ASC'} NULLS LAST, {_TIEBREAK}"

    def rows(
        self, page: int, page_size: int, by: str, descending: bool, columns: list[str]
    ) -> pd.DataFrame:
        """The typed rows on ``page`` (0-based) of the filtered, sorted view: ``columns`` only."""
        where, params = self._filter_sql()
        columns = [c for c in columns if c in self.view_columns]
        cols = ", ".join(_q(c) for c in columns)
        sql = (
            f"SELECT {cols} FROM {self._base}{where} ORDER BY {self._order_sql(by, descending)} "
            f"LIMIT {int(page_size)} OFFSET {int(page) * int(page_size)}"
        )
        return self._typed(self._fetch(sql, params), columns)

    def view_frame(self, by: str, descending: bool) -> pd.DataFrame:
        """Every row of the filtered view, sorted (what an export writes), up to
        :data:`VIEW_MAX_ROWS`."""
        if self._count > VIEW_MAX_ROWS:
            raise InputError(
                f"the view holds {self._count:,} tasks, more than a dataset viewer exports "
                f"({VIEW_MAX_ROWS:,}): filter it, or export the whole history with "
                "veo.export_store"
            )
        where, params = self._filter_sql()
        if self._text[0]:  # the search, on the source's own columns
            where = f"{where} AND ({self._text[0]})" if where else f" WHERE {self._text[0]}"
            params = [*params, *self._text[1]]
        sql = (
            f"SELECT {', '.join(_q(c) for c in self.columns)} FROM {self.source}{where} "
            f"ORDER BY {self._order_sql(by, descending)}"
        )
        return self._typed(self._fetch(sql, params), self.columns)

    def _typed(self, table: pa.Table, columns: list[str]) -> pd.DataFrame:
        df = _parquet.to_frame(table)
        return df[[c for c in columns if c in df.columns]].reset_index(drop=True)

    def task(self, task_id: str) -> pd.DataFrame | None:
        """The one row of ``task_id`` (every column), or None."""
        src, params = self.source, [task_id]
        if self.view != self.source:  # only the task's own file is read
            found = self._fetch(
                f"SELECT veo_file FROM {self.view} WHERE task_id = ? LIMIT 1", [task_id]
            )
            if found.num_rows == 0:
                return None
            src = f"{self.source} WHERE veo_file = ? AND"
            params = [found.column(0)[0].as_py(), task_id]
        else:
            src += " WHERE"
        t = self._fetch(f"SELECT * FROM {src} task_id = ? LIMIT 1", params)
        if t.num_rows == 0:
            return None
        keep = [c for c in t.column_names if c in self.columns]
        return self._typed(t.select(keep), self.columns)

    def family_rows(self, root: str) -> pd.DataFrame:
        """The rows whose ``root_task_id`` is ``root`` (a task's family), every column."""
        if "root_task_id" not in self.columns:
            return schema.empty_frame()
        cols = ", ".join(_q(c) for c in self.columns)
        t = self._fetch(f"SELECT {cols} FROM {self.source} WHERE root_task_id = ?", [root])
        return self._typed(t, self.columns)

    # -- summaries ----------------------------------------------------------------------------
    def status_counts(self) -> dict[str, int]:
        """Rows per status over the whole dataset (a group-by); ``"unread"`` counts none."""
        t = self._fetch(
            f"SELECT CAST(status AS VARCHAR) AS s, COUNT(*) AS n FROM {self.view} GROUP BY 1"
        )
        found = dict(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))
        out = {c: int(found.get(c, 0)) for c in self._options["status"]}
        out.update({str(k): int(v) for k, v in found.items() if k is not None and k not in out})
        out[schema.UNREAD] = int(found.get(None, 0))
        return out

    def _pending_pairs(self) -> tuple[pd.DataFrame, str]:
        """Each distinct (status, fetch error) with its row count, marked by
        :func:`veo_notebook.schema.pending_mask` (the one rule, applied to a group-by)."""
        fe = "fetch_error" if "fetch_error" in self.columns else "CAST(NULL AS VARCHAR)"
        t = self._fetch(
            f"SELECT CAST(status AS VARCHAR) AS status, {fe} AS fetch_error, COUNT(*) AS n "
            f"FROM {self.view} GROUP BY ALL"
        )
        df = t.to_pandas()
        df["pending"] = schema.pending_mask(df["status"], df["fetch_error"])
        return df, fe

    def pending_count(self) -> int:
        """How many tasks a refresh would re-poll (a group-by: no id is read)."""
        df, _ = self._pending_pairs()
        return int(df.loc[df["pending"], "n"].sum())

    def pending_ids(self) -> list[str]:
        """Task ids a refresh would re-poll: what ``fetch_records(refresh="pending")`` asks."""
        if self._pending is None:  # a model's dataset never changes: once per model
            df, fe = self._pending_pairs()
            pairs = df[df["pending"]]
            if pairs.empty:
                self._pending = []
                return []
            conds = " OR ".join(
                f"(CAST(status AS VARCHAR) IS NOT DISTINCT FROM ? AND {fe} IS NOT DISTINCT FROM ?)"
                for _ in range(len(pairs))
            )
            params = [
                None if pd.isna(v) else str(v)
                for pair in zip(pairs["status"], pairs["fetch_error"], strict=True)
                for v in pair
            ]
            t = self._fetch(
                f"SELECT task_id FROM {self.view} WHERE {conds} ORDER BY {_TIEBREAK}", params
            )
            self._pending = [str(x) for x in t.column(0).to_pylist()]
        return list(self._pending)


def _utc(ts: pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def is_dataset_source(source: Any) -> bool:
    """Whether ``source`` is a path or a DuckDB relation (what :class:`DatasetModel` reads)."""
    return isinstance(source, (str, os.PathLike)) or type(source).__name__ == "DuckDBPyRelation"
