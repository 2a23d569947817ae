"""Raw record-info answers → the typed task frame (:data:`veo_notebook.schema.COLUMNS`).

:func:`to_frame` takes envelopes ``{code, msg, data}``, bare ``data`` objects or the
store's rows ``{task_id, raw, fetched_at, fetch_error}``; :func:`from_raw` is the
columnar fast path over raw envelope texts (what the store holds). Both return one row
per input record, in input order, with exactly the schema's dtypes, and never raise on
a record: what cannot be read is NA and ``parse_note`` says why.

Reading rules
-------------
Where each column is read from (JSON paths, spellings, second types) is one table,
:mod:`veo_notebook.frame.sources`; the rules below compute the rest.

* **An answer is what its envelope says**: ``code`` not 200 (``{"code": 500, "msg":
  "Task generation failed", "data": {…}}``) is a failed query, a fetch error row
  (``fetch_error = "<code> <msg>"``, ``status`` NA) whatever ``data`` holds; that data is
  kept in ``extra``. A string ``"null"`` is null, in every field.
* **Times** (``createTime``, ``completeTime``), any mix within one column: ISO 8601 with a
  zone (``2024-03-20T10:30:00Z``, ``…+08:00``); plain ``2025-06-06 10:30:00`` (or ISO
  without a zone), read as wall time in ``naive_tz``; integers or digit strings, read as
  epoch milliseconds above 1e12 and seconds below. Anything else → NaT and a note. A
  plain time's value never depends on the other rows: in an hour that happens twice
  (clocks go back) it is the earlier instant, in an hour that is skipped (clocks go
  forward) the first instant after the gap (``_time.AMBIGUOUS``, ``_time.NONEXISTENT``).
* **paramJson** keys in every spelling seen: ``aspect_ratio``/``aspectRatio``,
  ``watermark``/``waterMark``, ``generationType``/``generation_type``,
  ``imageUrls``/``image_urls``, ``callBackUrl``/``callbackUrl``/``callback_url``,
  ``taskId``/``task_id`` (the parent). Malformed, empty or null paramJson: the row
  stays, its request fields are NA, ``parse_note`` says why; the text is kept in
  ``param_json`` verbatim.
* **URLs**: ``resultUrls`` given as a string ``'[http://a, http://b]'`` is split into a
  list; ``originUrls`` null or absent → empty list; ``fullResultUrls`` (the stitched
  video after an extend) has its own column; ``video_url`` is ``fullResultUrls[0]``,
  else ``resultUrls[0]``.
* **status** from ``successFlag`` 0/1/2/3 → generating / success / failed /
  generation_failed; any other value (or none) in a record → ``unknown`` (kept);
  NA when there is no record (a fetch error, an unreadable text).
* **task_type** from everything the record shows, first rule that matches (``parent`` =
  paramJson ``taskId``): ``4k`` if the response has ``mediaIds``/``media_ids``, or a
  parent and resolution 4k or an error message naming "4K" (a failed 4K upgrade
  otherwise reads like a 1080p one: the requests are the same); ``1080p`` if a parent
  and an ``index`` or resolution 1080p (the answer's resolution counts only for a
  request without a prompt: upgrades have none); ``extend`` if a parent and no
  ``generationType``, or model ``fast``/``quality``, or a stitched video
  (``fullResultUrls`` with an item; a ``fullResultUrls: null`` key is no evidence);
  ``generate`` if a prompt, a ``generationType`` or a ``veo…`` model; else ``unknown``
  (NA without a record).
* Keys of ``data``, ``response`` and ``paramJson`` that no column takes are kept in
  ``extra``, a JSON object mirroring where they were (``{"data": {"response":
  {"imageUrls": […]}}, "paramJson": {"index": 0}}``); keys whose value is null are
  dropped.

Speed
-----
Rows are split into blocks of :data:`BLOCK_ROWS`, read and built on :data:`BLOCK_WORKERS`
threads: while one block's Python work runs, :func:`pyarrow.json.read_json` (which
releases the GIL) reads another's texts with an explicit schema, 16k rows per call, then
the nested paramJson texts the same way; times, status, task type and URLs are computed
column-wise with Arrow kernels (the choice of reader is measured in ``bench/README.md``).
Rows the reader refuses (type variants, broken texts) are bisected out and read one by
one (``_rows``), with identical results. The reader allocates from the C allocator
(``_read.frame_pool``), never by changing Arrow's default pool; a parse called on the
main thread pauses the cyclic collector (:func:`parse_settings`), one on another thread
leaves it alone.

>>> df = to_frame([{"taskId": "t1", "successFlag": 1, "createTime": "2025-06-06 10:25:00",
...                 "completeTime": 1749177000000, "paramJson": '{"prompt": "a cat"}'}])
>>> df.loc[0, "status"], df.loc[0, "task_type"], float(df.loc[0, "latency_s"])
('success', 'generate', 300.0)
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import logging
import os
import threading
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
import pandas as pd

from ..errors import InputError
from ..store import RawRecords, Store
from . import _build, _roots, dataset
from ._build import split_urls
from ._read import each, read_objects

__all__ = ["DEFAULT_NAIVE_TZ", "from_raw", "from_store", "parse_settings", "split_urls", "to_frame"]

log = logging.getLogger(__name__)

#: Zone of plain (zone-less) times. kie.ai's spec shows plain ``2025-06-06 10:30:00``
#: without saying its zone; the one public capture of a sibling endpoint reads as UTC+8
#: (the service runs in China), and the simulator writes plain times in Asia/Shanghai.
#: Unconfirmed for Veo: pass ``naive_tz="UTC"`` if your records say otherwise.
DEFAULT_NAIVE_TZ = "Asia/Shanghai"

_DUMPS_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

#: rows per block: each block is read and built on one of :data:`BLOCK_WORKERS` threads, so
#: one block's Python work overlaps others' reading (the JSON reader releases the GIL)
BLOCK_ROWS = 65_536
#: most threads for the blocks: past this, more threads only add hand-offs
MAX_BLOCK_WORKERS = 8
#: threads for the blocks: twice the cores, so that while some hold the GIL for their
#: Python work the others keep the cores busy in the reader (bench/README.md)
BLOCK_WORKERS = min(MAX_BLOCK_WORKERS, 2 * (os.cpu_count() or 1))
#: rows :func:`from_store` parses at a time (a whole store, or many ids): a reader chunk,
#: so one chunk's texts and buffers are alive at once, not the store's (the build stays
#: within 3x the raw bytes; the cache makes a whole-store parse rare: bench/README.md)
STORE_CHUNK_ROWS = dataset.BLOCK_ROWS


def to_frame(records: Iterable[Any], *, naive_tz: str = DEFAULT_NAIVE_TZ) -> pd.DataFrame:
    """Build the typed task frame from envelopes, ``data`` objects or store rows.

    Parameters
    ----------
    records : iterable of mappings, or a Store
        A :class:`~veo_notebook.Store` gives the frame of every record it holds
        (:func:`from_store`). Otherwise each one an envelope ``{"code", "msg", "data"}``,
        a ``data`` object (it has a ``taskId``, or neither ``code`` nor ``data``), or a
        store row ``{"task_id", "raw", "fetched_at", "fetch_error"}`` (``raw`` the envelope
        text as received). Kinds may be mixed.
    naive_tz : str
        Zone of plain times without an offset (see :data:`DEFAULT_NAIVE_TZ`: the
        evidence points to UTC+8, and the simulator writes Asia/Shanghai wall time).

    Returns
    -------
    pandas.DataFrame
        One row per record, in order, columns and dtypes of :data:`schema.COLUMNS`.

    Raises
    ------
    InputError
        If an item is not a mapping (its position is named). Never for a record's content.

    >>> to_frame([{"code": 422, "msg": "record is null.", "data": None}]).loc[0, "fetch_error"]
    '422 record is null.'
    """
    if isinstance(records, Store):
        return from_store(records, naive_tz=naive_tz)
    records = records if isinstance(records, list) else list(records)
    try:  # the common case, all store rows: four comprehensions
        texts: list[str | bytes | None] = [r["raw"] for r in records]
        ids: list[str | None] = [r["task_id"] for r in records]
        fetched: list[Any] = [r.get("fetched_at") for r in records]
        errors: list[str | None] = [r.get("fetch_error") for r in records]
        if all(isinstance(r, Mapping) for r in records):
            return _frame(texts, ids, fetched, errors, naive_tz, {})
    except (KeyError, TypeError, IndexError, AttributeError):
        pass
    texts, ids, fetched, errors = [], [], [], []
    notes: dict[int, str] = {}
    for i, rec in enumerate(records):
        rec = _as_mapping(rec, i)
        if "raw" in rec and "task_id" in rec:  # a store row
            texts.append(rec.get("raw"))
            ids.append(rec.get("task_id"))
            fetched.append(rec.get("fetched_at"))
            errors.append(rec.get("fetch_error"))
            continue
        envelope = "taskId" not in rec and ("data" in rec or "code" in rec)
        obj = rec if envelope else {"data": rec}
        text = _dumps(obj)
        if text is None:
            notes[i] = "record could not be serialised as JSON"
        texts.append(text)
        ids.append(None)
        fetched.append(None)
        errors.append(None)
    return _frame(texts, ids, fetched, errors, naive_tz, notes)


def from_raw(
    texts: Sequence[str | bytes | None],
    task_ids: Sequence[str | None] | None = None,
    fetched_at: Sequence[Any] | None = None,
    fetch_errors: Sequence[str | None] | None = None,
    *,
    naive_tz: str = DEFAULT_NAIVE_TZ,
    roots: bool = True,
) -> pd.DataFrame:
    """Build the typed frame from raw envelope JSON texts: the columnar fast path.

    Parameters
    ----------
    texts : sequence of str, bytes or None
        Envelope texts exactly as received (``None``: nothing was received).
    task_ids : sequence of str, optional
        The ids queried (override ``data.taskId``).
    fetched_at : sequence of float (epoch seconds) or datetimes, optional
    fetch_errors : sequence of str or None, optional
        Why a record could not be fetched; such rows keep only id, error and time.
    naive_tz : str
        Zone of plain times (see :func:`to_frame`).
    roots : bool
        Derive ``root_task_id`` over these rows (False leaves it NA: for a caller that
        joins parts first and derives it once over the whole, as :func:`from_store` does).

    >>> from_raw(['{"code":200,"data":{"taskId":"t1","successFlag":3}}']).loc[0, "status"]
    'generation_failed'
    """
    n = len(texts)
    for name, seq in (
        ("task_ids", task_ids),
        ("fetched_at", fetched_at),
        ("fetch_errors", fetch_errors),
    ):
        if seq is not None and len(seq) != n:
            raise InputError(f"{name} has {len(seq)} items for {n} texts")
    return _frame(list(texts), task_ids, fetched_at, fetch_errors, naive_tz, {}, roots=roots)


def from_store(
    store: Store,
    ids: Iterable[str] | None = None,
    *,
    naive_tz: str = DEFAULT_NAIVE_TZ,
    cache: bool = True,
) -> pd.DataFrame:
    """The typed frame of a store's records: of ``ids`` in their order (ids not held are
    skipped), or of every record in the order it was first stored.

    The store hands out the UTF-8 bytes SQLite holds; they go to :func:`from_raw` as they are.
    The frame of every record of a store file is kept beside it as a Parquet dataset
    (``<store>.frame/``, see :mod:`veo_notebook.frame.dataset`): the next call parses only
    the records written since. ``cache=False`` parses everything and leaves it alone.

    >>> from veo_notebook import Store
    >>> with Store(":memory:") as st:
    ...     st.put("t1", '{"code":200,"data":{"successFlag":1}}', fetched_at=0.0)
    ...     from_store(st).loc[0, "status"]
    'success'
    """

    def parse(raw: RawRecords) -> pd.DataFrame:  # roots are derived once, over the whole
        return from_raw(
            raw.texts, raw.task_ids, raw.fetched_at, raw.fetch_errors, naive_tz=naive_tz,
            roots=False,
        )  # fmt: skip

    _check_zone(naive_tz)
    if ids is None and store.versioned:
        if cache and store.path != ":memory:":
            return _roots.assign(dataset.store_frame(store, parse, naive_tz))
        return _roots.assign(dataset.full_frame(store, parse))
    if ids is None:  # a read-only store made before row versions
        return _roots.assign(parse(store.raw_records()))
    order = list(dict.fromkeys(ids))
    if len(order) <= STORE_CHUNK_ROWS:
        return _roots.assign(parse(store.raw_records(order)))
    return _roots.assign(
        _build.finish(
            [
                parse(store.raw_records(order[lo : lo + STORE_CHUNK_ROWS]))
                for lo in range(0, len(order), STORE_CHUNK_ROWS)
            ]
        )
    )


def _frame(
    texts: list[str | bytes | None],
    ids: Sequence[str | None] | None,
    fetched: Sequence[Any] | None,
    errors: Sequence[str | None] | None,
    naive_tz: str,
    notes: dict[int, str],
    *,
    roots: bool = True,
) -> pd.DataFrame:
    _check_zone(naive_tz)
    if errors is not None and any(e is not None for e in errors):
        texts = [None if e is not None else t for t, e in zip(texts, errors, strict=True)]
    n = len(texts)
    spans = [(lo, min(lo + BLOCK_ROWS, n)) for lo in range(0, n, BLOCK_ROWS)] or [(0, 0)]
    workers = 1 if len(spans) > 1 else None  # blocks on threads, or chunks of one block
    variants: set[str] = set()  # one block's type variants are renamed up front in the next

    def block(span: tuple[int, int]) -> pd.DataFrame:
        lo, hi = span
        env = read_objects(
            texts[lo:hi], _build.ENVELOPE_SCHEMA, "record", workers=workers, variants=variants
        )
        for i, note in notes.items():
            if lo <= i < hi:
                env.notes[i - lo] = note

        def part(seq: Sequence[Any] | None) -> Sequence[Any] | None:
            return None if seq is None else seq[lo:hi]

        return _build.build(env, part(ids), part(fetched), part(errors), naive_tz, workers=workers)

    top_level = threading.current_thread() is threading.main_thread()
    with parse_settings() if top_level else contextlib.nullcontext():
        df = _build.finish(each(block, spans, BLOCK_WORKERS))
    return _roots.assign(df) if roots else df


def _check_zone(naive_tz: str) -> None:
    try:
        zoneinfo.ZoneInfo(naive_tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise InputError(f"naive_tz {naive_tz!r} is not a known time zone") from exc


_lock = threading.Lock()
_holders = 0  # parse_settings() blocks open now
_paused = False  # the collector was on when the first of them began, and they turned it off


@contextlib.contextmanager
def parse_settings() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a parse, and turn it back on after.

    The columnar build makes no reference cycles, but the containers it does allocate
    trigger collections, and each collection walks every object the process holds (with
    a million input texts alive, most of what it does). Reference counting still frees
    everything. The collector is process-wide, so :func:`to_frame` and :func:`from_raw`
    pause it only when called on the main thread (a top-level parse: the caller waits for
    it); a parse on any other thread leaves it alone, so a user's other threads are not
    affected by a background parse. Wrap a parse (or several) in this yourself to pause
    it from another thread, accepting that for that time no thread's cycles are collected.

    Nested and concurrent blocks share the pause; the last to end turns the collector
    back on, and only if it was on when the first began and is still off (a collector the
    caller switched off stays off).

    >>> import gc
    >>> with parse_settings():
    ...     gc.isenabled()
    False
    """
    global _holders, _paused
    with _lock:
        if _holders == 0:
            _paused = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _paused:
                _paused = False
                if not gc.isenabled():
                    gc.enable()


def _as_mapping(rec: Any, i: int) -> Mapping[str, Any]:
    if isinstance(rec, Mapping):
        return rec
    if dataclasses.is_dataclass(rec) and not isinstance(rec, type):
        return dataclasses.asdict(rec)
    if hasattr(rec, "_asdict"):  # a NamedTuple store row
        return rec._asdict()
    raise InputError(f"record {i} is not a mapping (got {type(rec).__name__})")


def _dumps(obj: Any) -> str | None:
    try:
        return orjson.dumps(obj, default=str, option=_DUMPS_OPTS).decode()
    except (TypeError, orjson.JSONEncodeError):
        try:  # integers beyond 64 bits and other things orjson refuses
            return json.dumps(obj, default=str, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            return None
