"""The price table: loading (shipped CSV, mapping, DataFrame, CSV/TOML file) and lookup (private).

A table is rows of ``model, task_type, resolution, duration_s → credits`` with a
``source`` and an ``as_of`` per row. A missing key (empty, NA or ``"*"``) is a wildcard;
of the rows that match a task, the one with the most keys set wins, and among equally
specific rows the later one (so rows appended to a table override it).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULT_FILE",
    "DURATION_COLUMNS",
    "KEYS",
    "TABLE_COLUMNS",
    "PriceTable",
    "PricesLike",
    "default_prices",
    "load_prices",
    "usd_rate",
]

#: The keys a price is looked up by, in the order a tuple key of a mapping gives them.
KEYS = ("model", "task_type", "resolution", "duration_s")
#: Columns of a normalised table.
TABLE_COLUMNS = (*KEYS, "credits", "source", "as_of")
#: Frame columns that hold a task's requested duration in seconds (the first present is used).
DURATION_COLUMNS = ("duration_s", "duration")
#: The shipped table (package data).
DEFAULT_FILE = "prices.csv"
_WILDCARDS = ("", "*")
_ALIASES = {"duration": "duration_s", "price": "credits", "date": "as_of"}

PricesLike = Any  # None | PriceTable | Mapping | pd.DataFrame | str | os.PathLike


@dataclass(frozen=True)
class PriceTable:
    """A normalised price table (``rows``, columns :data:`TABLE_COLUMNS`) and an optional
    USD price of one credit.

    >>> PriceTable.from_mapping({"veo3_fast": 60}).rows["credits"].tolist()
    [60.0]
    """

    rows: pd.DataFrame
    usd_per_credit: float | None = None

    @classmethod
    def from_mapping(cls, prices: Mapping[Any, Any], source: str = "given as a mapping"):
        """``{model: credits}`` or ``{(model, task_type, resolution, duration_s): credits}``
        (a shorter tuple leaves the later keys wildcards; ``None`` is a wildcard)."""
        records = []
        for key, credits in prices.items():
            parts = key if isinstance(key, tuple) else (key,)
            if len(parts) > len(KEYS):
                raise InputError(
                    f"prices: key {key!r} has more than {len(KEYS)} parts {KEYS}; "
                    "give (model, task_type, resolution, duration_s)"
                )
            row: dict[str, Any] = dict(zip(KEYS, parts, strict=False))
            row.update(credits=credits, source=source, as_of=None)
            records.append(row)
        return cls(_normalise(pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS))))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, usd_per_credit: float | None = None):
        """A table from a DataFrame with ``credits`` and any of the key columns."""
        return cls(_normalise(frame), usd_rate(usd_per_credit))

    @classmethod
    def from_file(cls, path: str | Path):
        """A table from a ``.csv`` file (``#`` comment lines allowed) or a ``.toml`` file
        (``[[price]]`` entries, an optional top-level ``usd_per_credit``)."""
        p = Path(path)
        if not p.is_file():
            raise InputError(f"prices: no file {str(p)!r}; give a .csv or .toml price table")
        suffix = p.suffix.lower()
        if suffix == ".toml":
            try:
                doc = tomllib.loads(p.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"prices: {p.name} is not valid TOML ({exc})") from exc
            entries = doc.get("price", [])
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise InputError(f"prices: {p.name} needs [[price]] tables (model, credits, ...)")
            frame = pd.DataFrame.from_records(entries)
            return cls(_normalise(frame, p.name), usd_rate(doc.get("usd_per_credit")))
        if suffix == ".csv":
            try:
                frame = pd.read_csv(p, comment="#", dtype=str, keep_default_na=False)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
                raise InputError(f"prices: {p.name} is not a readable CSV ({exc})") from exc
            return cls(_normalise(frame, p.name))
        raise InputError(f"prices: {p.name} is neither .csv nor .toml")

    def lookup(self, df: pd.DataFrame) -> np.ndarray:
        """Credits of each task of ``df`` by the table (NaN where no row matches).

        Vectorised: each key column is factorised once; each of the table's rows (a few
        dozen) is one pass of integer comparisons over the tasks, least specific first so
        the most specific match is written last.
        """
        n = len(df)
        out = np.full(n, np.nan)
        if n == 0 or self.rows.empty:
            return out
        columns = _task_key_columns(df)
        encoded: dict[str, tuple[np.ndarray, dict[object, np.ndarray]]] = {}
        masks: dict[tuple[str, object], np.ndarray] = {}  # one pass per (key, value) used
        rows = self.rows.assign(_spec=self.rows[list(KEYS)].notna().sum(axis=1))
        rows = rows.reset_index(drop=True).rename_axis("_pos").reset_index()
        rows = rows.sort_values(["_spec", "_pos"], kind="stable")
        for row in rows.itertuples(index=False):  # table rows, not tasks
            mask = np.ones(n, dtype=bool)
            for key in KEYS:
                want = getattr(row, key)
                if pd.isna(want):
                    continue
                series = columns.get(key)
                if series is None:
                    mask[:] = False
                    break
                if key not in encoded:
                    encoded[key] = _encode(series, numeric=key == "duration_s")
                codes, index = encoded[key]
                hits = index.get(want)
                if hits is None:
                    mask[:] = False
                    break
                if (key, want) not in masks:
                    masks[key, want] = np.isin(codes, hits)
                mask &= masks[key, want]
            out[mask] = row.credits
        return out

    def describe(self) -> pd.DataFrame:
        """The table as a person reads it: wildcards shown as ``*``."""
        view = self.rows.copy()
        for key in KEYS:
            view[key] = view[key].astype(object).where(view[key].notna(), "*")
        return view


def default_prices() -> PriceTable:
    """The shipped, dated and sourced table (``veo_notebook/pricing/prices.csv``).

    >>> default_prices().rows.loc[0, ["model", "resolution", "credits"]].tolist()
    ['veo3_lite', '720p', 30.0]
    """
    ref = resources.files(__package__).joinpath(DEFAULT_FILE)
    with resources.as_file(ref) as path:
        return PriceTable.from_file(path)


def load_prices(prices: PricesLike = None, usd_per_credit: float | None = None) -> PriceTable:
    """A :class:`PriceTable` from what a caller gives: ``None`` (the default table), a
    table, a mapping, a DataFrame, or a path to a CSV/TOML file. The table given replaces
    the default one (start from ``default_prices().rows`` to change a few figures).
    ``usd_per_credit``, when given, overrides the table's rate."""
    if prices is None:
        table = default_prices()
    elif isinstance(prices, PriceTable):
        table = prices
    elif isinstance(prices, Mapping):
        table = PriceTable.from_mapping(prices)
    elif isinstance(prices, pd.DataFrame):
        table = PriceTable.from_frame(prices)
    elif isinstance(prices, str | Path):
        table = PriceTable.from_file(prices)
    else:
        raise InputError(
            f"prices: a {type(prices).__name__} is not a price table; give a mapping "
            "{model: credits}, a DataFrame, or a .csv/.toml path"
        )
    if usd_per_credit is not None:
        table = PriceTable(table.rows, usd_rate(usd_per_credit))
    return table


# --- normalising ------------------------------------------------------------------
def usd_rate(value: object) -> float | None:
    """``value`` as a USD price of one credit (None stays None); InputError if not ≥ 0."""
    if value is None:
        return None
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        rate = math.nan
    if not math.isfinite(rate) or rate < 0:
        raise InputError(f"usd_per_credit: {value!r} is not a non-negative number")
    return rate


def _key_text(value: object) -> object:
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    text = str(value).strip().lower()
    return None if text in _WILDCARDS else text


def _duration(value: object, where: str) -> float | None:
    text = _key_text(value)
    if text is None:
        return None
    try:
        seconds = float(str(text).removesuffix("s"))
    except ValueError:
        raise InputError(f"prices: {where}: duration_s {value!r} is not a number") from None
    return seconds


def _normalise(frame: pd.DataFrame, name: str = "prices") -> pd.DataFrame:
    """Columns :data:`TABLE_COLUMNS`: keys lowercased text (None = wildcard), credits float."""
    frame = frame.rename(columns={c: _ALIASES.get(str(c).strip(), str(c).strip()) for c in frame})
    if "credits" not in frame.columns:
        raise InputError(f"prices: {name} has no 'credits' column (columns: {list(frame)})")
    unknown = [c for c in frame.columns if c not in TABLE_COLUMNS]
    if unknown:
        raise InputError(f"prices: {name} has unknown columns {unknown}; keys are {list(KEYS)}")
    records = []
    for i, rec in enumerate(frame.to_dict("records")):  # table rows: a few dozen
        where = f"{name} row {i + 1}"
        row: dict[str, Any] = {k: _key_text(rec.get(k)) for k in KEYS[:3]}
        row["duration_s"] = _duration(rec.get("duration_s"), where)
        raw = rec.get("credits")
        try:
            credits = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            credits = math.nan
        if not math.isfinite(credits) or credits < 0:
            raise InputError(f"prices: {where}: credits {raw!r} is not a non-negative number")
        row["credits"] = credits
        for col in ("source", "as_of"):
            value = rec.get(col)
            row[col] = None if _key_text(value) is None else str(value).strip()
        records.append(row)
    out = pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS))
    for col in (*KEYS[:3], "source", "as_of"):
        out[col] = out[col].astype(pd.StringDtype("pyarrow"))
    out["duration_s"] = out["duration_s"].astype("float64")
    out["credits"] = out["credits"].astype("float64")
    return out


# --- matching -----------------------------------------------------------------------
def _task_key_columns(df: pd.DataFrame) -> dict[str, pd.Series]:
    columns = {k: df[k] for k in KEYS[:3] if k in df.columns}
    for name in DURATION_COLUMNS:
        if name in df.columns:
            columns["duration_s"] = df[name]
            break
    return columns


def _encode(series: pd.Series, numeric: bool) -> tuple[np.ndarray, dict[object, np.ndarray]]:
    """Integer code per task and, per normalised value, the codes that mean it."""
    if numeric:
        values = pd.to_numeric(series, errors="coerce")
        codes, uniques = pd.factorize(values)
        normal: list[object] = [float(u) for u in uniques]
    else:
        codes, uniques = pd.factorize(series)  # NA: code -1, never a match
        normal = [str(u).strip().lower() for u in uniques]
    index: dict[object, list[int]] = {}
    for code, value in enumerate(normal):
        index.setdefault(value, []).append(code)
    return np.asarray(codes), {k: np.asarray(v) for k, v in index.items()}
