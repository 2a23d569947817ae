"""The simulator's media host: real, small MP4 files for the result URLs of its records.

kie.ai's records link to files on its media host; the simulator links to itself instead:
every ``https://tempfile.aiquickdraw.com/...`` in an answer becomes
``http://127.0.0.1:PORT/media/...``, and ``GET /media/...`` answers with an MP4 made with
PyAV (H.264 video, AAC audio): a few frames at the task's real dimensions (resolution x
aspect ratio), as long as the request asked (``duration`` in paramJson, else 8 s; an
extend's stitched video is its parent plus 7 s), with an audio track as ``hasAudioList``
says. Files are made once per (width, height, audio, duration) and cached, in memory and
in a folder under the system temp dir shared by every process.

The media host needs no key (as kie.ai's download links do not); it counts every request
that carries an ``Authorization`` header anyway, so a test can assert none ever does.

Deliberate defects, chosen per task id (deterministic, see :func:`defects`):

====================  ==========  =========================================================
defect                share       what is served
====================  ==========  =========================================================
``720p``              5 % of      a 720p file under a record that says 1080p (the fallback)
                      1080p
``no_audio``          3 %         no audio track although ``hasAudioList`` is ``[true]``
``short``             3 %         half the requested duration
``aspect``            2 %         width and height swapped (9:16 for a 16:9 request)
``corrupt``           1 %         bytes that do not decode (right length, no faults)
``base_clip``         10 % of     an extend's ``fullResultUrls`` file is the parent's clip
                      extends     (the stitched video is missing)
====================  ==========  =========================================================

A file is gone (HTTP 404) once its task completed more than 14 sim days ago.

Without PyAV (the ``archive`` extra) the media host is off: the API is served as usual,
``GET /media/...`` answers 503, and the simulator says so once (a log warning).

Faults, scripted per task id (:meth:`MediaHost.script`) or drawn from rates
(:meth:`MediaHost.set_rates`), one per request:

=========  ==================================================================
http404    404 Not Found
http503    503 Service Unavailable
reset      headers and half the body, then TCP RST
truncated  headers promising the whole file, half the body, then a clean close
slow       the answer held ``slow_seconds`` before its headers
=========  ==================================================================

``Range: bytes=a-`` / ``bytes=a-b`` is honoured (206 + ``Content-Range``; 416 when
unsatisfiable). Counters: ``GET /_sim/media`` (loopback only), or :meth:`MediaHost.stats`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple

import orjson

from ._constants import EXPIRY_S, KIE_MEDIA_HOST, MEDIA_PREFIX
from ._http import reset_connection
from .corpus import Task
from .faults import FaultPlan, NamedFault

#: Finds a task by id (the simulator's ``task``): all the media host needs of the corpus.
Lookup = Callable[[str], "Task | None"]

__all__ = [
    "DEFECTS",
    "KIE_MEDIA_HOST",
    "PREFIX",
    "FileSpec",
    "MediaFault",
    "MediaHost",
    "defects",
    "file_spec",
    "mp4_bytes",
]

log = logging.getLogger("veo_notebook.simulator")

PREFIX = MEDIA_PREFIX
#: Veo's clip length when the request names none, and what an extend adds to its parent.
DEFAULT_DURATION_S = 8
EXTEND_S = 7
FPS = 1  # frames per second of the files served (a few frames: fast to make and to send)
_AUDIO_RATE = 8000
_SHORT_SIDE = {"720p": 720, "1080p": 1080, "4k": 2160}
_CACHE_DIR = os.path.join(tempfile.gettempdir(), "veo-notebook-sim-media-v1")
_PATH = re.compile(r"^/media/(v|o|full)/([0-9a-f]{24})_\d+_(\d+|origin)\.mp4$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024
_RESET_GRACE_S = 0.1  # before a reset, time for the client to read what was sent
_FEATURE = "the simulator's media host (MP4 files)"
_said_off = threading.Event()  # the media-off warning is said once per process

# (defect, lower bound, upper bound) of the task's draw in [0, 1)
_SHARES = (
    ("720p", 0.00, 0.05),
    ("no_audio", 0.05, 0.08),
    ("short", 0.08, 0.11),
    ("aspect", 0.11, 0.13),
    ("corrupt", 0.13, 0.14),
)
_BASE_CLIP_SHARE = 0.10
#: Every defect name.
DEFECTS = (*(d for d, _, _ in _SHARES), "base_clip")


class MediaFault(NamedFault):
    """A fault of the media host (the value is its name in scripts, rates and stats)."""

    OK = "ok"
    HTTP404 = "http404"
    HTTP503 = "http503"
    RESET = "reset"
    TRUNCATED = "truncated"
    SLOW = "slow"


class FileSpec(NamedTuple):
    """What one media file is: its frame size, audio, duration and whether it decodes."""

    width: int
    height: int
    audio: bool
    duration_s: int
    corrupt: bool = False


def _draw(task_id: str, salt: str = "") -> float:
    digest = hashlib.blake2b(f"media:{salt}{task_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def defects(task: Task) -> set[str]:
    """The deliberate defects of ``task``'s files (names in :data:`DEFECTS`).

    >>> from veo_notebook.simulator.corpus import make_block
    >>> all(defects(t) <= set(DEFECTS) for t in make_block(0, 0)[:50])
    True
    """
    resp = task.response or {}
    u = _draw(task.task_id)
    out = {d for d, lo, hi in _SHARES if lo <= u < hi}
    if "720p" in out and resp.get("resolution") != "1080p":
        out.discard("720p")
    if "no_audio" in out and not (resp.get("hasAudioList") or [False])[0]:
        out.discard("no_audio")
    if task.task_type == "extend" and _draw(task.task_id, "extend") < _BASE_CLIP_SHARE:
        out.add("base_clip")
    return out


def _requested_duration(task: Task) -> int:
    try:
        duration = orjson.loads(task.param_json).get("duration")
    except (orjson.JSONDecodeError, AttributeError):
        duration = None
    ok = isinstance(duration, int) and not isinstance(duration, bool) and duration > 0
    return duration if ok else DEFAULT_DURATION_S


def _lineage(lookup: Lookup, task: Task) -> list[Task]:
    """``task`` and its ancestors, nearest first (an upgrade or extend has a parent)."""
    chain = [task]
    while chain[-1].parent_id and len(chain) < 8:
        parent = lookup(chain[-1].parent_id)
        if parent is None:
            break
        chain.append(parent)
    return chain


def _duration(lookup: Lookup, task: Task) -> int:
    """The length of ``task``'s video as delivered without defects (seconds)."""
    chain = _lineage(lookup, task)
    total = _requested_duration(chain[-1])
    for t in reversed(chain[:-1]):
        if t.task_type == "extend":
            total += EXTEND_S
    return total


def file_spec(lookup: Lookup, task: Task, kind: str) -> FileSpec:
    """The file served for ``task`` at a ``kind`` URL ("v", "o" or "full").

    ``lookup`` finds a task by id (``sim.task``): an extend's or upgrade's file depends on
    its ancestors (their aspect ratio and lengths).
    """
    resp = task.response or {}
    bad = defects(task)
    chain = _lineage(lookup, task)
    aspect = next((t.aspect_ratio for t in chain if t.aspect_ratio), "16:9")
    resolution = str(resp.get("resolution") or "720p")
    short = _SHORT_SIDE.get(resolution.lower(), 720)
    if "720p" in bad:
        short = 720
    long = short * 16 // 9
    width, height = (short, long) if aspect == "9:16" else (long, short)
    if "aspect" in bad:
        width, height = height, width
    duration = _duration(lookup, task)
    if task.task_type == "extend" and (kind == "v" or "base_clip" in bad):
        # the extension alone, or (defect) the parent's clip where the stitched one belongs
        duration = (
            EXTEND_S if kind == "v" else _duration(lookup, chain[1]) if chain[1:] else duration
        )
    if "short" in bad:
        duration = max(1, duration // 2)
    audio = bool((resp.get("hasAudioList") or [False])[0]) and "no_audio" not in bad
    return FileSpec(width, height, audio, duration, "corrupt" in bad)


# --- making the files ------------------------------------------------------------------
_made: dict[FileSpec, bytes] = {}
_made_lock = threading.Lock()
_key_locks: dict[FileSpec, threading.Lock] = defaultdict(threading.Lock)


def mp4_bytes(spec: FileSpec) -> bytes:
    """The MP4 file of ``spec`` (made once with PyAV, then cached in memory and on disk).

    >>> data = mp4_bytes(FileSpec(320, 180, True, 2))
    >>> data[4:8]
    b'ftyp'
    """
    with _made_lock:
        lock = _key_locks[spec]
    with lock:
        found = _made.get(spec)
        if found is not None:
            return found
        name = f"{spec.width}x{spec.height}_{int(spec.audio)}_{spec.duration_s}.mp4"
        path = os.path.join(_CACHE_DIR, name)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = _encode(spec)
            with contextlib.suppress(OSError):
                os.makedirs(_CACHE_DIR, exist_ok=True)
                tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
        if spec.corrupt:
            data = _corrupt(data)
        _made[spec] = data
        return data


def _corrupt(data: bytes) -> bytes:
    """The same length, but nothing a demuxer can read (the boxes overwritten)."""
    return bytes(data[:8]) + bytes((b * 7 + 13) % 256 for b in data[8:])


def _encode(spec: FileSpec) -> bytes:
    import numpy as np

    from ..extras import require

    av = require("av", _FEATURE)

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "45"})
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        audio = out.add_stream("aac", rate=_AUDIO_RATE, layout="mono") if spec.audio else None
        image = np.zeros((spec.height, spec.width, 3), np.uint8)
        for i in range(spec.duration_s * FPS):
            image[:] = (40 + 25 * i % 200, 90, 160)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            total, done = spec.duration_s * _AUDIO_RATE, 0
            while done < total:
                n = min(1024, total - done)
                samples = np.zeros((1, n), np.float32)
                af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                af.sample_rate, af.pts = _AUDIO_RATE, done
                done += n
                out.mux(audio.encode(af))
            out.mux(audio.encode(None))
    return buf.getvalue()


# --- serving ---------------------------------------------------------------------------
def _off_reason() -> str | None:
    """Why the media host is off (PyAV missing), said once per process; None when on."""
    from ..errors import MissingExtraError
    from ..extras import require

    try:
        require("av", _FEATURE)
    except MissingExtraError as exc:
        if not _said_off.is_set():
            _said_off.set()
            log.warning("media off (GET /media/... answers 503): %s", exc)
        return str(exc)
    return None


class MediaHost:
    """The media host of one simulator: files, faults, counters.

    It takes only what it uses: ``lookup`` (a task by id), ``now`` (sim time),
    ``base_url`` (where the simulator listens, asked when links are rewritten), ``hold``
    (wait real seconds, cut short when the simulator stops) and ``slow_seconds``.
    """

    def __init__(
        self,
        lookup: Lookup,
        *,
        now: Callable[[], float],
        base_url: Callable[[], str],
        hold: Callable[[float], None],
        slow_seconds: float = 30.0,
        seed: int = 0,
    ) -> None:
        self._lookup, self._now, self._base_url, self._hold = lookup, now, base_url, hold
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self.faults = FaultPlan(seed=f"media:{seed}", kind=MediaFault)
        self.off = _off_reason()
        self.reset_stats()

    # control
    def script(self, task_id: str, faults: Iterable[str | MediaFault]) -> None:
        """Queue faults (or "ok") for ``task_id``'s files: one per request, in order."""
        self.faults.script(task_id, faults)

    def set_rates(self, rates: Mapping[str, float]) -> None:
        """Replace the per-request fault probabilities, e.g. ``{"reset": 0.05}``."""
        self.faults.set_rates(rates)

    def stats(self) -> dict[str, Any]:
        """Counters: ``requests``, ``by_outcome``, ``by_task`` (``{id: {"requests", "bytes"}}``)
        and ``with_authorization`` (requests that carried that header: should be 0)."""
        with self._lock:
            return {
                "requests": self._requests,
                "by_outcome": dict(self._outcomes),
                "by_task": {k: dict(v) for k, v in self._by_task.items()},
                "with_authorization": self._with_auth,
            }

    def reset_stats(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._requests, self._with_auth = 0, 0
            self._outcomes: dict[str, int] = defaultdict(int)
            self._by_task: dict[str, dict[str, int]] = defaultdict(
                lambda: {"requests": 0, "bytes": 0}
            )

    def _count(self, outcome: str, task_id: str | None, sent: int = 0) -> None:
        with self._lock:
            self._outcomes[outcome] += 1
            if task_id is not None:
                self._by_task[task_id]["bytes"] += sent

    # links
    def rewrite(self, body: bytes) -> bytes:
        """``body`` with kie.ai's media host replaced by this simulator's ``/media``."""
        return body.replace(KIE_MEDIA_HOST.encode(), f"{self._base_url()}/media".encode())

    # answering
    def serve(self, h: BaseHTTPRequestHandler, method: str, path: str) -> None:
        """Answer one ``GET /media/...`` request."""
        match = _PATH.match(path)
        task = self._lookup("veo_" + match.group(2)) if match else None
        task_id = task.task_id if task is not None else None
        with self._lock:
            self._requests += 1
            self._with_auth += "Authorization" in h.headers
            if task_id is not None:
                self._by_task[task_id]["requests"] += 1
        if match is None or task is None or task.response is None or method != "GET":
            return self._status(h, 404, "not_found", task_id)
        if self.off is not None:
            return self._status(h, 503, "media_off", task_id)
        if self._now() - task.complete_ts > EXPIRY_S:
            return self._status(h, 404, "expired", task_id)
        fault = self.faults.next(task.task_id)
        if fault is MediaFault.HTTP404:
            return self._status(h, 404, fault.value, task_id)
        if fault is MediaFault.HTTP503:
            return self._status(h, 503, fault.value, task_id)
        if fault is MediaFault.SLOW:
            self._hold(self.slow_seconds)
        data = mp4_bytes(file_spec(self._lookup, task, match.group(1)))
        start, end, status = 0, len(data) - 1, 200
        rng = h.headers.get("Range")
        if rng:
            parsed = _RANGE.match(rng.strip())
            first, last = parsed.groups() if parsed else ("", "")
            if parsed is None or (not first and not last):
                return self._status(h, 416, "bad_range", task_id, total=len(data))
            if first:
                start, end = int(first), min(int(last), end) if last else end
            else:  # the last N bytes
                start = max(0, len(data) - int(last))
            if start > end:
                return self._status(h, 416, "bad_range", task_id, total=len(data))
            status = 206
        body = data[start : end + 1]
        h.send_response(status)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        if fault in (MediaFault.RESET, MediaFault.TRUNCATED):
            h.close_connection = True
        h.end_headers()
        if fault in (MediaFault.RESET, MediaFault.TRUNCATED):
            half = body[: len(body) // 2]
            h.wfile.write(half)
            self._count(fault.value, task_id, len(half))
            if fault is MediaFault.RESET:
                self._hold(_RESET_GRACE_S)
                reset_connection(h)
            return None
        for i in range(0, len(body), _CHUNK):
            h.wfile.write(body[i : i + _CHUNK])
        self._count("ok" if fault is MediaFault.OK else fault.value, task_id, len(body))
        return None

    def _status(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        outcome: str,
        task_id: str | None,
        total: int | None = None,
    ) -> None:
        self._count(outcome, task_id)
        body = f"{status} {h.responses.get(status, ('',))[0]}\n".encode()
        h.send_response(status)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Content-Length", str(len(body)))
        if total is not None:
            h.send_header("Content-Range", f"bytes */{total}")
        h.end_headers()
        h.wfile.write(body)
