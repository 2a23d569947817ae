"""One media file to a local ``.part`` file: resumed with Range, retried, hashed (private).

This is the one place HTTP to media hosts happens. The session carries no key: a media
link needs none, and an ``Authorization`` header is never sent to a media host (the
session's auth hook removes one, whatever else put it there, and keeps ``~/.netrc`` out).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ..client import RetryPolicy

__all__ = ["DEFAULT_RETRY", "Downloaded", "GaveUp", "Gone", "Refused", "download", "media_session"]

_CHUNK = 256 * 1024
_HASH_CHUNK = 1024 * 1024
#: HTTP statuses that mean the file was deleted (kie.ai keeps files 14 days).
GONE_STATUSES = (404, 410)
#: Retries for resets, short bodies, timeouts and 429/5xx answers (backoff with full jitter).
DEFAULT_RETRY = RetryPolicy(max_retries=5, base=0.25, cap=8.0)
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_TRANSIENT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,  # read from the raw stream: resets, short bodies, timeouts
)


class Gone(Exception):
    """The media host answered 404/410: the file is not there (any more)."""


class Refused(Exception):
    """The media host refused the request for good (another 4xx)."""


class GaveUp(Exception):
    """Transient trouble outlived every retry."""


class _Retry(Exception):
    """This attempt failed in a way worth another try (after ``retry_after`` at least)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Downloaded:
    """A complete file: its size and SHA-256, and how many HTTP attempts it took."""

    bytes: int
    sha256: str
    attempts: int


class _NoAuthorization(requests.auth.AuthBase):
    """Strips any ``Authorization`` header (and, being set, keeps ``~/.netrc`` unused)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.pop("Authorization", None)
        return r


def media_session(workers: int, user_agent: str) -> requests.Session:
    """A plain session for media hosts: no key, a pool as large as the worker count."""
    session = requests.Session()
    session.auth = _NoAuthorization()
    session.headers["User-Agent"] = user_agent
    # the bytes of the file itself: its length is what Content-Length and Range count
    session.headers["Accept-Encoding"] = "identity"
    adapter = HTTPAdapter(pool_connections=workers, pool_maxsize=workers, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a local file (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def download(
    session: requests.Session,
    url: str,
    part: Path,
    *,
    timeout: float,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> Downloaded:
    """Fetch ``url`` into ``part`` (resuming what it holds) until it is complete.

    Raises :class:`Gone` (404/410), :class:`Refused` (another 4xx) or :class:`GaveUp`.
    The file at ``part`` is complete, per the Content-Length or Content-Range, on return.
    """
    attempt = 0
    while True:
        try:
            size, digest = _attempt(session, url, part, timeout)
            return Downloaded(size, digest, attempt + 1)
        except _TRANSIENT as exc:
            reason, retry_after = _reason(exc), None
        except _Retry as exc:
            reason, retry_after = str(exc), exc.retry_after
        if attempt >= retry.max_retries:
            raise GaveUp(f"gave up after {attempt + 1} attempts: {reason}")
        time.sleep(retry.delay(attempt, retry_after))
        attempt += 1


def _reason(exc: Exception) -> str:
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return "timed out"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError)):
        return "connection broken mid-file"
    return "connection failed"


def _attempt(session: requests.Session, url: str, part: Path, timeout: float) -> tuple[int, str]:
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with session.get(url, headers=headers, stream=True, timeout=timeout) as r:
        status = r.status_code
        if status == 416 and have:
            total_text = r.headers.get("Content-Range", "").rpartition("/")[2]
            if total_text == str(have):  # the part was whole already (a run stopped before
                return have, sha256_of(part)  # its rename): nothing left to fetch
            part.unlink()  # the part is not a prefix of this file: start again
            raise _Retry("range not satisfiable", 0.0)
        if status in GONE_STATUSES:
            raise Gone(f"HTTP {status}")
        if status == 429 or status >= 500:
            raise _Retry(f"HTTP {status}", _retry_after(r.headers.get("Retry-After")))
        if status not in (200, 206):
            raise Refused(f"HTTP {status}")
        total: int | None
        if status == 206:
            match = _CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != have:
                part.unlink(missing_ok=True)
                raise _Retry("a range answer that does not continue the file", 0.0)
            total = None if match.group(3) == "*" else int(match.group(3))
            h = hashlib.sha256()
            with open(part, "rb") as f:
                while chunk := f.read(_HASH_CHUNK):
                    h.update(chunk)
            mode = "ab"
        else:  # the whole file (a host may ignore Range)
            length = r.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            have, h, mode = 0, hashlib.sha256(), "wb"
        part.parent.mkdir(parents=True, exist_ok=True)
        got = have
        with open(part, mode) as f:
            # read1: whatever has arrived, so a broken connection loses nothing received
            while chunk := r.raw.read1(_CHUNK):
                f.write(chunk)
                h.update(chunk)
                got += len(chunk)
            f.flush()
            os.fsync(f.fileno())
    if total is not None and got != total:
        if got > total:  # more than promised: nothing to resume from
            part.unlink()
        raise _Retry(f"short body ({got} of {total} bytes)", 0.0)
    return got, h.hexdigest()


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
