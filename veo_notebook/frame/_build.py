"""Arrow tables of read records → the typed frame's columns (private; rules in frame/)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from . import _time, sources
from ._read import Result, frame_pool, read_objects
from ._rows import NULL_TEXT

_S = pa.string()
_I = pa.int64()
_F = pa.float64()
_B = pa.bool_()
_LS = pa.list_(pa.string())
_NS = pa.timestamp("ns")
_NS_UTC = pa.timestamp("ns", "UTC")

ENVELOPE_SCHEMA = sources.ENVELOPE_SCHEMA
PARAM_SCHEMA = sources.PARAM_SCHEMA

#: columns computed by the rules below rather than read from a path (the others: sources)
DERIVED = frozenset(
    {
        "status",
        "latency_s",
        "task_type",
        "video_url",
        "fetch_error",
        "fetched_at",
        "extra",
        "parse_note",
        "root_task_id",
        "defaults_applied",
    }
)
#: the envelope code of an answer that holds a task; any other code is a fetch error
OK_CODE = 200
#: category codes (positions in schema's categories; -1 is NA): successFlag 0..3 is its own
#: status code, as schema.Status lists them
_UNKNOWN_STATUS, _NO_CODE = schema.STATUS_CATEGORIES.index("unknown"), -1
_TYPE_CODE = {t: i for i, t in enumerate(schema.TASK_TYPE_CATEGORIES)}
_NS_PER_S = 1e9
#: paramJson text shorter than this may be blank (checked, the rest cannot be)
_BLANK_CHECK_BYTES = 16
#: model names only extend requests carry
EXTEND_MODELS = ("fast", "quality")
#: generate requests' model names start so (veo3, veo3_fast, veo3_lite)
GENERATE_MODEL_PREFIX = "veo"
#: resolutions that name a 4K answer
K4_RESOLUTIONS = ("4k", "2160p")


def fields(arr: pa.Array | pa.ChunkedArray) -> dict[str, pa.ChunkedArray]:
    """Children of a struct array, each with the parent's nulls applied (no copy)."""
    return {arr.type.field(i).name: pc.struct_field(arr, [i]) for i in range(arr.type.num_fields)}


def leaves(table: pa.Table) -> dict[str, Any]:
    """Every field of a read table by its dotted path (``data.response.resultUrls``)."""
    out: dict[str, Any] = {}

    def walk(path: str, arr: Any) -> None:
        out[path] = arr
        if pa.types.is_struct(arr.type):
            for name, child in fields(arr).items():
                walk(f"{path}.{name}", child)

    for name in table.column_names:
        walk(name, table.column(name))
    return out


def build(
    env: Result,
    ids: Sequence[str | None] | None,
    fetched: Sequence[Any] | None,
    errors: Sequence[str | None] | None,
    naive_tz: str,
    *,
    workers: int | None = None,
) -> pd.DataFrame:
    """A block's frame, from its envelope read (reading its paramJson on the way).

    Built on the block's worker thread, pandas conversion included: only the final
    :func:`finish` (a concatenation) runs once for the whole input.
    """
    n = env.table.num_rows
    notes: dict[int, list[str]] = {}

    def note(rows: Any, text: str | Sequence[str]) -> None:
        for k, row in enumerate(np.asarray(rows).tolist()):
            notes.setdefault(row, []).append(text if isinstance(text, str) else text[k])

    for row, text in env.notes.items():
        notes.setdefault(row, []).append(text)

    v = _null_strings(leaves(_hide_failed_answers(env)))
    fetch_error = _fetch_errors(v["code"], v["msg"], errors)
    data_arr = v["data"]
    has_data = np.asarray(data_arr.is_valid()) & env.present

    # paramJson, read in bulk like the envelopes
    par = _read_params(v, has_data, note, notes, workers)

    # every column read from a path (the source table), first path with a value wins
    times: dict[str, np.ndarray] = {}
    cols: dict[str, Any] = {}
    for col, srcs in sources.COLUMN_SOURCES.items():
        cols[col] = _coalesce(*(_take(s, v, naive_tz, notes, times) for s in srcs))

    # identity and fetch
    if ids is not None:
        ids_arr = pa.array(ids if isinstance(ids, list) else list(ids), _S)
        cols["task_id"] = _coalesce(ids_arr, cols["task_id"])
    no_data = env.present & ~has_data & ~np.asarray(fetch_error.is_valid())
    note(np.flatnonzero(no_data), "the answer has no data object")
    cols["fetch_error"] = fetch_error
    cols["fetched_at"] = _utc(_time.epoch_to_utc(_time.epoch_seconds(fetched, n)))

    # the task's outcome
    status = _outcome(cols, has_data, times)

    # the answer
    cols["origin_urls"] = _empty_where_null(cols["origin_urls"], has_data)
    cols["video_url"] = _coalesce(_first(cols["full_result_urls"]), _first(cols["result_urls"]))
    ttype = _task_types(cols, v, has_data)
    cols["defaults_applied"] = _request_defaults(cols, ttype == _TYPE_CODE["generate"])

    # what no column takes
    cols["extra"] = _extra_column(n, env, par, v)
    cols["parse_note"] = _sparse_strings(n, {i: "; ".join(t) for i, t in notes.items()})
    df = pa.table(cols).to_pandas(types_mapper=schema.pandas_type, memory_pool=frame_pool())
    dt = schema.dtypes()
    df["status"] = pd.Categorical.from_codes(status, dtype=dt["status"])
    df["task_type"] = pd.Categorical.from_codes(ttype, dtype=dt["task_type"])
    return schema.enforce(df)


def _read_params(
    v: dict[str, Any],
    has_data: np.ndarray,
    note: Callable[[Any, str], None],
    notes: dict[int, list[str]],
    workers: int | None,
) -> Result:
    """Read every paramJson in bulk (noting null and empty ones) into ``v``'s columns."""
    pj = v["data.paramJson"]
    par = read_objects(pj, PARAM_SCHEMA, "paramJson", sources.PARAM_ALIASES, workers=workers)
    for row, text in par.notes.items():
        notes.setdefault(row, []).append(text)
    pj_null = has_data & ~np.asarray(pj.is_valid())
    note(np.flatnonzero(pj_null), "paramJson is null")
    short = has_data & np.asarray(
        pc.fill_null(pc.less(pc.binary_length(pj), _BLANK_CHECK_BYTES), False)
    )
    if short.any():  # a filter, not a take: no copy of the whole chunked column
        values = pc.filter(pj, pa.array(short)).to_pylist()
        rows = np.flatnonzero(short).tolist()
        note([r for r, t in zip(rows, values, strict=True) if not t.strip()], "paramJson is empty")
    params = {
        f"{sources.PARAM}.{k}": par.table.column(k).combine_chunks(memory_pool=frame_pool())
        for k in PARAM_SCHEMA.names
    }
    v.update(_null_strings(params))
    return par


def _outcome(cols: dict[str, Any], has_data: np.ndarray, times: dict[str, np.ndarray]) -> Any:
    """The status codes; blank error messages nulled and ``latency_s`` set in ``cols``."""
    msg = cols["error_message"]
    blank = pc.equal(pc.utf8_trim_whitespace(msg, memory_pool=frame_pool()), "")
    cols["error_message"] = pc.if_else(blank, pa.scalar(None, _S), msg, memory_pool=frame_pool())
    flag_np = cols["success_flag"].to_numpy(zero_copy_only=False)
    status = np.where(has_data, _UNKNOWN_STATUS, _NO_CODE).astype(np.int8)
    for k in range(_UNKNOWN_STATUS):
        status[flag_np == k] = k
    create, complete = times["create_time"], times["complete_time"]
    lat = (complete.astype("int64") - create.astype("int64")) / _NS_PER_S
    lat = np.where(np.isnat(create) | np.isnat(complete) | (status == 0), np.nan, lat)
    cols["latency_s"] = pa.array(lat, _F, from_pandas=True, memory_pool=frame_pool())
    return status


def _take(
    src: sources.Source,
    v: dict[str, Any],
    naive_tz: str,
    notes: dict[int, list[str]],
    times: dict[str, np.ndarray],
) -> Any:
    """One source's values, as its column takes them (``sources.VALUE`` / FIRST / …)."""
    arr = v[src.path]
    variant = v[src.variant_path] if src.variant_path is not None else None
    if src.take == sources.TIME:
        values, bad = _time.parse(arr, variant, naive_tz)
        label = src.path.rsplit(".", 1)[-1]
        for row, value in bad.items():
            notes.setdefault(row, []).append(f"{label} unparseable: {value!r}")
        if src.column is not None:
            times[src.column] = values
        return _utc(values)
    if src.take == sources.URLS:
        return _urls(arr, variant)
    if src.take == sources.FIRST:
        first = _first(arr)
        return first if variant is None else _coalesce(first, variant)
    return arr


def _task_types(cols: dict[str, Any], v: dict[str, Any], has_data: np.ndarray) -> np.ndarray:
    """``task_type`` codes (schema.TaskType order) from everything the record shows.

    First rule that matches (``parent``: paramJson ``taskId``): ``4k`` if the answer has
    media ids, or a parent and a 4K resolution (request, or answer when the request has
    no prompt) or an error message naming "4K"; ``1080p`` if a parent and an ``index``,
    or resolution 1080p in the request (or in the answer to a request with no prompt);
    ``extend`` if a parent and no ``generationType``, or an extend-only model name, or a
    stitched video (``fullResultUrls`` with an item: a ``null`` key says nothing);
    ``generate`` if a prompt, a ``generationType`` or a generate model name; else
    ``unknown`` (NA without a record).
    """

    def mask(arr: Any) -> np.ndarray:  # Arrow kernels throughout: no Python object per row
        return np.asarray(pc.fill_null(arr, False))

    def one_of(arr: Any, values: Sequence[str]) -> np.ndarray:
        return mask(pc.is_in(arr, value_set=pa.array(values, _S)))

    parent = np.asarray(cols["parent_task_id"].is_valid())
    prompt = np.asarray(cols["prompt"].is_valid())
    asked = pc.utf8_lower(v[f"{sources.PARAM}.resolution"])
    answered = pc.utf8_lower(v["data.response.resolution"])  # counts where there is no prompt
    model = cols["model"]
    k4_res = one_of(asked, K4_RESOLUTIONS) | (~prompt & one_of(answered, K4_RESOLUTIONS))
    k4 = mask(pc.greater(pc.list_value_length(cols["media_ids"]), 0))
    k4 |= parent & (k4_res | mask(pc.match_substring(cols["error_message"], "4K")))
    index = np.asarray(v[f"{sources.PARAM}.index"].is_valid())
    res_1080 = one_of(asked, ("1080p",)) | (~prompt & one_of(answered, ("1080p",)))
    p1080 = parent & (index | res_1080)
    gen_t = np.asarray(cols["generation_type"].is_valid())
    stitched = mask(pc.greater(pc.list_value_length(cols["full_result_urls"]), 0))
    extend = (parent & ~gen_t) | one_of(model, EXTEND_MODELS) | stitched
    generate = prompt | gen_t | mask(pc.starts_with(model, GENERATE_MODEL_PREFIX))
    conds = [~has_data, k4, p1080, extend, generate]
    codes = [_NO_CODE, *(_TYPE_CODE[t] for t in ("4k", "1080p", "extend", "generate"))]
    return np.select(conds, codes, _TYPE_CODE["unknown"]).astype(np.int8)


def _request_defaults(cols: dict[str, Any], generate: np.ndarray) -> pa.Array:
    """Fill kie.ai's documented request defaults (``schema.REQUEST_DEFAULTS``) into the
    generate tasks whose request names none; the ``defaults_applied`` lists."""
    applied = []
    for col, value in schema.REQUEST_DEFAULTS.items():
        arr = cols[col]
        fill = generate & ~np.asarray(arr.is_valid())
        if fill.any():
            cols[col] = pc.if_else(pa.array(fill), pa.scalar(value, arr.type), arr)
        applied.append(fill)
    which = np.column_stack(applied)
    offsets = np.concatenate(([0], np.cumsum(which.sum(axis=1)))).astype(np.int32)
    names = np.array(list(schema.REQUEST_DEFAULTS), dtype=object)[np.nonzero(which)[1]]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(names, _S))


def _hide_failed_answers(env: Result) -> pa.Table:
    """The envelope table with ``data`` null where ``code`` is not 200: such an answer is
    a failed query (a fetch error row), whatever its ``data`` holds; the data is kept in
    the row's extras (``{"data": {…}}``)."""
    top = env.table
    code = top.column("code")
    data = top.column("data")
    failed = np.asarray(pc.fill_null(pc.not_equal(code, OK_CODE), False))
    failed &= np.asarray(data.is_valid())
    if not failed.any():
        return top
    rows = np.flatnonzero(failed)
    for row, obj in zip(rows.tolist(), data.take(pa.array(rows)).to_pylist(), strict=True):
        kept = env.extras.setdefault(row, {})
        _merge(kept.setdefault("data", {}), _as_record(obj))
    hidden = pc.if_else(pa.array(failed), pa.nulls(len(data), data.type), data)
    return top.set_column(top.schema.get_field_index("data"), "data", hidden)


def _as_record(v: Any) -> Any:
    """A value read into the schema, as the record had it (null keys dropped, variant
    fields under their own key)."""
    if isinstance(v, dict):
        return {
            sources.plain_name(k): _as_record(x)
            for k, x in v.items()
            if x is not None and x != NULL_TEXT
        }
    return v


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for k, x in more.items():
        if isinstance(x, dict) and isinstance(into.get(k), dict):
            _merge(into[k], x)
        else:
            into[k] = x


def _fetch_errors(code: Any, msg: Any, errors: Sequence[str | None] | None) -> pa.Array:
    """``"<code> <msg>"`` where the envelope's code is not 200, else the given errors."""
    code = (
        code.combine_chunks(memory_pool=frame_pool()) if isinstance(code, pa.ChunkedArray) else code
    )
    msg = pc.fill_null(msg, "")
    bad = pc.fill_null(pc.not_equal(code, OK_CODE), False)
    if not pc.any(bad).as_py():
        from_env = pa.nulls(len(code), _S)
    else:
        joined = pc.binary_join_element_wise(pc.cast(code, _S), msg, " ")
        from_env = pc.if_else(bad, pc.utf8_trim_whitespace(joined), pa.scalar(None, _S))
    if isinstance(from_env, pa.ChunkedArray):
        from_env = from_env.combine_chunks(memory_pool=frame_pool())
    if errors is None:
        return from_env
    return pc.coalesce(pa.array(list(errors), _S), from_env)


def _null_strings(v: dict[str, Any]) -> dict[str, Any]:
    """String fields holding the text ``"null"`` made null (``_rows.NULL_TEXT``: the
    per-row path does the same while reading; other types holding it are refused by the
    reader and read per row)."""
    for path, arr in v.items():
        if pa.types.is_string(arr.type) and arr.null_count < len(arr):
            is_null_text = pc.equal(arr, NULL_TEXT)
            if pc.any(is_null_text).as_py():
                v[path] = pc.if_else(
                    is_null_text, pa.scalar(None, _S), arr, memory_pool=frame_pool()
                )
    return v


def _coalesce(*arrays: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """First non-null of each row; skips the work when an array is already complete."""
    live = [a for a in arrays if a.null_count < len(a)]
    if not live:
        return arrays[0]
    if len(live) == 1 or live[0].null_count == 0:
        return live[0]
    return pc.coalesce(*live, memory_pool=frame_pool())


def _sparse_strings(n: int, values: dict[int, str]) -> pa.Array:
    """A string column of ``n`` nulls but for ``values`` (row → text)."""
    if not values:
        return pa.nulls(n, _S)
    out = np.full(n, None, dtype=object)
    out[np.fromiter(values.keys(), dtype=np.int64, count=len(values))] = list(values.values())
    return pa.array(out, _S)


def _first(lst: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """First element of each list (null when the list is null or empty)."""
    if isinstance(lst, pa.ChunkedArray):  # chunk by chunk: no copy of the whole column
        parts = [_first(c) for c in lst.chunks]
        return pa.chunked_array(parts, lst.type.value_type)
    offsets = np.asarray(lst.offsets)
    length = np.diff(offsets)
    ok = (length > 0) & np.asarray(lst.is_valid())
    idx = pa.array(offsets[:-1].astype(np.int64), mask=~ok)
    return pc.take(lst.values, idx, memory_pool=frame_pool())


def _empty_where_null(lst: pa.Array | pa.ChunkedArray, valid: np.ndarray) -> pa.Array:
    """The lists, ``[]`` for a null in a ``valid`` row, null elsewhere (no per-row work)."""
    if isinstance(lst, pa.ChunkedArray):
        lst = lst.combine_chunks(memory_pool=frame_pool())
    offsets = np.asarray(lst.offsets)
    if (np.diff(offsets)[~np.asarray(lst.is_valid())] != 0).any():  # null slots with items
        filled = pc.fill_null(lst, pa.scalar([], _LS))
        return pc.if_else(pa.array(valid), filled, pa.nulls(len(lst), _LS))
    return pa.ListArray.from_arrays(pa.array(offsets), lst.values, mask=pa.array(~valid))


def _urls(lst: pa.Array | pa.ChunkedArray, text: pa.Array | pa.ChunkedArray) -> pa.Array:
    """List column, with the rows given as a string ``'[a, b]'`` split into lists."""
    if text.null_count == len(text):
        return lst
    given = np.asarray(text.is_valid())
    parsed = [split_urls(v) for v in pc.filter(text, pa.array(given)).to_pylist()]
    lengths = np.zeros(len(lst), dtype=np.int32)
    lengths[given] = [len(v) for v in parsed]
    offsets = np.zeros(len(lst) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = pa.array([u for v in parsed for u in v], _S)
    split = pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~given))
    return pc.if_else(pa.array(given), split, lst, memory_pool=frame_pool())


def split_urls(value: str) -> list[str]:
    """The URLs of an old-format string ``'[http://a, http://b]'`` (or a JSON array in a string)."""
    s = value.strip()
    if s.startswith(('["', "[]")):  # a JSON array in a string
        try:
            got = orjson.loads(s)
            if isinstance(got, list) and all(isinstance(x, str) for x in got):
                return got
        except orjson.JSONDecodeError:
            pass
    if s.startswith("["):
        s = s[1:-1] if s.endswith("]") else s[1:]
    return [u.strip().strip("'\"").strip() for u in s.split(",") if u.strip().strip("'\"").strip()]


def _extra_column(n: int, env: Result, par: Result, v: dict[str, Any]) -> pa.Array:
    """The ``extra`` JSON texts: unknown keys, plus the keys read only for a rule
    (``sources.EXTRA_SOURCES``: paramJson ``index``, response ``imageUrls``).

    A row whose only extra is one integer key (every 1080p upgrade: ``index``) is written
    by Arrow string kernels; the others, few, go through dicts and orjson.
    """
    known = {s.path: v[s.path] for s in sources.EXTRA_SOURCES}
    given = {p: np.asarray(a.is_valid()) for p, a in known.items() if a.null_count < len(a)}
    count = sum(given.values(), np.zeros(n, dtype=np.int64))
    special = set(env.extras) | set(par.extras)
    special.update(np.flatnonzero(count > 1).tolist())
    by_kernel = {p for p in given if pa.types.is_integer(known[p].type)}
    for p in set(given) - by_kernel:
        special.update(np.flatnonzero(given[p]).tolist())
    slow = sorted(special)
    texts = {i: orjson.dumps(e).decode() for i, e in _extras(env, par, known, slow).items()}
    out = _sparse_strings(n, texts)
    for p in sorted(by_kernel):
        only = given[p].copy()
        only[slow] = False
        if not only.any():
            continue
        *parents, leaf = p.split(".")
        head = "".join(f'{{"{k}":' for k in parents) + f'{{"{leaf}":'
        tail = "}" * (len(parents) + 1)
        text = pc.binary_join_element_wise(head, pc.cast(known[p], _S), tail, "")
        out = pc.coalesce(out, pc.if_else(pa.array(only), text, pa.scalar(None, _S)))
    return out


def _extras(
    env: Result, par: Result, known: dict[str, pa.Array], rows: list[int]
) -> dict[int, dict[str, Any]]:
    """For ``rows``, what no column takes: unknown keys, plus the read keys in ``known``."""
    out: dict[int, dict[str, Any]] = {}
    for row, e in env.extras.items():
        out[row] = dict(e)
    for row, e in par.extras.items():
        out.setdefault(row, {})[sources.PARAM] = dict(e)
    if not rows:
        return out
    take = pa.array(rows, pa.int64())
    for path, arr in known.items():
        *parents, leaf = path.split(".")
        for row, value in zip(rows, arr.take(take).to_pylist(), strict=True):
            if value is None:
                continue
            d = out.setdefault(row, {})
            for key in parents:
                d = d.setdefault(key, {})
            d[leaf] = value
    return out


def finish(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The blocks' frames, in order, as one frame (dtypes kept, a fresh RangeIndex)."""
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def _utc(values: np.ndarray) -> pa.Array:
    """``datetime64[ns]`` of UTC wall times (NaT → null) as a tz-aware Arrow column."""
    pool = frame_pool()
    return pc.cast(pa.array(values, _NS, from_pandas=True, memory_pool=pool), _NS_UTC)
