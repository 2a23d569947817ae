"""The simulator's HTTP server: kie.ai's record-info and generate endpoints on loopback.

One :class:`Simulator` owns a seeded corpus, a sim clock, a fault plan, a rate limiter
and request counters, and serves them with the stdlib ``ThreadingHTTPServer`` (one
daemon thread per connection, HTTP/1.1 keep-alive, exact ``Content-Length``).

What a request meets, in order:

1. ``latency`` seconds of delay (slept in the request's own thread: never serialises);
2. no ``User-Agent`` → HTTP 403, body ``error code: 1010`` (the CDN in front of kie.ai);
3. over ``rate_limit`` (a sliding 1-second window over all clients) → HTTP 429,
   ``Retry-After`` (whole seconds, >= 1) and ``{"code": 429, "msg": ...}``;
4. a missing or wrong ``Authorization: Bearer <key>`` → HTTP 200, envelope code 401;
5. a fault, scripted for the task id or drawn from the rates (:mod:`.faults`);
6. the answer: the task's record; envelope 422 "record is null." (unknown id),
   "Temporarily supports records within 14 days." (created more than 14 sim days ago) or
   "taskId is required." (no ``taskId`` parameter).

Each request is counted under one outcome (``ok``, ``401``, ``403``, ``404``, ``422``,
``429`` or a fault name) and, for record-info, under its task id (whatever the outcome).
Admin endpoints (loopback clients only, no auth, not counted): ``GET /_sim/stats``,
``POST /_sim/reset``, ``GET /_sim/ids?kind=...``, ``POST /_sim/faults`` (``{"rates": {...}}``),
``POST /_sim/script`` (``{"taskId": ..., "faults": [...]}``), ``GET /_sim/media`` (the media
host's counters) and ``POST /_sim/media`` (``{"reset": true, "rates": {...}, "scripts": {...}}``).

Result URLs point at the simulator itself: ``GET /media/...`` serves real MP4 files, without
a key (:mod:`.media`).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import orjson

from . import _generate
from ._constants import BLOCK, DEFAULT_API_KEY, EXPIRY_S, GENERATE_PATH, RECORD_PATH
from ._http import Server, envelope_bytes
from ._resubmit import resubmit as resubmit_tasks
from ._state import SimClock, SlidingWindowLimiter, Stats
from .callbacks import CallbackSender, check_url
from .corpus import TIME_FORMATS, Task, envelope, make_block
from .faults import Fault, FaultPlan
from .media import MediaHost

__all__ = ["DEFAULT_API_KEY", "GENERATE_PATH", "RECORD_PATH", "Simulator"]

log = logging.getLogger("veo_notebook.simulator")

_KINDS = (
    "all",
    "pending",
    "terminal",
    "success",
    "failed",
    "generation_failed",
    "expired",
    "queryable",
    "generated",
    "generate",
    "extend",
    "1080p",
    "4k",
)


def _corpus(
    seed: int, n: int, anchor: float, span_days: float, pending_share: float, resubmit: float
) -> list[Task]:
    """The first ``n`` tasks of the corpus as of ``anchor``, re-submissions included."""
    tasks: list[Task] = []
    for block in range((n + BLOCK - 1) // BLOCK):
        made = make_block(
            seed, block, anchor=anchor, span_days=span_days, pending_share=pending_share
        )
        tasks += resubmit_tasks(made, seed=seed, block=block, share=resubmit, now=anchor)
    return tasks[:n]


class Simulator:
    """The kie.ai Veo record-info API on loopback, seeded and deterministic.

    Parameters
    ----------
    api_key : the one key accepted (default :data:`DEFAULT_API_KEY`).
    seed, n_tasks : the corpus (same seed, same records; times relative to ``start_time``).
    latency : seconds added to every answer.
    rate_limit : requests per second (sliding 1-second window) before HTTP 429; None: no limit.
    clock_speed : sim seconds per real second (tasks finish faster with > 1; 0 freezes time,
        so pending tasks stay pending and every answer is reproducible with ``start_time``;
        :meth:`advance` steps it, which is how tests make sim minutes pass).
    time_format : "plain" (UTC+8 wall time), "iso", "epoch_ms" or "mixed".
    faults : ``{fault name: probability}`` per request (see :mod:`.faults`).
    slow_seconds : how long a "slow" fault holds its answer.
    span_days, pending_share : create times spread over ``span_days``; that share still generating.
    resubmit_share : share of generate tasks that re-submit another's request minutes later
        (a client that timed out and sent it again; default 0: none).
    start_time : epoch seconds of sim "now" at start (default: the wall clock).
    callback_key, callback_faults, callback_timeout : the callbacks of tasks created with a
        ``callBackUrl``: the webhook HMAC key they are signed with, per-task fault
        probabilities and the POST timeout (see :mod:`.callbacks`; ``sim.callbacks``).

    >>> with Simulator(n_tasks=10) as sim:
    ...     sim.base_url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        seed: int = 0,
        n_tasks: int = 5000,
        latency: float = 0.0,
        rate_limit: float | None = None,
        clock_speed: float = 1.0,
        time_format: str = "plain",
        faults: Mapping[str, float] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        slow_seconds: float = 30.0,
        span_days: float = 20.0,
        pending_share: float = 0.03,
        start_time: float | None = None,
        resubmit_share: float = 0.0,
        callback_key: str | None = None,
        callback_faults: Mapping[str, float] | None = None,
        callback_timeout: float = 15.0,
    ) -> None:
        if time_format not in TIME_FORMATS:
            raise ValueError(f"unknown time_format {time_format!r}; expected one of {TIME_FORMATS}")
        if n_tasks < 0 or latency < 0 or slow_seconds < 0:
            raise ValueError("n_tasks, latency and slow_seconds must be >= 0")
        self._key = api_key or DEFAULT_API_KEY
        self.seed, self.n_tasks, self.latency = seed, n_tasks, float(latency)
        self.time_format, self.slow_seconds = time_format, float(slow_seconds)
        self.host, self._port = host, port
        self.clock = SimClock(start_time, clock_speed)
        self.faults = FaultPlan(faults, seed=seed)
        self.limiter = SlidingWindowLimiter(rate_limit) if rate_limit else None
        self._stats = Stats()
        self._lock = threading.Lock()
        self._tasks = _corpus(
            seed, n_tasks, self.clock.start, span_days, pending_share, resubmit_share
        )
        self._by_id: dict[str, Task] = {t.task_id: t for t in self._tasks}
        self._generated: list[Task] = []
        self._cache: dict[str, bytes] = {}
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self.media = MediaHost(
            self.task,
            now=self.now,
            base_url=lambda: self.base_url,
            hold=self.hold,
            slow_seconds=self.slow_seconds,
            seed=seed,
        )
        self.callbacks = CallbackSender(
            self.clock,
            callback_key,
            rates=callback_faults,
            seed=seed,
            timeout=callback_timeout,
            rewrite=self.media.rewrite,
        )

    # --- lifecycle ------------------------------------------------------------------
    def start(self) -> Simulator:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = Server((self.host, self._port), self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="veo-simulator",
            daemon=True,
        )
        self._thread.start()
        log.debug("simulator serving on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and wake any held ("slow") answers."""
        server, self._server = self._server, None
        self.callbacks.stop()
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: give it to ``Client(base_url=...)``."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        """The key this simulator accepts (never shown in its repr)."""
        return self._key

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "stopped"
        fmt = self.time_format
        return f"Simulator({where}, seed={self.seed}, n_tasks={self.n_tasks}, time_format={fmt!r})"

    # --- inspection and control -----------------------------------------------------
    def now(self) -> float:
        """Sim time in epoch seconds (start + stepped + elapsed x clock_speed)."""
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Step sim time forward (tests: with ``clock_speed=0``, minutes pass at once).

        >>> sim = Simulator(n_tasks=1, clock_speed=0, start_time=1e9)
        >>> sim.advance(300); sim.now()
        1000000300.0
        """
        self.clock.advance(seconds)

    def tasks(self) -> list[Task]:
        """Every task: the corpus in index order, then those created by POST /generate."""
        with self._lock:
            return self._tasks + self._generated

    def task(self, task_id: str) -> Task | None:
        """The task with this id, or None."""
        return self._by_id.get(task_id)

    def task_ids(self, kind: str | None = None) -> list[str]:
        """Task ids, optionally of one kind, as of sim time now.

        ``kind``: None/"all"; by state now (expired tasks excluded): "pending", "terminal",
        "success", "failed" (flag 2 or 3), "generation_failed" (flag 3), "queryable"; "expired"
        (older than 14 days: answered 422); "generated" (made by POST); by task type:
        "generate", "extend", "1080p", "4k".

        >>> with Simulator(n_tasks=50) as sim:
        ...     len(sim.task_ids()), set(sim.task_ids("pending")) <= set(sim.task_ids())
        (50, True)
        """
        if kind not in (None, *_KINDS):
            raise ValueError(f"unknown kind {kind!r}; expected one of {_KINDS}")
        tasks = self.tasks()
        if kind in (None, "all"):
            return [t.task_id for t in tasks]
        if kind == "generated":
            return [t.task_id for t in tasks if t.position < 0]
        if kind in ("generate", "extend", "1080p", "4k"):
            return [t.task_id for t in tasks if t.task_type == kind]
        now = self.now()
        if kind == "expired":
            return [t.task_id for t in tasks if now - t.create_ts > EXPIRY_S]
        live = [t for t in tasks if now - t.create_ts <= EXPIRY_S]
        done = [t for t in live if now >= t.complete_ts]
        pick = {
            "queryable": live,
            "pending": [t for t in live if now < t.complete_ts],
            "terminal": done,
            "success": [t for t in done if t.final_flag == 1],
            "failed": [t for t in done if t.final_flag in (2, 3)],
            "generation_failed": [t for t in done if t.final_flag == 3],
        }[kind]
        return [t.task_id for t in pick]

    def stats(self) -> dict[str, Any]:
        """``{"requests": n, "by_outcome": {name: n}, "by_task": {task_id: n}}`` (a copy).

        >>> Simulator(n_tasks=1).stats()
        {'requests': 0, 'by_outcome': {}, 'by_task': {}}
        """
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Zero every counter."""
        self._stats.reset()

    def script(self, task_id: str, faults: Iterable[str | Fault]) -> None:
        """Queue faults (or "ok") for ``task_id``: one per request about it, in order.

        >>> sim = Simulator(n_tasks=1)
        >>> sim.script("veo_x", ["reset", "http503", "ok"])
        >>> sim.faults.pending_script("veo_x")
        ['reset', 'http503', 'ok']
        """
        self.faults.script(task_id, faults)

    def set_fault_rates(self, rates: Mapping[str, float]) -> None:
        """Replace the per-request fault probabilities, e.g. ``{"http503": 0.05}``.

        >>> sim = Simulator(n_tasks=1)
        >>> sim.set_fault_rates({"http503": 0.05}); sim.faults.rates()
        {'http503': 0.05}
        """
        self.faults.set_rates(rates)

    def record(self, task_id: str) -> dict[str, Any]:
        """The envelope record-info would answer for ``task_id`` now (no faults, no HTTP).

        >>> Simulator(n_tasks=1).record("veo_nope")
        {'code': 422, 'msg': 'record is null.', 'data': None}
        """
        return orjson.loads(self.record_answer(task_id)[1])

    # --- the HTTP layer's protocol (``_http.Backend``) --------------------------------
    def hold(self, seconds: float) -> None:
        """Wait ``seconds`` real seconds, cut short when the simulator stops."""
        self._stopping.wait(seconds)

    def admit(self) -> int:
        """0 if the rate limit lets a request through now, else seconds for Retry-After."""
        return self.limiter.acquire() if self.limiter is not None else 0

    def authorized(self, header: str | None) -> bool:
        """Whether ``header`` is ``Bearer <the accepted key>`` (compared in constant time)."""
        expected = f"Bearer {self._key}".encode()
        return hmac.compare_digest((header or "").strip().encode(), expected)

    def count(self, outcome: str, task_id: str | None) -> None:
        """Count one API request under ``outcome`` (and ``task_id``)."""
        self._stats.count(outcome, task_id)

    def next_fault(self, task_id: str | None) -> Fault:
        """The fault for the next request about ``task_id`` (None: not about a task)."""
        return self.faults.next(task_id)

    def serve_media(self, h: BaseHTTPRequestHandler, method: str, path: str) -> None:
        """Answer a request for one of the media host's files."""
        self.media.serve(h, method, path)

    def connection_opened(self, conn: socket.socket) -> None:
        """Track a connection (``stop`` shuts down those still open)."""
        with self._lock:
            self._conns.add(conn)

    def connection_closed(self, conn: socket.socket) -> None:
        """Forget a connection that ended."""
        with self._lock:
            self._conns.discard(conn)

    def admin(self, method: str, path: str, query: str, body: Any) -> Any:
        """The JSON answer of an admin route under ``/_sim/`` (None: no such route)."""
        route = (method, path)
        if route == ("GET", "/_sim/stats"):
            return self.stats()
        if route == ("POST", "/_sim/reset"):
            self.reset_stats()
            return {"ok": True}
        if route == ("GET", "/_sim/ids"):
            return self.task_ids(parse_qs(query).get("kind", [None])[0])
        if route == ("POST", "/_sim/faults"):
            self.set_fault_rates(body.get("rates", {}))
            return {"ok": True, "rates": self.faults.rates()}
        if route == ("POST", "/_sim/script"):
            self.script(body["taskId"], body["faults"])
            return {"ok": True}
        if route == ("GET", "/_sim/media"):
            return self.media.stats()
        if route == ("POST", "/_sim/media"):  # {"reset": true, "rates": {...}, "scripts": ...}
            if body.get("reset"):
                self.media.reset_stats()
            if "rates" in body:
                self.media.set_rates(body["rates"])
            for task_id, faults in body.get("scripts", {}).items():
                self.media.script(task_id, faults)
            return {"ok": True}
        return None

    def record_answer(self, task_id: str | None) -> tuple[str, bytes]:
        """(outcome, envelope bytes) record-info answers for ``task_id`` now, without faults."""
        if not task_id:
            return "422", envelope_bytes(422, "taskId is required.")
        task = self._by_id.get(task_id)
        if task is None:
            return "422", envelope_bytes(422, "record is null.")
        now = self.now()
        if now - task.create_ts > EXPIRY_S:
            return "422", envelope_bytes(422, "Temporarily supports records within 14 days.")
        body = self._cache.get(task_id)
        if body is None:
            body = orjson.dumps(envelope(task, now, self.time_format))
            if now >= task.complete_ts:
                self._cache[task_id] = body
        if self._server is not None:  # links to this simulator's media host
            body = self.media.rewrite(body)
        return "ok", body

    def generate_answer(self, raw: bytes) -> tuple[str, bytes]:
        """(outcome, envelope bytes) of ``POST /generate`` with body ``raw`` (makes a task)."""
        try:
            body = orjson.loads(raw or b"null")
            fields = _generate.validate(body)
        except orjson.JSONDecodeError:
            return "422", envelope_bytes(422, "The request body is not valid JSON.")
        except _generate.InvalidRequest as exc:
            return "422", envelope_bytes(422, str(exc))
        hook = body.get("callBackUrl")
        if hook is not None and (problem := check_url(hook)):
            return "422", envelope_bytes(422, problem)
        with self._lock:
            counter = len(self._generated)
            task = _generate.make_task(self.seed, counter, body, fields, self.now())
            self._generated.append(task)
            self._by_id[task.task_id] = task
        if hook is not None:
            self.callbacks.schedule(task, hook.strip())
        log.debug(
            "created task %s (%s, done in %.0f sim s)", task.task_id, task.model, task.latency_s
        )
        return "ok", envelope_bytes(200, "success", {"taskId": task.task_id})
