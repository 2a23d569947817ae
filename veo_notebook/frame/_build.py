"""Arrow tables of read records → the typed frame's columns (private; rules in frame.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from . import _time
from ._read import Result, read_objects

_S = pa.string()
_I = pa.int64()
_F = pa.float64()
_B = pa.bool_()
_LS = pa.list_(pa.string())
_NS = pa.timestamp("ns")
_NS_UTC = pa.timestamp("ns", "UTC")

RESPONSE_TYPE = pa.struct(
    [
        ("taskId", _S),
        ("resultUrls", _LS),
        ("resultUrls__str", _S),
        ("originUrls", _LS),
        ("originUrls__str", _S),
        ("fullResultUrls", _LS),
        ("fullResultUrls__str", _S),
        ("resolution", _S),
        ("hasAudioList", pa.list_(_B)),
        ("seeds", pa.list_(_I)),
        ("seeds__num", _I),
        ("mediaIds", _LS),
        ("media_ids", _LS),
        ("imageUrls", _LS),  # 4K tasks; not a column: kept in extra
    ]
)
DATA_TYPE = pa.struct(
    [
        ("taskId", _S),
        ("paramJson", _S),
        ("createTime", _S),
        ("createTime__num", _F),
        ("completeTime", _S),
        ("completeTime__num", _F),
        ("successFlag", _I),
        ("errorCode", _I),
        ("errorMessage", _S),
        ("fallbackFlag", _B),
        ("response", RESPONSE_TYPE),
    ]
)
ENVELOPE_SCHEMA = pa.schema([("code", _I), ("msg", _S), ("data", DATA_TYPE)])

#: paramJson column -> its common spellings (in the reader's schema), first found wins
PARAM_KEYS: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt",),
    "model": ("model",),
    "aspect_ratio": ("aspect_ratio", "aspectRatio"),
    "generation_type": ("generationType",),
    "watermark": ("watermark", "waterMark"),
    "callback_url": ("callBackUrl",),
    "resolution": ("resolution",),
    "parent_task_id": ("taskId",),
}
#: rarer spellings, folded into the schema's name by the reader
PARAM_ALIASES: dict[str, str] = {
    "generation_type": "generationType",
    "water_mark": "watermark",
    "callbackUrl": "callBackUrl",
    "callback_url": "callBackUrl",
    "call_back_url": "callBackUrl",
    "task_id": "taskId",
    "image_urls": "imageUrls",
    "enable_translation": "enableTranslation",
}
PARAM_SCHEMA = pa.schema(
    [(k, _S) for keys in PARAM_KEYS.values() for k in keys]
    + [
        ("imageUrls", _LS),
        ("imageUrls__str", _S),
        ("seeds", _I),
        ("index", _I),  # not a column (it tells the task type): kept in extra
        ("enableTranslation", _B),
    ]
)


def fields(arr: pa.Array | pa.ChunkedArray) -> dict[str, pa.ChunkedArray]:
    """Children of a struct array, each with the parent's nulls applied (no copy)."""
    return {arr.type.field(i).name: pc.struct_field(arr, [i]) for i in range(arr.type.num_fields)}


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
    top = env.table
    data_arr = top.column("data")
    d = fields(data_arr)
    r = fields(d["response"])
    has_data = np.asarray(data_arr.is_valid()) & env.present
    notes: dict[int, list[str]] = {}

    def note(rows: Any, text: str | Sequence[str]) -> None:
        for k, row in enumerate(np.asarray(rows).tolist()):
            notes.setdefault(row, []).append(text if isinstance(text, str) else text[k])

    for row, text in env.notes.items():
        notes.setdefault(row, []).append(text)

    # paramJson, read in bulk like the envelopes
    pj = d["paramJson"]
    par = read_objects(pj, PARAM_SCHEMA, "paramJson", PARAM_ALIASES, workers=workers)
    for row, text in par.notes.items():
        notes.setdefault(row, []).append(text)
    pj_null = has_data & ~np.asarray(pj.is_valid())
    note(np.flatnonzero(pj_null), "paramJson is null")
    short = has_data & np.asarray(pc.fill_null(pc.less(pc.binary_length(pj), 16), False))
    if short.any():  # a filter, not a take: no copy of the whole chunked column
        values = pc.filter(pj, pa.array(short)).to_pylist()
        rows = np.flatnonzero(short).tolist()
        note([r for r, v in zip(rows, values, strict=True) if not v.strip()], "paramJson is empty")
    p = {name: par.table.column(name).combine_chunks() for name in PARAM_SCHEMA.names}

    cols: dict[str, Any] = {}
    # identity and fetch
    task_id = _coalesce(d["taskId"], r["taskId"])
    if ids is not None:
        task_id = _coalesce(pa.array(ids if isinstance(ids, list) else list(ids), _S), task_id)
    cols["task_id"] = task_id
    fetch_error = _fetch_errors(top, errors, n)
    no_data = env.present & ~has_data & ~np.asarray(fetch_error.is_valid())
    note(np.flatnonzero(no_data), "the answer has no data object")
    cols["fetch_error"] = fetch_error
    cols["fetched_at"] = _utc(_time.epoch_to_utc(_time.epoch_seconds(fetched, n)))

    # the task's outcome
    flag = d["successFlag"]
    cols["success_flag"] = flag
    cols["error_code"] = d["errorCode"]
    msg = d["errorMessage"]
    cols["error_message"] = pc.if_else(
        pc.equal(pc.utf8_trim_whitespace(msg), ""), pa.scalar(None, _S), msg
    )
    cols["fallback"] = d["fallbackFlag"]
    flag_np = flag.to_numpy(zero_copy_only=False)
    status = np.where(has_data, 4, -1).astype(np.int8)
    for k in range(4):
        status[flag_np == k] = k

    # times
    create, bad_c = _time.parse(d["createTime"], d["createTime__num"], naive_tz)
    complete, bad_e = _time.parse(d["completeTime"], d["completeTime__num"], naive_tz)
    for label, bad in (("createTime", bad_c), ("completeTime", bad_e)):
        for row, value in bad.items():
            notes.setdefault(row, []).append(f"{label} unparseable: {value!r}")
    cols["create_time"] = _utc(create)
    cols["complete_time"] = _utc(complete)
    lat = (complete.astype("int64") - create.astype("int64")) / 1e9
    lat = np.where(np.isnat(create) | np.isnat(complete) | (status == 0), np.nan, lat)
    cols["latency_s"] = pa.array(lat, _F, from_pandas=True)

    # the request
    for col, keys in PARAM_KEYS.items():
        cols[col] = _coalesce(*(p[k] for k in keys))
    cols["resolution"] = _coalesce(r["resolution"], p["resolution"])
    cols["image_urls"] = _urls(p["imageUrls"], p["imageUrls__str"])
    cols["enable_translation"] = p["enableTranslation"]
    seeds = _coalesce(p["seeds"], _first(r["seeds"]), r["seeds__num"])
    cols["seeds"] = seeds

    # the answer
    result = _urls(r["resultUrls"], r["resultUrls__str"])
    origin = _urls(r["originUrls"], r["originUrls__str"])
    origin = _empty_where_null(origin, has_data)
    full = _urls(r["fullResultUrls"], r["fullResultUrls__str"])
    cols["result_urls"] = result
    cols["origin_urls"] = origin
    cols["full_result_urls"] = full
    cols["video_url"] = _coalesce(_first(full), _first(result))
    cols["has_audio"] = _first(r["hasAudioList"])
    media = _coalesce(r["mediaIds"], r["media_ids"])
    cols["media_ids"] = media

    # task type
    parent = np.asarray(cols["parent_task_id"].is_valid())
    res = pc.fill_null(pc.utf8_lower(p["resolution"]), "").to_numpy(zero_copy_only=False)
    model = pc.fill_null(cols["model"], "").to_numpy(zero_copy_only=False)
    k4_msg = np.asarray(pc.fill_null(pc.match_substring(cols["error_message"], "4K"), False))
    k4 = np.asarray(pc.fill_null(pc.greater(pc.list_value_length(media), 0), False)) | (
        parent & ((res == "4k") | k4_msg)
    )
    p1080 = parent & (np.asarray(p["index"].is_valid()) | (res == "1080p"))
    gen_t = np.asarray(cols["generation_type"].is_valid())
    extend = parent & (~gen_t | np.isin(model, ["fast", "quality"]))
    generate = np.asarray(cols["prompt"].is_valid()) | gen_t
    ttype = np.select([~has_data, k4, p1080, extend, generate], [-1, 3, 2, 1, 0], 4).astype(np.int8)

    # what no column takes, and the raw request
    cols["param_json"] = pj
    cols["extra"] = _extra_column(n, env, par, p["index"], r["imageUrls"])
    cols["parse_note"] = _sparse_strings(n, {i: "; ".join(v) for i, v in notes.items()})
    df = pa.table(cols).to_pandas(types_mapper=_mapper)
    dt = schema.dtypes()
    df["status"] = pd.Categorical.from_codes(status, dtype=dt["status"])
    df["task_type"] = pd.Categorical.from_codes(ttype, dtype=dt["task_type"])
    return schema.enforce(df)


def _fetch_errors(top: pa.Table, errors: Sequence[str | None] | None, n: int) -> pa.Array:
    code = top.column("code").combine_chunks()
    msg = pc.fill_null(top.column("msg").combine_chunks(), "")
    bad = pc.fill_null(pc.not_equal(code, 200), False)
    from_env = pc.if_else(
        bad,
        pc.utf8_trim_whitespace(pc.binary_join_element_wise(pc.cast(code, _S), msg, " ")),
        pa.scalar(None, _S),
    )
    if errors is None:
        return from_env
    return pc.coalesce(pa.array(list(errors), _S), from_env)


def _coalesce(*arrays: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """First non-null of each row; skips the work when an array is already complete."""
    live = [a for a in arrays if a.null_count < len(a)]
    if not live:
        return arrays[0]
    if len(live) == 1 or live[0].null_count == 0:
        return live[0]
    return pc.coalesce(*live)


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
    return lst.values.take(idx)


def _empty_where_null(lst: pa.Array | pa.ChunkedArray, valid: np.ndarray) -> pa.Array:
    """The lists, ``[]`` for a null in a ``valid`` row, null elsewhere (no per-row work)."""
    if isinstance(lst, pa.ChunkedArray):
        lst = lst.combine_chunks()
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
    parsed = [_split_urls(v) for v in pc.filter(text, pa.array(given)).to_pylist()]
    lengths = np.zeros(len(lst), dtype=np.int32)
    lengths[given] = [len(v) for v in parsed]
    offsets = np.zeros(len(lst) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = pa.array([u for v in parsed for u in v], _S)
    split = pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~given))
    return pc.if_else(pa.array(given), split, lst)


def _split_urls(value: str) -> list[str]:
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


def _extra_column(
    n: int, env: Result, par: Result, index: pa.Array, image_urls: pa.Array
) -> pa.Array:
    """The ``extra`` JSON texts: unknown keys, plus paramJson ``index`` and response
    ``imageUrls`` (read into the schema to tell the task type, but no column's).

    A row whose only extra is ``index`` (every 1080p upgrade) is written by Arrow string
    kernels; the others, few, go through dicts and orjson.
    """
    special = set(env.extras) | set(par.extras)
    if image_urls.null_count < len(image_urls):
        special.update(np.flatnonzero(np.asarray(image_urls.is_valid())).tolist())
    slow = sorted(special)
    known = {("paramJson", "index"): index, ("data", "response", "imageUrls"): image_urls}
    texts = {i: orjson.dumps(e).decode() for i, e in _extras(env, par, known, slow).items()}
    out = _sparse_strings(n, texts)
    if index.null_count == len(index):
        return out
    only_index = np.asarray(index.is_valid())
    only_index[slow] = False
    if not only_index.any():
        return out
    text = pc.binary_join_element_wise('{"paramJson":{"index":', pc.cast(index, _S), "}}", "")
    return pc.coalesce(out, pc.if_else(pa.array(only_index), text, pa.scalar(None, _S)))


def _extras(
    env: Result, par: Result, known: dict[tuple[str, ...], pa.Array], rows: list[int]
) -> dict[int, dict[str, Any]]:
    """For ``rows``, what no column takes: unknown keys, plus the read keys in ``known``."""
    out: dict[int, dict[str, Any]] = {}
    for row, e in env.extras.items():
        out[row] = dict(e)
    for row, e in par.extras.items():
        out.setdefault(row, {})["paramJson"] = dict(e)
    if not rows:
        return out
    take = pa.array(rows, pa.int64())
    for path, arr in known.items():
        for row, v in zip(rows, arr.take(take).to_pylist(), strict=True):
            if v is None:
                continue
            d = out.setdefault(row, {})
            for key in path[:-1]:
                d = d.setdefault(key, {})
            d[path[-1]] = v
    return out


def _mapper(t: pa.DataType) -> Any:
    if t == _S:
        return schema.dtypes()["task_id"]
    if t == _LS:
        return schema.dtypes()["result_urls"]
    if t == _I:
        return pd.Int64Dtype()
    if t == _B:
        return pd.BooleanDtype()
    return None


def finish(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The blocks' frames, in order, as one frame (dtypes kept, a fresh RangeIndex)."""
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def _utc(values: np.ndarray) -> pa.Array:
    """``datetime64[ns]`` of UTC wall times (NaT → null) as a tz-aware Arrow column."""
    return pa.array(values, _NS, from_pandas=True).cast(_NS_UTC)
