"""The ONE column table of the typed task frame.

Every column of the frame returned by :func:`veo_notebook.to_frame` (and by
``fetch_records``) is declared here once: its name, its pandas dtype and its meaning.
The parser enforces it (:func:`empty_frame`, :func:`enforce`), Parquet export writes it,
and the README prints it (:func:`markdown_table`; a test keeps the README in step).

>>> from veo_notebook.schema import COLUMNS, column_names
>>> column_names()[:3]
['task_id', 'status', 'success_flag']
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pandas as pd
import pyarrow as pa

__all__ = [
    "COLUMNS",
    "SCHEMA_VERSION",
    "STATUS_CATEGORIES",
    "TASK_TYPE_CATEGORIES",
    "Column",
    "Status",
    "TaskType",
    "column_names",
    "dtypes",
    "empty_frame",
    "enforce",
    "markdown_table",
]

#: Bumped whenever a column is added, removed or changes dtype or meaning.
SCHEMA_VERSION = 1


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
    Column("create_time", _UTC, "datetime UTC", "createTime, tz-aware UTC."),
    Column("complete_time", _UTC, "datetime UTC", "completeTime, tz-aware UTC."),
    Column(
        "latency_s",
        "float64",
        "float",
        "complete_time − create_time in seconds; NaN while generating or if a time is missing.",
    ),
    Column("model", _STR, "string", "veo3 / veo3_fast / veo3_lite (extends: fast / quality)."),
    Column("prompt", _STR, "string", "The prompt from paramJson."),
    Column("aspect_ratio", _STR, "string", "16:9 / 9:16 / Auto (aspect_ratio or aspectRatio)."),
    Column(
        "generation_type",
        _STR,
        "string",
        "TEXT_2_VIDEO / FIRST_AND_LAST_FRAMES_2_VIDEO / REFERENCE_2_VIDEO.",
    ),
    Column("resolution", _STR, "string", "response.resolution, else paramJson resolution."),
    Column(
        "task_type",
        pd.CategoricalDtype(TASK_TYPE_CATEGORIES),
        "category",
        "generate / extend / 1080p / 4k / unknown, inferred (rule in frame.py).",
    ),
    Column("parent_task_id", _STR, "string", "Parent taskId of an extend / 1080p / 4k task."),
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
        "enable_translation", "boolean", "boolean", "paramJson enableTranslation; NA where absent."
    ),
    Column("has_audio", "boolean", "boolean", "response.hasAudioList[0]; NA where absent."),
    Column("media_ids", _LIST, "list[string]", "response.mediaIds / media_ids (4K tasks)."),
    Column(
        "fetch_error",
        _STR,
        "string",
        "Why the record could not be read ('422 record is null.'); NA when read.",
    ),
    Column("fetched_at", _UTC, "datetime UTC", "When the record was fetched from the API."),
    Column("param_json", _STR, "string", "The raw paramJson text, untouched."),
    Column(
        "extra",
        _STR,
        "string (JSON)",
        "Every key of data/response/paramJson not mapped to a column, as a JSON object.",
    ),
    Column(
        "parse_note", _STR, "string", "Why a field could not be parsed (bad time, bad paramJson…)."
    ),
)


def column_names() -> list[str]:
    """Names of the frame's columns, in order."""
    return [c.name for c in COLUMNS]


def dtypes() -> dict[str, object]:
    """Mapping column name → pandas dtype."""
    return {c.name: c.dtype for c in COLUMNS}


def empty_frame() -> pd.DataFrame:
    """A frame with every column and no rows.

    >>> empty_frame().shape
    (0, 32)
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
    """The column table as Markdown (the README embeds this text verbatim)."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type_name} | {c.meaning} |" for c in COLUMNS]
    return "\n".join(lines)
