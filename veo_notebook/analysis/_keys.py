"""Group keys for the engines, and the one finishing step that turns them into an index.

``by`` (column names and/or a time bucket such as ``"1D"``) becomes engine keys
(:mod:`veo_notebook.engine._plan`): a text column is labelled where missing with the
:mod:`veo_notebook.fmt` vocabulary (``unread``, ``upgrade task``, ``n/a``) inside the
engine, so rows with one label are one group; a bucket is the start of a fixed-size
bucket of ``create_time``. The groups an engine returns are put in one order here for
every engine: by key, missing keys last (then by their label).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import schema
from ..engine import Engine
from ..engine import _plan as p
from ..engine._base import key_columns, missing_labels
from ..errors import InputError
from ._groups import APART_NOTE, GENERATION, UPGRADE, WORK, By, Upgrades, is_freq

__all__ = ["Groups", "apart", "group_index", "noted", "plan_keys"]

_KINDS = {"string": "string", "category": "string", "Int64": "int", "boolean": "bool"}


_DAY_US = 86_400_000_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def _bucket(freq: str, labels: tuple) -> p.Bucket:
    """The engine bucket of a pandas frequency: fixed spans and weeks are cut by every
    engine; other calendar periods (months, quarters, years) by the pandas engine only."""
    offset = pd.tseries.frequencies.to_offset(freq)
    if isinstance(offset, pd.offsets.Week) and offset.weekday is not None and offset.n == 1:
        first = (offset.weekday + 1 - _EPOCH_WEEKDAY) % 7  # a week ends on its weekday
        return p.Bucket(7 * _DAY_US, labels, offset=first * _DAY_US)
    try:
        step = pd.Timedelta(offset)
    except ValueError:
        return p.Bucket(0, labels, period=freq)
    if step.value <= 0 or step.value % 1000:
        raise InputError(f"by: {freq!r} is not a bucket of whole microseconds")
    return p.Bucket(int(step.value // 1000), labels)


def plan_keys(eng: Engine, by: By, freq: str | None = None) -> tuple[p.Keys, list[str]]:
    """Engine keys for ``by`` (+ ``freq``) and the index names (a bucket is ``period``);
    ``by`` may hold a :class:`~veo_notebook.engine._plan.Bucket` itself (callers inside
    the package: buckets with an offset)."""
    items = [] if by is None else [by] if isinstance(by, str | p.Bucket) else list(by)
    if freq is not None:
        items.append(freq)
    columns = set(eng.columns())
    types = {c.name: c.type_name for c in schema.COLUMNS}
    keys: list[p.Key | p.Bucket] = []
    names: list[str] = []
    for item in items:
        if isinstance(item, p.Bucket):  # an engine's own bucket (the report's windows)
            if "period" in names:
                raise InputError("only one time bucket can be asked for (by or freq)")
            keys.append(item)
            names.append("period")
        elif item in columns:
            kind = _KINDS.get(types.get(item, "string"))
            if kind is None:
                raise InputError(f"by: {item!r} is not a column to group by (a time: use '1D')")
            labels = missing_labels(item) if kind == "string" else None
            keys.append(p.Key(item, labels, kind))
            names.append(item)
        elif item == WORK:
            keys.append(p.Key("task_type", None, "work", (GENERATION, UPGRADE)))
            names.append(WORK)
        elif isinstance(item, str) and is_freq(item):
            if "period" in names:
                raise InputError("only one time bucket can be asked for (by or freq)")
            keys.append(_bucket(item, missing_labels("create_time")))
            names.append("period")
        else:
            raise InputError(
                f"by: {item!r} is neither a column nor a time bucket like '1D' or '1h'"
            )
    return tuple(keys), names


def apart(eng: Engine, by: By, upgrades: Upgrades) -> tuple[By, bool]:
    """``by`` with :data:`~._groups.WORK` first when it would pool generations and
    upgrades (no column among its keys, and the source holds both kinds): the rule of
    :func:`._groups.apart`, with the kinds counted by the engine."""
    if upgrades not in ("apart", "pooled"):
        raise InputError(f"upgrades must be 'apart' or 'pooled', not {upgrades!r}")
    items = [] if by is None else [by] if isinstance(by, str | p.Bucket) else list(by)
    columns = eng.columns()
    if upgrades == "pooled" or "task_type" not in columns:
        return by, False
    if any(i in columns for i in items):  # a column (model, task type, ...) splits them
        return by, False
    kinds = eng.grouped((p.Key("task_type", None, "work", (GENERATION, UPGRADE)),), {})
    if len(kinds) < 2:
        return by, False
    return [WORK, *items], True


def noted(out: pd.DataFrame, split: bool) -> pd.DataFrame:
    """The table, saying when generations and upgrades were kept apart."""
    if split:
        out.attrs["note"] = APART_NOTE
    return out


class Groups:
    """The groups of one aggregate, in their one order: ``index`` and each group's
    position by its key tuple (to place other aggregates of the same keys)."""

    def __init__(self, agg: pd.DataFrame, keys: p.Keys, names: Sequence[str]) -> None:
        cols = key_columns(len(keys))
        if not keys:
            self.frame = agg.reset_index(drop=True)
            self.index: pd.Index = pd.Index(["all"] * len(agg))
            self._pos = {(): 0}
            return
        sort_cols: list[pd.Series] = []
        for i, key in enumerate(keys):
            value, label = agg[f"k{i}"], agg[f"k{i}_na"]
            sort_cols += [value.isna(), _in_order(value, key), label]
        order = _order(sort_cols)
        self.frame = agg.iloc[order].reset_index(drop=True)
        levels = [_level(self.frame, i, key) for i, key in enumerate(keys)]
        if len(levels) == 1:
            self.index = pd.Index(levels[0], name=names[0])
        else:
            self.index = pd.MultiIndex.from_arrays(levels, names=list(names))
        tuples = self.frame[cols].itertuples(index=False, name=None)
        self._pos = {_norm(t): i for i, t in enumerate(tuples)}

    def __len__(self) -> int:
        return len(self.frame)

    def positions(self, frame: pd.DataFrame, n_keys: int) -> np.ndarray:
        """Group position of each row of ``frame`` (its key columns); −1 if unknown."""
        cols = key_columns(n_keys)
        if not cols:
            return np.zeros(len(frame), dtype=np.intp)
        if frame.empty:
            return np.zeros(0, dtype=np.intp)
        # each distinct key looked up once (an answer can hold a row per distinct time):
        # the columns factorised one by one, no copy of the keys as a frame of objects
        combined = np.zeros(len(frame), dtype=np.int64)
        for c in cols:
            codes, uniques = pd.factorize(frame[c].to_numpy(dtype=object), use_na_sentinel=False)
            combined = combined * max(len(uniques), 1) + codes
            combined = pd.factorize(combined)[0]  # compact: stays far below 2**63
        distinct, first, which = np.unique(combined, return_index=True, return_inverse=True)
        values = [frame[c].to_numpy(dtype=object)[first] for c in cols]
        rows = zip(*values, strict=True) if values else iter(())
        lookup = np.array([self._pos.get(_norm(t), -1) for t in rows], dtype=np.intp)
        return lookup[which.reshape(-1)] if len(distinct) else np.zeros(0, dtype=np.intp)

    def spread(self, frame: pd.DataFrame, n_keys: int, values: str | np.ndarray) -> np.ndarray:
        """``values`` (a column of ``frame``, or one number per row) summed per group."""
        x = frame[values].to_numpy(dtype=float) if isinstance(values, str) else values
        return np.bincount(self.positions(frame, n_keys), weights=x, minlength=len(self))


def _in_order(value: pd.Series, key: p.Key | p.Bucket) -> pd.Series:
    """A key's values as they sort: a categorical column of the frame (status, task type)
    in its categories' order, as pandas groups it; anything else as it is."""
    if not isinstance(key, p.Key) or key.kind != "string":
        return value
    dtype = schema.dtypes().get(key.column)
    if not isinstance(dtype, pd.CategoricalDtype):
        return value
    order = {c: i for i, c in enumerate(dtype.categories)}
    return value.map(lambda v: None if v is None else order.get(v, len(order)))


def _norm(t: tuple) -> tuple:
    return tuple(None if (v is None or (not isinstance(v, str) and pd.isna(v))) else v for v in t)


def _order(cols: list[pd.Series]) -> np.ndarray:
    frame = pd.DataFrame({f"c{i}": c.reset_index(drop=True) for i, c in enumerate(cols)})
    if frame.empty:
        return np.zeros(0, dtype=np.intp)
    for c in frame.columns:  # None sorts last; a column holds one type
        if frame[c].dtype == object:
            frame[c] = frame[c].where(frame[c].notna(), None)
    ordered = frame.sort_values(list(frame.columns), na_position="last", kind="stable")
    return ordered.index.to_numpy()


def _level(frame: pd.DataFrame, i: int, key: p.Key | p.Bucket) -> list:
    values, labels = frame[f"k{i}"].tolist(), frame[f"k{i}_na"].tolist()
    out: list = []
    for v, lab in zip(values, labels, strict=True):
        missing = v is None or (not isinstance(v, str) and pd.isna(v))
        if missing:
            out.append(lab if lab is not None else np.nan)
        elif isinstance(key, p.Bucket):
            out.append(pd.Timestamp(int(v), unit="us", tz="UTC"))
        else:
            out.append(v)
    return out


def group_index(agg: pd.DataFrame, keys: p.Keys, names: Sequence[str]) -> Groups:
    """The groups of ``agg`` (an engine's grouped answer) in their one order."""
    return Groups(agg, keys, names)
