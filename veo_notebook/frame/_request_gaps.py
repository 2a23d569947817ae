"""Each day file's request gaps: what makes a request, and how near its repeats are (private).

A store's dataset keeps beside each day's file a hidden Parquet file
(``create_date=D/.part-0.gaps``: every reader of the dataset skips it) with one row per row
of the day's file, in the same order: the request's key (a 64-bit hash of the
:func:`request_names` values, NULL where the row has no request or no creation time), its
creation time in µs, its ``status``, and the gaps in µs to the previous and the next
row of the same request *in that day* (NULL: none). Days are UTC days, and each holds
one file, so a repeat within ``w`` of a row is either in the same day (these gaps say so)
or across a midnight, both rows then within ``w`` of it: the engine reads the gaps, and
orders only the rows near a midnight (:mod:`veo_notebook.engine._sql_runs`). Written
with its day's file (:mod:`.dataset`), under a temporary name and renamed; the engine
uses the gaps only where every day file has one that names its part id and row count.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..pricing import DURATION_COLUMNS
from ._dataset_state import PART_ID

__all__ = [
    "KEY",
    "REQUEST_COLUMNS",
    "REQUEST_HINTS",
    "SUFFIX",
    "Found",
    "find",
    "gaps_path",
    "request_names",
    "write_gaps",
]

#: The columns that make two submissions the same request (plus a duration column, if any).
REQUEST_COLUMNS = (
    "prompt",
    "model",
    "generation_type",
    "aspect_ratio",
    "image_urls",
    "seeds",
    "parent_task_id",
    "task_type",
)
#: A row is a request when one of these holds a value (an unread record has none).
REQUEST_HINTS = ("prompt", "parent_task_id")
#: the gaps file of ``part-0.parquet`` is ``.part-0`` + this
SUFFIX = ".gaps"
#: the gaps file's columns: the request's key, the time (µs), the gaps before and after
KEY, TIME, BEFORE, AFTER = "veo_h", "veo_t", "veo_gb", "veo_ga"
#: the status column, copied: whether a row failed is read with its gaps
STATUS = "status"
#: metadata: the request columns the key hashes (JSON), the key of a fixed probe request
#: (two files agree on keys only if they agree on it), the row count
NAMES_META, PROBE_META, ROWS_META = b"veo_request_columns", b"veo_probe", b"veo_rows"
#: what the list items of a request column are joined by (as the engines compare lists)
_LIST_SEP = "\x1f"
_PROBE = "veo-notebook request probe"
#: a missing value's hash, and the odd number a key is multiplied by before each column
_NULL_HASH, _MIX = 0x9E3779B97F4A7C15, 0x100000001B3


def request_names(columns: Iterable[str]) -> list[str]:
    """The columns that make two submissions the same request, of those present."""
    present = list(columns)
    names = [c for c in REQUEST_COLUMNS if c in present]
    return names + [c for c in DURATION_COLUMNS if c in present][:1]


def gaps_path(data_file: Path) -> Path:
    """The gaps file beside a day's Parquet file (hidden: a dot, and no ``.parquet``)."""
    return data_file.with_name(f".{data_file.stem}{SUFFIX}")


def _hashes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A request column's values hashed (uint64), the same in every file: lists by their
    items joined (missing: empty), dictionaries decoded, values as text. Only the
    distinct values become Python strings."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        column = pc.fill_null(pc.binary_join(column, _LIST_SEP), "")
    coded = pc.dictionary_encode(pc.cast(column, pa.large_string()))
    values = coded.dictionary.to_numpy(zero_copy_only=False)
    known = pd.util.hash_array(values.astype(object)) if len(values) else np.zeros(0, np.uint64)
    table = np.append(known, np.uint64(_NULL_HASH))
    at = pc.fill_null(coded.indices, len(values)).to_numpy(zero_copy_only=False)
    return table[at]


def request_keys(table: pa.Table, names: Sequence[str]) -> np.ndarray:
    """Each row's request key: its ``names`` values' hashes combined, in order (int64)."""
    key = np.zeros(table.num_rows, np.uint64)
    for n in names:
        key = (key * np.uint64(_MIX)) ^ _hashes(table.column(n))
    return key.view(np.int64)


def probe(names: Sequence[str]) -> int:
    """The key of a fixed request: equal in two files only if they hash alike."""
    table = pa.table({n: pa.array([_PROBE]) for n in names}) if names else pa.table({})
    return int(request_keys(table, names)[0]) if names else 0


def _gaps(keys: np.ndarray, t: np.ndarray, valid: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """Gaps (µs) to the previous and next row of the same key, NULL where none."""
    n = len(keys)
    before = np.zeros(n, np.int64)
    after = np.zeros(n, np.int64)
    has_b = np.zeros(n, bool)
    has_a = np.zeros(n, bool)
    at = np.flatnonzero(valid)
    if len(at) > 1:
        order = at[np.lexsort((t[at], keys[at]))]
        same = keys[order][1:] == keys[order][:-1]
        gap = t[order][1:] - t[order][:-1]
        before[order[1:][same]] = gap[same]
        has_b[order[1:][same]] = True
        after[order[:-1][same]] = gap[same]
        has_a[order[:-1][same]] = True
    return pa.array(before, mask=~has_b), pa.array(after, mask=~has_a)


def gaps_table(table: pa.Table) -> pa.Table:
    """The gaps file's rows for a day's rows ``table`` (see the module docstring)."""
    names = request_names(table.column_names)
    keys = request_keys(table, names)
    created = table.column("create_time")
    t = pc.cast(created, pa.timestamp("us", tz="UTC")).cast(pa.int64())
    valid = np.array(pc.is_valid(t).to_numpy(zero_copy_only=False), dtype=bool)
    hints = [h for h in REQUEST_HINTS if h in table.column_names]
    if hints:
        asked = np.zeros(table.num_rows, bool)
        for h in hints:
            asked |= pc.is_valid(table.column(h)).to_numpy(zero_copy_only=False)
        valid &= asked
    else:
        valid[:] = False
    times = (
        t.to_numpy(zero_copy_only=False)
        if t.null_count == 0
        else pc.fill_null(t, 0).to_numpy(zero_copy_only=False)
    )
    before, after = _gaps(keys, np.asarray(times, np.int64), valid)
    status = (
        table.column(STATUS)
        if STATUS in table.column_names
        else pa.nulls(table.num_rows, pa.string())
    )
    out = pa.table(
        {
            KEY: pa.array(keys, mask=~valid),
            TIME: pa.array(np.asarray(times, np.int64), mask=~valid),
            STATUS: status,
            BEFORE: before,
            AFTER: after,
        }
    )
    meta = {
        NAMES_META: json.dumps(names).encode(),
        PROBE_META: str(probe(names)).encode(),
        ROWS_META: str(table.num_rows).encode(),
    }
    return out.replace_schema_metadata(meta)


def write_gaps(data_file: Path, table: pa.Table, part_id: str) -> None:
    """Write the gaps of ``table`` (the rows of ``data_file``, whose part id is
    ``part_id``) beside it, under a temporary name, then renamed."""
    out = gaps_table(table)
    meta = {**(out.schema.metadata or {}), PART_ID: part_id.encode()}
    target = gaps_path(data_file)
    tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(out.replace_schema_metadata(meta), tmp, compression="zstd")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_gaps_of(data_file: Path, part_id: str) -> None:
    """:func:`write_gaps` for a day file already written (its needed columns read back)."""
    schema_ = pq.read_schema(data_file)
    wanted = [*request_names(schema_.names), *REQUEST_HINTS, "create_time", STATUS]
    columns = [c for c in dict.fromkeys(wanted) if c in schema_.names]
    write_gaps(data_file, pq.read_table(data_file, columns=columns), part_id)


class Found(NamedTuple):
    """A dataset's day files and their gaps files, in one order, and what the keys hash."""

    data: list[str]
    gaps: list[str]
    names: list[str]


def find(path: str) -> Found | None:
    """The gaps of the local dataset folder ``path``, if every day file has one that is
    its own (part id, row count), each day one file, all hashing the same columns alike;
    else None (the engine orders every row instead)."""
    root = Path(path)
    if "://" in path or not root.is_dir():
        return None
    data = sorted(p for p in root.glob("**/*.parquet") if not p.name.startswith("."))
    if not data or len({p.parent for p in data}) != len(data):
        return None
    gaps, seen = [], set()
    try:
        for p in data:
            g = gaps_path(p)
            meta = pq.read_schema(g).metadata or {}
            footer = pq.read_metadata(p)
            own = (footer.metadata or {}).get(PART_ID)
            if own is None or meta.get(PART_ID) != own:
                return None
            if meta.get(ROWS_META) != str(footer.num_rows).encode():
                return None
            seen.add((meta.get(NAMES_META), meta.get(PROBE_META)))
            gaps.append(str(g))
    except (OSError, pa.ArrowInvalid):
        return None
    if len(seen) != 1:
        return None
    names_json = next(iter(seen))[0] or b"[]"
    return Found([str(p) for p in data], gaps, list(json.loads(names_json)))
