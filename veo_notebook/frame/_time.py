"""Vectorised reading of the API's three time shapes into UTC instants (private).

Results are ``datetime64[ns]`` numpy arrays holding UTC wall time (NaT when missing or
unreadable), plus a ``{row: text}`` map of the values that could not be read.

A plain time is wall time in ``naive_tz``, read by one function (:func:`localize`) on
every path, so its value never depends on the other rows. Where the zone's clocks go back
(an hour that happens twice) it is the earlier instant (:data:`AMBIGUOUS`); where they go
forward (a wall time that never happens) it is the end of the gap (:data:`NONEXISTENT`):
Europe/Berlin's "2025-10-26 02:30:00" is 00:30 UTC, "2025-03-30 02:30:00" 01:00 UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._read import frame_pool

_NS = pa.timestamp("ns")
_NS_UTC = pa.timestamp("ns", "UTC")
_MS_ABOVE = 1e12  # integers above this are epoch milliseconds, below epoch seconds
_MAX_NS = 9.2e18  # nanoseconds past this overflow int64 (2**63 ≈ 9.22e18): NaT
_NS_PER_MS, _NS_PER_S = 1_000_000, 1_000_000_000
#: a plain time in a repeated hour (clocks back) → the earlier of its two instants
AMBIGUOUS = "earliest"
#: a plain time in a skipped hour (clocks forward) → the first instant after the gap
NONEXISTENT = "latest"
_ZONED = r"(?:[zZ]|[+-]\d\d(?::?\d\d)?)\s*$"
_NUMERIC = r"^\s*-?\d+(?:\.\d+)?\s*$"


def epoch_to_utc(seconds: np.ndarray) -> np.ndarray:
    """Float epoch seconds → ``datetime64[ns]`` (NaN and out-of-range → NaT), rounded to the
    microsecond: a float near today's epoch holds no finer digit (its step is ~0.24 µs), and
    every file we write keeps microseconds (:mod:`veo_notebook.frame._parquet`)."""
    ok = np.isfinite(seconds) & (np.abs(seconds) < _MAX_NS / 1e9)
    ns = np.where(ok, seconds * 1e6, 0).round().astype(np.int64) * 1000
    out = ns.view("datetime64[ns]").copy()
    out[~ok] = np.datetime64("NaT")
    return out


def epoch_numbers(values: np.ndarray) -> np.ndarray:
    """Epoch numbers (ms above 1e12, else s) → ``datetime64[ns]``.

    Whole numbers are scaled in integers (a float product is off by up to ~256 ns at
    today's epoch milliseconds); fractions go through floats.
    """
    ms = np.abs(values) > _MS_ABOVE
    out = epoch_to_utc(np.where(ms, values / 1e3, values))
    scale = np.where(ms, _NS_PER_MS, _NS_PER_S)
    with np.errstate(invalid="ignore"):
        exact = np.isfinite(values) & (values == np.round(values))
        exact &= np.abs(values) * scale < _MAX_NS
    if exact.any():
        ns = values[exact].astype(np.int64) * scale[exact]
        out[exact] = ns.view("datetime64[ns]")
    return out


def epoch_seconds(values: Sequence[Any] | None, n: int) -> np.ndarray:
    """Fetch times (epoch seconds, datetimes or None) as float epoch seconds."""
    if values is None:
        return np.full(n, np.nan)
    try:
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    except (TypeError, ValueError):
        ts = pd.to_datetime(pd.Series(list(values), dtype=object), utc=True, errors="coerce")
        ns = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        return np.where(ts.isna().to_numpy(), np.nan, ns / 1e9)


def parse(text: pa.Array, number: pa.Array, naive_tz: str) -> tuple[np.ndarray, dict[int, Any]]:
    """Times given as strings (``text``) or numbers (``number``) → UTC ``datetime64[ns]``."""
    out = epoch_numbers(number.to_numpy(zero_copy_only=False).astype(float))
    bad: dict[int, Any] = {}
    if text.null_count == len(text):
        return out, bad
    has = np.asarray(text.is_valid())
    ts = _try_cast(text, naive_tz)
    if ts is None:
        ts, bad = _parse_mixed(text, naive_tz)
    got = ts.to_numpy(zero_copy_only=False)
    out[has] = got[has]
    return out, bad


def localize(ts: pa.Array, naive_tz: str) -> pa.Array:
    """Naive timestamps as wall time in ``naive_tz`` → naive UTC (the one DST policy)."""
    pool = frame_pool()
    local = pc.assume_timezone(
        ts, naive_tz, ambiguous=AMBIGUOUS, nonexistent=NONEXISTENT, memory_pool=pool
    )
    return pc.cast(pc.cast(local, _NS_UTC, memory_pool=pool), _NS, memory_pool=pool)


def _try_cast(text: pa.Array, naive_tz: str) -> pa.Array | None:
    """The common case: every string of the column has the same shape (all plain, or all zoned)."""
    try:
        return localize(pc.cast(text, _NS, memory_pool=frame_pool()), naive_tz)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return pc.cast(pc.cast(text, _NS_UTC, memory_pool=frame_pool()), _NS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _parse_mixed(text: pa.Array, naive_tz: str) -> tuple[pa.Array, dict[int, Any]]:
    s = pd.Series(text.to_pandas(), dtype=object)
    strs = s.where(s.notna(), None)
    numeric = np.asarray(pc.fill_null(pc.match_substring_regex(text, _NUMERIC), False))
    zoned = np.asarray(pc.fill_null(pc.match_substring_regex(text, _ZONED), False)) & ~numeric
    plain = np.asarray(text.is_valid()) & ~zoned & ~numeric
    out = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    if zoned.any():
        z = pd.to_datetime(strs[zoned].str.strip(), format="ISO8601", utc=True, errors="coerce")
        out[zoned] = z.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    if plain.any():
        p = pd.to_datetime(strs[plain].str.strip(), format="ISO8601", errors="coerce")
        wall = pa.array(p.to_numpy(dtype="datetime64[ns]"), _NS, from_pandas=True)
        out[plain] = localize(wall, naive_tz).to_numpy(zero_copy_only=False)
    if numeric.any():
        out[numeric] = epoch_numbers(strs[numeric].astype(float).to_numpy())
    has = np.asarray(text.is_valid())
    bad_rows = np.flatnonzero(has & np.isnat(out))
    bad = dict(zip(bad_rows.tolist(), strs.iloc[bad_rows].tolist(), strict=True))
    return pa.array(out, _NS), bad
