"""delivery_check: what each archived file is, against what its task asked for (private)."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd

from ..errors import InputError
from ._run import UNREADABLE

__all__ = ["DEFAULT_DURATION_S", "DELIVERY_ISSUES", "delivery_check"]

#: The problems delivery_check names, in the order it checks them.
DELIVERY_ISSUES = (
    "unreadable_media",
    "resolution_below_requested",
    "duration_below_requested",
    "no_audio",
    "aspect_mismatch",
    "extend_without_full_video",
)
#: A Veo 3.1 clip's length when the request names none (``duration`` is 4, 6 or 8 s).
DEFAULT_DURATION_S = 8.0
_SHORT_SIDE = {"720p": 720, "1080p": 1080, "4k": 2160}
_ASPECTS = {"16:9": 16 / 9, "9:16": 9 / 16}
_DURATION_SLACK_S = 0.5  # container durations round to frames and audio packets
_MAX_DEPTH = 8  # ancestors followed (a cycle in bad data must not loop)
_ASPECT_SLACK = 0.03  # relative: 1920x1080 and 1280x720 are both 16:9, 854x480 nearly


def delivery_check(df: pd.DataFrame, archive: pd.DataFrame) -> pd.DataFrame:
    """One row per problem between what a task asked for and the file it delivered.

    "Asked for" is the request (paramJson) where it names a value, else what the record's
    response reports; a generate task that names no ``duration`` asked for
    :data:`DEFAULT_DURATION_S`; an upgrade (1080p/4k) keeps its parent's length and aspect
    ratio. Issues: ``unreadable_media`` (the file does not decode),
    ``resolution_below_requested``, ``duration_below_requested``, ``no_audio``
    (``hasAudioList`` says audio, the file has none), ``aspect_mismatch`` and
    ``extend_without_full_video`` (an extend with no ``fullResultUrls``, or whose "full"
    video is no longer than its parent's clip). Rows whose file could not be archived
    (``archive_error`` other than unreadable media) are not checked.

    Parameters
    ----------
    df : the task frame the archive was made from.
    archive : what :func:`~veo_notebook.archive_videos` returned.

    >>> import veo_notebook as veo
    >>> empty = veo.archive_videos(veo.schema.empty_frame(), "videos", progress=False)
    >>> veo.delivery_check(veo.schema.empty_frame(), empty).columns.tolist()
    ['task_id', 'issue', 'expected', 'got']
    """
    need = {"task_id", "param_json", "task_type", "parent_task_id", "aspect_ratio", "resolution"}
    if missing := need - set(df.columns):
        raise InputError(
            f"delivery_check takes a task frame; missing: {', '.join(sorted(missing))}"
        )
    if missing := {"task_id", "archive_error", "media_width"} - set(archive.columns):
        raise InputError(
            f"delivery_check takes archive_videos' result; missing: {', '.join(sorted(missing))}"
        )
    tasks = {r["task_id"]: r for r in _records(_relevant(df, archive))}
    files = {r["task_id"]: r for r in _records(archive)}
    problems: list[tuple[str, str, str, str]] = []
    for task_id, f in files.items():
        task = tasks.get(task_id)
        if task is None:
            continue
        error = f.get("archive_error")
        if error == UNREADABLE:
            problems.append((task_id, "unreadable_media", "a video that decodes", UNREADABLE))
            continue
        if error is not None or f.get("media_width") is None:
            continue
        problems += [(task_id, *p) for p in _problems(task, f, tasks, files)]
    out = pd.DataFrame(problems, columns=["task_id", "issue", "expected", "got"])
    out = out.astype(pd.StringDtype("pyarrow"))
    out["issue"] = pd.Categorical(out["issue"].astype(object), categories=list(DELIVERY_ISSUES))
    return out


_TASK_COLUMNS = (
    "task_id",
    "param_json",
    "task_type",
    "parent_task_id",
    "aspect_ratio",
    "resolution",
    "has_audio",
    "full_result_urls",
)


def _relevant(df: pd.DataFrame, archive: pd.DataFrame) -> pd.DataFrame:
    """The rows of the archived tasks and of their ancestors, only the columns checked."""
    cols = [c for c in _TASK_COLUMNS if c in df.columns]
    keep = df["task_id"].isin(archive["task_id"]).to_numpy(dtype=bool, copy=True)
    wanted = set(df.loc[keep, "parent_task_id"].dropna())
    for _ in range(_MAX_DEPTH):  # an upgrade of an extend of a generate task, ...
        if not wanted:
            break
        more = df["task_id"].isin(wanted).to_numpy(bool) & ~keep
        keep |= more
        wanted = set(df.loc[more, "parent_task_id"].dropna())
    return df.loc[keep, cols]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with NA turned into None (list cells kept)."""
    cols = list(frame.columns)
    out = []
    for values in zip(*(frame[c].tolist() for c in cols), strict=True):
        out.append({c: (None if _na(v) else v) for c, v in zip(cols, values, strict=True)})
    return out


def _na(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # a list cell
        return False


def _request(task: dict[str, Any]) -> dict[str, Any]:
    try:
        got = orjson.loads(task.get("param_json") or "null")
    except orjson.JSONDecodeError:
        return {}
    return got if isinstance(got, dict) else {}


def _lineage(task: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    chain = [task]
    while chain[-1].get("parent_task_id") in tasks and len(chain) < _MAX_DEPTH:
        chain.append(tasks[chain[-1]["parent_task_id"]])
    return chain


def _asked_duration(task: dict[str, Any]) -> float:
    d = _request(task).get("duration")
    if isinstance(d, (int, float)) and not isinstance(d, bool) and d > 0:
        return float(d)
    return DEFAULT_DURATION_S


def _problems(
    task: dict[str, Any],
    f: dict[str, Any],
    tasks: dict[str, dict[str, Any]],
    files: dict[str, dict[str, Any]],
) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    width, height = int(f["media_width"]), int(f["media_height"])
    size = f"{width}x{height}"
    kind = str(task.get("task_type") or "")
    chain = _lineage(task, tasks)
    resolution = _request(task).get("resolution") or task.get("resolution")
    short = _SHORT_SIDE.get(str(resolution).lower()) if resolution else None
    if short is not None and min(width, height) < short:
        out.append(("resolution_below_requested", str(resolution), size))
    duration = f.get("media_duration_s")
    if kind in ("generate", "1080p", "4k") and duration is not None:
        asked = _asked_duration(chain[-1])
        if duration < asked - _DURATION_SLACK_S:
            out.append(("duration_below_requested", f"{asked:g} s", f"{duration:g} s"))
    if task.get("has_audio") is True and f.get("media_has_audio") is False:
        out.append(("no_audio", "audio (hasAudioList: true)", "no audio track"))
    aspect = next((t.get("aspect_ratio") for t in chain if t.get("aspect_ratio")), None)
    ratio = _ASPECTS.get(str(aspect)) if aspect else None
    if ratio is not None and abs(width / height - ratio) > _ASPECT_SLACK * ratio:
        out.append(("aspect_mismatch", str(aspect), size))
    if kind == "extend":
        full = task.get("full_result_urls")
        if full is None or len(full) == 0:
            out.append(("extend_without_full_video", "fullResultUrls", "resultUrls only"))
        elif duration is not None:
            # the parent's clip: as archived, else as asked, else a default clip's length
            parent_id = task.get("parent_task_id")
            parent = files.get(parent_id) or {} if parent_id else {}
            asked = _asked_duration(chain[-1]) if len(chain) > 1 else DEFAULT_DURATION_S
            base = parent.get("media_duration_s") or asked
            if duration <= base + _DURATION_SLACK_S:
                expected = f"longer than the parent's {base:g} s"
                out.append(("extend_without_full_video", expected, f"{duration:g} s"))
    return out
