"""``read_callbacks``: kept deliveries (or a JSONL log of callback bodies) as a typed frame.

Both callback shapes are read: success ``{code: 200, msg, data: {taskId, info:
{resultUrls, originUrls, resolution}, fallbackFlag}}`` with ``resultUrls`` an array or a
string ``"[http://…]"``, and failure ``{code: 400|500|501, msg, data: {taskId,
fallbackFlag}}``; 4K callbacks add ``data.creditsConsumed``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from ..errors import InputError
from ..frame import split_urls
from ..schema import STATUS_CATEGORIES, Column, Status
from ..store import SQLITE_MAGIC, Store
from ._table import CallbackRow, CallbackTable

__all__ = ["CALLBACK_COLUMNS", "read_callbacks", "task_ids"]

_STR = pd.StringDtype("pyarrow")
_UTC = pd.DatetimeTZDtype("ns", "UTC")
_LIST = pd.ArrowDtype(pa.list_(pa.string()))
_SUCCESS_CODE = 200
_MS_EPOCH = 1e11  # an epoch number above this is in milliseconds, not seconds

#: The columns of :func:`read_callbacks`, in order: one row per delivery.
CALLBACK_COLUMNS: tuple[Column, ...] = (
    Column("task_id", _STR, "string", "data.taskId of the callback."),
    Column(
        "received_at",
        _UTC,
        "datetime UTC",
        "When the receiver kept it; from a JSONL log its received_at (NaT where absent).",
    ),
    Column("code", "Int64", "Int64", "code of the callback: 200 success, 400/500/501 failure."),
    Column("msg", _STR, "string", "msg of the callback."),
    Column(
        "status",
        pd.CategoricalDtype(STATUS_CATEGORIES),
        "category",
        "success when code is 200, failed for any other code, unknown without one.",
    ),
    Column(
        "result_urls",
        _LIST,
        "list[string]",
        "data.info.resultUrls (a string '[a, b]' is split); empty on a failure.",
    ),
    Column("credits", "Int64", "Int64", "data.creditsConsumed (4K callbacks); NA otherwise."),
    Column("duplicate", "boolean", "boolean", "An earlier delivery for the same task was kept."),
    Column(
        "signature_ok",
        "boolean",
        "boolean",
        "True: signature verified; NA: not checked (--no-signature, or a JSONL log).",
    ),
    Column("raw", _STR, "string", "The body exactly as received."),
)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _fields(doc: Any) -> dict[str, Any]:
    """task_id, code, msg, status, result_urls, credits of one parsed callback body."""
    doc = doc if isinstance(doc, dict) else {}
    data: dict[str, Any] = doc["data"] if isinstance(doc.get("data"), dict) else {}
    info: dict[str, Any] = data["info"] if isinstance(data.get("info"), dict) else {}
    urls = info.get("resultUrls")
    if isinstance(urls, str):
        urls = split_urls(urls)
    urls = [u for u in urls if isinstance(u, str)] if isinstance(urls, list) else []
    code = _int(doc.get("code"))
    if code is None:
        status = Status.UNKNOWN.value
    else:
        status = Status.SUCCESS.value if code == _SUCCESS_CODE else Status.FAILED.value
    credits = _int(data.get("creditsConsumed", info.get("creditsConsumed")))
    tid = data.get("taskId")
    msg = doc.get("msg")
    return {
        "task_id": tid if isinstance(tid, str) else None,
        "code": code,
        "msg": msg if isinstance(msg, str) and msg else None,
        "status": status,
        "result_urls": urls,
        "credits": credits,
    }


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    for c in CALLBACK_COLUMNS:
        values = [r[c.name] for r in rows]
        if c.name == "result_urls":
            cols[c.name] = pd.Series(pa.array(values, pa.list_(pa.string())), dtype=_LIST)
        elif c.name == "received_at":
            secs = pd.array([float("nan") if v is None else v for v in values], dtype="float64")
            cols[c.name] = pd.to_datetime(secs, unit="s", utc=True).astype(_UTC)
        else:
            cols[c.name] = pd.Series(values, dtype=c.dtype)  # type: ignore[call-overload]
    return pd.DataFrame({k: pd.Series(v).reset_index(drop=True) for k, v in cols.items()})


def _store_rows(rows: Iterable[CallbackRow]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        try:
            doc = orjson.loads(r["body"])
        except orjson.JSONDecodeError:  # kept by another tool: still a delivery
            doc = None
        f = _fields(doc)
        f["task_id"] = r["task_id"]
        f.update(
            received_at=r["received_at"],
            duplicate=r["duplicate"],
            signature_ok=r["signature_ok"],
            raw=r["body"].decode("utf-8", "replace"),
        )
        out.append(f)
    return out


def _received(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / (1000.0 if value > _MS_EPOCH else 1.0)
    if isinstance(value, str):
        try:
            ts = pd.Timestamp(value)
        except ValueError:
            ts = None
        if ts is not None and not pd.isna(ts):
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            return float(ts.value) / 1e9
    raise InputError(f"{where}: received_at {value!r} is not a time (ISO 8601 or epoch seconds)")


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(
                    f"{where} is not JSON ({exc}); one callback body per line"
                ) from None
            if not isinstance(doc, dict):
                raise InputError(f"{where} is not a JSON object; one callback body per line")
            received = doc.get("received_at")
            body = doc.get("body") if isinstance(doc.get("body"), dict) else doc
            f_ = _fields(body)
            if f_["task_id"] is None or not f_["task_id"].strip():
                raise InputError(f"{where} has no data.taskId: not a kie.ai callback body")
            raw = line.rstrip(b"\r\n") if body is doc else orjson.dumps(body)
            f_.update(
                received_at=_received(received, where),
                duplicate=f_["task_id"] in seen,
                signature_ok=None,
                raw=raw.decode("utf-8", "replace"),
            )
            seen.add(f_["task_id"])
            out.append(f_)
    return out


def _open(source: Store | str | os.PathLike[str]) -> Store | Path:
    """The store, or the path of a JSONL log; never creates a file."""
    if isinstance(source, Store):
        return source
    path = Path(source)
    if not path.is_file():
        raise InputError(
            f"no callbacks file {str(path)!r} (a store, or a JSONL of callback bodies)"
        )
    with path.open("rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    return Store(path, create=False) if head == SQLITE_MAGIC else path


def read_callbacks(source: Store | str | os.PathLike[str]) -> pd.DataFrame:
    """One typed row per callback delivery (columns :data:`CALLBACK_COLUMNS`).

    Parameters
    ----------
    source : Store or path
        A store the receiver wrote, or a JSONL file of callback bodies (one JSON object
        per line, optionally with a ``received_at``, ISO 8601 or epoch seconds; or
        ``{"received_at": ..., "body": {...}}``).

    Raises
    ------
    InputError
        The file does not exist, or a JSONL line is not a callback body.

    >>> from veo_notebook import Store
    >>> with Store(":memory:") as s:
    ...     _ = CallbackTable(s).put("t1", b'{"code":400,"msg":"x","data":{"taskId":"t1"}}', {})
    ...     read_callbacks(s)["status"].tolist()
    ['failed']
    """
    opened = _open(source)
    if isinstance(opened, Path):
        return _frame(_jsonl_rows(opened))
    try:
        return _frame(_store_rows(CallbackTable(opened).rows()))
    finally:
        if opened is not source:
            opened.close()


def task_ids(source: Store | str | os.PathLike[str]) -> list[str]:
    """The task ids the callbacks name, each once, in the order first received.

    >>> from veo_notebook import Store
    >>> with Store(":memory:") as s:
    ...     task_ids(s)
    []
    """
    opened = _open(source)
    if isinstance(opened, Path):
        return list(dict.fromkeys(r["task_id"] for r in _jsonl_rows(opened)))
    try:
        return CallbackTable(opened).task_ids()
    finally:
        if opened is not source:
            opened.close()
