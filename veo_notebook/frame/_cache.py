"""The parsed-frame cache beside a store file: parse only what was written since.

``<store>.frame-cache.arrow`` (an Arrow IPC file, memory-mapped) holds the typed frame
of every record of the store, with each row's ``rowid``, and a key: the store's id, the
schema and parser versions, a digest of the parser's source and the ``naive_tz``, and
the store's row version when it was built. Opening the store reads the cache, asks the store for the
rows written after that version (new or changed) and parses only those; deleted rows
are dropped. Any key mismatch (a parser or schema change, another store, another zone)
means a full parse.

Rewriting the whole file for a few changed rows would copy every column, so the rows
parsed since go to a small *delta* beside it (``<store>.frame-cache.delta.arrow``, tied
to its base by a random id), laid over the base by rowid on the next open; when the
delta passes :data:`DELTA_SHARE` of the rows (or rows were deleted), base and delta are
written out as a new base.

Safe by construction: the store's row versions only grow and every write to a row gives
it a new one, so a row unchanged since the cache's version is the cached row exactly;
the reads happen in one snapshot, so a writer meanwhile is seen next time, never
half. The file is written to a temporary name and renamed (a reader sees the old cache
or the new one); deleting it loses nothing (the raw records stay the truth).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import schema
from ..store import RawRecords, Store

log = logging.getLogger(__name__)

#: Bumped whenever a reading rule changes what a record parses to (the source digest
#: below catches edits too; this says so on purpose).
PARSER_VERSION = 1
#: The cache file beside ``<store>``: ``<store>`` + this suffix.
SUFFIX = ".frame-cache.arrow"
_KEY = b"veo_notebook.frame_cache"
_ROWID = "__rowid"
#: a cache written with more chunks than this (runs of rows around changed ones) is
#: compacted into contiguous columns first
MAX_CHUNKS = 64
#: rows per record batch in the cache file
BATCH_ROWS = 65_536
#: the delta is folded into a new base once it holds more than this share of the rows
DELTA_SHARE = 0.1

Parse = Callable[[RawRecords], pd.DataFrame]


def _source_digest() -> str:
    """A digest of the parser's and schema's source: an edit invalidates every cache."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for p in [*sorted(here.glob("*.py")), here.parent / "schema.py"]:
        with contextlib.suppress(OSError):
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


_DIGEST = _source_digest()


def path_for(store: Store) -> Path | None:
    """The cache file of ``store`` (None for an in-memory store)."""
    if store.path == ":memory:":
        return None
    return Path(store.path + SUFFIX)


def _key(store: Store, naive_tz: str) -> dict[str, object]:
    return {
        "store_id": store.store_id,
        "schema": schema.SCHEMA_VERSION,
        "parser": PARSER_VERSION,
        "source": _DIGEST,
        "naive_tz": naive_tz,
    }


class _Layer(NamedTuple):
    table: pa.Table
    version: int  # the store's row version this layer is complete up to
    base_id: str  # the base it belongs to (a base's own id)


def _read(path: Path, key: dict[str, object]) -> _Layer | None:
    try:
        # mapped, not read: the frame's columns point into the file's pages (a cache file
        # is only ever replaced by a rename, never changed in place, so they stay valid)
        with pa.memory_map(str(path), "r") as f:
            table = pa.ipc.open_file(f).read_all()
        meta = json.loads((table.schema.metadata or {}).get(_KEY, b"{}"))
    except (OSError, pa.ArrowInvalid, ValueError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.debug("frame cache %s unreadable (%s): not used", path, exc)
        return None
    if meta.get("key") != key:
        return None
    return _Layer(table, int(meta["version"]), str(meta["base_id"]))


def _write(path: Path, layer: _Layer, key: dict[str, object]) -> None:
    meta = {"key": key, "version": layer.version, "base_id": layer.base_id}
    table = layer.table
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _KEY: json.dumps(meta).encode()}
    )
    if table.num_rows and table.column(0).num_chunks > MAX_CHUNKS:
        table = table.combine_chunks()  # contiguous again, not one piece per run of rows
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f, pa.ipc.new_file(f, table.schema) as w:
            w.write_table(table, max_chunksize=BATCH_ROWS)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only folder: the frame is right, just not cached
        log.debug("frame cache %s not written: %s", path, exc)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _table(df: pd.DataFrame, rowids: list[int]) -> pa.Table:
    t = pa.Table.from_pandas(df, preserve_index=False)
    return t.append_column(_ROWID, pa.array(rowids, pa.int64()))


def _frame(table: pa.Table) -> pd.DataFrame:
    t = table.drop_columns([_ROWID])
    return t.to_pandas(types_mapper=schema.pandas_type)


def delta_path(path: Path) -> Path:
    """The delta file beside a cache file."""
    return path.with_name(path.name.removesuffix(".arrow") + ".delta.arrow")


def cached_frame(store: Store, naive_tz: str, parse: Parse, chunk: int) -> pd.DataFrame:
    """The frame of every record of ``store``: the cache, its delta, and what was written since.

    Layers are laid over each other by rowid, the latest winning (a changed row's new
    state in its old place; new rows come after, SQLite giving them higher rowids), and
    joined from zero-copy slices; rows the store no longer holds are left out.
    """
    path = path_for(store)
    assert path is not None
    key = _key(store, naive_tz)
    base = _read(path, key)
    if base is None:
        return cached_frame_full(store, parse, path, key, chunk)
    layers = [base.table]
    since = base.version
    delta = _read(delta_path(path), key)
    if delta is not None and delta.base_id == base.base_id and delta.version >= since:
        layers.append(delta.table)
        since = delta.version
    meta = base.table.schema.metadata
    base_ids = base.table.column(_ROWID).to_numpy()  # in rowid order
    later = [t.column(_ROWID).to_numpy() for t in layers[1:]]
    with store.snapshot():
        changes = store.changes_since(since)
        if changes.version < since:  # not this store's past
            return cached_frame_full(store, parse, path, key, chunk)
        held = store.count()
        extra = np.unique(np.concatenate([*later, np.asarray(changes.rowids, np.int64)]))
        at = np.minimum(np.searchsorted(base_ids, extra), max(len(base_ids) - 1, 0))
        outside = int((base_ids[at] != extra).sum()) if len(base_ids) else len(extra)
        known = len(base_ids) + outside  # rows of the base, the delta and the changes
        alive = np.asarray(store.rowids(), dtype=np.int64) if known != held else None
    if not changes.rowids and alive is None and len(layers) == 1:
        return _frame(base.table)  # nothing written since: the cache as it is
    if changes.rowids:
        layers.append(_table(parse(changes.records), changes.rowids))
    both = pa.concat_tables([t.replace_schema_metadata(meta) for t in layers])
    rowids = both.column(_ROWID).to_numpy()
    by_rowid = np.argsort(rowids, kind="stable")
    r = rowids[by_rowid]
    order = by_rowid[np.append(r[1:] != r[:-1], True)]  # the last layer's row of each rowid
    if alive is not None:  # rows were deleted
        order = order[np.isin(rowids[order], alive)]
    merged = _gather(both, order)
    n_base = base.table.num_rows
    fresh = order[order >= n_base] - n_base  # rows not from the base, in the later layers
    if changes.rowids or alive is not None:
        if alive is not None or len(fresh) > DELTA_SHARE * len(order):
            _write(path, _Layer(merged, changes.version, uuid.uuid4().hex), key)
        else:
            tail = pa.concat_tables([t.replace_schema_metadata(meta) for t in layers[1:]])
            delta_rows = tail.combine_chunks().take(pa.array(fresh))
            _write(delta_path(path), _Layer(delta_rows, changes.version, base.base_id), key)
    return _frame(merged)


def full_table(store: Store, parse: Parse, chunk: int) -> tuple[pa.Table, int]:
    """Every row of ``store`` parsed, ``chunk`` rows at a time in one snapshot, as one
    table (with rowids), and the store's row version.

    Only one chunk's raw texts and parse buffers are alive at once (the memory a build
    needs stays near the frame's own size); the chunks' columns are joined without a copy.
    """
    parts: list[pa.Table] = []
    after, version = 0, 0
    with store.snapshot():
        while True:
            page = store.changes_since(0, after=after, limit=chunk)
            version = page.version
            if not page.rowids and parts:
                break
            parts.append(_table(parse(page.records), page.rowids))
            if len(page.rowids) < chunk:
                break
            after = page.rowids[-1]
            del page
    if len(parts) == 1:
        return parts[0], version
    meta = parts[0].schema.metadata
    return pa.concat_tables([p.replace_schema_metadata(meta) for p in parts]), version


def full_frame(store: Store, parse: Parse, chunk: int) -> pd.DataFrame:
    """Every row of ``store`` parsed in chunks (see :func:`full_table`), no cache."""
    return _frame(full_table(store, parse, chunk)[0])


def _gather(table: pa.Table, order: np.ndarray) -> pa.Table:
    """``table.take(order)`` without a copy, for an order made of runs (rows in place, a few
    replaced): zero-copy slices of the runs (a take copies every column)."""
    if len(order) == 0:
        return table.slice(0, 0)
    breaks = np.flatnonzero(np.diff(order) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(order)]])
    return pa.concat_tables(
        [table.slice(int(order[a]), int(b - a)) for a, b in zip(starts, ends, strict=True)]
    )


def cached_frame_full(
    store: Store, parse: Parse, path: Path, key: dict[str, object], chunk: int
) -> pd.DataFrame:
    """A full parse, written as the new cache (a new base: any delta is left behind)."""
    table, version = full_table(store, parse, chunk)
    _write(path, _Layer(table, version, uuid.uuid4().hex), key)
    return _frame(table)
