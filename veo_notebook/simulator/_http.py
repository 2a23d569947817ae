"""The simulator's HTTP layer: request pipeline, fault rendering, the server (private).

The pipeline and the meaning of each outcome are documented in :mod:`.server`. This
module knows the simulator only through :class:`Backend`, a small protocol of public
methods (the :class:`~veo_notebook.simulator.Simulator` implements it), so the HTTP side
and the state it serves can change apart.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import sys
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import orjson

from ..net import is_loopback
from ._constants import ADMIN_PREFIX, GENERATE_PATH, MEDIA_PREFIX, RECORD_PATH
from .faults import BEHAVIOUR, TOO_MANY, Canned, Fault, Wire

log = logging.getLogger("veo_notebook.simulator")

_JSON = "application/json"
Answer = Callable[[], "tuple[str, bytes]"]


class Backend(Protocol):
    """What the HTTP layer asks of the simulator (every method public and thread-safe)."""

    latency: float  # seconds added before every API answer
    slow_seconds: float  # how long a "slow" fault holds its answer

    def hold(self, seconds: float) -> None:
        """Wait ``seconds`` real seconds, or less if the simulator stops."""

    def admit(self) -> int:
        """0 if the rate limit lets this request through, else seconds for Retry-After."""

    def authorized(self, header: str | None) -> bool:
        """Whether the ``Authorization`` header carries the accepted key."""

    def count(self, outcome: str, task_id: str | None) -> None:
        """Count one API request under ``outcome`` (and its task id)."""

    def next_fault(self, task_id: str | None) -> Fault:
        """The fault for this request (``Fault.OK``: answer normally)."""

    def record_answer(self, task_id: str | None) -> tuple[str, bytes]:
        """(outcome, envelope bytes) of record-info for ``task_id`` now."""

    def generate_answer(self, raw: bytes) -> tuple[str, bytes]:
        """(outcome, envelope bytes) of a generate request with body ``raw``."""

    def serve_media(self, h: BaseHTTPRequestHandler, method: str, path: str) -> None:
        """Answer one request under the media prefix."""

    def admin(self, method: str, path: str, query: str, body: Any) -> Any:
        """The JSON answer of an admin route; None when there is no such route."""

    def connection_opened(self, conn: socket.socket) -> None:
        """A connection was accepted (closed by ``stop`` if still open)."""

    def connection_closed(self, conn: socket.socket) -> None:
        """A connection ended."""


def envelope_bytes(code: int, msg: str, data: Any = None) -> bytes:
    """A compact ``{code, msg, data}`` envelope."""
    return orjson.dumps({"code": code, "msg": msg, "data": data})


def handle(sim: Backend, h: Handler, method: str) -> None:
    """Answer one request (see the pipeline in :mod:`.server`)."""
    url = urlsplit(h.path)
    length = int(h.headers.get("Content-Length") or 0)
    raw = h.rfile.read(length) if length > 0 else b""
    if url.path.startswith(ADMIN_PREFIX):
        return _admin(sim, h, method, url.path, url.query, raw)
    if sim.latency:
        sim.hold(sim.latency)
    if url.path.startswith(MEDIA_PREFIX):  # the media host: no key, no User-Agent check
        return sim.serve_media(h, method, url.path)
    task_id: str | None = None
    if url.path == RECORD_PATH:
        query = parse_qs(url.query, keep_blank_values=True)
        # the id exactly as sent (no stripping: " a" and "a" are different ids);
        # an all-blank id counts as missing
        sent = query.get("taskId", [""])[0]
        task_id = sent if sent.strip() else None
    if not h.headers.get("User-Agent"):
        return _answer(
            sim, h, "403", task_id, 403, b"error code: 1010", "text/plain; charset=UTF-8"
        )
    if wait := sim.admit():
        body = envelope_bytes(429, TOO_MANY)
        return _answer(sim, h, "429", task_id, 429, body, headers={"Retry-After": str(wait)})
    if not sim.authorized(h.headers.get("Authorization")):
        body = envelope_bytes(401, "You do not have access permissions")
        return _answer(sim, h, "401", task_id, 200, body)
    answer: Answer
    if (url.path, method) == (RECORD_PATH, "GET"):
        fault = sim.next_fault(task_id)
        answer = lambda: sim.record_answer(task_id)  # noqa: E731
    elif (url.path, method) == (GENERATE_PATH, "POST"):
        fault = sim.next_fault(None)
        answer = lambda: sim.generate_answer(raw)  # noqa: E731
    else:
        return _answer(sim, h, "404", task_id, 404, envelope_bytes(404, "Not Found"))
    _apply(sim, h, fault, task_id, answer)


def _apply(sim: Backend, h: Handler, fault: Fault, task_id: str | None, answer: Answer) -> None:
    behaviour = BEHAVIOUR[fault]  # every fault has one (faults.py checks it at import)
    if isinstance(behaviour, Canned):
        b = behaviour
        return _answer(sim, h, fault.value, task_id, b.status, b.body, b.content_type, b.headers)
    if behaviour is Wire.ANSWER:
        outcome, body = answer()
        return _answer(sim, h, outcome, task_id, 200, body)
    sim.count(fault.value, task_id)
    return _WIRE[behaviour](sim, h, answer)


def reset_connection(h: BaseHTTPRequestHandler) -> None:
    """Close the connection with a TCP RST (no more answer on it)."""
    h.close_connection = True
    conn = h.connection
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    socket.close(conn.detach())


def _reset(sim: Backend, h: Handler, answer: Answer) -> None:
    reset_connection(h)


def _slow(sim: Backend, h: Handler, answer: Answer) -> None:
    sim.hold(sim.slow_seconds)
    _write(h, 200, answer()[1])


def _truncated(sim: Backend, h: Handler, answer: Answer) -> None:
    body = answer()[1]
    _write(h, 200, body[: len(body) // 2])


def _incomplete(sim: Backend, h: Handler, answer: Answer) -> None:
    body = answer()[1]  # promise the whole body, send half, close
    h.close_connection = True
    _write(h, 200, body[: len(body) // 2], length=len(body))


_WIRE: dict[Wire, Callable[[Backend, Handler, Answer], None]] = {
    Wire.RESET: _reset,
    Wire.SLOW: _slow,
    Wire.TRUNCATED: _truncated,
    Wire.INCOMPLETE: _incomplete,
}


def _answer(
    sim: Backend,
    h: Handler,
    outcome: str,
    task_id: str | None,
    status: int,
    body: bytes,
    content_type: str = _JSON,
    headers: Mapping[str, str] | None = None,
) -> None:
    sim.count(outcome, task_id)  # before the answer: a client sees it counted
    _write(h, status, body, content_type, headers)


def _write(
    h: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = _JSON,
    headers: Mapping[str, str] | None = None,
    length: int | None = None,
) -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body) if length is None else length))
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.end_headers()
    h.wfile.write(body)


def _admin(sim: Backend, h: Handler, method: str, path: str, query: str, raw: bytes) -> None:
    if not is_loopback(h.client_address[0]):
        return _write(h, 404, envelope_bytes(404, "Not Found"))
    try:
        answer = sim.admin(method, path, query, orjson.loads(raw) if raw else {})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return _write(h, 400, orjson.dumps({"ok": False, "error": str(exc)}))
    if answer is None:
        return _write(h, 404, envelope_bytes(404, "Not Found"))
    return _write(h, 200, orjson.dumps(answer))


class Server(ThreadingHTTPServer):
    """One thread per connection; answers through its :class:`Backend`."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], backend: Backend) -> None:
        self.backend = backend
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ValueError, OSError)):
            log.debug("connection from %s ended abruptly", client_address, exc_info=True)
        else:  # a bug in the simulator: say so
            log.exception("simulator error answering %s", client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kie-sim/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: Server

    def setup(self) -> None:
        super().setup()
        self.server.backend.connection_opened(self.connection)

    def finish(self) -> None:
        self.server.backend.connection_closed(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        handle(self.server.backend, self, "GET")

    def do_POST(self) -> None:
        handle(self.server.backend, self, "POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
