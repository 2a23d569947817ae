"""The simulator's HTTP layer: request pipeline, fault rendering, admin routes (private).

The pipeline and the meaning of each outcome are documented in :mod:`.server`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import sys
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from ..net import is_loopback
from .faults import BEHAVIOUR, TOO_MANY, Canned, Fault, Wire
from .media import PREFIX as MEDIA_PREFIX

if TYPE_CHECKING:
    from .server import Simulator

log = logging.getLogger("veo_notebook.simulator")

RECORD_PATH = "/api/v1/veo/record-info"
GENERATE_PATH = "/api/v1/veo/generate"
_JSON = "application/json"


def envelope_bytes(code: int, msg: str, data: Any = None) -> bytes:
    """A compact ``{code, msg, data}`` envelope."""
    return orjson.dumps({"code": code, "msg": msg, "data": data})


def handle(sim: Simulator, h: Handler, method: str) -> None:
    """Answer one request (see the pipeline in :mod:`.server`)."""
    url = urlsplit(h.path)
    length = int(h.headers.get("Content-Length") or 0)
    raw = h.rfile.read(length) if length > 0 else b""
    if url.path.startswith("/_sim/"):
        return _admin(sim, h, method, url.path, url.query, raw)
    if sim.latency:
        sim._stopping.wait(sim.latency)
    if url.path.startswith(MEDIA_PREFIX):  # the media host: no key, no User-Agent check
        return sim.media.serve(h, method, url.path)
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
    if sim.limiter is not None and (wait := sim.limiter.acquire()):
        body = envelope_bytes(429, TOO_MANY)
        return _answer(sim, h, "429", task_id, 429, body, headers={"Retry-After": str(wait)})
    if not sim._authorized(h.headers.get("Authorization")):
        body = envelope_bytes(401, "You do not have access permissions")
        return _answer(sim, h, "401", task_id, 200, body)
    answer: Callable[[], tuple[str, bytes]]
    if (url.path, method) == (RECORD_PATH, "GET"):
        fault = sim.faults.next(task_id)
        answer = lambda: sim._record_body(task_id)  # noqa: E731
    elif (url.path, method) == (GENERATE_PATH, "POST"):
        fault = sim.faults.next(None)
        answer = lambda: sim._generate(raw)  # noqa: E731
    else:
        return _answer(sim, h, "404", task_id, 404, envelope_bytes(404, "Not Found"))
    _apply(sim, h, fault, task_id, answer)


def _apply(
    sim: Simulator,
    h: Handler,
    fault: Fault,
    task_id: str | None,
    answer: Callable[[], tuple[str, bytes]],
) -> None:
    behaviour = BEHAVIOUR[fault]  # every fault has one (faults.py checks it at import)
    if isinstance(behaviour, Canned):
        b = behaviour
        return _answer(sim, h, fault.value, task_id, b.status, b.body, b.content_type, b.headers)
    if behaviour is Wire.ANSWER:
        outcome, body = answer()
        return _answer(sim, h, outcome, task_id, 200, body)
    sim._stats.count(fault.value, task_id)
    return _WIRE[behaviour](sim, h, answer)


def _reset(sim: Simulator, h: Handler, answer: Callable[[], tuple[str, bytes]]) -> None:
    h.close_connection = True
    conn = h.connection
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    socket.close(conn.detach())  # RST, no answer


def _slow(sim: Simulator, h: Handler, answer: Callable[[], tuple[str, bytes]]) -> None:
    sim._stopping.wait(sim.slow_seconds)
    _write(h, 200, answer()[1])


def _truncated(sim: Simulator, h: Handler, answer: Callable[[], tuple[str, bytes]]) -> None:
    body = answer()[1]
    _write(h, 200, body[: len(body) // 2])


def _incomplete(sim: Simulator, h: Handler, answer: Callable[[], tuple[str, bytes]]) -> None:
    body = answer()[1]  # promise the whole body, send half, close
    h.close_connection = True
    _write(h, 200, body[: len(body) // 2], length=len(body))


_WIRE: dict[Wire, Callable[[Simulator, Handler, Callable[[], tuple[str, bytes]]], None]] = {
    Wire.RESET: _reset,
    Wire.SLOW: _slow,
    Wire.TRUNCATED: _truncated,
    Wire.INCOMPLETE: _incomplete,
}


def _answer(
    sim: Simulator,
    h: Handler,
    outcome: str,
    task_id: str | None,
    status: int,
    body: bytes,
    content_type: str = _JSON,
    headers: Mapping[str, str] | None = None,
) -> None:
    sim._stats.count(outcome, task_id)  # before the answer: a client sees it counted
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


def _admin(sim: Simulator, h: Handler, method: str, path: str, query: str, raw: bytes) -> None:
    if not is_loopback(h.client_address[0]):
        return _write(h, 404, envelope_bytes(404, "Not Found"))
    try:
        body = orjson.loads(raw) if raw else {}
        if (path, method) == ("/_sim/stats", "GET"):
            return _write(h, 200, orjson.dumps(sim.stats()))
        if (path, method) == ("/_sim/reset", "POST"):
            sim.reset_stats()
            return _write(h, 200, orjson.dumps({"ok": True}))
        if (path, method) == ("/_sim/ids", "GET"):
            kind = parse_qs(query).get("kind", [None])[0]
            return _write(h, 200, orjson.dumps(sim.task_ids(kind)))
        if (path, method) == ("/_sim/faults", "POST"):
            sim.set_fault_rates(body.get("rates", {}))
            return _write(h, 200, orjson.dumps({"ok": True, "rates": sim.faults.rates()}))
        if (path, method) == ("/_sim/script", "POST"):
            sim.script(body["taskId"], body["faults"])
            return _write(h, 200, orjson.dumps({"ok": True}))
        if (path, method) == ("/_sim/media", "GET"):
            return _write(h, 200, orjson.dumps(sim.media.stats()))
        if (path, method) == ("/_sim/media", "POST"):  # {"reset": true, "rates": {...}}
            if body.get("reset"):
                sim.media.reset_stats()
            if "rates" in body:
                sim.media.set_rates(body["rates"])
            for task_id, faults in body.get("scripts", {}).items():
                sim.media.script(task_id, faults)
            return _write(h, 200, orjson.dumps({"ok": True}))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return _write(h, 400, orjson.dumps({"ok": False, "error": str(exc)}))
    return _write(h, 404, envelope_bytes(404, "Not Found"))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    sim: Simulator

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
        with self.server.sim._lock:
            self.server.sim._conns.add(self.connection)

    def finish(self) -> None:
        with self.server.sim._lock:
            self.server.sim._conns.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        handle(self.server.sim, self, "GET")

    def do_POST(self) -> None:
        handle(self.server.sim, self, "POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
