"""Columnar reading of JSON object texts into an Arrow table of a fixed schema (private).

The fast path hands newline-joined texts to :func:`pyarrow.json.read_json` with an explicit
schema, in chunks on worker threads (no Python object per value). A chunk the reader refuses
(a value of an unexpected type, a line that is not an object) is retried once with the
known type variants renamed (``"createTime": 1773…`` → ``"createTime__num": 1773…``,
``"resultUrls": "[…]"`` → ``"resultUrls__str": "[…]"``), then bisected; the few rows left
go through ``_rows.conform_text``, a per-row Python reader that produces exactly the same
columns and never fails. Rows are put back in input order. A text that does not start
with ``{`` and end with ``}`` goes that way at once: only framed texts make the reader's
row count prove that each row is its own text (``_text.unframed``).

Keys the schema does not name are kept, per row, in a nested ``dict`` of extras
(a key with a ``null`` value is dropped on both paths, so they agree).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ._rows import conform_text, drop_nulls, null_strings, put
from ._text import compact, framed_array, join, to_bytes, unframed, variants_of
from .sources import plain_name

log = logging.getLogger(__name__)

#: rows per reader call: bounds the transient buffers (~12 MB of text)
CHUNK_ROWS = 16_384
#: the reader's block size: larger than any one record, so a record never spans blocks
READER_BLOCK_BYTES = 4 << 20
#: a refused chunk is bisected down to spans of this many rows, then read one by one
BISECT_ROWS = 8
#: chunks are read by this many Python threads (the reader releases the GIL, so one thread
#: joins/encodes the next chunk while another is in the reader)
WORKERS = min(2, os.cpu_count() or 1)

_CONFLICT = re.compile(r"Column\((?:/[^)]*)?/(\w+)\) changed from")


class Result:
    """What :func:`read_objects` returns: the table, and per-row extras and notes."""

    __slots__ = ("extras", "notes", "present", "table")

    def __init__(
        self,
        table: pa.Table,
        present: np.ndarray,
        extras: dict[int, dict[str, Any]],
        notes: dict[int, str],
    ) -> None:
        self.table = table  # exactly the schema asked for, one row per input text
        self.present = present  # bool per row: the text was a JSON object
        self.extras = extras  # row -> nested dict of keys the schema does not name
        self.notes = notes  # row -> why (part of) the row could not be read


def read_objects(
    texts: Sequence[str | bytes | None] | pa.Array,
    schema: pa.Schema,
    what: str,
    aliases: Mapping[str, str] | None = None,
    *,
    workers: int | None = None,
    variants: set[str] | None = None,
) -> Result:
    """Read JSON object texts into a table of ``schema`` (one row per text, in order).

    ``texts`` is a list of str/bytes/None, or an Arrow string array. ``None`` or empty
    texts give all-null rows with ``present`` False and no note; ``what`` names the texts
    in notes ("record", "paramJson"). ``aliases`` maps rarer spellings of top-level keys
    to the schema's name (the first spelling present wins). ``workers``: threads for the
    chunks (default :data:`WORKERS`; 1 when the caller already runs on several threads).
    ``variants``: keys met with their variant type so far, renamed up front in every chunk
    (pass one set to the calls that read parts of the same texts).
    """
    n = len(texts)
    pieces: list[tuple[np.ndarray, pa.Table]] = []  # (input rows, table)
    slow: list[int] = []  # indices into lines
    lines: list[str | bytes]
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        lines, pos = _arrow_lines(texts, schema, pieces, workers)
    else:
        items: list[Any] = texts if isinstance(texts, list) else list(texts)
        lines, pos = items, None
        if not all(items):  # a None or empty text
            lines, pos = compact(items)
    spans = [(lo, min(lo + CHUNK_ROWS, len(lines))) for lo in range(0, len(lines), CHUNK_ROWS)]
    seen = set() if variants is None else variants  # met in one chunk: renamed in the next

    def read(span: tuple[int, int]) -> None:
        _read_span(lines, span[0], span[1], schema, pieces, slow, pos, renamed=False, seen=seen)

    each(read, spans, workers)
    return _assemble(n, lines, pos, pieces, slow, schema, what, aliases or {})


def frame_pool() -> pa.MemoryPool:
    """The pool the reader and the frame's conversions allocate from, passed to them
    explicitly (Arrow's default pool is never changed): the C allocator when the default
    is mimalloc, Arrow's own default, which hands freed memory back to the OS at once and
    faults it in again as huge pages for the next chunk (bench/README.md); else the
    default, a pool the caller chose."""
    pool = pa.default_memory_pool()
    return pa.system_memory_pool() if pool.backend_name == "mimalloc" else pool


def each(fn: Callable[[Any], Any], items: Iterable[Any], workers: int | None = None) -> list[Any]:
    """``[fn(x) for x in items]``, on ``workers`` (default :data:`WORKERS`) threads."""
    items = list(items)
    workers = WORKERS if workers is None else workers
    if len(items) < 2 or workers < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="veo-frame") as ex:
        return list(ex.map(fn, items))


def _arrow_lines(
    arr: pa.Array | pa.ChunkedArray,
    schema: pa.Schema,
    pieces: list[tuple[np.ndarray, pa.Table]],
    workers: int | None,
) -> tuple[list[str | bytes], np.ndarray]:
    """Fast path for an Arrow string array: read its buffer directly, chunk by chunk.

    Rows that are null or empty are read as ``{}`` (the caller knows them); a chunk the
    reader refuses is handed back as lines for the general path.
    """
    todo: list[str | bytes] = []
    todo_pos: list[int] = []

    def read(lo: int) -> pa.Table | None:
        part = arr.slice(lo, CHUNK_ROWS)  # one chunk at a time: the column is never copied
        if isinstance(part, pa.ChunkedArray):
            part = part.combine_chunks(memory_pool=frame_pool())
        if pc.min(pc.binary_length(part)).as_py() == 0:  # an empty text: read as {}
            part = pc.if_else(pc.equal(part, ""), "{}", part)
        if not framed_array(part):  # a text that is not {…}: the general path sorts it out
            return None
        chunk = pc.binary_join_element_wise(
            part,
            "",
            "\n",
            null_handling="replace",
            null_replacement="{}",
            memory_pool=frame_pool(),
        )
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[
            chunk.offset : chunk.offset + len(chunk) + 1
        ]
        buf = chunk.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
        tab = _try_read(buf, schema, len(chunk), "error")
        return tab if tab is not None else _try_read(buf, schema, len(chunk), "infer")

    starts = range(0, len(arr), CHUNK_ROWS)
    for lo, tab in zip(starts, each(read, starts, workers), strict=True):
        n = min(CHUNK_ROWS, len(arr) - lo)
        if tab is not None:
            pieces.append((np.arange(lo, lo + n, dtype=np.int64), tab))
        else:
            todo.extend(v or "{}" for v in arr.slice(lo, CHUNK_ROWS).to_pylist())
            todo_pos.extend(range(lo, lo + n))
    return todo, np.asarray(todo_pos, dtype=np.int64)


def _read_span(
    lines: list[str | bytes],
    lo: int,
    hi: int,
    schema: pa.Schema,
    pieces: list[tuple[np.ndarray, pa.Table]],
    slow: list[int],
    pos: np.ndarray | None,
    *,
    renamed: bool,
    seen: set[str],
) -> None:
    # A text spanning lines, or holding two objects, or blank, shows up as a parse error or
    # a wrong row count: the span is then bisected and its last few rows read one by one.
    buf, parts = join(lines[lo:hi])
    bad = unframed(parts, buf)
    if len(bad):  # read one by one; the runs of framed texts between them as usual
        slow.extend((lo + bad).tolist())
        edges = [lo - 1, *(lo + bad).tolist(), hi]
        for a, b in itertools.pairwise(edges):
            if b - a > 1:
                _read_span(lines, a + 1, b, schema, pieces, slow, pos, renamed=renamed, seen=seen)
        return
    del parts
    ren = variants_of(schema)
    fixed = set() if renamed else set(seen)
    if renamed:
        buf = ren.rename_all(buf)
    for k in sorted(fixed):  # met before: a url key by its compact spelling, a time by regex
        buf = ren.rename(buf, k, compact_only=True)
    mode = "error"  # as fast as "ignore"; a chunk with unknown keys is read again inferring them
    while True:
        try:
            tab = _try_read(buf, schema, hi - lo, mode, raise_conflict=True)
        except _Unexpected:
            mode = "infer"
            continue
        except _Conflict as exc:
            key = exc.key
            if key and key not in fixed and key in ren:
                fixed.add(key)
                seen.add(key)
                buf = ren.rename(buf, key)
                continue
            if not renamed:
                renamed = True
                buf = ren.rename_all(buf)
                continue
            tab = None
        break
    if tab is not None:
        rows = np.arange(lo, hi, dtype=np.int64)
        pieces.append((rows if pos is None else pos[rows], tab))
        return
    if hi - lo <= BISECT_ROWS:
        slow.extend(range(lo, hi))
        return
    mid = (lo + hi) // 2
    _read_span(lines, lo, mid, schema, pieces, slow, pos, renamed=True, seen=seen)
    _read_span(lines, mid, hi, schema, pieces, slow, pos, renamed=True, seen=seen)


class _Conflict(Exception):
    def __init__(self, key: str | None) -> None:
        self.key = key


class _Unexpected(Exception):
    pass


def _try_read(
    buf: bytes | pa.Buffer,
    schema: pa.Schema,
    expect_rows: int,
    mode: str,
    *,
    raise_conflict: bool = False,
) -> pa.Table | None:
    try:
        tab = pj.read_json(
            pa.BufferReader(buf),
            # the reader's own threads stay off: chunks (and the frame's blocks) already run
            # on several threads, and a second layer only adds hand-offs (bench/README.md)
            read_options=pj.ReadOptions(use_threads=False, block_size=READER_BLOCK_BYTES),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior=mode),
            memory_pool=frame_pool(),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        if not raise_conflict:
            return None
        if mode == "error" and "unexpected field" in str(exc):
            raise _Unexpected from exc
        m = _CONFLICT.search(str(exc))
        raise _Conflict(m.group(1) if m else None) from exc
    if tab.num_rows != expect_rows:
        if raise_conflict:
            raise _Conflict(None)
        return None
    return tab


def _assemble(
    n: int,
    lines: list[str | bytes],
    pos: np.ndarray | None,
    pieces: list[tuple[np.ndarray, pa.Table]],
    slow: list[int],
    schema: pa.Schema,
    what: str,
    aliases: Mapping[str, str],
) -> Result:
    extras: dict[int, dict[str, Any]] = {}
    notes: dict[int, str] = {}
    tables: list[pa.Table] = []
    order: list[np.ndarray] = []
    pieces.sort(key=lambda piece: int(piece[0][0]) if len(piece[0]) else -1)  # threads: any order
    for rows, tab in pieces:
        known, piece_extras = _project_table(tab, schema, aliases)
        tables.append(known)
        order.append(rows)
        for r, e in piece_extras.items():
            extras[int(rows[r])] = e
    present = np.zeros(n, dtype=bool)
    if order:
        present[np.concatenate(order)] = True
    if slow:
        conformed = []
        for li in slow:
            row, extra, note, ok = conform_text(to_bytes(lines[li]), schema, what, aliases)
            conformed.append(row)
            i = li if pos is None else int(pos[li])
            present[i] = ok
            if extra:
                extras[i] = extra
            if note:
                notes[i] = note
        tables.append(pa.Table.from_pylist(conformed, schema=schema))
        li_arr = np.asarray(slow, dtype=np.int64)
        order.append(li_arr if pos is None else pos[li_arr])
    if not tables:
        return Result(pa.Table.from_pylist([{}] * n, schema=schema), present, extras, notes)
    table = pa.concat_tables(tables, memory_pool=frame_pool()) if len(tables) > 1 else tables[0]
    rows = np.concatenate(order)
    if len(rows) == n and (np.diff(rows) > 0).all():
        return Result(table, present, extras, notes)
    take = np.full(n, -1, dtype=np.int64)
    take[rows] = np.arange(len(rows), dtype=np.int64)
    idx = pa.array(take, mask=take < 0)
    return Result(pc.take(table, idx, memory_pool=frame_pool()), present, extras, notes)


# -- projection of a read table onto the schema, collecting unknown keys ---------------------


def _project_table(
    tab: pa.Table, schema: pa.Schema, aliases: Mapping[str, str]
) -> tuple[pa.Table, dict[int, dict[str, Any]]]:
    extras: dict[int, dict[str, Any]] = {}
    if tab.schema.equals(schema):  # nothing unknown: keep the reader's chunks, no copy
        return tab, extras
    cols = {}
    for f in schema:
        arr = (
            tab.column(f.name).combine_chunks(memory_pool=frame_pool())
            if f.name in tab.column_names
            else None
        )
        if arr is None:
            cols[f.name] = pa.nulls(tab.num_rows, f.type)
            continue
        cols[f.name] = _project(arr, f.type, (f.name,), extras)
    for name in tab.column_names:
        if schema.get_field_index(name) >= 0:
            continue
        arr = tab.column(name).combine_chunks(memory_pool=frame_pool())
        target = aliases.get(name)
        if target is not None and arr.type == schema.field(target).type:
            cols[target] = pc.coalesce(cols[target], arr, memory_pool=frame_pool())
        elif not (target is not None and pa.types.is_null(arr.type)):
            _collect(arr, (plain_name(name),), extras)
    return pa.Table.from_arrays(list(cols.values()), schema=schema), extras


def _project(arr: pa.Array, typ: pa.DataType, path: tuple[str, ...], extras: dict) -> pa.Array:
    if not pa.types.is_struct(typ) or arr.type == typ:
        return arr
    children = []
    known = {typ.field(k).name for k in range(typ.num_fields)}
    for k in range(typ.num_fields):
        f = typ.field(k)
        idx = arr.type.get_field_index(f.name)
        if idx < 0:
            children.append(pa.nulls(len(arr), f.type))
        else:
            children.append(_project(arr.field(idx), f.type, (*path, f.name), extras))
    for k in range(arr.type.num_fields):
        name = arr.type.field(k).name
        if name not in known:
            child = arr.field(k)
            if arr.null_count:
                child = pc.if_else(arr.is_valid(), child, pa.nulls(len(arr), child.type))
            _collect(child, (*path, plain_name(name)), extras)
    return pa.StructArray.from_arrays(children, fields=list(typ), mask=arr.is_null())


def _collect(child: pa.Array, path: tuple[str, ...], extras: dict[int, dict[str, Any]]) -> None:
    if pa.types.is_null(child.type) or child.null_count == len(child):
        return
    rows = np.flatnonzero(np.asarray(child.is_valid()))
    for r, v in zip(rows.tolist(), child.take(pa.array(rows)).to_pylist(), strict=False):
        if v != "null":  # a member whose value is the string "null" is null (``_rows``)
            put(extras.setdefault(r, {}), path, drop_nulls(null_strings(v)))
