"""The pandas engine: the aggregates of :mod:`._plan` over an in-memory typed frame (private).

Vectorised numpy over integer group codes (:mod:`veo_notebook.analysis._kernels`): one
pass per measure, no Python loop per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from . import _plan as p
from ._base import (
    EARLIER,
    UNREAD_COLUMN,
    UPGRADE_COLUMN,
    Engine,
    key_columns,
    missing_label_of,
)
from ._sql import _LOW_BIN, BINS_PER_OCTAVE

__all__ = ["PandasEngine"]

_US = 1_000_000


def _kernels():  # type: ignore[no-untyped-def]
    """The analysis kernels, imported on first use (analysis imports this engine)."""
    from ..analysis import _kernels as kernels

    return kernels


def _micros(s: pd.Series) -> np.ndarray:
    """A time column as float µs since the epoch (NaN where missing): exact below 2^53."""
    values = s.to_numpy(dtype="datetime64[us]", na_value=np.datetime64("NaT"))
    out = values.view(np.int64).astype(float)
    out[np.isnat(values)] = np.nan
    return out


class PandasEngine(Engine):
    """Aggregates computed by numpy over a pandas DataFrame (the typed frame)."""

    name = "pandas"

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df

    # --- the basics ---------------------------------------------------------------
    def columns(self) -> list[str]:
        return [str(c) for c in self.df.columns]

    def count(self) -> int:
        return len(self.df)

    def cond(self, c: p.Cond | None) -> np.ndarray:
        """The rows where ``c`` holds (all rows for None)."""
        df = self.df
        if c is None:
            return np.ones(len(df), dtype=bool)
        if isinstance(c, p.In):
            col = df[c.column]
            if isinstance(col.dtype, pd.CategoricalDtype):
                cats = list(col.cat.categories)
                wanted = [cats.index(v) for v in c.values if v in cats]
                return np.isin(col.cat.codes.to_numpy(), wanted)
            return col.isin(list(c.values)).to_numpy(dtype=bool, na_value=False)
        if isinstance(c, p.NotNull):
            return df[c.column].notna().to_numpy(dtype=bool)
        if isinstance(c, p.TimeBefore):
            t = _micros(df[c.column])
            with np.errstate(invalid="ignore"):
                return t < c.micros
        if isinstance(c, p.All):
            out = np.ones(len(df), dtype=bool)
            for part in c.parts:
                out &= self.cond(part)
            return out
        if isinstance(c, p.Any):
            out = np.zeros(len(df), dtype=bool)
            for part in c.parts:
                out |= self.cond(part)
            return out
        if isinstance(c, p.Not):
            return ~self.cond(c.part)
        raise TypeError(f"not a condition: {c!r}")

    def value(self, v: p.Value) -> pd.Series:
        """A column as it is, or a time column as µs (Int64), on a fresh RangeIndex."""
        if isinstance(v, p.Micros):
            t = _micros(self.df[v.column])
            ok = ~np.isnan(t)
            us = pd.array(np.where(ok, t, 0).astype(np.int64), dtype="Int64")
            us[~ok] = pd.NA
            return pd.Series(us)
        return self.df[v].reset_index(drop=True)

    # --- keys -----------------------------------------------------------------------
    def _key_series(self, keys: p.Keys) -> list[tuple[pd.Series, pd.Series]]:
        """(value, missing label) per key, as object Series (None where absent)."""
        df = self.df
        unread = df[UNREAD_COLUMN].notna().to_numpy(bool) if UNREAD_COLUMN in df else None
        upgrade = None
        out = []
        for key in keys:
            if isinstance(key, p.Bucket):
                t = _micros(df[key.column])
                ok = ~np.isnan(t)
                b = np.zeros(len(df), dtype=np.int64)
                if key.period is not None:
                    b[ok] = _period_starts(df[key.column][ok], key.period)
                else:
                    tt = t[ok].astype(np.int64)
                    b[ok] = tt - (tt - key.offset) % key.step
                value = pd.Series(pd.array(b, dtype="Int64")).where(ok)
                missing = ~ok
            elif key.kind == "work":  # generation / upgrade, from the task type
                up = df[key.column].isin(_upgrade_values()).to_numpy(bool, na_value=False)
                value = pd.Series(np.where(up, key.labels_work[1], key.labels_work[0]))
                value = value.astype(object)
                missing = np.zeros(len(df), dtype=bool)
            else:
                if key.column not in df.columns:
                    raise InputError(f"by: no column {key.column!r} in the frame")
                col = df[key.column]
                missing = col.isna().to_numpy(dtype=bool)
                value = pd.Series(col.to_numpy(dtype=object), dtype=object)
                value[missing] = None
            label = np.full(len(df), None, dtype=object)
            if key.labels is not None and missing.any():
                if upgrade is None:
                    upgrade = (
                        df[UPGRADE_COLUMN].isin(_upgrade_values()).to_numpy(bool, na_value=False)
                        if UPGRADE_COLUMN in df
                        else np.zeros(len(df), dtype=bool)
                    )
                rd = unread if unread is not None else np.zeros(len(df), dtype=bool)
                for (u, g), text in missing_label_of(key.labels).items():
                    label[missing & (rd == u) & (upgrade == g)] = text
            out.append((value, pd.Series(label, dtype=object)))
        return out

    def _all_codes(self, keys: p.Keys) -> tuple[np.ndarray, pd.DataFrame]:
        """Group code of every row and the groups' key columns (cached per keys)."""
        cache = self.__dict__.setdefault("_code_cache", {})
        if keys not in cache:
            series: list[pd.Series] = []
            for value, label in self._key_series(keys):
                series += [value, label]
            codes, index = _kernels().group_codes(series, key_columns(len(keys)))
            cache[keys] = (codes, _index_frame(index, key_columns(len(keys))))
        return cache[keys]

    def _codes(
        self, keys: p.Keys, mask: np.ndarray, extra: Sequence[p.Value] = ()
    ) -> tuple[np.ndarray, pd.DataFrame]:
        """Group code of each row in ``mask`` and the groups' key columns."""
        n = int(mask.sum())
        if not keys and not extra:
            return np.zeros(n, dtype=np.intp), pd.DataFrame(index=[0])
        series: list[pd.Series] = []
        names: list[str] = []
        frame = pd.DataFrame()
        if keys:
            all_codes, frame = self._all_codes(keys)
            series.append(pd.Series(all_codes[mask]))
            names.append("_g")
        for j, v in enumerate(extra):
            series.append(self.value(v)[mask].reset_index(drop=True))
            names.append(f"x{j}")
        codes, index = _kernels().group_codes(series, names)
        out = _index_frame(index, names)
        if keys:
            g = out.pop("_g").to_numpy(dtype=np.intp)
            out = pd.concat([frame.iloc[g].reset_index(drop=True), out], axis=1)
        return codes, out

    # --- aggregates -----------------------------------------------------------------
    def grouped(
        self,
        keys: p.Keys,
        measures: Mapping[str, p.Measure],
        where: p.Cond | None = None,
        extra: Sequence[p.Value] = (),
        top: int | None = None,
    ) -> pd.DataFrame:
        mask = self.cond(where)
        codes, frame = self._codes(keys, mask, extra)
        g = len(frame)
        for name, m in measures.items():
            sel = self.cond(m.where)[mask] if m.where is not None else None
            frame[name] = self._measure(m, codes, mask, sel, g)
        if top is not None and len(frame):
            groups = [c for c in frame.columns if c not in measures]
            first = next(iter(measures))
            frame = frame.sort_values(groups, na_position="last", kind="stable")
            frame = frame.sort_values(first, ascending=False, kind="stable").head(top)
            frame = frame.reset_index(drop=True)
        return frame

    def _measure(
        self, m: p.Measure, codes: np.ndarray, mask: np.ndarray, sel: np.ndarray | None, g: int
    ) -> np.ndarray:
        c = codes if sel is None else codes[sel]
        if isinstance(m, p.Count):
            return np.bincount(c, minlength=g).astype(np.int64)
        if isinstance(m, p.Max):
            x = self.value(m.value).to_numpy(dtype=float, na_value=np.nan)[mask]
            x = x if sel is None else x[sel]
            ok = ~np.isnan(x)
            out = np.full(g, np.nan)
            if ok.any():
                best = pd.Series(x[ok]).groupby(c[ok]).max()
                out[best.index.to_numpy()] = best.to_numpy()
            return out
        x = self.df[m.column].to_numpy(dtype=float, na_value=np.nan)[mask]
        x = x if sel is None else x[sel]
        ok = ~np.isnan(x)
        if isinstance(m, p.SumMicros):
            us = np.rint(x[ok] * _US).astype(np.int64)
            total = pd.Series(us).groupby(c[ok]).sum()
            out_i = np.zeros(g, dtype=np.int64)
            out_i[total.index.to_numpy()] = total.to_numpy()
            return out_i
        return np.bincount(c[ok], weights=x[ok], minlength=g)

    def ranks(
        self, keys: p.Keys, value: str, where: p.Cond | None, wanted: pd.DataFrame
    ) -> pd.DataFrame:
        mask = self.cond(where)
        codes, frame = self._codes(keys, mask)
        x = self.df[value].to_numpy(dtype=float, na_value=np.nan)[mask]
        xs, starts, _counts = _kernels().grouped_sort_values(x, codes, len(frame))
        frame["_g"] = np.arange(len(frame))
        cols = key_columns(len(keys))
        hit = wanted.merge(frame, on=cols, how="inner") if cols else wanted.assign(_g=0)
        pos = starts[hit["_g"].to_numpy()] + hit["rank"].to_numpy(dtype=np.int64) - 1
        return hit.drop(columns="_g").assign(value=xs[pos])

    def rows(
        self,
        columns: Sequence[str],
        where: p.Cond | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        cols = [c for c in columns if c in self.df.columns]
        out = self.df.loc[self.cond(where), cols]
        return out if limit is None else out.head(limit)

    def repeats(
        self,
        same: Sequence[str],
        within_us: int,
        where: p.Cond | None,
        columns: Sequence[str],
    ) -> pd.DataFrame:
        df = self.df
        chosen = self._near(same, within_us * 1000, where)
        return df.loc[chosen, [c for c in columns if c in df.columns]]

    def _near(self, same: Sequence[str], within_ns: int, where: p.Cond | None) -> np.ndarray:
        """The rows (where ``where`` holds, created) with another row of equal ``same``
        values created at most ``within_ns`` apart."""
        df = self.df
        mask = self.cond(p.All(((where or p.All(())), p.NotNull("create_time"))))
        pos = np.flatnonzero(mask)
        group = row_codes(df, [c for c in same if c in df.columns])[pos]
        t = _nanos(df["create_time"])[pos]
        order = np.lexsort((pos, t, group))
        g, ts = group[order], t[order]
        near = (g[1:] == g[:-1]) & (ts[1:] - ts[:-1] <= within_ns)
        keep = np.zeros(len(order), dtype=bool)
        keep[1:] |= near
        keep[:-1] |= near
        chosen = np.zeros(len(df), dtype=bool)
        chosen[pos[order][keep]] = True
        return chosen

    def _run_rows(
        self, same: Sequence[str], within: int, where: p.Cond | None, ok: p.Cond
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rows near a repeat of their request, sorted within it (time, task id), and
        :func:`run_flags` of them, with their creation times in ns."""
        sub = self.df.loc[self._near(same, within, where)]
        order = pd.DataFrame(
            {
                "g": row_codes(sub, [c for c in same if c in sub.columns]),
                "t": _nanos(sub["create_time"]),
                "id": sub["task_id"].to_numpy(dtype=object, na_value=None),
            }
        ).sort_values(["g", "t", "id"], kind="stable", na_position="last")
        at = order.index.to_numpy()
        t = order["t"].to_numpy()
        flags = run_flags(order["g"].to_numpy(), t, within, PandasEngine(sub).cond(ok)[at])
        return sub.iloc[at], *flags, t

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
        rows, repeat, _first, earlier, _t = self._run_rows(same, within_us * 1000, where, ok)
        rows = rows[repeat].assign(**{EARLIER: earlier[repeat]})
        return PandasEngine(rows).grouped(keys, measures, None, (*extra, EARLIER))

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
        rows, repeat, first, earlier, t = self._run_rows(same, within_us * 1000, where, ok)
        credit = PandasEngine(rows).credit(weight)
        wasted = np.where(earlier, np.nan_to_num(credit), 0.0)
        ids = rows["task_id"].to_numpy(dtype=object, na_value=None)
        out = rows[[c for c in columns if c in rows.columns]].assign(
            veo_first_id=ids[first],
            veo_first_t=t[first] // 1000,
            veo_credit=credit,
            veo_wasted=wasted,
            _t=t,
            _id=ids,
        )[repeat]
        out = out.sort_values(
            ["veo_wasted", "_t", "_id"],
            ascending=[False, True, True],
            kind="stable",
            na_position="last",
        )
        return out.drop(columns=["_t", "_id"]).head(limit).reset_index(drop=True)

    def credit(self, c: p.Credit) -> np.ndarray:
        """A :class:`._plan.Credit` per row (NaN where none)."""
        df, n = self.df, len(self.df)
        out = np.full(n, np.nan)
        if c.table and n:
            cells = [
                df[k].astype(object).where(df[k].notna(), None)
                if k in df.columns
                else pd.Series([None] * n, index=df.index)
                for k in c.keys
            ]
            table = {tuple(_plain_key(v) for v in values): number for values, number in c.table}
            out = (
                np.array(
                    [
                        table.get(tuple(_plain_key(v) for v in row), np.nan)
                        for row in zip(*cells, strict=True)
                    ],
                    dtype=float,
                )
                if c.keys
                else np.full(n, float(c.table[0][1]))
            )
        if c.column is not None and c.column in df.columns:
            own = df[c.column].to_numpy(dtype=float, na_value=np.nan)
            out = np.where(np.isnan(own), out, own)
        return out

    # --- what the report asks for ---------------------------------------------------------
    def subset(self, where: p.Cond) -> PandasEngine:
        return PandasEngine(self.df.loc[self.cond(where)])

    def time_span(self, column: str, where: p.Cond | None = None) -> tuple[int, int] | None:
        if column not in self.df.columns:
            return None
        t = _micros(self.df[column])[self.cond(where)]
        t = t[~np.isnan(t)]
        return (int(t.min()), int(t.max())) if len(t) else None

    def histogram(self, keys: p.Keys, value: str, where: p.Cond | None) -> pd.DataFrame:
        mask = self.cond(p.All(((where or p.All(())), p.NotNull(value))))
        codes, frame = self._codes(keys, mask)
        x = self.df[value].to_numpy(dtype=float, na_value=np.nan)[mask]
        b = np.full(len(x), _LOW_BIN, dtype=np.int64)
        pos = x > 0
        b[pos] = np.floor(np.log2(x[pos]) * BINS_PER_OCTAVE).astype(np.int64)
        counts = pd.DataFrame({"_g": codes, "b": b}).value_counts(sort=False).reset_index()
        g = counts["_g"].to_numpy(dtype=np.intp)
        out = frame.iloc[g].reset_index(drop=True) if keys else pd.DataFrame(index=g)
        out = out.reset_index(drop=True).assign(
            b=counts["b"].to_numpy(np.int64), c=counts["count"].to_numpy(np.int64)
        )
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
        cols = [c for c in columns if c in self.df.columns]
        rows = self.df.loc[self.cond(where)]
        by = [order, "task_id"] if "task_id" in rows.columns else [order]
        rows = rows.sort_values(by, ascending=[not descending, True][: len(by)], kind="stable")
        return rows[cols].head(limit).reset_index(drop=True)


def _plain_key(value: object) -> object:
    """A key cell comparable with the plain values an engine hands back (None: missing)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    return value.item() if isinstance(value, np.generic) else value


def _nanos(times: pd.Series) -> np.ndarray:
    return times.to_numpy(dtype="datetime64[ns]").view(np.int64)


def run_flags(
    group: np.ndarray, t: np.ndarray, within: int, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of rows sorted by (group, time, tie-break): whether each row repeats the one
    before (same group, at most ``within`` later), the position of its run's first row,
    and whether an earlier row of its run is ``ok``. The one rule of a duplicate
    submission's run, for the frame and for the pandas engine."""
    repeat = np.zeros(len(group), dtype=bool)
    repeat[1:] = (group[1:] == group[:-1]) & (t[1:] - t[:-1] <= within)
    run = np.cumsum(~repeat) - 1
    starts = np.flatnonzero(~repeat)
    good = ok.astype(np.int64)
    before = np.cumsum(good) - good
    return repeat, starts[run], (before - before[starts][run]) > 0


_LIST_SEP = "\x1f"  # joins the items of a list into one key (a character no URL holds)
_MAX_CODE = 2**62  # combined codes stay below this (int64)


def row_codes(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """One integer per row, equal for rows whose ``columns`` are all equal (NA = NA).

    Like :func:`~veo_notebook.analysis._kernels.group_codes` without the group index,
    compacted whenever the mixed-radix code could overflow (prompts, seeds and image
    URLs have many values each); list columns compare item by item.
    """
    combined = np.zeros(len(df), dtype=np.int64)
    size = 1
    for name in columns:
        s = df[name]
        if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_list(s.dtype.pyarrow_dtype):
            joined = pc.fill_null(pc.binary_join(pa.array(s.array), _LIST_SEP), "")
            s = pd.Series(joined, index=s.index, dtype=pd.ArrowDtype(pa.string()))
        elif s.dtype == object:  # lists from outside the schema: compare their text
            s = s.astype("string")
        codes, uniques = pd.factorize(s, use_na_sentinel=False)
        radix = max(len(uniques), 1)
        if size * radix >= _MAX_CODE:
            combined, seen = pd.factorize(combined)
            size = max(len(seen), 1)
        combined = combined * radix + codes
        size *= radix
    return combined


def _period_starts(times: pd.Series, period: str) -> np.ndarray:
    """Start of the calendar period of each time (UTC), in µs."""
    naive = times.dt.tz_convert("UTC").dt.tz_localize(None)
    starts = naive.dt.to_period(period).dt.start_time
    return starts.to_numpy(dtype="datetime64[us]").view(np.int64)


def _index_frame(index: pd.Index, names: list[str]) -> pd.DataFrame:
    """The groups of :func:`~veo_notebook.analysis._kernels.group_codes` as plain columns."""
    if isinstance(index, pd.MultiIndex):
        frame = index.to_frame(index=False)
    else:
        frame = pd.DataFrame({names[0]: np.asarray(index, dtype=object)})
    return frame.astype(object).where(frame.notna(), None)


def _upgrade_values() -> list[str]:
    from ..fmt import UPGRADE_TYPES

    return sorted(UPGRADE_TYPES)
