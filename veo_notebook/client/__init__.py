"""The client of ``GET /api/v1/veo/record-info``: the only place veo-notebook speaks HTTP.

One query gives an :class:`Outcome`. Two codes are kept apart: the envelope ``code`` is
the *query's* outcome (retried when transient, else the row's ``fetch_error``);
``data.successFlag`` / ``data.errorCode`` is the *task's* outcome (data, never retried:
a task that failed with errorCode 500 was read perfectly well).

=================================================  ==========================================
answer                                             what the client does
=================================================  ==========================================
HTTP 200, code 200                                 the record (terminal if successFlag 1/2/3)
HTTP 401 or code 401                               :class:`AuthError` (the batch stops)
HTTP 429 (``Retry-After``), code 429               tell the limiter (it backs off when they
                                                   cluster), wait ``Retry-After``, retry
HTTP 5xx, code 455 / 500 / 408                     retry (exponential backoff, full jitter)
reset, timeout, truncated or non-JSON body         retry
code 422 / 404 / 400 / any other                   ``fetch_error`` "<code> <msg>", no retry
HTTP 403/404/405 without an envelope               :class:`EndpointError` (every query would fail)
other HTTP 4xx without an envelope (414 ...)       ``fetch_error`` "<status> <reason>"
=================================================  ==========================================

Until the base URL has answered once like kie.ai (a record, or a per-task 422), answers
are on probation (:class:`_FirstContact`): a connection that cannot be made at all
(refused, DNS, TLS, connect timeout) gives up after two retries, and a run of identical
batch-wide errors (every answer "404 Not Found") stops the batch: both are
:class:`EndpointError`, naming the URL and the cause. Once the API has answered, the
full retry patience applies (an API that was answering and then stopped is transient).

Retries that run out raise :class:`TransientError` (``fetch_records`` makes it the row's
``fetch_error``; the next run asks again). There is one retry loop
(:meth:`Client.get_record`) and one policy (:class:`~veo_notebook.client._pacing.RetryPolicy`):
urllib3's ``Retry`` is left at zero because it would sleep through 429s inside the
adapter, where the rate limiter could not learn from them. ``requests`` errors are
translated in one place (:meth:`Client._send`); no message, log line or ``repr``
carries the key.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from ..config import ENV_BASE_URL, ENV_KEY
from ..config import base_url as _env_base_url
from ..errors import ApiError, AuthError, ConfigError, EndpointError, TransientError
from ..net import is_loopback
from ..schema import TERMINAL_FLAGS, TRANSIENT_CODES, envelope_facts, is_pending, status_of
from ._pacing import (
    DEFAULT_MAX_IN_FLIGHT,
    START_RATE,
    AdaptiveLimiter,
    Cancelled,
    RetryPolicy,
    check_max_in_flight,
)

__all__ = ["ENV_KEY", "RECORD_PATH", "Client", "Outcome", "base_url_problem"]

log = logging.getLogger(__name__)

RECORD_PATH = "/api/v1/veo/record-info"
_TRANSIENT_CODES = TRANSIENT_CODES
# HTTP statuses without an envelope that every query would meet (a CDN block, a wrong
# base_url): they stop the batch; other 4xx without an envelope are the row's fetch_error
_BATCH_HTTP = frozenset({403, 404, 405, 407})
#: Envelope codes that answer for one task: they prove the base URL is kie.ai's API.
_PER_TASK_CODES = frozenset({200, 422})
#: Retries of a connection that cannot be made before the base URL has ever answered.
_FIRST_CONTACT_RETRIES = 2
#: Identical batch-wide errors, before any record, that mean the base URL is wrong.
_WRONG_ENDPOINT_RUN = 20


@dataclass(frozen=True)
class Outcome:
    """What one query of one task id gave.

    ``raw`` is the envelope JSON text exactly as received (None if none was), ``envelope``
    its parsed form, ``fetch_error`` None when the record was read, else a short reason
    starting with the code ("422 record is null."). ``terminal``: successFlag 1, 2 or 3.
    """

    task_id: str
    raw: str | None = field(repr=False)
    envelope: dict[str, Any] | None = field(repr=False, compare=False)
    fetch_error: str | None
    terminal: bool
    attempts: int = 1
    fetched_at: float = field(default_factory=time.time)

    @property
    def success_flag(self) -> int | None:
        """``data.successFlag`` when the record was read."""
        return self.facts[0]

    @property
    def facts(self) -> tuple[int | None, str | None]:
        """(successFlag, createTime) of the envelope, for the store's index (read once, here)."""
        if self.fetch_error is not None:
            return None, None
        return envelope_facts(self.envelope)

    @property
    def pending(self) -> bool:
        """Worth asking again, by the one rule (:func:`veo_notebook.schema.is_pending`)."""
        return is_pending(status_of(self.success_flag), self.fetch_error)


class _Retry(Exception):
    """A transient answer: retry after backoff (``retry_after`` honoured)."""

    def __init__(
        self,
        reason: str,
        *,
        code: int | None,
        http_status: int | None,
        retry_after: float | None = None,
        throttled: bool = False,
        unreachable: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after
        self.throttled = throttled
        self.unreachable = unreachable  # why no connection could be made at all


def _unreachable(exc: BaseException) -> str | None:
    """Why no connection could be made (refused, DNS, TLS, connect timeout); None if one was."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connecting timed out"
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, ConnectionRefusedError):
            return "connection refused (nothing is listening there)"
        if isinstance(link, socket.gaierror):
            return "the host name does not resolve (DNS)"
        if isinstance(link, ssl.SSLError):
            detail = getattr(link, "verify_message", None) or link.reason or type(link).__name__
            return f"the TLS handshake failed ({detail})"
        reason = getattr(link, "reason", None)  # urllib3's MaxRetryError
        nxt = reason if isinstance(reason, BaseException) else None
        link = nxt or link.__cause__ or link.__context__
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed"
    return None


class _FirstContact:
    """Until the base URL has answered like kie.ai once, its answers are on probation.

    A record or a per-task 422 proves it; until then a run of identical batch-wide
    errors (every answer "404 Not Found") means the base URL is wrong. Shared by threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connected = False  # some HTTP answer ever arrived
        self.proven = False
        self._reason: str | None = None
        self._run = 0

    def odd(self, reason: str) -> int:
        """Count an answer that is not per-task; return the run of identical ones."""
        with self._lock:
            if self.proven:
                return 0
            self._run = self._run + 1 if reason == self._reason else 1
            self._reason = reason
            return self._run


class _Secret:
    """The API key: its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        v = self._value
        return f"…{v[-2:]}" if len(v) >= 12 else "***"

    def __repr__(self) -> str:
        return f"<secret {self.masked()}>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("the API key is not picklable")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import datetime as dt

        when = parsedate_to_datetime(value)
        return max(0.0, (when - dt.datetime.now(when.tzinfo)).total_seconds())
    except (TypeError, ValueError):
        return None


def _short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def base_url_problem(base_url: str) -> str | None:
    """Why ``base_url`` cannot be the API's address, in words that name no parameter (the
    client prefixes ``base_url``, the CLI ``--base-url``); None when it can.

    >>> base_url_problem("127.0.0.1:8765")
    "must be an http(s) URL such as https://api.kie.ai, got '127.0.0.1:8765'"
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http(s) URL such as https://api.kie.ai, got {base_url!r}"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return (
            f"refuses to send the API key over plain http to {parts.hostname!r}; "
            "use https (plain http is only allowed on loopback)"
        )
    return None


class Client:
    """A client of kie.ai's Veo record-info endpoint.

    Parameters
    ----------
    api_key : str, optional
        The key; defaults to the ``KIE_API_KEY`` environment variable.
    base_url : str
        ``https://api.kie.ai``, or a simulator on loopback (plain http is only allowed there);
        default: ``$KIE_BASE_URL`` if set, else ``https://api.kie.ai``.
    timeout : float
        Seconds per request (connect and read).
    session : requests.Session, optional
        A session to use (its connection pool is shared by all workers).
    max_rate : float, optional
        A fixed cap in requests/s; the limiter still adapts below it.
    max_in_flight : int
        A fixed cap on concurrent requests (the limiter adapts below it; the connection
        pool holds as many): default 64, enough for a 300 ms API to reach 200 requests/s.
    max_workers : int, optional
        The former name of ``max_in_flight`` (the same cap when given).
    max_retries : int
        Retries of a transient failure before :class:`TransientError`.
    user_agent : str, optional
        Default ``veo-notebook/<version> python-requests/<version>``.
    backoff, backoff_cap : float
        Exponential backoff with full jitter: retry ``n`` waits up to
        ``min(backoff_cap, backoff * 2**n)`` seconds (and at least any ``Retry-After``).

    Raises
    ------
    ConfigError
        No key, a bad base URL, or the key would go over plain http to a remote host.

    >>> from veo_notebook import simulator
    >>> with simulator.serve() as url:
    ...     Client(simulator.DEFAULT_API_KEY, base_url=url).get_record("nope").fetch_error
    '422 record is null.'
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        max_rate: float | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_workers: int | None = None,
        max_retries: int = 6,
        user_agent: str | None = None,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(ENV_KEY)
        if not key or not key.strip():
            raise ConfigError(
                f"no API key: pass api_key= or set the {ENV_KEY} environment variable"
            )
        base_url = _env_base_url() if base_url is None else base_url
        problem = base_url_problem(base_url)
        if problem is not None:
            raise ConfigError(f"base_url {problem}")
        parts = urlsplit(base_url)
        if max_workers is not None:
            max_in_flight = max_workers
        check_max_in_flight(max_in_flight)
        self._key = _Secret(key.strip())
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.retry = RetryPolicy(max_retries=max_retries, base=backoff, cap=backoff_cap)
        self.limiter = AdaptiveLimiter(
            min(START_RATE, max_rate or START_RATE), max_rate=max_rate, max_in_flight=max_in_flight
        )
        if user_agent is None:
            from .._version import __version__

            user_agent = f"veo-notebook/{__version__} python-requests/{requests.__version__}"
        self.user_agent = user_agent
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            # one pooled connection per request in flight: none is opened and dropped
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max_in_flight)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        if parts.scheme == "http":  # loopback: never through an HTTP_PROXY (it would read the key)
            session.trust_env = False
        self.session = session
        self._url = self.base_url + RECORD_PATH
        self._first = _FirstContact()

    # ------------------------------------------------------------------ public
    def get_record(self, task_id: str, *, cancel: threading.Event | None = None) -> Outcome:
        """Query one task id (retrying what is transient) and return its :class:`Outcome`.

        Raises
        ------
        AuthError
            The key was refused (401).
        TransientError
            A transient failure outlived ``max_retries`` retries.
        ApiError
            The endpoint answered with something that is not an envelope (a proxy, a CDN).
        """
        attempt = 0
        while True:
            sent_at = self.limiter.acquire(cancel)
            try:
                outcome = self._once(task_id, attempt + 1)
            except _Retry as r:
                if r.throttled:
                    self.limiter.on_throttle(sent_at, r.retry_after)
                else:
                    self.limiter.on_error(sent_at)
                if (
                    r.unreachable
                    and not self._first.connected
                    and attempt >= min(_FIRST_CONTACT_RETRIES, self.retry.max_retries)
                ):
                    raise EndpointError(
                        f"cannot reach {self.base_url}: {r.unreachable}; check the base URL "
                        f"(--base-url, {ENV_BASE_URL}) and the network",
                        task_id=task_id,
                    ) from r.__cause__
                if attempt >= self.retry.max_retries:
                    raise TransientError(
                        f"{r.reason} (gave up after {attempt + 1} attempts)",
                        code=r.code,
                        http_status=r.http_status,
                        task_id=task_id,
                    ) from r.__cause__
                # a 429 is paced by the limiter: wait what the server asked, no backoff growth
                delay = self.retry.delay(0 if r.throttled else attempt, r.retry_after)
                log.debug("task %r: %s; retry %d in %.2fs", task_id, r.reason, attempt + 1, delay)
                attempt += 1
                if cancel is not None:
                    if cancel.wait(delay):
                        raise Cancelled from None
                elif delay > 0:
                    time.sleep(delay)
                continue
            except BaseException:
                self.limiter.release()
                raise
            self.limiter.on_success(sent_at)
            return outcome

    @property
    def proven(self) -> bool:
        """True once the base URL has answered like kie.ai (a record, or a per-task 422)."""
        return self._first.proven

    @property
    def max_workers(self) -> int:
        """The former name of :attr:`max_in_flight`."""
        return self.max_in_flight

    def close(self) -> None:
        """Close the session if this client made it."""
        if self._own_session:
            self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, api_key='{self._key.masked()}')"

    # ------------------------------------------------------------------ one query
    def _send(self, task_id: str) -> requests.Response:
        """The one HTTP call, and the one place ``requests`` errors are translated."""
        headers = {
            "Authorization": f"Bearer {self._key.reveal()}",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        try:
            resp = self.session.get(
                self._url, params={"taskId": task_id}, headers=headers, timeout=self.timeout
            )
            resp.content  # noqa: B018 - read the whole body inside the try
            return resp
        except requests.Timeout as exc:
            raise _Retry(
                f"timeout after {self.timeout:g}s",
                code=None,
                http_status=None,
                unreachable=_unreachable(exc),
            ) from exc
        except (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            raise _Retry(
                f"connection error ({type(exc).__name__})",
                code=None,
                http_status=None,
                unreachable=_unreachable(exc),
            ) from exc
        except requests.RequestException as exc:
            raise ApiError(
                f"request failed ({type(exc).__name__}): {self._scrub(str(exc))}", task_id=task_id
            ) from exc

    def _scrub(self, text: str) -> str:
        return text.replace(self._key.reveal(), "***")

    def _row_error(self, reason: str, task_id: str, status: int) -> None:
        """A batch-wide error before any record: past a run of them, the base URL is wrong."""
        if self._first.odd(reason) >= _WRONG_ENDPOINT_RUN:
            raise EndpointError(
                f"the first {_WRONG_ENDPOINT_RUN} answers from {self.base_url} were all "
                f"{reason!r} and none was a record: this base URL does not look like the kie.ai "
                "API (expected https://api.kie.ai, without /api/v1)",
                code=status,
                http_status=status,
                task_id=task_id,
            )

    def _once(self, task_id: str, attempts: int) -> Outcome:
        resp = self._send(task_id)
        self._first.connected = True
        status = resp.status_code
        body = resp.content
        if status == 401:
            raise AuthError(
                "401 Unauthorized: the API key was refused",
                code=401,
                http_status=401,
                task_id=task_id,
            )
        if status == 429:
            raise _Retry(
                "429 Too Many Requests",
                code=429,
                http_status=429,
                retry_after=_retry_after(resp.headers.get("Retry-After")),
                throttled=True,
            )
        if status >= 500:
            raise _Retry(
                f"{status} {resp.reason or 'server error'}", code=status, http_status=status
            )
        try:
            env = orjson.loads(body)
        except orjson.JSONDecodeError:
            env = None
        if not isinstance(env, dict) or "code" not in env:
            if status == 200:
                raise _Retry(
                    f"a body that is not an API envelope: {_short(repr(body[:60]))}",
                    code=None,
                    http_status=200,
                )
            if status not in _BATCH_HTTP:  # e.g. 414: this id alone is too long for a URL
                reason = f"{status} {resp.reason or 'HTTP error'}"
                self._row_error(reason, task_id, status)
                return Outcome(task_id, None, None, reason, False, attempts)
            raise EndpointError(
                f"HTTP {status} from {self.base_url} without an API envelope "
                f"({_short(body.decode('utf-8', 'replace'))!r}); check the base URL, or a "
                "proxy/CDN refused the request",
                code=status,
                http_status=status,
                task_id=task_id,
            )
        raw = body.decode("utf-8", errors="replace")
        code, msg = env.get("code"), env.get("msg")
        msg = "" if msg is None else str(msg)
        if code in _PER_TASK_CODES:
            self._first.proven = True
        if code == 200:
            data = env.get("data")
            if not isinstance(data, dict):
                return Outcome(task_id, raw, env, "200 no data in the answer", False, attempts)
            flag = data.get("successFlag")
            return Outcome(task_id, raw, env, None, flag in TERMINAL_FLAGS, attempts)
        if code == 401:
            raise AuthError(
                f"401 {self._scrub(_short(msg))}: the API key was refused".strip(),
                code=401,
                http_status=status,
                task_id=task_id,
            )
        if code in _TRANSIENT_CODES:
            raise _Retry(
                f"{code} {_short(msg)}".strip(),
                code=code if isinstance(code, int) else None,
                http_status=status,
                retry_after=_retry_after(resp.headers.get("Retry-After")),
                throttled=code == 429,
            )
        reason = f"{code} {_short(msg, 200)}".strip()
        self._row_error(reason, task_id, status)
        return Outcome(task_id, raw, env, reason, False, attempts)
