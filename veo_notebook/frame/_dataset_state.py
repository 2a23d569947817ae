"""The frame dataset's own bookkeeping: which rows each day file holds, and the lock.

A hidden Arrow file in the dataset folder (``.veo-state.arrow``) keeps each row's rowid
and day and each day file's id, keyed by the store, schema and parser; one writer at a
time holds the lock file beside the folder. Deleting either loses nothing: the next
:func:`veo_notebook.frame.dataset.sync` rebuilds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

try:  # POSIX: one sync at a time per dataset, across processes
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FILE_NAME",
    "PARTITION",
    "PART_ID",
    "State",
    "day_dir",
    "locked",
    "read_state",
    "write_state",
]

log = logging.getLogger(__name__)

#: the partition column: the UTC day of ``create_time``
PARTITION = "create_date"
#: the one file of each day
FILE_NAME = "part-0.parquet"
#: the schema metadata key of a day file's id (the state names the file it expects)
PART_ID = b"veo_notebook.part_id"
_STATE = ".veo-state.arrow"


class State(NamedTuple):
    """What the dataset holds: each row's rowid (ascending) and day, and each day's file id."""

    version: int  # the store's row version the dataset is complete up to
    rowids: np.ndarray  # int64, ascending
    codes: np.ndarray  # int32, parallel to rowids: the day, as a position in ``names``
    names: list[str]  # the days
    files: dict[str, str]  # day → id of its file

    def by_day(self) -> dict[str, np.ndarray]:
        """Each day's rowids, ascending (the order of its file's rows)."""
        order = np.argsort(self.codes, kind="stable")
        bounds = np.flatnonzero(np.diff(self.codes[order])) + 1
        return {
            self.names[int(self.codes[run[0]])]: self.rowids[run]
            for run in np.split(order, bounds)
            if len(run)
        }


class _Days:
    """Day names → codes, growing as new days come."""

    def __init__(self, names: list[str] | None = None) -> None:
        self.names = list(names or [])
        self.index = {n: i for i, n in enumerate(self.names)}

    def codes(self, days: np.ndarray) -> np.ndarray:
        local, uniq = pd.factorize(days)
        ids = np.empty(len(uniq), np.int32)
        for j, d in enumerate(uniq):
            if str(d) not in self.index:
                self.index[str(d)] = len(self.names)
                self.names.append(str(d))
            ids[j] = self.index[str(d)]
        return ids[local]


def day_dir(root: Path, day: str) -> Path:
    return root / f"{PARTITION}={day}"


def read_state(root: Path, key: dict[str, object]) -> State | None:
    try:
        with pa.memory_map(str(root / _STATE), "r") as f:
            table = pa.ipc.open_file(f).read_all()
        meta = json.loads((table.schema.metadata or {})[b"veo_notebook.dataset"])
    except (OSError, pa.ArrowInvalid, KeyError, ValueError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.debug("dataset state in %s unreadable (%s): rebuilt", root, exc)
        return None
    if meta.get("key") != key:
        return None
    files = {str(d): str(i) for d, i in meta["files"].items()}
    if not all((day_dir(root, d) / FILE_NAME).is_file() for d in files):
        return None  # a day deleted by hand: rebuilt
    day = table.column("day").combine_chunks()
    codes = day.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    rowids = table.column("rowid").to_numpy()
    return State(int(meta["version"]), rowids, codes, day.dictionary.to_pylist(), files)


def write_state(root: Path, state: State, key: dict[str, object]) -> None:
    meta = {"key": key, "version": state.version, "files": state.files}
    table = pa.table(
        {
            "rowid": pa.array(state.rowids, pa.int64()),
            "day": pa.DictionaryArray.from_arrays(
                pa.array(state.codes, pa.int32()), pa.array(state.names, pa.string())
            ),
        }
    ).replace_schema_metadata({b"veo_notebook.dataset": json.dumps(meta).encode()})
    tmp = root / f".{_STATE}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with pa.OSFile(str(tmp), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
            w.write_table(table)
        os.replace(tmp, root / _STATE)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """One writer of the dataset at a time (other processes wait)."""
    lock = root.with_name(root.name + ".lock")
    with open(lock, "a+b") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)
