"""Grouping keys, status masks and clocks shared by the analysis functions (private).

``by`` takes column names and/or time buckets (``"1D"``, ``"1h"``) on ``create_time``;
a bucket appears as the ``period`` key (bucket start, UTC).

**No group key is ever missing**: a missing key reads as :mod:`veo_notebook.fmt` says
(:func:`~veo_notebook.fmt.group_column`: ``unread``, ``upgrade task``, ``n/a``), here,
once, for every analysis table.

>>> import pandas as pd
>>> bucket(pd.Series(pd.to_datetime(["2026-03-01 10:30"], utc=True)), "1D").iloc[0]
Timestamp('2026-03-01 00:00:00+0000', tz='UTC')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import InputError
from ..fmt import UPGRADE_TYPES, missing_labels
from . import _kernels as _stats

__all__ = [
    "APART_NOTE",
    "WORK",
    "By",
    "age_s",
    "apart",
    "bucket",
    "codes",
    "group_keys",
    "is_freq",
    "latency",
    "now_utc",
    "span",
    "status_mask",
    "work",
]

By = str | Sequence[str] | None


def is_freq(s: str) -> bool:
    """Whether ``s`` is a pandas frequency such as ``"1D"``, ``"1h"``, ``"15min"``."""
    try:
        pd.tseries.frequencies.to_offset(s)
    except (ValueError, TypeError):
        return False
    return True


def bucket(times: pd.Series, freq: str) -> pd.Series:
    """Start of the ``freq`` bucket of each time (UTC)."""
    try:
        out = times.dt.floor(freq)
    except ValueError:  # calendar frequencies (W, MS, ...) are not fixed: go through periods
        naive = times.dt.tz_convert("UTC").dt.tz_localize(None)
        out = naive.dt.to_period(freq).dt.start_time.dt.tz_localize("UTC")
    return out.rename("period")


def group_keys(
    df: pd.DataFrame, by: By, freq: str | None = None
) -> tuple[list[pd.Series], list[str]]:
    """The key Series of ``by`` (+ ``freq``) and their names (a bucket is ``period``)."""
    items = [] if by is None else [by] if isinstance(by, str) else list(by)
    if freq is not None:
        items.append(freq)
    keys: list[pd.Series] = []
    names: list[str] = []
    for item in items:
        if item in df.columns:
            keys.append(_labelled(df, item, df[item]))
            names.append(item)
        elif item == WORK:
            keys.append(work(df))
            names.append(WORK)
        elif isinstance(item, str) and is_freq(item):
            if "period" in names:
                raise InputError("only one time bucket can be asked for (by or freq)")
            keys.append(_labelled(df, "period", bucket(df["create_time"], item)))
            names.append("period")
        else:
            raise InputError(
                f"by: {item!r} is neither a column nor a time bucket like '1D' or '1h'"
            )
    return keys, names


def _labelled(df: pd.DataFrame, name: str, key: pd.Series) -> pd.Series:
    """``key`` itself when no value is missing, else a categorical whose missing values
    are labelled (:func:`~veo_notebook.fmt.missing_labels`), labels after the values.

    Built from integer codes: only the missing rows are looked at, no text is copied.
    """
    missing = key.isna().to_numpy(dtype=bool)
    if not missing.any():
        return key
    codes, uniques = pd.factorize(key, sort=True)  # a missing value: -1
    rows = np.flatnonzero(missing)
    at, found = pd.factorize(missing_labels(df, name, rows))
    labels = sorted(str(lb) for lb in found)
    at = np.array([labels.index(str(lb)) for lb in found], dtype=np.intp)[at]
    categories = [*uniques, *(lb for lb in labels if lb not in set(uniques))]
    position = {c: i for i, c in enumerate(categories)}
    codes = codes.astype(np.int64, copy=True)
    codes[rows] = np.array([position[lb] for lb in labels], dtype=np.int64)[at]
    cat = pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object))
    return pd.Series(cat, index=key.index, name=name)


def codes(
    df: pd.DataFrame, by: By, freq: str | None = None, mask: np.ndarray | None = None
) -> tuple[np.ndarray, pd.Index]:
    """Group code per row (of the rows in ``mask`` only, when given) and the group index."""
    keys, names = group_keys(df, by, freq)
    n = len(df) if mask is None else int(mask.sum())
    if not keys:
        return np.zeros(n, dtype=np.intp), pd.Index(["all"])
    if mask is not None:
        keys = [k[mask] for k in keys]
    return _stats.group_codes(keys, names)


def status_mask(df: pd.DataFrame, statuses: Sequence[str]) -> np.ndarray:
    status = df["status"]
    if isinstance(status.dtype, pd.CategoricalDtype):
        cats = list(status.cat.categories)
        wanted = [cats.index(s) for s in statuses if s in cats]
        return np.isin(status.cat.codes.to_numpy(), wanted)
    return status.isin(list(statuses)).fillna(False).to_numpy(dtype=bool)


def now_utc(df: pd.DataFrame, now: object = None) -> pd.Timestamp:
    if now is not None:
        ts = pd.Timestamp(now)  # type: ignore[arg-type]
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if "fetched_at" in df.columns and df["fetched_at"].notna().any():
        return pd.Timestamp(df["fetched_at"].max()).tz_convert("UTC")
    return pd.Timestamp.now(tz="UTC")


def span(value: object, name: str) -> pd.Timedelta:
    """``value`` as a time span (``"15min"``, ``"3D"``), or an :class:`InputError` naming
    the argument ``name``."""
    try:
        td = pd.Timedelta(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        td = pd.NaT
    if pd.isna(td) or td < pd.Timedelta(0):
        raise InputError(f"{name}: {value!r} is not a time span like '15min', '3D' or '1h'")
    return td


def age_s(df: pd.DataFrame, now: pd.Timestamp) -> np.ndarray:
    created = df["create_time"]
    return ((now - created).dt.total_seconds()).to_numpy(dtype=float, na_value=np.nan)


def latency(df: pd.DataFrame) -> np.ndarray:
    return df["latency_s"].to_numpy(dtype=float, na_value=np.nan)


# --- generations and upgrades apart ------------------------------------------------------
#: The derived key that keeps generations (generate, extend) and 1080p/4K upgrades apart.
WORK = "work"
GENERATION, UPGRADE = "generation", "upgrade"
Upgrades = Literal["apart", "pooled"]
#: What a table grouped by :data:`WORK` says about itself (its ``attrs["note"]``).
APART_NOTE = (
    "generations (generate, extend) and 1080p/4K upgrades are apart (the 'work' key): "
    "an upgrade's latency and failures are not a generation's; upgrades='pooled' pools them"
)


def work(df: pd.DataFrame) -> pd.Series:
    """``upgrade`` for a 1080p/4K task, ``generation`` for any other (the :data:`WORK` key)."""
    up = df["task_type"].isin(sorted(UPGRADE_TYPES)).to_numpy(dtype=bool, na_value=False)
    return pd.Series(np.where(up, UPGRADE, GENERATION), index=df.index, name=WORK)


def apart(df: pd.DataFrame, by: By, upgrades: str) -> tuple[By, bool]:
    """``by`` with :data:`WORK` first when it would pool generations and upgrades (no
    column among its keys, and the frame holds both kinds), and whether it was added."""
    if upgrades not in ("apart", "pooled"):
        raise InputError(f"upgrades must be 'apart' or 'pooled', not {upgrades!r}")
    items = [] if by is None else [by] if isinstance(by, str) else list(by)
    if upgrades == "pooled" or "task_type" not in df.columns:
        return by, False
    if any(i in df.columns for i in items):  # a column (model, task type, ...) splits them
        return by, False
    kinds = work(df)
    if kinds.nunique() < 2:
        return by, False
    return [WORK, *items], True
