"""Where ``check`` reads its tasks: a frame in memory, or a store's frame dataset (private).

A check needs few rows: those created in a rule's window, and, for the rules about every
task as it is now, the tasks of one status. From a store it reads just those from the
frame dataset beside it (:mod:`veo_notebook.frame.dataset`, brought up to date first):
the days the window covers, and one status's rows (with the columns those rules read)
across all days. Reading the whole history is what made a check of a large store slow.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .. import fmt, schema
from ..analysis._groups import now_utc
from ..errors import InputError, StoreError
from ..store import Store

__all__ = ["DatasetSource", "FrameSource", "Source", "open_source"]

log = logging.getLogger(__name__)

#: The columns a rule about every task now reads (the rest are not read or copied).
NOW_COLUMNS = ("task_id", "status", "create_time", "complete_time", "model", "task_type")


class Source(Protocol):
    """What ``check`` asks of a source."""

    columns: Sequence[str]

    def now(self, given: object) -> pd.Timestamp:
        """``given``, else the latest ``fetched_at``, else the clock (UTC)."""

    def window(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """The readable rows created in ``(start, end]``."""

    def current(self, status: str, by: Sequence[str], alive_after: object = None) -> pd.DataFrame:
        """The readable rows of ``status`` (completed after ``alive_after``, when given)."""


def _created_in(df: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    created = df["create_time"]
    return ((created > start) & (created <= end)).to_numpy(dtype=bool, na_value=False)


def _names(by: Sequence[str], columns: Sequence[str]) -> list[str]:
    return [c for c in dict.fromkeys((*NOW_COLUMNS, *by)) if c in columns]


class FrameSource:
    """A typed frame already in memory."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self.read = fmt.readable(df)
        self.columns: Sequence[str] = [str(c) for c in df.columns]

    def now(self, given: object) -> pd.Timestamp:
        return now_utc(self.df, given)

    def window(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return self.read[_created_in(self.read, start, end)]

    def current(self, status: str, by: Sequence[str], alive_after: object = None) -> pd.DataFrame:
        keep = (self.read["status"] == status).to_numpy(dtype=bool, na_value=False)
        if alive_after is not None:
            done = self.read["complete_time"] > alive_after
            keep = keep & done.to_numpy(dtype=bool, na_value=False)
        return self.read.loc[keep, _names(by, self.columns)]


class DatasetSource:
    """A store's frame dataset (hive by UTC creation day), read by day and by status."""

    def __init__(self, root: Path) -> None:
        from ..frame.dataset import PARTITION

        self.root = root
        self.partition = PARTITION
        self.data = ds.dataset(root, format="parquet")  # files only: no partition column
        self.columns: Sequence[str] = list(self.data.schema.names)

    def _frame(self, table: pa.Table) -> pd.DataFrame:
        from ..frame._parquet import to_frame

        return fmt.readable(to_frame(table))

    def now(self, given: object) -> pd.Timestamp:
        if given is not None:
            return now_utc(schema.empty_frame(), given)
        latest = pc.max(self.data.to_table(columns=["fetched_at"])["fetched_at"]).as_py()
        return pd.Timestamp.now(tz="UTC") if latest is None else pd.Timestamp(latest)

    def window(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        first, last = start.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d")
        files = [
            str(p)
            for p in sorted(self.root.glob(f"{self.partition}=*/*.parquet"))
            if first <= p.parent.name.split("=", 1)[1] <= last
        ]
        if not files:
            return schema.empty_frame()
        table = ds.dataset(files, format="parquet", schema=self.data.schema).to_table()
        df = self._frame(table)
        return df[_created_in(df, start, end)]

    def _files(self) -> list[Path]:
        from ..frame.dataset import NO_DAY

        files = sorted(self.root.glob(f"{self.partition}=*/*.parquet"))
        return [p for p in files if p.parent.name != f"{self.partition}={NO_DAY}"]

    def current(self, status: str, by: Sequence[str], alive_after: object = None) -> pd.DataFrame:
        """Two passes: the status (and completion time) of every row, which are small to
        read; then the other columns of the matching rows, from the files that hold any."""
        names = _names(by, self.columns)
        after = None if alive_after is None else pd.Timestamp(alive_after).value // 1000
        parts = []
        for path in self._files():
            with pq.ParquetFile(path) as f:
                keys = f.read(columns=["status", "complete_time"])
                keep = pc.equal(keys["status"].cast(pa.string()), status)
                if after is not None:
                    done = keys["complete_time"].cast(pa.int64())
                    keep = pc.and_(keep, pc.greater(done, after))
                keep = pc.fill_null(keep, False)
                if pc.any(keep).as_py():
                    parts.append(f.read(columns=names).filter(keep))
        if not parts:
            return schema.empty_frame()[names]
        table = pa.concat_tables([t.cast(parts[0].schema) for t in parts])
        return self._frame(table)[names]


def open_source(source: object) -> tuple[Source, Store | None, bool]:
    """(the source, the store it is, whether it was opened here) of what ``check`` takes."""
    if isinstance(source, pd.DataFrame):
        return FrameSource(source), None, False
    if isinstance(source, Store):
        return _store_source(source), source, False
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_dir() or path.suffix.lower() == ".parquet":
            from ..export import read_parquet

            return FrameSource(read_parquet(path)), None, False
        store = Store(path, create=False)
        try:
            return _store_source(store), store, True
        except BaseException:
            store.close()
            raise
    raise InputError(
        f"check: a {type(source).__name__} is not a source; give the typed frame, a Store, "
        "a store path or a Parquet file"
    )


def _store_source(store: Store) -> Source:
    """The store's dataset, brought up to date; the whole frame when there can be none
    (an in-memory store, a folder that cannot be written)."""
    from ..frame import from_store
    from ..frame.dataset import sync

    try:
        return DatasetSource(sync(store))
    except (InputError, OSError, StoreError) as exc:
        log.debug("check: no frame dataset beside %s (%s): the whole frame", store.path, exc)
        return FrameSource(from_store(store))
