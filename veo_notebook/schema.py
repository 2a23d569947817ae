"""The ONE column table of the typed task frame.

Every column of the frame returned by :func:`veo_notebook.to_frame` (and by
``fetch_records``) is declared here once: its name, its pandas dtype and its meaning.
The parser enforces it (:func:`empty_frame`, :func:`enforce`), Parquet export writes it,
and the docs print it (:func:`markdown_table`; a test keeps docs/columns.md in step).

>>> from veo_notebook.schema import COLUMNS, column_names
>>> column_names()[:3]
['task_id', 'status', 'success_flag']
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "COLUMNS",
    "EXPIRED_ERROR",
    "FAILED_STATUSES",
    "MEDIA_RETENTION",
    "NOT_IN_STORE",
    "REQUEST_DEFAULTS",
    "SCHEMA_VERSION",
    "STATUS_BY_FLAG",
    "STATUS_CATEGORIES",
    "STATUS_COLOURS",
    "STATUS_ORDER",
    "TASK_TYPE_CATEGORIES",
    "TERMINAL_FLAGS",
    "TERMINAL_STATUSES",
    "TRANSIENT_CODES",
    "UNREAD",
    "Column",
    "FetchErrorKind",
    "Status",
    "TaskType",
    "column_names",
    "dtypes",
    "empty_frame",
    "enforce",
    "envelope_facts",
    "fetch_error_kind",
    "is_pending",
    "markdown_table",
    "pandas_type",
    "pending_mask",
    "status_of",
]

#: Bumped whenever a column is added, removed or changes dtype or meaning.
SCHEMA_VERSION = 4

#: kie.ai's documented defaults of ``POST /api/v1/veo/generate`` (column -> value): a
#: generate task whose request names none of these has the default in the column, and
#: the column's name in ``defaults_applied``, so it is counted and priced as what it is.
REQUEST_DEFAULTS: dict[str, object] = {"model": "veo3_fast", "enable_translation": True}


class Status(str, Enum):
    """Task status derived from ``successFlag``."""

    GENERATING = "generating"  # successFlag 0
    SUCCESS = "success"  # successFlag 1
    FAILED = "failed"  # successFlag 2
    GENERATION_FAILED = "generation_failed"  # successFlag 3
    UNKNOWN = "unknown"  # any other value (kept and flagged, never dropped)


class TaskType(str, Enum):
    """Kind of Veo task, inferred from the record (rule in :mod:`veo_notebook.frame`)."""

    GENERATE = "generate"
    EXTEND = "extend"
    P1080 = "1080p"
    K4 = "4k"
    UNKNOWN = "unknown"


STATUS_CATEGORIES = [s.value for s in Status]
TASK_TYPE_CATEGORIES = [t.value for t in TaskType]


# --- the task-state rules: every stage imports these, none writes its own ---------------

#: successFlag → status. Any other flag is ``unknown``: kept and flagged, never dropped.
STATUS_BY_FLAG: dict[int, Status] = {
    0: Status.GENERATING,
    1: Status.SUCCESS,
    2: Status.FAILED,
    3: Status.GENERATION_FAILED,
}
#: successFlag values after which a task never changes again.
TERMINAL_FLAGS = frozenset(f for f, s in STATUS_BY_FLAG.items() if s is not Status.GENERATING)
#: Statuses of a finished task (the denominator of a failure rate).
TERMINAL_STATUSES = frozenset(STATUS_BY_FLAG[f].value for f in TERMINAL_FLAGS)
#: Statuses of a task that ended without a video (flag 2 and flag 3).
FAILED_STATUSES = frozenset({Status.FAILED.value, Status.GENERATION_FAILED.value})
#: How a row with no status (its record could not be read) is labelled in tables and figures.
UNREAD = "unread"
#: The order statuses are listed and stacked in, everywhere.
STATUS_ORDER = (
    Status.SUCCESS.value,
    Status.GENERATING.value,
    Status.FAILED.value,
    Status.GENERATION_FAILED.value,
    Status.UNKNOWN.value,
    UNREAD,
)
#: One colour per status (matplotlib's tab10), shared by the plots, the report and the viewer.
STATUS_COLOURS = {
    Status.GENERATING.value: "#1f77b4",
    Status.SUCCESS.value: "#2ca02c",
    Status.FAILED.value: "#d62728",
    Status.GENERATION_FAILED.value: "#ff7f0e",
    Status.UNKNOWN.value: "#7f7f7f",
    UNREAD: "#8c564b",
}
#: Envelope codes / HTTP statuses that mean "ask again later" (the client retries them).
TRANSIENT_CODES = frozenset({408, 429, 455, 500, 502, 503, 504})
#: The API forgot this record for good (older than its 14 days): asking again is waste.
EXPIRED_ERROR = "422 Temporarily supports records within 14 days."
#: kie.ai deletes a task's generated media this long after it completed (api-facts "Media").
MEDIA_RETENTION = pd.Timedelta(days=14)
#: The fetch error of an id the store was asked for but does not hold.
NOT_IN_STORE = "not in store"


class FetchErrorKind(str, Enum):
    """What a row's ``fetch_error`` says about asking again (see :func:`fetch_error_kind`)."""

    NONE = "none"  # the record was read
    EXPIRED = "expired"  # 422 "within 14 days": the API will never answer it again
    NOT_FOUND = "not_found"  # another 422 ("record is null."): not a task of this account
    TRANSIENT = "transient"  # 408/429/455/5xx, timeouts, resets, an odd answer, not asked yet
    PERMANENT = "permanent"  # any other code (400, 401, 414, 451, ...): the same id, the same no


def _leading_code(text: str) -> int | None:
    head = text.split(" ", 1)[0]
    return int(head) if len(head) == 3 and head.isdigit() else None


def fetch_error_kind(fetch_error: str | None) -> FetchErrorKind:
    """Classify a ``fetch_error`` text ("<code> <msg>", or a transport failure without a code).

    >>> fetch_error_kind("422 record is null.").value, fetch_error_kind("414 URI Too Long").value
    ('not_found', 'permanent')
    """
    if fetch_error is None or fetch_error != fetch_error:  # None or NaN
        return FetchErrorKind.NONE
    text = str(fetch_error)
    if text.startswith(EXPIRED_ERROR.rstrip(".")):
        return FetchErrorKind.EXPIRED
    code = _leading_code(text)
    if code == 422:
        return FetchErrorKind.NOT_FOUND
    if code is None or code == 200 or code in TRANSIENT_CODES:
        return FetchErrorKind.TRANSIENT
    return FetchErrorKind.PERMANENT


#: Fetch-error kinds of an unread row worth asking again: only a failure that may pass.
#: A 422 is the API's answer about that id (kie.ai writes the record when the task is
#: created), so asking again gives the same answer; ``refresh="all"`` asks anyway.
_PENDING_KINDS = frozenset({FetchErrorKind.TRANSIENT})


def is_pending(status: str | None, fetch_error: str | None) -> bool:
    """Is this row worth querying again? THE rule of fetch, watch, the store and the viewer.

    A task still generating is; a terminal task is not; a record with an unknown flag is
    not (it is kept and flagged; ``refresh="all"`` asks again). A row with neither a
    status nor an error (nothing usable came back) is. An unread row is only when its
    failure may pass (timeouts, resets, 429, 5xx); a 422 ("record is null.", the 14-day
    expiry) or another refusal (400, 414, ...) is the API's answer about that id.

    >>> is_pending("generating", None), is_pending(None, "503 Service Unavailable")
    (True, True)
    >>> is_pending("success", None), is_pending(None, "422 record is null.")
    (False, False)
    """
    if fetch_error is None or fetch_error != fetch_error:
        return status is None or status != status or status == Status.GENERATING.value
    return fetch_error_kind(fetch_error) in _PENDING_KINDS


def pending_mask(status: pd.Series, fetch_error: pd.Series) -> np.ndarray:
    """:func:`is_pending` over columns (one call per distinct fetch error, not per row)."""
    err = fetch_error.astype(object)
    read = err.isna().to_numpy()
    out = read & (status.isna().to_numpy() | (status == Status.GENERATING.value).to_numpy(bool))
    if (~read).any():
        kinds = {e: is_pending(None, e) for e in pd.unique(err[~read])}
        out[~read] = err[~read].map(kinds).to_numpy(dtype=bool)
    return out


def envelope_facts(envelope: object) -> tuple[int | None, str | None]:
    """(successFlag, createTime) of an answer's envelope, read leniently (None where absent).

    What the store indexes and the task-state rules need, without the parser.
    """
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if not isinstance(data, dict):
        return None, None
    flag = data.get("successFlag")
    flag = flag if isinstance(flag, int) and not isinstance(flag, bool) else None
    ct = data.get("createTime")
    return flag, None if ct is None else str(ct)


def status_of(flag: int | None) -> str | None:
    """The status of a successFlag (None → None; a flag outside 0–3 → ``unknown``)."""
    if flag is None:
        return None
    return STATUS_BY_FLAG.get(flag, Status.UNKNOWN).value


_STR = pd.StringDtype("pyarrow")
_UTC = pd.DatetimeTZDtype("ns", "UTC")
_LIST = pd.ArrowDtype(pa.list_(pa.string()))


@dataclass(frozen=True)
class Column:
    """One column of the typed frame."""

    name: str
    dtype: object
    type_name: str  # short human name of the dtype, for docs
    meaning: str


COLUMNS: tuple[Column, ...] = (
    Column(
        "task_id",
        _STR,
        "string",
        "The taskId queried (a store row's id), else data.taskId; one row per record read.",
    ),
    Column(
        "status",
        pd.CategoricalDtype(STATUS_CATEGORIES),
        "category",
        "generating / success / failed / generation_failed from successFlag 0/1/2/3; "
        "any other flag → unknown; NA when the record could not be read.",
    ),
    Column("success_flag", "Int64", "Int64", "successFlag as given."),
    Column("error_code", "Int64", "Int64", "errorCode of the task (400/500/501…), NA if none."),
    Column("error_message", _STR, "string", "errorMessage; NA when null or empty."),
    Column(
        "create_time",
        _UTC,
        "datetime UTC",
        "createTime, tz-aware UTC; a plain time is wall time in naive_tz (in an hour that "
        "repeats: the earlier instant; in one that is skipped: the end of the gap).",
    ),
    Column("complete_time", _UTC, "datetime UTC", "completeTime, tz-aware UTC."),
    Column(
        "latency_s",
        "float64",
        "float",
        "complete_time − create_time in seconds, queueing included (the API gives no start "
        "time); NaN while generating or if a time is missing.",
    ),
    Column(
        "cost_time",
        "Float64",
        "Float64",
        "data.costTime as given, where an answer has it. Unit unknown: captures disagree "
        "(seconds in real answers, milliseconds in a docs example), so it is kept raw.",
    ),
    Column(
        "credits_consumed",
        "Float64",
        "Float64",
        "data.creditsConsumed (credits the API says the task used), where an answer has it.",
    ),
    Column(
        "model",
        _STR,
        "string",
        "veo3 / veo3_fast / veo3_lite (extends: fast / quality); a generate request that names "
        "none: veo3_fast, kie.ai's default (see defaults_applied).",
    ),
    Column("prompt", _STR, "string", "The prompt from paramJson."),
    Column("aspect_ratio", _STR, "string", "16:9 / 9:16 / Auto (aspect_ratio or aspectRatio)."),
    Column(
        "generation_type",
        _STR,
        "string",
        "TEXT_2_VIDEO / FIRST_AND_LAST_FRAMES_2_VIDEO / REFERENCE_2_VIDEO.",
    ),
    Column("duration", "Int64", "Int64", "paramJson duration: requested video length, seconds."),
    Column("resolution", _STR, "string", "response.resolution, else paramJson resolution."),
    Column(
        "task_type",
        pd.CategoricalDtype(TASK_TYPE_CATEGORIES),
        "category",
        "generate / extend / 1080p / 4k / unknown, from all the record shows (rule in frame/).",
    ),
    Column("parent_task_id", _STR, "string", "Parent taskId of an extend / 1080p / 4k task."),
    Column(
        "root_task_id",
        _STR,
        "string",
        "The task's family: the first id up the parent chain with no parent in this frame "
        "(itself without a parent; a parent the frame lacks is its children's root; a "
        "cycle is cut at its lowest id). Derived over the whole frame (frame/_roots.py).",
    ),
    Column(
        "result_urls", _LIST, "list[string]", "response.resultUrls (a string '[a, b]' is split)."
    ),
    Column("origin_urls", _LIST, "list[string]", "response.originUrls; null → empty list."),
    Column(
        "full_result_urls",
        _LIST,
        "list[string]",
        "response.fullResultUrls: the stitched video after an extend.",
    ),
    Column(
        "video_url",
        _STR,
        "string",
        "The final video: fullResultUrls[0] if present, else resultUrls[0].",
    ),
    Column("fallback", "boolean", "boolean", "fallbackFlag (legacy); NA where absent."),
    Column("watermark", _STR, "string", "paramJson watermark / waterMark (the watermark text)."),
    Column("callback_url", _STR, "string", "paramJson callBackUrl / callbackUrl."),
    Column("image_urls", _LIST, "list[string]", "paramJson imageUrls: the input images, if any."),
    Column("seeds", "Int64", "Int64", "paramJson seeds, else response.seeds[0]."),
    Column(
        "enable_translation",
        "boolean",
        "boolean",
        "paramJson enableTranslation; a generate request that names none: true, kie.ai's "
        "default; NA where it does not apply.",
    ),
    Column(
        "defaults_applied",
        _LIST,
        "list[string]",
        "The columns holding kie.ai's documented default because the request named none "
        "(model → veo3_fast, enable_translation → true, generate tasks only); empty when none.",
    ),
    Column("has_audio", "boolean", "boolean", "response.hasAudioList[0]; NA where absent."),
    Column("media_ids", _LIST, "list[string]", "response.mediaIds / media_ids (4K tasks)."),
    Column(
        "fetch_error",
        _STR,
        "string",
        "Why the record could not be read: the query failed, or the answer's code was not "
        "200 ('422 record is null.', '500 Task generation failed'; then status is NA and "
        "any data it held is in extra); NA when read.",
    ),
    Column("fetched_at", _UTC, "datetime UTC", "When the record was fetched from the API."),
    Column("param_json", _STR, "string", "The raw paramJson text, untouched."),
    Column(
        "extra",
        _STR,
        "string (JSON)",
        "Every key of data/response/paramJson not mapped to a column, as a JSON object "
        "(all of data when the answer's code was not 200).",
    ),
    Column(
        "parse_note", _STR, "string", "Why a field could not be parsed (bad time, bad paramJson…)."
    ),
)


def pandas_type(t: pa.DataType) -> object:
    """The frame's pandas dtype for an Arrow type (``to_pandas(types_mapper=...)``), or None
    for Arrow's default: strings and string lists Arrow-backed, integers and booleans
    nullable. The parser and the Parquet reader both convert with it."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _STR
    if pa.types.is_list(t) and pa.types.is_string(t.value_type):
        return _LIST
    if pa.types.is_integer(t):
        return pd.Int64Dtype()
    if pa.types.is_boolean(t):
        return pd.BooleanDtype()
    return None


def column_names() -> list[str]:
    """Names of the frame's columns, in order."""
    return [c.name for c in COLUMNS]


def dtypes() -> dict[str, object]:
    """Mapping column name → pandas dtype."""
    return {c.name: c.dtype for c in COLUMNS}


def empty_frame() -> pd.DataFrame:
    """A frame with every column and no rows.

    >>> empty_frame().shape
    (0, 37)
    """
    return pd.DataFrame({c.name: pd.Series([], dtype=c.dtype) for c in COLUMNS})  # type: ignore[call-overload]


def enforce(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with the schema's columns, in order, cast to the schema's dtypes.

    Missing columns are added as all-NA; extra columns are kept after the schema's.
    """
    out = {}
    n = len(df)
    for c in COLUMNS:
        if c.name in df.columns:
            s = df[c.name]
            out[c.name] = s if s.dtype == c.dtype else s.astype(c.dtype)  # type: ignore[arg-type]
        else:
            out[c.name] = pd.Series([None] * n, index=df.index, dtype=c.dtype)  # type: ignore[call-overload]
    extra = [k for k in df.columns if k not in out]
    res = pd.DataFrame(out, index=df.index)
    for k in extra:
        res[k] = df[k]
    return res


def markdown_table() -> str:
    """The column table as Markdown (docs/columns.md embeds this text verbatim)."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type_name} | {c.meaning} |" for c in COLUMNS]
    return "\n".join(lines)
