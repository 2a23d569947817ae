"""The per-row reader of the odd rows the columnar reader refuses (private).

:func:`conform_text` turns one JSON text into a row that fits the reader's Arrow schema
exactly: values of the expected type are kept (numbers given as strings and the like are
converted when that is lossless), a value of another type goes to the extras with a note,
and a key with a type variant in the schema (``createTime__num``, ``resultUrls__str``) is
routed by its value's type, as the columnar path does by renaming.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson
import pyarrow as pa

from .sources import NUM_SUFFIX, STR_SUFFIX

_INT64_MAX = 2**63 - 1
#: floats this large are refused: near the float limit a value is an overflow, not data
_FLOAT_MAX = 1e300
#: characters of a value quoted in a note
_NOTE_CHARS = 60
_INT_TEXT = re.compile(r"\s*-?\d{1,18}\s*")


def put(d: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for p in path[:-1]:
        d = d.setdefault(p, {})
    d[path[-1]] = value


def drop_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: drop_nulls(x) for k, x in v.items() if x is not None}
    return v


#: how some kie.ai endpoints write a null: a member with this string value is null, in every
#: field and at any depth (an item of a list is a value, kept); the columnar path does the
#: same to its string columns (``_build``) and to the extras it collects (``_read``)
NULL_TEXT = "null"


def null_strings(v: Any) -> Any:
    """``v`` with every object member whose value is the string ``"null"`` made None."""
    if isinstance(v, dict):
        return {k: None if x == NULL_TEXT else null_strings(x) for k, x in v.items()}
    if isinstance(v, list):
        return [null_strings(x) for x in v]
    return v


def conform_text(
    text: bytes, schema: pa.Schema, what: str, aliases: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any], str | None, bool]:
    """One text → (row dict matching ``schema``, extras, note, is-an-object)."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:  # stdlib takes what orjson refuses (integers beyond 64 bits, NaN)
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return {}, {}, f"{what} is not valid JSON ({_short(str(exc))})", False
    if not isinstance(obj, dict):
        got = _short(text.decode("utf-8", "replace"))
        return {}, {}, f"{what} is not a JSON object (got {got})", False
    if b'"null"' in text:
        obj = null_strings(obj)
    notes: list[str] = []
    extras: dict[str, Any] = {}
    if aliases:
        moving = {k for k in obj if k in aliases and obj.get(aliases[k]) is None}
        obj = {k: v for k, v in obj.items() if k not in moving} | {
            aliases[k]: obj[k] for k in moving
        }
    row = _conform_struct(obj, list(schema), (), extras, notes)
    return row, extras, "; ".join(notes) or None, True


def _conform_struct(
    obj: dict, fields: list[pa.Field], path: tuple[str, ...], extras: dict, notes: list[str]
) -> dict[str, Any]:
    by_name = {f.name: f for f in fields}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        key = str(key)
        if value is None:
            continue
        placed = False
        for name in (key, key + NUM_SUFFIX, key + STR_SUFFIX):
            f = by_name.get(name)
            if f is None or (name != key and name in out):
                continue
            ok, conv = _fit(value, f.type, (*path, key), extras, notes)
            if ok:
                out[name] = conv
                placed = True
                break
        if not placed:
            if key in by_name:
                notes.append(f"{'.'.join((*path, key))}: unexpected value {_short(repr(value))}")
            put(extras, (*path, key), drop_nulls(value))
    return out


def _fit(value: Any, typ: pa.DataType, path: tuple[str, ...], extras: dict, notes: list[str]):
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return isinstance(value, str), value
    if pa.types.is_boolean(typ):
        if isinstance(value, bool):
            return True, value
        if value in (0, 1) and not isinstance(value, float):
            return True, bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return True, value.lower() == "true"
        return False, None
    if pa.types.is_integer(typ):
        if isinstance(value, bool):
            return False, None
        if (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and _INT_TEXT.fullmatch(value)
        ):
            value = int(value)
        return isinstance(value, int) and abs(value) <= _INT64_MAX, value
    if pa.types.is_floating(typ):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, None
        return abs(value) < _FLOAT_MAX or value != value, float(value)
    if pa.types.is_list(typ):
        if not isinstance(value, list):
            return False, None
        out: list[Any] = []
        for v in value:
            if v is None:
                out.append(None)
                continue
            ok, conv = _fit(v, typ.value_type, path, extras, notes)
            if not ok:
                return False, None
            out.append(conv)
        return True, out
    if pa.types.is_struct(typ):
        if not isinstance(value, dict):
            return False, None
        return True, _conform_struct(value, list(typ), path, extras, notes)
    return False, None  # pragma: no cover - schemas here use only the types above


def _short(s: str, n: int = _NOTE_CHARS) -> str:
    s = s.replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"
