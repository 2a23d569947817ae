"""The status viewer's table model: filter, sort and page a typed frame in O(page) per view.

The costly work is done once per frame (factorised codes, time stamps as integers, sort
orders built on first use) and once per filter change (one boolean mask per filter,
by table look-up on integer codes). Showing a page then walks the cached sort order only
as far as the page needs, so a million-row frame renders about as fast as a thousand.

>>> import pandas as pd
>>> from veo_notebook import schema
>>> df = pd.DataFrame({"task_id": ["a", "b"], "status": ["success", "failed"]})
>>> m = TableModel(schema.enforce(df))
>>> m.set_facet("status", ["failed"])
>>> m.count(), m.page_positions(0, 10, "created", descending=True).tolist()
(1, [1])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from .. import schema
from ..analysis.family import family_facet

__all__ = ["FACETS", "FAMILY", "SORT_KEYS", "Facet", "Filters", "TableModel", "facet_values"]


#: The family facet: not a frame column but each row's family by its final form
#: (``analysis.family.family_facet``: has 4K / has 1080p / extended / base only / no video).
FAMILY = "family"


def facet_values(df: pd.DataFrame, column: str) -> pd.Series:
    """The values a facet filters on: the frame's column, or the derived family facet."""
    return family_facet(df) if column == FAMILY else df[column]


@dataclass(frozen=True)
class Facet:
    """A filterable categorical-like column: the model masks it, the widgets show it."""

    column: str
    label: str  # the filter widget's description
    width: str = "190px"  # the filter widget's width (long values need more)


#: THE facet list: adding an entry adds a filter (model, widget, CSS class ``veo-filter-*``).
FACETS = (
    Facet("status", "status"),
    Facet("model", "model"),
    Facet("task_type", "task type"),
    Facet("generation_type", "gen. type", width="330px"),
    Facet(FAMILY, "family"),
)
_FACET_COLUMNS = frozenset(f.column for f in FACETS)
#: Sort keys offered by the viewer → column.
SORT_KEYS = {"created": "create_time", "latency": "latency_s", "status": "status"}

_NAT = np.iinfo(np.int64).min
#: A search whose pair signatures leave more candidates than this reads the joined text
#: once instead (checking each candidate in Python costs more past it).
_PREFILTER_MAX_CANDIDATES = 20_000
#: A blob scan stops collecting hits past max(this, 1/8 of the rows) and uses the
#: vectorised per-row scan (a needle that common is cheaper that way).
_SCAN_MIN_HITS = 1000
_SCAN_HIT_SHARE = 8
#: Values longer than this set nearly every signature bit: no use as a pre-filter.
_SIGNATURE_MAX_WIDTH = 128
#: Up to this many chosen facet values, masks are built by comparing small ints (faster
#: than a look-up table); more use the table.
_FACET_COMPARE_MAX = 8
#: A filter keeping at most 1/this of the rows sorts its matches by rank instead of
#: walking the whole cached order.
_FEW_MATCHES_SHARE = 64


@dataclass
class _Facet:
    codes: np.ndarray  # int per row, -1 for NA
    labels: list[str]  # label of each code
    _groups: tuple[np.ndarray, np.ndarray] | None = None

    def rows(self, codes: list[int]) -> np.ndarray:
        """Positions of the rows holding any of ``codes``: O(matches) after one argsort."""
        if self._groups is None:
            order = np.argsort(self.codes, kind="stable")
            bounds = np.searchsorted(self.codes[order], np.arange(-1, len(self.labels) + 1))
            self._groups = order, bounds  # rows of code c: order[bounds[c + 1]:bounds[c + 2]]
        order, bounds = self._groups
        return np.concatenate([order[bounds[c + 1] : bounds[c + 2]] for c in codes])


def _facet(s: pd.Series) -> _Facet:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return _Facet(s.cat.codes.to_numpy(), [str(c) for c in s.cat.categories])
    codes, uniques = pd.factorize(s, sort=True, use_na_sentinel=True)
    small = np.int8 if len(uniques) < 127 else np.int16 if len(uniques) < 32767 else np.int32
    return _Facet(np.asarray(codes).astype(small), [str(u) for u in uniques])


def _rows_with_codes(facet: _Facet, hits: list[int], mask: np.ndarray) -> np.ndarray:
    """``mask`` or'ed with the rows whose code is one of ``hits`` (in place when it can)."""
    if len(hits) <= _FACET_COMPARE_MAX:
        for i in hits:
            mask |= facet.codes == i
        return mask
    lut = np.zeros(len(facet.labels) + 1, dtype=bool)  # last slot: code -1 (NA)
    lut[hits] = True
    return mask | lut[facet.codes.astype(np.intp)]


def _patched(facet: _Facet, column: pd.Series, rows: np.ndarray) -> _Facet | None:
    """``facet`` with the codes of ``rows`` read again from ``column``; None when a value
    is new to it (the caller rebuilds: labels stay sorted, codes stay small)."""
    values = column.iloc[rows]
    codes = facet.codes.copy()
    if isinstance(column.dtype, pd.CategoricalDtype):  # fixed categories: the codes say it
        codes[rows] = values.cat.codes.to_numpy()
        return _Facet(codes, facet.labels)
    where = {label: i for i, label in enumerate(facet.labels)}
    new = [-1 if v is None or v is pd.NA else where.get(str(v)) for v in values.tolist()]
    if any(c is None for c in new):
        return None
    codes[rows] = np.asarray(new, dtype=codes.dtype)
    return _Facet(codes, facet.labels)


def _family_patched(facet: _Facet, df: pd.DataFrame, rows: np.ndarray) -> _Facet:
    """The family facet with the families of ``rows`` read again (every member of each:
    one member's new state can change its family's form), found by ``root_task_id``."""
    roots = df["root_task_id"] if "root_task_id" in df.columns else None
    if roots is None or roots.iloc[rows].isna().any():
        return _facet(family_facet(df))
    members = np.flatnonzero(roots.isin(roots.iloc[rows].unique()).to_numpy(bool, na_value=False))
    codes = facet.codes.copy()
    codes[members] = family_facet(df.iloc[members]).cat.codes.to_numpy()
    return _Facet(codes, facet.labels)


def _time_ints(s: pd.Series) -> tuple[np.ndarray, str]:
    """Time stamps as int64 in the column's unit (NaT → int64 min) and that unit."""
    arr = s.array
    return np.asarray(arr.asi8), str(arr.unit)  # type: ignore[attr-defined]


class _TextIndex:
    """Case-insensitive substring search over many strings, through one joined text.

    ``str.find`` over one blob runs at memory speed, so a selective needle costs a few
    milliseconds on a million task ids, where a per-row scan costs a few hundred. For
    ASCII values (task ids) a 128-bit signature of each value's character pairs is a
    vectorised pre-filter first: only rows holding every pair of the needle are checked,
    so a search reads 16 bytes a row instead of the whole text. A needle that matches
    most rows (or holds a newline) falls back to the vectorised scan.
    """

    def __init__(self, values: pd.Series) -> None:
        self.values = values
        texts = values.fillna("").astype(str).str.lower().tolist()
        self.blob = "\n".join(texts)
        lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
        self.starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(texts) else lengths
        self.ends = self.starts + lengths - 1
        self.sigs = _pair_signatures(texts) if self.blob.isascii() else None
        self._buf = np.empty(len(texts), dtype=np.uint64)

    def search(self, needle: str) -> np.ndarray:
        """Boolean mask of the values containing ``needle`` (any case; NA never matches)."""
        n = len(self.values)
        low = needle.lower()
        if low and "\n" not in low:
            rows = self._prefiltered(low)
            if rows is None:
                rows = self._found(low, limit=max(_SCAN_MIN_HITS, n // _SCAN_HIT_SHARE))
            if rows is not None:
                mask = np.zeros(n, dtype=bool)
                mask[rows] = True  # NA is "" in the blob: a needle never lands there
                return mask
        hit = self.values.str.contains(needle, case=False, regex=False)
        return hit.fillna(False).to_numpy(dtype=bool)

    def _prefiltered(self, low: str) -> np.ndarray | None:
        if self.sigs is None or len(low) < 3 or not low.isascii():
            return None
        sig = _pair_signatures([low])
        if sig is None:
            return None
        (w0,), (w1,) = sig
        s0, s1 = self.sigs
        if w0:  # one pass over the first word, in a reused buffer; the second on survivors
            np.bitwise_and(s0, w0, out=self._buf)
            cand = np.flatnonzero(self._buf == w0)
            cand = cand[(s1[cand] & w1) == w1]
        else:
            np.bitwise_and(s1, w1, out=self._buf)
            cand = np.flatnonzero(self._buf == w1)
        if len(cand) > _PREFILTER_MAX_CANDIDATES:  # unselective: one pass over the blob
            return None
        blob, starts, ends = self.blob, self.starts, self.ends
        return np.array([i for i in cand if low in blob[starts[i] : ends[i]]], dtype=np.int64)

    def _found(self, low: str, limit: int) -> np.ndarray | None:
        hits: list[int] = []
        i = self.blob.find(low)
        while i != -1 and len(hits) <= limit:
            hits.append(i)
            i = self.blob.find(low, i + 1)
        if len(hits) > limit:
            return None
        return np.searchsorted(self.starts, hits, side="right") - 1


def _pair_signatures(texts: list[str], chunk: int = 65536) -> np.ndarray | None:
    """Two uint64 words per ASCII text (a 128-bit set of hashed adjacent character pairs).

    Returned as shape ``(2, n)`` so that each word is one contiguous array.
    """
    width = max((len(t) for t in texts), default=0)
    if width > _SIGNATURE_MAX_WIDTH:
        return None
    out = np.zeros((2, len(texts)), dtype=np.uint64)
    if width < 2:
        return out
    zero, one = np.uint64(0), np.uint64(1)
    for lo in range(0, len(texts), chunk):
        raw = np.array(texts[lo : lo + chunk], dtype=f"S{width}")
        m = raw.view(np.uint8).reshape(len(raw), width)
        a, b = m[:, :-1].astype(np.uint64), m[:, 1:].astype(np.uint64)
        h = (((a << np.uint64(8)) | b) * np.uint64(2654435761) >> np.uint64(13)) & np.uint64(127)
        bit = one << (h & np.uint64(63))
        low_word = (b != 0) & (h < 64)
        high_word = (b != 0) & (h >= 64)
        out[0, lo : lo + len(raw)] = np.bitwise_or.reduce(np.where(low_word, bit, zero), axis=1)
        out[1, lo : lo + len(raw)] = np.bitwise_or.reduce(np.where(high_word, bit, zero), axis=1)
    return out


class Filters:
    """The filter setters both table models share (in memory, and over a dataset): each
    remembers what it was given, and a model says how a filter applies (``_apply``)."""

    _spec: dict[str, object]

    def set_facet(self, name: str, values: Iterable[str] | None) -> None:
        """Keep rows whose ``name`` is one of ``values`` (empty / None: no filter)."""
        self._set(name, tuple(values or ()))

    def set_created_range(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> None:
        """Keep rows created in ``[start, end]`` (UTC; either bound may be None)."""
        self._set("created", (start, end))

    def set_text(self, text: str | None) -> None:
        """Keep rows whose task id, prompt or error message contains ``text`` (any case)."""
        self._set("text", (text or "").strip())

    def adopt_spec(self, other: Filters) -> None:
        """Apply the filters of ``other`` that differ from this model's."""
        for name, value in other._spec.items():
            if self._spec.get(name) != value:
                self._set(name, value)

    def _set(self, name: str, value: object) -> None:
        if self._applied(name) and self._spec.get(name) == value:
            return  # unchanged: the viewer re-reads every control on any change
        self._spec[name] = value
        self._apply(name, value)

    def _applied(self, name: str) -> bool:
        raise NotImplementedError

    def _apply(self, name: str, value: object) -> None:
        raise NotImplementedError


class TableModel(Filters):
    """Filter / sort / page state over one typed frame (see the module docstring)."""

    def __init__(self, df: pd.DataFrame) -> None:
        self._spec: dict[str, object] = {}
        self.set_frame(df)

    # -- data -------------------------------------------------------------------------
    def set_frame(self, df: pd.DataFrame) -> None:
        """Take a new frame (same filters kept, masks and sort orders rebuilt)."""
        self.df = df.reset_index(drop=True)
        self.n = len(self.df)
        self.facets = {f.column: _facet(facet_values(self.df, f.column)) for f in FACETS}
        self._created, self._created_unit = _time_ints(self.df["create_time"])
        self._orders: dict[tuple[str, bool], np.ndarray] = {}
        self._ranks: dict[tuple[str, bool], np.ndarray] = {}
        # on first search: distinct prompts / messages, and the task-id text index
        self._texts: dict[str, tuple[_Facet, _TextIndex]] = {}
        self._indexes: dict[str, _TextIndex] = {}
        self._masks: dict[str, np.ndarray | None] = {}
        self._mask: np.ndarray | None = None
        self._count = self.n
        self._pending: np.ndarray | None = None
        for name, value in list(self._spec.items()):
            self._set(name, value)

    def with_frame(self, df: pd.DataFrame) -> TableModel:
        """A new model over ``df`` with this model's filters (this one is left as is)."""
        new = TableModel.__new__(TableModel)
        new._spec = dict(self._spec)
        new.set_frame(df)
        return new

    def with_rows(self, df: pd.DataFrame, rows: np.ndarray) -> TableModel:
        """A new model over ``df``, which differs from this model's frame only at positions
        ``rows`` (what a refresh changed): facet codes, times and search state are patched
        for those rows, sort orders kept where their key did not change, filters re-applied.
        Equal to ``with_frame(df)``, at the cost of the changed rows instead of the frame.
        """
        if len(df) != self.n:
            return self.with_frame(df)
        new = TableModel.__new__(TableModel)
        new._spec = dict(self._spec)
        new.df = df.reset_index(drop=True)
        new.n = self.n
        rows = np.asarray(rows, dtype=np.intp)
        new.facets = {}
        for name, facet in self.facets.items():
            if name == FAMILY:  # a refreshed row can change its whole family's form
                new.facets[name] = _family_patched(facet, new.df, rows)
                continue
            patched = _patched(facet, new.df[name], rows)
            new.facets[name] = patched if patched is not None else _facet(new.df[name])
        new._created, new._created_unit = self._created.copy(), self._created_unit
        new._created[rows] = _time_ints(new.df["create_time"].iloc[rows])[0]
        unchanged = {
            "created": np.array_equal(new._created[rows], self._created[rows]),
            "status": np.array_equal(
                new.facets["status"].codes[rows], self.facets["status"].codes[rows]
            ),
            "latency": self.df["latency_s"].iloc[rows].equals(new.df["latency_s"].iloc[rows]),
        }
        new._orders = {k: v for k, v in self._orders.items() if unchanged.get(k[0])}
        new._ranks = {k: v for k, v in self._ranks.items() if unchanged.get(k[0])}
        new._indexes = dict(self._indexes)  # task ids never change in place
        new._texts = {}
        for col, (facet, index) in self._texts.items():
            patched = _patched(facet, new.df[col], rows)
            if patched is not None:  # a new prompt or message: rebuilt on the next search
                new._texts[col] = (patched, index)
        new._masks, new._mask, new._count = {}, None, new.n
        new._pending = None
        for name, value in list(new._spec.items()):
            new._set(name, value)
        return new

    def options(self, facet: str) -> list[str]:
        """The values a facet filter can take (labels of its codes)."""
        return list(self.facets[facet].labels)

    def _applied(self, name: str) -> bool:
        return name in self._masks

    def _apply(self, name: str, value: object) -> None:
        self._masks[name] = self._build_mask(name, value)
        masks = [m for m in self._masks.values() if m is not None]
        if not masks:
            self._mask, self._count = None, self.n
            return
        mask = masks[0].copy() if len(masks) > 1 else masks[0]
        for m in masks[1:]:
            np.logical_and(mask, m, out=mask)
        self._mask, self._count = mask, int(np.count_nonzero(mask))

    def _build_mask(self, name: str, value: object) -> np.ndarray | None:
        if name in _FACET_COLUMNS:
            chosen = set(cast("tuple[str, ...]", value))
            if not chosen:
                return None
            facet = self.facets[name]
            hits = [i for i, label in enumerate(facet.labels) if label in chosen]
            return _rows_with_codes(facet, hits, np.zeros(self.n, dtype=bool))
        if name == "created":
            start, end = cast("tuple[pd.Timestamp | None, pd.Timestamp | None]", value)
            if start is None and end is None:
                return None
            vals = self._created
            mask = vals != _NAT
            if start is not None:
                mask &= vals >= _as_int(start, self._created_unit)
            if end is not None:
                mask &= vals <= _as_int(end, self._created_unit)
            return mask
        if name == "text":
            if not value:
                return None
            needle = str(value)
            mask = self._text_index("task_id").search(needle)
            for col in ("prompt", "error_message"):  # repetitive: search the distinct values
                facet, index = self._text_facet(col)
                found = np.flatnonzero(index.search(needle)).tolist()
                if found:  # few distinct values match: mark their rows, not scan every row
                    mask[facet.rows(found)] = True
            return mask
        raise KeyError(name)

    def _text_facet(self, col: str) -> tuple[_Facet, _TextIndex]:
        if col not in self._texts:
            facet = _facet(self.df[col])
            labels = pd.Series(facet.labels, dtype="string[pyarrow]")
            self._texts[col] = (facet, _TextIndex(labels))
        return self._texts[col]

    def _text_index(self, col: str) -> _TextIndex:
        if col not in self._indexes:
            self._indexes[col] = _TextIndex(self.df[col])
        return self._indexes[col]

    def mask(self) -> np.ndarray | None:
        """The combined filter mask (None when no filter is active)."""
        return self._mask

    def count(self) -> int:
        """Rows matching every active filter."""
        return self._count

    # -- sort and page ----------------------------------------------------------------
    def order(self, by: str, descending: bool) -> np.ndarray:
        """Row positions sorted by ``by`` (missing values last either way); cached."""
        key = (by, descending)
        if key not in self._orders:
            if by == "created":
                vals, missing = self._created, self._created == _NAT
            elif by == "latency":
                vals = self.df["latency_s"].to_numpy(dtype="float64", na_value=np.nan)
                missing = np.isnan(vals)
            elif by == "status":
                vals = self.facets["status"].codes.astype(np.int64)
                missing = vals < 0
            else:
                raise KeyError(by)
            present = np.flatnonzero(~missing)
            keys = vals[present]
            if descending:
                keys = -keys
            ranked = present[np.argsort(keys, kind="stable")]
            self._orders[key] = np.concatenate([ranked, np.flatnonzero(missing)])
        return self._orders[key]

    def page_positions(self, page: int, page_size: int, by: str, descending: bool) -> np.ndarray:
        """Positions of the rows on ``page`` (0-based) of the filtered, sorted view."""
        start, stop = page * page_size, (page + 1) * page_size
        order = self.order(by, descending)
        mask = self._mask
        if mask is None:
            return order[start:stop]
        if self._count == 0:
            return order[:0]
        if self._count * _FEW_MATCHES_SHARE <= self.n:  # few: sort them by rank in the order
            pos = np.flatnonzero(mask)
            return pos[np.argsort(self._rank(by, descending)[pos], kind="stable")][start:stop]
        # Walk the sort order in growing chunks until the page is covered: sized from the
        # match rate, one chunk usually suffices, so the cost follows the page, not n.
        chunk = max(1024, int(stop * self.n / self._count * 1.25) + 64)
        found: list[np.ndarray] = []
        got, i = 0, 0
        while i < self.n and got < stop:
            part = order[i : i + chunk]
            hit = part[mask[part]]
            found.append(hit)
            got += len(hit)
            i += chunk
            chunk *= 2
        return np.concatenate(found)[start:stop]

    def _rank(self, by: str, descending: bool) -> np.ndarray:
        """Inverse of :meth:`order`: each row's place in the sorted view (built once)."""
        key = (by, descending)
        if key not in self._ranks:
            order = self.order(by, descending)
            rank = np.empty(self.n, dtype=np.int64)
            rank[order] = np.arange(self.n, dtype=np.int64)
            self._ranks[key] = rank
        return self._ranks[key]

    def positions(self, by: str, descending: bool) -> np.ndarray:
        """Every position of the filtered view, sorted (what an export writes)."""
        order = self.order(by, descending)
        return order if self._mask is None else order[self._mask[order]]

    # -- summaries --------------------------------------------------------------------
    def status_counts(self) -> dict[str, int]:
        """Rows per status over the whole frame; ``"unread"`` counts rows with no status."""
        facet = self.facets["status"]
        counts = np.bincount(facet.codes + 1, minlength=len(facet.labels) + 1)
        out = {label: int(counts[i + 1]) for i, label in enumerate(facet.labels)}
        out[schema.UNREAD] = int(counts[0])
        return out

    def pending_positions(self) -> np.ndarray:
        """Rows still worth polling, by :func:`veo_notebook.schema.is_pending` (the fetch rule)."""
        if self._pending is None:  # the frame of a model never changes: once per model
            mask = schema.pending_mask(self.df["status"], self.df["fetch_error"])
            self._pending = np.flatnonzero(mask)
        return self._pending

    def find(self, task_id: str) -> int | None:
        """Position of ``task_id`` (first match) or None."""
        hits = np.flatnonzero((self.df["task_id"] == task_id).fillna(False).to_numpy(dtype=bool))
        return int(hits[0]) if len(hits) else None

    # -- the model interface the viewer uses (shared with ``_duckdb_model.DatasetModel``) --
    in_memory = True

    def rows(
        self, page: int, page_size: int, by: str, descending: bool, columns: list[str]
    ) -> pd.DataFrame:
        """The rows on ``page`` of the filtered, sorted view: ``columns`` only."""
        pos = self.page_positions(page, page_size, by, descending)
        return self.df.iloc[pos, [self.df.columns.get_loc(c) for c in columns]]

    def view_frame(self, by: str, descending: bool) -> pd.DataFrame:
        """Every row of the filtered view, sorted (what an export writes)."""
        return self.df.iloc[self.positions(by, descending)].reset_index(drop=True)

    def task(self, task_id: str) -> pd.DataFrame | None:
        """The one row of ``task_id``, or None."""
        pos = self.find(task_id)
        return None if pos is None else self.df.iloc[pos : pos + 1]

    def family_rows(self, root: str) -> pd.DataFrame:
        """The rows whose ``root_task_id`` is ``root`` (a task's family)."""
        return self.df[(self.df["root_task_id"] == root).to_numpy(dtype=bool, na_value=False)]

    def pending_ids(self) -> list[str]:
        """Task ids a refresh would re-poll."""
        return cast("list[str]", self.df["task_id"].iloc[self.pending_positions()].tolist())

    def pending_count(self) -> int:
        """How many tasks a refresh would re-poll."""
        return len(self.pending_positions())


def _as_int(ts: pd.Timestamp, unit: str) -> int:
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.as_unit(unit).value)  # type: ignore[arg-type]
