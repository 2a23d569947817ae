"""The aggregates of :mod:`._plan` as SQL text, shared by DuckDB and Spark (private).

One query builder, two small dialects (how a name is quoted, how a time becomes epoch
microseconds, how a string type is spelt). Every query returns a small table: the
engine does the scan, the sort and the grouping; only aggregates come back.

Order statistics are exact: the rows are counted per distinct (group, value), a running
sum over those counts gives each distinct value's rank range, and the ranks asked for
are joined against the ranges. No approximate quantile function is ever called.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import schema
from ..errors import InputError
from . import _plan as p
from . import _sql_runs
from ._base import (
    UNREAD_COLUMN,
    UPGRADE_COLUMN,
    Engine,
    key_columns,
    missing_label_of,
)
from ._dialect import Dialect
from ._dialect import lit as _lit

__all__ = ["Dialect", "SqlEngine"]

_US = 1_000_000
#: Order statistics are found in two passes over log-scale bins this fine (~1 % wide).
BINS_PER_OCTAVE = 64
_LOW_BIN = -(2**40)  # the bin of values ≤ 0
_WIDEN = 1e-9  # a bin's value range is widened by this much either way before the exact test


class SqlEngine(Engine):
    """Aggregates as SQL over the relation named ``src``; subclasses run the text."""

    dialect: Dialect
    src: str  # the name the source is known by in every query
    #: rows of the source per piece of :meth:`grouped_pieces` (None: always one piece)
    rows_per_piece: int | None = None
    #: ``src`` with each row's identity (``veo_rid``: stable between the queries of one
    #: engine), where the engine has one (DuckDB over Parquet); None elsewhere
    row_src: str | None = None

    def request_gaps(self) -> tuple[str, list[str]] | None:
        """A relation of each row's request key, time, status and gaps to the same
        request's rows before and after in its day, with ``veo_rid`` (as :attr:`row_src`),
        and the request columns the key hashes; where the source keeps them
        (:mod:`veo_notebook.frame._request_gaps`). None elsewhere."""
        return None

    @abstractmethod
    def _fetch(self, sql: str) -> pa.Table:
        """Run ``sql`` (over ``self.src``) and return its (small) result."""

    @contextmanager
    def staged(
        self,
        key: tuple,
        column: str | None,
        sql: Callable[[int | None, int | None], str],
        margin: int = 0,
    ) -> Iterator[str]:
        """A relation of the rows ``sql(None, None)`` selects, while the block runs.
        ``sql(lo, hi)`` selects those of them whose ``column`` (µs) is in [lo, hi),
        reading ``margin`` µs either side, so an engine that keeps a table may build it
        in pieces (``column`` None: in one). Here: the query inline."""
        yield f"({sql(None, None)})"

    # --- SQL pieces -------------------------------------------------------------------
    def q(self, name: str) -> str:
        return f"{self.dialect.quote}{name}{self.dialect.quote}"

    def has(self, column: str) -> bool:
        return column in self._columns()

    def _columns(self) -> set[str]:
        if not hasattr(self, "_column_set"):
            self._column_set = set(self.columns())
        return self._column_set

    def columns(self) -> list[str]:
        """The source's columns (asked once)."""
        if not hasattr(self, "_column_list"):
            self._column_list = self._source_columns()
        return list(self._column_list)

    @abstractmethod
    def _source_columns(self) -> list[str]:
        """The source's columns, derived partitions left out."""

    def us(self, column: str) -> str:
        return self.dialect.micros.format(self.q(column))

    def cond(self, c: p.Cond | None) -> str:
        if c is None:
            return "TRUE"
        if isinstance(c, p.In):
            if not c.values or not self.has(c.column):
                return "FALSE"
            return f"{self.q(c.column)} IN ({', '.join(_lit(v) for v in c.values)})"
        if isinstance(c, p.NotNull):
            return f"{self.q(c.column)} IS NOT NULL" if self.has(c.column) else "FALSE"
        if isinstance(c, p.TimeBefore):
            return f"{self.us(c.column)} < {int(c.micros)}"
        if isinstance(c, p.All):
            return "(" + " AND ".join(self.cond(x) for x in c.parts) + ")" if c.parts else "TRUE"
        if isinstance(c, p.Any):
            return "(" + " OR ".join(self.cond(x) for x in c.parts) + ")" if c.parts else "FALSE"
        if isinstance(c, p.Not):
            return f"NOT coalesce({self.cond(c.part)}, FALSE)"
        raise TypeError(f"not a condition: {c!r}")

    def value(self, v: p.Value) -> str:
        return self.us(v.column) if isinstance(v, p.Micros) else self.q(v)

    def _label(self, missing: str, labels: tuple[tuple[bool, bool, str], ...] | None) -> str:
        if labels is None:
            return f"CAST(NULL AS {self.dialect.string})"
        unread = self.cond(p.NotNull(UNREAD_COLUMN))
        from ..fmt import UPGRADE_TYPES

        upgrade = self.cond(p.In(UPGRADE_COLUMN, tuple(sorted(UPGRADE_TYPES))))
        table = missing_label_of(labels)
        arms = " ".join(
            f"WHEN coalesce({unread}, FALSE) = {_lit(u)} AND coalesce({upgrade}, FALSE) = "
            f"{_lit(g)} THEN {_lit(text)}"
            for (u, g), text in table.items()
        )
        return f"CASE WHEN {missing} THEN CASE {arms} END END"

    def keys(self, keys: p.Keys) -> list[str]:
        """SQL of the key columns ``k0, k0_na, ...``."""
        out = []
        for i, key in enumerate(keys):
            if isinstance(key, p.Bucket):
                if key.period is not None:
                    raise InputError(
                        f"by: {key.period!r} is a calendar bucket the {self.name} engine does "
                        "not cut; give a fixed one such as '1D', '7D' or a week ('W')"
                    )
                t = self.us(key.column)
                step, offset = int(key.step), int(key.offset)
                out.append(f"({t} - ({t} - {offset}) % {step}) AS k{i}")
                missing = f"{self.q(key.column)} IS NULL"
            elif key.kind == "work":
                from ..fmt import UPGRADE_TYPES

                up = self.cond(p.In(key.column, tuple(sorted(UPGRADE_TYPES))))
                other, upgrade = key.labels_work
                out.append(
                    f"CASE WHEN coalesce({up}, FALSE) THEN {_lit(upgrade)} ELSE {_lit(other)} "
                    f"END AS k{i}"
                )
                missing = "FALSE"
            else:
                col = self.q(key.column)
                typed = f"CAST({col} AS {self._type(key)})"
                out.append(f"{typed} AS k{i}")
                missing = f"{col} IS NULL"
            out.append(f"{self._label(missing, key.labels)} AS k{i}_na")
        return out

    def measure(self, m: p.Measure) -> str:
        w = None if m.where is None else self.cond(m.where)
        if isinstance(m, p.Count):
            return "count(*)" if w is None else f"count(CASE WHEN {w} THEN 1 END)"
        if isinstance(m, p.Max):
            v = self.value(m.value)
            return f"max({v})" if w is None else f"max(CASE WHEN {w} THEN {v} END)"
        col = self.q(m.column)
        x = f"CAST(round({col} * {_US}) AS BIGINT)" if isinstance(m, p.SumMicros) else col
        inner = x if w is None else f"CASE WHEN {w} THEN {x} END"
        cast = "BIGINT" if isinstance(m, p.SumMicros) else "DOUBLE"
        return f"CAST(coalesce(sum({inner}), 0) AS {cast})"

    # --- the four questions -------------------------------------------------------------
    def count(self) -> int:
        return int(self._fetch(f"SELECT count(*) AS n FROM {self.src}").column(0)[0].as_py())

    def grouped(
        self,
        keys: p.Keys,
        measures: Mapping[str, p.Measure],
        where: p.Cond | None = None,
        extra: Sequence[p.Value] = (),
        top: int | None = None,
    ) -> pd.DataFrame:
        hint = self.__dict__.pop("_rank_hint", None)
        fuse = hint is not None and hint[0] == keys and keys and where is None
        fuse = fuse and not extra and top is None
        if fuse and all(isinstance(m, p.Count | p.SumMicros | p.Max) for m in measures.values()):
            return self._grouped_and_bins(keys, measures, hint[1], hint[2])
        return self._grouped_over(self.src, keys, measures, where, extra, top)

    def pieces(self) -> int:
        """How many pieces of :attr:`rows_per_piece` rows the source makes (1: whole)."""
        per = self.rows_per_piece
        return max(1, -(-self.count() // per)) if per else 1

    def grouped_pieces(
        self,
        keys: p.Keys,
        measures: Mapping[str, p.Measure],
        where: p.Cond | None,
        value: str,
    ) -> Iterator[pd.DataFrame]:
        """:meth:`grouped` by ``value`` too, one piece per :attr:`rows_per_piece` rows of
        the source: a piece is the rows whose value hashes to it, so each distinct value
        is in one piece and the engine's hash table is a piece's, not the whole answer's."""
        k = self.pieces()
        if k <= 1:
            yield self.grouped(keys, measures, where, extra=(value,))
            return
        self.__dict__.pop("_rank_hint", None)  # as grouped() does: the hint is not for this
        h = self.dialect.hash.format(self.q(value))
        for i in range(k):
            piece = f"(SELECT * FROM {self.src} WHERE abs({h} % {k}) = {i}) AS piece"
            yield self._grouped_over(piece, keys, measures, where, (value,))

    def will_rank(self, keys: p.Keys, value: str, where: p.Cond | None) -> None:
        self._rank_hint = (keys, value, where)

    def _grouped_and_bins(
        self, keys: p.Keys, measures: Mapping[str, p.Measure], value: str, where: p.Cond | None
    ) -> pd.DataFrame:
        """:meth:`grouped` and the first pass of :meth:`ranks` in one scan: grouped by key
        and bin (none for the rows not ranked), the bins kept for :meth:`ranks`, the
        measures added up per key here (counts and µs sums are integers, maxima maxima:
        the same numbers as one ``GROUP BY`` of the keys)."""
        ks = self.keys(keys)
        cols = key_columns(len(keys))
        cond = self.cond(p.All(((where or p.All(())), p.NotNull(value))))
        b = f"CASE WHEN coalesce({cond}, FALSE) THEN {self._bin(self.q(value))} END AS b"
        select = [*ks, b] + [f"{self.measure(m)} AS {self.q(n)}" for n, m in measures.items()]
        by = ", ".join(str(i + 1) for i in range(len(ks) + 1))
        fine = _plain(
            self._fetch(f"SELECT {', '.join(select)}, count(*) AS c FROM {self.src} GROUP BY {by}")
        )
        ranked = fine["b"].notna().to_numpy(dtype=bool)
        self._bins = ((keys, value, where), fine.loc[ranked, [*cols, "b", "c"]])
        if self.answers is not None:  # the same counts as histogram(keys, value, where)
            self.answers[("bins", keys, value, where)] = self._bins[1]
        parts = fine[cols].astype(object).where(fine[cols].notna(), "\x00")  # None: a key
        groups = parts.groupby(cols, sort=False, dropna=False)
        first = groups.ngroup().to_numpy()
        frame = fine[cols].iloc[groups.head(1).index].reset_index(drop=True)
        for name, m in measures.items():
            x = pd.to_numeric(fine[name], errors="coerce")
            if isinstance(m, p.Max):
                frame[name] = x.groupby(first).max().to_numpy(dtype=float)
            else:
                frame[name] = x.fillna(0).astype(np.int64).groupby(first).sum().to_numpy()
        return frame

    def _grouped_over(
        self,
        source: str,
        keys: p.Keys,
        measures: Mapping[str, p.Measure],
        where: p.Cond | None = None,
        extra: Sequence[p.Value] = (),
        top: int | None = None,
    ) -> pd.DataFrame:
        """:meth:`grouped` over ``source`` (the source's name, or a subquery of its rows)."""
        select = self.keys(keys) + [f"{self.value(v)} AS x{j}" for j, v in enumerate(extra)]
        n_keys = len(select)
        select += [f"{self.measure(m)} AS {self.q(name)}" for name, m in measures.items()]
        sql = f"SELECT {', '.join(select)} FROM {source} WHERE {self.cond(where)}"
        if n_keys:
            sql += " GROUP BY " + ", ".join(str(i + 1) for i in range(n_keys))
        if top is not None:
            order = [f"{n_keys + 1} DESC", *(f"{i + 1} ASC NULLS LAST" for i in range(n_keys))]
            sql += f" ORDER BY {', '.join(order)} LIMIT {int(top)}"
        frame = _plain(self._fetch(sql))
        for name, m in measures.items():
            if isinstance(m, p.Count | p.SumMicros):
                frame[name] = frame[name].astype(np.int64)
            else:
                frame[name] = frame[name].astype(float)
        return frame

    def ranks(
        self, keys: p.Keys, value: str, where: p.Cond | None, wanted: pd.DataFrame
    ) -> pd.DataFrame:
        """Two passes, both exact: rows counted per group and log-scale bin of the value
        (:data:`BINS_PER_OCTAVE`); then only the bins that hold a wanted rank are read,
        their distinct values counted, and each rank found by its running count."""
        cols = key_columns(len(keys))
        if wanted.empty:
            return wanted.assign(value=np.zeros(0))
        ks = self.keys(keys)
        cond = self.cond(p.All(((where or p.All(())), p.NotNull(value))))
        b = self._bin(self.q(value))
        n = len(ks)
        by = ", ".join(str(i + 1) for i in range(n + 1))
        kept = self.__dict__.pop("_bins", None)
        if kept is not None and kept[0] == (keys, value, where):
            bins = kept[1].reset_index(drop=True)  # counted by the grouped scan before
        else:
            bins = _plain(
                self._fetch(
                    f"SELECT {', '.join([*ks, f'{b} AS b'])}, count(*) AS c "
                    f"FROM {self.src} WHERE {cond} GROUP BY {by}"
                )
            )
        bins["b"] = bins["b"].astype(np.int64)
        bins["c"] = bins["c"].astype(np.int64)
        bins = bins.sort_values([*cols, "b"], na_position="last", kind="stable")
        running = bins.groupby(cols, dropna=False, sort=False)["c"] if cols else bins["c"]
        bins["before"] = running.cumsum() - bins["c"]
        ask = _place(wanted, bins, cols)
        need = ask[[*cols, "b"]].drop_duplicates()
        on = " AND ".join(self.dialect.null_eq.format(a=f"r.{c}", b=f"v.{c}") for c in cols)
        on = f"{on} AND r.rnk = v.b" if on else "r.rnk = v.b"
        inline = self._values(need.rename(columns={"b": "rank"}), keys)
        picked = ", ".join(f"v.{c}" for c in [*cols, "b", "x"])
        group = ", ".join(str(i + 1) for i in range(len(cols) + 2))
        sql = (
            f"WITH v AS (SELECT {', '.join([*ks, f'{b} AS b', f'{self.q(value)} AS x'])} "
            f"FROM {self.src} WHERE {cond} AND {self._in_bins(self.q(value), need['b'])}), "
            f"r AS ({inline}) "
            f"SELECT {picked}, count(*) AS c FROM v JOIN r ON {on} GROUP BY {group}"
        )
        values = _plain(self._fetch(sql))
        values["b"] = values["b"].astype(np.int64)
        values["x"] = values["x"].astype(float)
        values["c"] = values["c"].astype(np.int64)
        return _pick(ask, values, cols, wanted)

    def _bin(self, x: str) -> str:
        """The log-scale bin of a value (values ≤ 0 share one bin, below every other)."""
        return (
            f"CASE WHEN {x} > 0 THEN CAST(floor(log2({x}) * {BINS_PER_OCTAVE}) AS BIGINT) "
            f"ELSE {_LOW_BIN} END"
        )

    def _in_bins(self, x: str, bins: pd.Series) -> str:
        """A cheap test a value may fall in one of ``bins``: its value range, widened a
        little (the bin itself is then compared exactly), so that the second pass
        computes keys and bins only for the few rows near a wanted rank."""
        ranges: list[tuple[float, float]] = []
        for b in sorted({int(v) for v in bins}):
            if b == _LOW_BIN:
                ranges.append((-np.inf, 0.0))
                continue
            lo = 2.0 ** (b / BINS_PER_OCTAVE) * (1 - _WIDEN)
            hi = 2.0 ** ((b + 1) / BINS_PER_OCTAVE) * (1 + _WIDEN)
            if ranges and lo <= ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], hi)
            else:
                ranges.append((lo, hi))
        parts = []
        for lo, hi in ranges:
            upper = f"{x} <= CAST('{hi!r}' AS DOUBLE)"
            parts.append(
                upper if lo == -np.inf else f"({x} >= CAST('{lo!r}' AS DOUBLE) AND {upper})"
            )
        return "(" + (" OR ".join(parts) or "FALSE") + ")"

    def _type(self, key: p.Key | p.Bucket) -> str:
        if isinstance(key, p.Bucket):
            return "BIGINT"
        return {"int": "BIGINT", "bool": "BOOLEAN"}.get(key.kind, self.dialect.string)

    def _values(self, wanted: pd.DataFrame, keys: p.Keys) -> str:
        """``wanted`` as an inline table ``r(k0, k0_na, ..., rnk)`` with explicit types."""
        cols = key_columns(len(keys))
        types = []
        for key in keys:
            types += [self._type(key), self.dialect.string]
        rows = wanted[[*cols, "rank"]].itertuples(index=False, name=None)
        body = ", ".join("(" + ", ".join(_lit(_py(v)) for v in row) + ")" for row in rows)
        names = [*cols, "rnk"]
        casts = ", ".join(
            f"CAST(t.c{i} AS {t}) AS {n}"
            for i, (n, t) in enumerate(zip(names, [*types, "BIGINT"], strict=True))
        )
        aliases = ", ".join(f"c{i}" for i in range(len(names)))
        return f"SELECT {casts} FROM (VALUES {body}) AS t({aliases})"

    def rows(
        self, columns: Sequence[str], where: p.Cond | None = None, limit: int | None = None
    ) -> pd.DataFrame:
        cols = [c for c in columns if self.has(c)]
        names = ", ".join(self.q(c) for c in cols)
        sql = f"SELECT {names} FROM {self.src} WHERE {self.cond(where)}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._typed(self._fetch(sql))

    def repeats(
        self,
        same: Sequence[str],
        within_us: int,
        where: p.Cond | None,
        columns: Sequence[str],
    ) -> pd.DataFrame:
        return _sql_runs.repeats(self, same, within_us, where, columns)

    def extras(
        self,
        same: Sequence[str],
        within_us: int,
        where: p.Cond | None,
        ok: p.Cond,
        keys: p.Keys,
        measures: Mapping[str, p.Measure],
        extra: Sequence[p.Value] = (),
    ) -> pd.DataFrame:
        return _sql_runs.extras(self, same, within_us, where, ok, keys, measures, extra)

    def worst_extras(
        self,
        same: Sequence[str],
        within_us: int,
        where: p.Cond | None,
        ok: p.Cond,
        weight: p.Credit,
        columns: Sequence[str],
        limit: int,
    ) -> pd.DataFrame:
        return _sql_runs.worst_extras(self, same, within_us, where, ok, weight, columns, limit)

    # --- what the report asks for ---------------------------------------------------------
    def time_span(self, column: str, where: p.Cond | None = None) -> tuple[int, int] | None:
        if not self.has(column):
            return None
        t = self.us(column)
        cond = self.cond(p.All(((where or p.All(())), p.NotNull(column))))
        row = self._fetch(f"SELECT min({t}) AS lo, max({t}) AS hi FROM {self.src} WHERE {cond}")
        lo, hi = row.column(0)[0].as_py(), row.column(1)[0].as_py()
        return None if lo is None else (int(lo), int(hi))

    def histogram(self, keys: p.Keys, value: str, where: p.Cond | None) -> pd.DataFrame:
        """The bins a grouped scan counted for :meth:`ranks` when :attr:`answers` kept
        them (same keys, value and condition: the report's latency figures), else a
        query."""
        kept = None if self.answers is None else self.answers.get(("bins", keys, value, where))
        if kept is not None:
            out = kept.reset_index(drop=True)
        else:
            ks = self.keys(keys)
            cond = self.cond(p.All(((where or p.All(())), p.NotNull(value))))
            by = ", ".join(str(i + 1) for i in range(len(ks) + 1))
            out = _plain(
                self._fetch(
                    f"SELECT {', '.join([*ks, f'{self._bin(self.q(value))} AS b'])}, "
                    f"count(*) AS c FROM {self.src} WHERE {cond} GROUP BY {by}"
                )
            )
        out["b"] = out["b"].astype(np.int64)
        out["c"] = out["c"].astype(np.int64)
        cols = [*key_columns(len(keys)), "b"]
        return out.sort_values(cols, na_position="last", kind="stable").reset_index(drop=True)

    def first(
        self,
        columns: Sequence[str],
        where: p.Cond | None,
        order: str,
        limit: int,
        descending: bool = False,
    ) -> pd.DataFrame:
        cols = [c for c in columns if self.has(c)]
        names = ", ".join(self.q(c) for c in cols)
        way = "DESC" if descending else "ASC"
        ties = f", {self.q('task_id')} ASC" if self.has("task_id") else ""
        sql = (
            f"SELECT {names} FROM {self.src} WHERE {self.cond(where)} "
            f"ORDER BY {self.q(order)} {way} NULLS LAST{ties} LIMIT {int(limit)}"
        )
        return self._typed(self._fetch(sql))

    def _typed(self, table: pa.Table) -> pd.DataFrame:
        """Rows as the frame types them (:mod:`veo_notebook.schema`)."""
        df = table.to_pandas(types_mapper=schema.pandas_type)
        types = schema.dtypes()
        for c in df.columns:
            want = types.get(c)
            if want is not None and df[c].dtype != want:
                if isinstance(want, pd.DatetimeTZDtype):
                    df[c] = pd.to_datetime(df[c], utc=True).astype(want)
                else:
                    df[c] = df[c].astype(want)  # type: ignore[call-overload]
        return df


def _place(wanted: pd.DataFrame, bins: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """The bin of each wanted rank: the first whose running count reaches it."""
    out = []
    groups = bins.groupby(cols, dropna=False, sort=False) if cols else [((), bins)]
    by_key = {_key(k): g for k, g in groups}
    for row in wanted.itertuples(index=False):
        part = by_key[_key(tuple(getattr(row, c) for c in cols))]
        reach = part["before"].to_numpy() + part["c"].to_numpy()
        i = int(np.searchsorted(reach, int(row.rank), side="left"))
        out.append((int(part["b"].iloc[i]), int(part["before"].iloc[i])))
    placed = wanted.copy()
    placed["b"] = [b for b, _ in out]
    placed["before"] = [n for _, n in out]
    return placed


def _pick(ask: pd.DataFrame, values: pd.DataFrame, cols: list[str], wanted: pd.DataFrame):
    """Each wanted rank's value from the distinct values of its bin."""
    got = []
    groups = values.groupby([*cols, "b"], dropna=False, sort=False)
    by_key = {_key(k): g.sort_values("x", kind="stable") for k, g in groups}
    for row in ask.itertuples(index=False):
        part = by_key[_key((*(getattr(row, c) for c in cols), row.b))]
        reach = row.before + np.cumsum(part["c"].to_numpy())
        i = int(np.searchsorted(reach, int(row.rank), side="left"))
        got.append(float(part["x"].iloc[i]))
    return wanted.assign(value=got)


def _key(k: object) -> tuple:
    items = k if isinstance(k, tuple) else (k,)
    return tuple(None if (not isinstance(v, str) and pd.isna(v)) else v for v in items)


def _py(value: object) -> object:
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    return value


def _plain(table: pa.Table) -> pd.DataFrame:
    """A result as plain values: keys (``k…``) and anything with a missing value as
    Python objects (None for missing), other numbers as numpy arrays — the event times of
    a Kaplan–Meier curve are a million rows at 20M tasks, 8 bytes a cell, not a Python
    float each."""
    data = {}
    for name in table.column_names:
        col = table.column(name)
        number = pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
        if number and col.null_count == 0 and not name.startswith("k"):
            data[name] = pd.Series(col.to_numpy(), dtype=object if len(col) == 0 else None)
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            data[name] = _strings(col)
        else:
            data[name] = pd.Series(col.to_pylist(), dtype=object)
    return pd.DataFrame(data)


def _strings(col: pa.ChunkedArray) -> pd.Series:
    """A string column as Python objects, each distinct value one object (a key repeats
    across a million rows)."""
    coded = col.combine_chunks().dictionary_encode()
    values = np.array([*coded.dictionary.to_pylist(), None], dtype=object)
    at = coded.indices.fill_null(len(coded.dictionary)).to_numpy(zero_copy_only=False)
    return pd.Series(values[at], dtype=object)
