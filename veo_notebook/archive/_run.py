"""archive_videos: every succeeded task's final video, saved, hashed, probed (private)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import requests

from ..errors import ArchiveError, InputError
from ..schema import MEDIA_RETENTION, Status
from ..store import Store
from . import MAX_WORKERS
from ._dest import Destination
from ._download import DEFAULT_RETRY, GaveUp, Gone, Refused, download, media_session
from ._probe import probe as probe_file
from ._table import ARCHIVE_DTYPES, ARCHIVE_ORIGIN, ARCHIVE_VIDEO, FRAME_NAMES, ArchiveTable

__all__ = ["ARCHIVE_DTYPES", "UNREADABLE", "archive_videos"]

log = logging.getLogger("veo_notebook.archive")

#: ``archive_error`` of a file that was downloaded whole but does not decode.
UNREADABLE = "unreadable media"
NO_URL = "no video URL in the record"
_GONE = (
    "{status}: the file is gone (kie.ai deletes generated files after "
    f"{MEDIA_RETENTION.days} days)"
)
DEFAULT_WORKERS = 8
DEFAULT_TIMEOUT_S = 60.0
_UNDATED = "undated"
#: With ``origin=True``, the origin file's columns (added after :data:`ARCHIVE_DTYPES`').
ORIGIN_DTYPES: dict[str, Any] = {
    f"origin_{name}": ARCHIVE_DTYPES[FRAME_NAMES.get(name, name)]
    for name in ("path", "bytes", "sha256", "error")
}


@dataclass(frozen=True)
class _Target:
    task_id: str
    kind: str  # ARCHIVE_VIDEO or ARCHIVE_ORIGIN
    url: str | None
    name: str  # relative name under the destination: <yyyy-mm-dd>/<task_id>.mp4


def archive_videos(
    df: pd.DataFrame,
    dest: str | os.PathLike[str],
    *,
    store: Store | str | os.PathLike[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: bool = True,
    probe: bool = True,
    verify: bool = False,
    origin: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    final_only: bool = False,
) -> pd.DataFrame:
    """Download the final video of every succeeded task into ``dest``; one row per task.

    The video is ``video_url`` (``fullResultUrls`` of an extend, else ``resultUrls``), saved
    as ``dest/<yyyy-mm-dd>/<task_id>.mp4`` (the UTC day the task completed). ``dest`` is a
    folder or any fsspec URL (``s3://bucket/videos``; ``storage_options`` as in pandas).
    Downloads run on ``workers`` threads, resume with HTTP Range after a broken
    connection, retry resets, timeouts and 429/5xx with backoff, and check the length the
    host promised; only a complete file reaches its final name. A 404/410 (the file was
    deleted) or a file that does not decode ("unreadable media") is that row's
    ``archive_error``, never a batch failure.

    With a ``store``, each row is recorded in its ``archive`` table as it completes, and a
    later run downloads only what is missing or failed; ``verify=True`` re-hashes every
    file already archived and downloads again any that changed or vanished.

    Parameters
    ----------
    df : a task frame (``fetch_records``, ``frame.from_store``).
    dest : folder or fsspec URL.
    store : a :class:`~veo_notebook.Store` or the path of one.
    workers : parallel downloads, 1 to :data:`MAX_WORKERS`.
    probe : read each file with PyAV for the ``media_*`` columns.
    origin : also save ``originUrls[0]`` (the uncropped original of a non-16:9 video) as
        ``<yyyy-mm-dd>/<task_id>.origin.mp4``, in the columns ``origin_path``,
        ``origin_bytes``, ``origin_sha256`` and ``origin_error``.
    timeout : seconds to wait for the media host (connect and each read).
    final_only : one file per family (:func:`veo_notebook.families`): its final
        deliverable only (4K > 1080p > extended > base), not the base clip beside the 4K
        file; the rows gain ``root_task_id`` and ``final_form``, naming the family and
        the form of the member each file came from (its ``task_id``).

    Raises
    ------
    InputError
        ``df`` is not a task frame, or ``dest`` cannot be used.
    MissingExtraError
        PyAV (``probe=True``), fsspec (a URL) or s3fs (``s3://``) is not installed: the
        ``archive`` and ``s3`` extras.

    >>> import veo_notebook as veo
    >>> veo.archive_videos(veo.schema.empty_frame(), "videos", progress=False).shape
    (0, 13)
    """
    missing = {"task_id", "status", "video_url"} - set(df.columns)
    if missing:
        raise InputError(
            f"archive_videos takes a task frame; missing: {', '.join(sorted(missing))}"
        )
    if not 1 <= workers <= MAX_WORKERS:
        raise InputError(f"workers must be from 1 to {MAX_WORKERS}, not {workers}")
    if origin and "origin_urls" not in df.columns:
        raise InputError("archive_videos(origin=True) needs the frame's origin_urls column")
    if probe:  # before any download: a missing extra is one line, not a batch of errors
        from ..extras import require

        require("av", "archiving videos (each file is read to check it)")
    finals = _family_finals(df) if final_only else None
    chosen = df if finals is None else df[df["task_id"].isin(finals.index).to_numpy(bool)]
    targets = _targets(chosen, origin)
    if not targets:
        return _with_family(_frame([], [], origin), finals)
    destination = Destination(dest, storage_options)
    with _opened(store) as st:
        prior: dict[tuple[str, str], dict[str, Any]] = {}
        table = None if st is None else ArchiveTable(st)  # (a Store's truth is its length)
        if table is not None:
            for kind in (ARCHIVE_VIDEO, ARCHIVE_ORIGIN) if origin else (ARCHIVE_VIDEO,):
                ids = [t.task_id for t in targets if t.kind == kind]
                prior |= {(r["task_id"], kind): r for r in table.rows(ids, kind=kind)}
        rows = _run(targets, destination, table, prior, workers, progress, probe, verify, timeout)
    videos = [rows[(t.task_id, t.kind)] for t in targets if t.kind == ARCHIVE_VIDEO]
    origins = [rows[(t.task_id, t.kind)] for t in targets if t.kind == ARCHIVE_ORIGIN]
    return _with_family(_frame(videos, origins, origin), finals)


def _family_finals(df: pd.DataFrame) -> pd.DataFrame:
    """The final member of each family that has one: index its task id, columns
    ``root_task_id`` and ``final_form``."""
    if "parent_task_id" not in df.columns:
        raise InputError("archive_videos(final_only=True) needs the frame's parent_task_id column")
    from ..analysis.family import families

    fam = families(df)
    fam = fam[fam["final_task_id"].notna().to_numpy(bool)]
    return fam.set_index("final_task_id")[["root_task_id", "final_form"]]


def _with_family(out: pd.DataFrame, finals: pd.DataFrame | None) -> pd.DataFrame:
    if finals is None:
        return out
    at = finals.reindex(out["task_id"])
    out.insert(1, "root_task_id", at["root_task_id"].to_numpy())
    out.insert(
        2, "final_form", pd.Categorical(at["final_form"], finals["final_form"].cat.categories)
    )
    out["root_task_id"] = out["root_task_id"].astype(pd.StringDtype("pyarrow"))
    return out


@contextmanager
def _opened(store: Store | str | os.PathLike[str] | None) -> Iterator[Store | None]:
    if store is None or isinstance(store, Store):
        yield store
        return
    with Store(store) as opened:
        yield opened


def _targets(df: pd.DataFrame, origin: bool) -> list[_Target]:
    done = df[(df["status"] == Status.SUCCESS.value).fillna(False).to_numpy(bool)]
    when = done["complete_time"] if "complete_time" in done else pd.Series(pd.NaT, done.index)
    if "create_time" in done:
        when = when.fillna(done["create_time"])
    days = when.dt.strftime("%Y-%m-%d") if len(when) else when
    origins = done["origin_urls"] if origin else pd.Series(None, done.index, dtype=object)
    out: dict[str, _Target] = {}
    extra: list[_Target] = []
    rows = zip(done["task_id"], done["video_url"], origins, days, strict=True)
    for task_id, url, urls, day in rows:
        if pd.isna(task_id) or task_id in out:
            continue
        folder = day if isinstance(day, str) else _UNDATED
        video = None if pd.isna(url) else str(url)
        out[task_id] = _Target(task_id, ARCHIVE_VIDEO, video, f"{folder}/{task_id}.mp4")
        if isinstance(urls, (list, tuple)) and urls:  # a list cell (NA when unread)
            name = f"{folder}/{task_id}.origin.mp4"
            extra.append(_Target(task_id, ARCHIVE_ORIGIN, str(urls[0]), name))
    return [*out.values(), *extra]


def _run(
    targets: list[_Target],
    dest: Destination,
    table: ArchiveTable | None,
    prior: dict[tuple[str, str], dict[str, Any]],
    workers: int,
    progress: bool,
    probe: bool,
    verify: bool,
    timeout: float,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Every target's row, keyed by (task_id, kind), each recorded in the store as it ends."""
    from tqdm.auto import tqdm

    from .._version import __version__

    session = media_session(
        workers, f"veo-notebook/{__version__} python-requests/{requests.__version__}"
    )
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    bar = tqdm(total=len(targets), desc="archive", unit="file", disable=not progress, leave=False)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="veo-archive") as pool:
            futures: dict[Future[dict[str, Any]], _Target] = {
                pool.submit(
                    _one, t, dest, session, prior.get((t.task_id, t.kind)), probe, verify, timeout
                ): t
                for t in targets
            }
            pending = set(futures)
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    done_rows = [f.result() for f in finished]
                    if table is not None:
                        table.put(r for r in done_rows if r.pop("_changed", True))
                    for r in done_rows:
                        r.pop("_changed", None)
                        rows[(r["task_id"], r["kind"])] = r
                    bar.update(len(finished))
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
    finally:
        bar.close()
        session.close()
    return rows


def _one(
    t: _Target,
    dest: Destination,
    session: requests.Session,
    before: dict[str, Any] | None,
    probe: bool,
    verify: bool,
    timeout: float,
) -> dict[str, Any]:
    """The archive row of one task: kept from ``before``, checked, or downloaded anew."""
    uri = dest.uri(t.name)
    row: dict[str, Any] = {"task_id": t.task_id, "kind": t.kind, "url": t.url, "path": None}
    if t.url is None:
        return {**row, "archived_at": time.time(), "error": NO_URL}
    if before and not before.get("error") and before.get("path") == uri and before.get("sha256"):
        if verify:
            found = dest.sha256(t.name)
            if found == (before["bytes"], before["sha256"]):
                return {**before, "_changed": False}
            log.warning(
                "%s: %s is %s; downloading it again",
                t.task_id,
                uri,
                "missing" if found is None else "changed",
            )
        elif dest.exists(t.name):
            return {**before, "_changed": False}
    elif (before is None or before.get("path") != uri) and dest.exists(t.name):
        # published by a run without this store: a final name only holds a complete file
        found = dest.sha256(t.name)
        if found is not None:
            local = dest.local_copy(t.name)
            facts = probe_file(local) if probe and local is not None else None
            unreadable = probe and local is not None and facts is None
            return {
                **row,
                "path": uri,
                "bytes": found[0],
                "sha256": found[1],
                "archived_at": time.time(),
                "error": UNREADABLE if unreadable else None,
                **(facts or {}),
            }
    part = dest.part(t.name)
    try:
        got = download(session, t.url, part, timeout=timeout, retry=DEFAULT_RETRY)
    except OSError as exc:  # the local part file (a full disk, a folder not writable)
        raise ArchiveError(f"cannot write {str(part)!r}: {exc}") from exc
    except Gone as exc:
        return {**row, "archived_at": time.time(), "error": _GONE.format(status=exc)}
    except (Refused, GaveUp) as exc:
        return {**row, "archived_at": time.time(), "error": str(exc)}
    facts = probe_file(part) if probe else None
    dest.publish(part, t.name)
    error = UNREADABLE if probe and facts is None else None
    return {
        **row,
        "path": uri,
        "bytes": got.bytes,
        "sha256": got.sha256,
        "archived_at": time.time(),
        "error": error,
        **(facts or {}),
    }


def _frame(rows: list[dict[str, Any]], origins: list[dict[str, Any]], origin: bool) -> pd.DataFrame:
    """The typed result: one row per video, and the origin file's columns if asked."""
    cols: dict[str, Any] = {}
    for name, dtype in ARCHIVE_DTYPES.items():
        key = next((k for k, v in FRAME_NAMES.items() if v == name), name)
        values = [r.get(key) for r in rows]
        if name == "archived_at":
            cols[name] = pd.to_datetime(pd.Series(values, dtype="float64"), unit="s", utc=True)
        elif name == "media_has_audio":
            cols[name] = pd.Series([None if v is None else bool(v) for v in values], dtype=dtype)
        else:
            cols[name] = pd.Series(values, dtype=dtype)
    if origin:
        found = {r["task_id"]: r for r in origins}
        for name, dtype in ORIGIN_DTYPES.items():
            key = name.removeprefix("origin_")
            values = [found.get(r["task_id"], {}).get(key) for r in rows]
            cols[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(cols)
