"""The typed frame of a store as a hive-partitioned Parquet dataset beside it, kept in step.

``<store>.frame/`` holds one Parquet file per UTC creation day,
``create_date=YYYY-MM-DD/part-0.parquet``; rows without a creation time (unread records,
fetch errors, unreadable times) are in ``create_date=none/`` (:data:`NO_DAY`). Every
engine reads it as it is (:mod:`veo_notebook.frame._parquet`): DuckDB
``read_parquet('<store>.frame/**/*.parquet', hive_partitioning=true)``, Spark
``spark.read.parquet('<store>.frame')``, ``pandas.read_parquet``, Dask, Polars, pyarrow.
:func:`sync` brings it up to date and returns its path; :func:`veo_notebook.frame.from_store`
reads the whole frame from it (one mechanism: there is no other cache).

Kept in step by the store's row versions (:meth:`~veo_notebook.Store.changes_since`): a
sync parses only the rows written since the last one, and rewrites only the days those
rows are in (or left, or were deleted from), two at a time on threads. Each file is
written under a temporary name and renamed over the old one, so a reader sees a day's
old file or its new one, whole. Each day's request gaps are written beside it, after it
(:mod:`._request_gaps`: a hidden file every reader skips; the engine uses them only
where they name the file's part id).
A state file (``.veo-state.arrow``, hidden from every reader) lists each row's rowid and
day, the store's row version, and an id per file; the rows of a day's file are in rowid
order. A key (the store's id, the schema and parser versions, a digest of the parser's
source, the zone of plain times) ties the dataset to its store and parser: any change
rebuilds it by itself, and so does a missing or foreign file. Deleting it loses nothing:
the store's raw records are the truth.

A full build reads the store :data:`BLOCK_ROWS` rows at a time in one snapshot and keeps
at most :data:`BUFFER_ROWS` parsed rows before writing them out as row groups, so its
memory is bounded by the block, not by the history.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import schema
from ..errors import InputError, StoreError
from ..store import RawRecords, Store
from . import _parquet, _request_gaps
from ._dataset_state import (
    FILE_NAME,
    PART_ID,
    PARTITION,
    State,
    _Days,
    day_dir,
    locked,
    read_state,
    write_state,
)
from ._read import each, frame_pool

__all__ = ["NO_DAY", "PARTITION", "SUFFIX", "path_for", "read_frame", "sync"]

log = logging.getLogger(__name__)

#: Bumped whenever a reading rule changes what a record parses to (the source digest
#: below catches edits too; this says so on purpose).
PARSER_VERSION = 1
#: the dataset folder beside ``<store>``: ``<store>`` + this suffix
SUFFIX = ".frame"
#: the partition of rows without a creation time
NO_DAY = _parquet.NO_VALUE
#: store rows parsed at a time (a reader chunk: one chunk's texts and buffers are alive)
BLOCK_ROWS = 16_384
#: rows per Parquet row group
ROW_GROUP_ROWS = _parquet.ROW_GROUP_ROWS
#: parsed rows held before the largest days are written out (bounds a build's memory)
BUFFER_ROWS = 4 * ROW_GROUP_ROWS
#: an update touching more than this share of the rows is a full rebuild instead
REBUILD_SHARE = 0.5

Parse = Callable[[RawRecords], pd.DataFrame]


def _source_digest() -> str:
    """A digest of the parser's and schema's source: an edit rebuilds every dataset."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for p in [*sorted(here.glob("*.py")), here.parent / "schema.py"]:
        with contextlib.suppress(OSError):
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


_DIGEST = _source_digest()


def path_for(store: Store) -> Path:
    """The dataset folder of ``store``: ``<store>.frame``.

    Raises
    ------
    InputError
        For an in-memory store (it has no folder to keep a dataset beside).
    """
    if store.path == ":memory:":
        raise InputError(
            "an in-memory store has no dataset beside it: use a store file, or "
            "veo.to_parquet(frame, path, partition_by='create_date')"
        )
    return Path(store.path + SUFFIX)


def _key(store: Store, naive_tz: str) -> dict[str, object]:
    return {
        "store_id": store.store_id,
        "schema": schema.SCHEMA_VERSION,
        "parser": PARSER_VERSION,
        "source": _DIGEST,
        "naive_tz": naive_tz,
    }


def _rows(table: pa.Table, at: np.ndarray) -> pa.Table:
    """The rows at ascending positions ``at``: a zero-copy slice when they are one run."""
    if len(at) and int(at[-1]) - int(at[0]) + 1 == len(at):
        return table.slice(int(at[0]), len(at))
    return pc.take(table, pa.array(at), memory_pool=frame_pool())


def _runs(codes: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(code, positions) of each code, positions ascending."""
    order = np.argsort(codes, kind="stable")
    for run in np.split(order, np.flatnonzero(np.diff(codes[order])) + 1):
        if len(run):
            yield int(codes[run[0]]), run


class _Block(NamedTuple):
    rowids: np.ndarray
    table: pa.Table
    codes: np.ndarray


def _blocks(store: Store, parse: Parse, since: int, days: _Days, bar: Any) -> Iterator[Any]:
    """The rows written after ``since`` parsed a block at a time, then the store's row
    version; call inside a snapshot."""
    after = 0
    while True:
        page = store.changes_since(since, after=after, limit=BLOCK_ROWS)
        if page.rowids:
            df = parse(page.records)
            day = _parquet.day_of(df["create_time"]).to_numpy(dtype=object)
            yield _Block(np.asarray(page.rowids, np.int64), _parquet.to_table(df), days.codes(day))
            bar.update(len(page.rowids))
        if len(page.rowids) < BLOCK_ROWS:
            yield page.version
            return
        after = page.rowids[-1]


class _Writer:
    """One day's file during a build: row groups written as rows come in."""

    def __init__(self, path: Path, schema_: pa.Schema, part_id: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**(schema_.metadata or {}), PART_ID: part_id.encode()}
        self.writer = pq.ParquetWriter(
            str(path), schema_.with_metadata(meta), **_parquet.write_options(schema_)
        )
        self.pending: list[pa.Table] = []
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.rows += table.num_rows

    def flush(self) -> int:
        """Write what is pending as row groups; returns how many rows that was."""
        rows = self.rows
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending), ROW_GROUP_ROWS)
        self.pending, self.rows = [], 0
        return rows


def _build(
    store: Store,
    parse: Parse,
    root: Path,
    key: dict[str, object],
    *,
    progress: bool,
    keep: list[_Block] | None = None,
) -> State:
    """Write the whole dataset anew, in a new folder swapped in when complete; ``keep``
    collects the parsed blocks (the caller wants the frame too)."""
    build = root.with_name(f".{root.name}.build-{uuid.uuid4().hex[:8]}")
    build.mkdir(parents=True)
    days, writers, files = _Days(), dict[int, _Writer](), dict[str, str]()
    ids: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    version, held = 0, 0
    try:
        with store.snapshot(), _bar(store, progress) as bar:
            for block in _blocks(store, parse, 0, days, bar):
                if not isinstance(block, _Block):
                    version = block
                    continue
                if keep is not None:
                    keep.append(block)
                ids.append(block.rowids)
                codes.append(block.codes)
                for code, at in _runs(block.codes):
                    if code not in writers:
                        day = days.names[code]
                        files[day] = uuid.uuid4().hex
                        path = day_dir(build, day) / FILE_NAME
                        writers[code] = _Writer(path, block.table.schema, files[day])
                    writers[code].add(_rows(block.table, at))
                    held += len(at)
                    if writers[code].rows >= ROW_GROUP_ROWS:
                        held -= writers[code].flush()
                while held > BUFFER_ROWS:  # rows out of creation order: write the biggest
                    held -= max(writers.values(), key=lambda w: w.rows).flush()
        for w in writers.values():
            w.flush()
            w.writer.close()
        for d in files:  # one day at a time, on this thread: workers' arenas would keep
            _request_gaps.write_gaps_of(day_dir(build, d) / FILE_NAME, files[d])  # 200 MB
        if not writers:  # an empty store: one empty file carries the schema
            files[NO_DAY] = uuid.uuid4().hex
            _write_file(build, NO_DAY, _parquet.to_table(schema.empty_frame()), files[NO_DAY])
        state = State(version, _cat(ids, np.int64), _cat(codes, np.int32), days.names, files)
        write_state(build, state, key)
        _swap(build, root)
    except BaseException:
        for w in writers.values():
            with contextlib.suppress(Exception):
                w.writer.close()
        shutil.rmtree(build, ignore_errors=True)
        raise
    log.info("built dataset %s: %d rows in %d days", root, len(state.rowids), len(files))
    return state


def _cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def _swap(build: Path, root: Path) -> None:
    """Put the finished folder ``build`` at ``root`` (the old one, if any, removed)."""
    old = root.with_name(f".{root.name}.old-{uuid.uuid4().hex[:8]}")
    if root.exists():
        os.rename(root, old)
    os.rename(build, root)
    shutil.rmtree(old, ignore_errors=True)


def _write_file(root: Path, day: str, table: pa.Table, part_id: str) -> None:
    """A day's file, written under a temporary name and renamed over the old one."""
    folder = day_dir(root, day)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {**(table.schema.metadata or {}), PART_ID: part_id.encode()}
    tmp = folder / f".{FILE_NAME}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        pq.write_table(
            table.replace_schema_metadata(meta),
            tmp,
            row_group_size=ROW_GROUP_ROWS,
            **_parquet.write_options(table.schema),
        )
        os.replace(tmp, folder / FILE_NAME)
    finally:
        tmp.unlink(missing_ok=True)


class _Stale(Exception):
    """A day's file is not the one the state names (a crash between writes, a hand edit)."""


def _read_day(root: Path, state: State, day: str, rowids: np.ndarray) -> pa.Table:
    """A day's rows, checked against the state (its file id and row count)."""
    with pq.ParquetFile(day_dir(root, day) / FILE_NAME) as f:
        table = f.read()
    found = (table.schema.metadata or {}).get(PART_ID, b"").decode()
    if found != state.files.get(day) or table.num_rows != len(rowids):
        raise _Stale(day)
    return table


Fresh = dict[str, tuple[np.ndarray, pa.Table]]


def _changes(
    store: Store, parse: Parse, state: State, days: _Days
) -> tuple[int, list[_Block], np.ndarray | None] | None:
    """The store's version, the blocks written since ``state`` and the rowids still held (None
    when no row was deleted), read in one snapshot; None when a rebuild is better."""
    limit = max(BLOCK_ROWS, REBUILD_SHARE * len(state.rowids))
    blocks: list[_Block] = []
    version = state.version
    with store.snapshot(), _bar(store, False) as bar:
        for block in _blocks(store, parse, state.version, days, bar):
            if not isinstance(block, _Block):
                version = block
                continue
            blocks.append(block)
            if sum(b.table.num_rows for b in blocks) > limit:
                return None
        changed = _cat([b.rowids for b in blocks], np.int64)
        at = np.minimum(np.searchsorted(state.rowids, changed), max(len(state.rowids) - 1, 0))
        new = int((state.rowids[at] != changed).sum()) if len(state.rowids) else len(changed)
        known = len(state.rowids) + new
        alive = np.asarray(store.rowids(), np.int64) if known != store.count() else None
    if version < state.version:  # not this store's past
        return None
    return version, blocks, alive


def _update(
    store: Store, parse: Parse, root: Path, state: State, key: dict[str, object]
) -> tuple[State, Fresh] | None:
    """Bring the dataset from ``state`` to the store's present, rewriting only the days
    whose rows changed; None if a rebuild is better. Returns the new state and the
    rewritten days' rows (reused by :func:`read_frame`)."""
    days = _Days(state.names)
    got = _changes(store, parse, state, days)
    if got is None:
        return None
    version, blocks, alive = got
    changed = _cat([b.rowids for b in blocks], np.int64)
    new_codes = _cat([b.codes for b in blocks], np.int32)
    gone = changed if alive is None else np.union1d(changed, np.setdiff1d(state.rowids, alive))
    if not len(gone):
        return state._replace(version=version), {}
    was = np.isin(state.rowids, gone)
    touched = sorted(set(state.codes[was].tolist()) | set(new_codes.tolist()))
    fresh = _concat([b.table for b in blocks]) if blocks else None
    before = state.by_day()
    none = np.empty(0, np.int64)

    def rewrite(code: int) -> tuple[str, str, tuple[np.ndarray, pa.Table] | None]:
        day, mine = days.names[code], np.flatnonzero(new_codes == code)
        new = _rows(fresh, mine) if len(mine) and fresh is not None else None
        rows = _new_day(root, state, day, before.get(day, none), gone, changed[mine], new)
        part_id = uuid.uuid4().hex
        if rows is not None:
            _write_file(root, day, rows[1], part_id)
            _request_gaps.write_gaps(day_dir(root, day) / FILE_NAME, rows[1], part_id)
        return day, part_id, rows

    files, out = dict(state.files), Fresh()
    # the days on threads: Arrow lets go of the GIL while it reads, gathers and writes
    for day, part_id, rows in each(rewrite, touched):
        if rows is None:
            files.pop(day, None)
            shutil.rmtree(day_dir(root, day), ignore_errors=True)
        else:
            files[day], out[day] = part_id, rows
    if not files:  # every row deleted: one empty file carries the schema
        files[NO_DAY] = uuid.uuid4().hex
        _write_file(root, NO_DAY, _parquet.to_table(schema.empty_frame()), files[NO_DAY])
        days.codes(np.array([NO_DAY], dtype=object))
    rowids = np.concatenate([state.rowids[~was], changed])
    codes = np.concatenate([state.codes[~was], new_codes])
    order = np.argsort(rowids, kind="stable")
    new = State(version, rowids[order], codes[order], days.names, files)
    write_state(root, new, key)
    log.info("dataset %s: %d rows changed, %d days rewritten", root, len(gone), len(out))
    return new, out


def _new_day(
    root: Path,
    state: State,
    day: str,
    old_ids: np.ndarray,
    gone: np.ndarray,
    new_ids: np.ndarray,
    new: pa.Table | None,
) -> tuple[np.ndarray, pa.Table] | None:
    """A day's rowids and rows after an update, in rowid order: its old rows still held and
    its changed or added ones, gathered by one take (slices when the new rows come after
    the old); None when none are left."""
    ids, parts, keep = [], [], []
    if day in state.files:
        ids.append(old_ids)
        parts.append(_read_day(root, state, day, old_ids))
        keep.append(~np.isin(old_ids, gone))
    if new is not None:
        ids.append(new_ids)
        parts.append(new)
        keep.append(np.ones(len(new_ids), bool))
    every = _cat(ids, np.int64)
    at = np.flatnonzero(_cat(keep, np.bool_))
    if not len(at):
        return None
    at = at[np.argsort(every[at], kind="stable")]
    return every[at], _gather(_concat(parts), at)


class _NoBar:
    """A progress bar that shows nothing (and costs no import of tqdm's notebook parts)."""

    def update(self, n: int) -> None:
        """Nothing to show."""


def _bar(store: Store, show: bool) -> Any:
    if not show:
        return contextlib.nullcontext(_NoBar())
    from tqdm.auto import tqdm

    return tqdm(total=store.count(), unit="rows", desc="dataset")


def _sync(
    store: Store,
    parse: Parse,
    naive_tz: str,
    *,
    progress: bool = False,
    keep: list[_Block] | None = None,
    then: Callable[[Path, State, Fresh], Any] | None = None,
) -> Any:
    """Bring the dataset up to date; return ``then(root, state, fresh)`` (called while the
    dataset is still locked: no other sync changes a file meanwhile) or, without ``then``,
    its folder. ``fresh`` holds the rows of the days just rewritten; after a full build
    with ``keep``, the blocks are in ``keep`` instead."""
    root = path_for(store)
    if not store.versioned:
        raise StoreError(
            f"store {store.path!r} has no row versions (made by an older veo-notebook and "
            "opened read-only): open it once writable to add them"
        )
    key = _key(store, naive_tz)
    with locked(root):
        state = read_state(root, key)
        if state is not None:
            try:
                done = _update(store, parse, root, state, key)
            except (_Stale, OSError, pa.ArrowInvalid) as exc:
                log.info("dataset %s out of step (%s): rebuilt", root, exc)
                done = None
            if done is None:
                done = _build(store, parse, root, key, progress=progress, keep=keep), {}
        else:
            done = _build(store, parse, root, key, progress=progress, keep=keep), {}
        return root if then is None else then(root, *done)


def read_frame(root: Path, state: State, fresh: Fresh | None = None) -> pd.DataFrame:
    """The whole typed frame from the dataset, in rowid order (the order rows were first
    stored); ``fresh`` days are taken as given instead of read again."""
    fresh = fresh or {}
    days = sorted(state.by_day().items())

    def read(day: str, day_ids: np.ndarray) -> pa.Table:
        return fresh[day][1] if day in fresh else _read_day(root, state, day, day_ids)

    return _ordered([i for _, i in days], each(lambda d: read(*d), days))


def _ordered(ids: list[np.ndarray], tables: list[pa.Table]) -> pd.DataFrame:
    if not tables:
        return schema.empty_frame()
    both = _concat(tables)
    order = np.argsort(np.concatenate(ids), kind="stable")
    return _parquet.to_frame(_gather(both, order))


def _concat(tables: list[pa.Table]) -> pa.Table:
    """Tables of frame columns joined, each cast to the first's types (a file read back
    gives some dictionaries large strings where a parse gives strings)."""
    first = tables[0].schema
    return pa.concat_tables([t if t.schema.equals(first) else t.cast(first) for t in tables])


def _gather(table: pa.Table, order: np.ndarray) -> pa.Table:
    """``table.take(order)``, from zero-copy slices when the order is made of few runs (rows
    stored in creation order are); a take otherwise, from the frame's pool (every column is
    copied: fresh memory, which mimalloc would fault in as huge pages)."""
    if len(order) == 0:
        return table.slice(0, 0)
    breaks = np.flatnonzero(np.diff(order) != 1) + 1
    if len(breaks) > max(64, len(order) // 1000):
        at = pa.array(order)
        cols = each(lambda c: pc.take(c, at, memory_pool=frame_pool()), table.columns)
        return pa.Table.from_arrays(cols, schema=table.schema)
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(order)]])
    return pa.concat_tables(
        [table.slice(int(order[a]), int(b - a)) for a, b in zip(starts, ends, strict=True)]
    )


def store_frame(store: Store, parse: Parse, naive_tz: str) -> pd.DataFrame:
    """Every record of a store file as the typed frame, through its dataset (see the module
    docstring); a store whose folder cannot be written is parsed whole instead."""
    keep: list[_Block] = []

    def read(root: Path, state: State, fresh: Fresh) -> pd.DataFrame:
        if keep:  # just built: the blocks are the frame, in rowid order
            return _ordered([b.rowids for b in keep], [b.table for b in keep])
        return read_frame(root, state, fresh)

    try:
        frame: pd.DataFrame = _sync(store, parse, naive_tz, keep=keep, then=read)
        return frame
    except (OSError, _Stale) as exc:
        log.debug("dataset beside %s not usable (%s): parsed whole", store.path, exc)
        return full_frame(store, parse)


def full_frame(store: Store, parse: Parse) -> pd.DataFrame:
    """Every row of ``store`` parsed block by block in one snapshot, no dataset."""
    blocks: list[_Block] = []
    with store.snapshot(), _bar(store, False) as bar:
        blocks = [b for b in _blocks(store, parse, 0, _Days(), bar) if isinstance(b, _Block)]
    return _ordered([b.rowids for b in blocks], [b.table for b in blocks])


def sync(store: Store | str | os.PathLike[str], *, progress: bool = False) -> Path:
    """Bring the dataset beside a store up to date, and return its folder.

    Parameters
    ----------
    store : Store or path
        A store, or the path of a store file (opened without creating one).
    progress : bool
        Show a progress bar while a full build parses the store.

    Returns
    -------
    pathlib.Path
        ``<store>.frame``: a hive dataset by UTC creation day that DuckDB, Spark, pandas,
        Dask, Polars and pyarrow read as it is.

    Raises
    ------
    InputError
        An in-memory store.
    StoreError, StoreNotFoundError
        The store cannot be read (or has no row versions).

    >>> import tempfile, pathlib
    >>> from veo_notebook import Store
    >>> with Store(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite") as st:
    ...     st.put("t1", '{"code":200,"data":{"successFlag":1}}', fetched_at=0.0)
    ...     sorted(p.name for p in sync(st).iterdir())
    ['.veo-state.arrow', 'create_date=none']
    """
    from . import DEFAULT_NAIVE_TZ, from_raw

    def parse(raw: RawRecords) -> pd.DataFrame:  # root_task_id: derived by the reader
        return from_raw(raw.texts, raw.task_ids, raw.fetched_at, raw.fetch_errors, roots=False)

    if not isinstance(store, Store):
        with Store(store, create=False) as opened:
            return sync(opened, progress=progress)
    root: Path = _sync(store, parse, DEFAULT_NAIVE_TZ, progress=progress)
    return root
