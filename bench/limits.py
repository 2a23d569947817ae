"""A rate-limited record-info server that is not the simulator: the kinds of limit gateways use.

    .venv/bin/python bench/limits.py --kind sliding --rate 50 --retry-after one --latency 0.1

It prints ``http://127.0.0.1:<port>`` on its first line, answers
``GET /api/v1/veo/record-info?taskId=…`` with a successful record-info envelope after
``--latency`` seconds, and stops when its standard input closes. Past its limit it answers
HTTP 429 at once (a gateway refuses before the backend does any work), with the
envelope ``{"code": 429, …}``. Limit kinds (:data:`KINDS`):

* ``sliding``: at most ``rate`` accepted requests in any 1-second window;
* ``fixed``: at most ``rate`` accepted requests per clock second (a counter reset on
  every whole second);
* ``bucket``: a token bucket refilled at ``rate``/s holding at most ``2 x rate`` (full
  at the start: a burst of twice the rate, then the rate);
* ``concurrent``: at most ``--cap`` requests in flight, no rate limit;
* ``none``: no limit.

``Retry-After`` (:data:`RETRY_AFTER`): ``one`` (always ``1``), ``real`` (the seconds until
a request would be accepted, in milliseconds precision: ``0.137``) or ``absent``.
``--random-429`` refuses that share of the requests at random on top of the limit (not
counted against it). Refusals are not counted against any limit.

``GET /__stats`` answers what the server counted (JSON): requests, accepted, refused by
the limit and at random, the peak in flight, the most accepted in any 1-second window,
and the accepted and refused requests of every whole second since the first accepted one;
``GET /__reset`` clears the counters (not the limit's state). :func:`serve_process`
runs the server in a child process for the benchmark and the tests. The limit kinds are
pure classes with the time passed in, so tests can drive them on a fake clock.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import math
import random
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

KINDS = ("sliding", "fixed", "bucket", "concurrent", "none")
RETRY_AFTER = ("one", "real", "absent")
#: the token bucket holds this many seconds of its rate (a burst of twice the rate)
BURST_S = 2.0
#: the Retry-After of a random refusal in ``real`` mode (there is no real wait)
RANDOM_WAIT = 1.0
#: seconds the parent waits for the child to print its URL
START_TIMEOUT = 20.0
_RECORD_PATH = "/api/v1/veo/record-info"


class Limit(Protocol):
    """A limit kind: ``admit(now)`` is None when accepted, else the seconds until it would be."""

    def admit(self, now: float) -> float | None: ...

    def done(self, now: float) -> None: ...


class NoLimit:
    def admit(self, now: float) -> float | None:
        return None

    def done(self, now: float) -> None:
        return None


class Sliding:
    """At most ``rate`` accepted requests in any 1-second window (a sliding log)."""

    def __init__(self, rate: float) -> None:
        self.rate = int(rate)
        self._log: deque[float] = deque()

    def admit(self, now: float) -> float | None:
        log = self._log
        while log and log[0] <= now - 1.0:
            log.popleft()
        if len(log) < self.rate:
            log.append(now)
            return None
        return log[0] + 1.0 - now

    def done(self, now: float) -> None:
        return None


class Fixed:
    """At most ``rate`` accepted requests per whole second of the clock."""

    def __init__(self, rate: float) -> None:
        self.rate = int(rate)
        self._second = -1
        self._count = 0

    def admit(self, now: float) -> float | None:
        second = math.floor(now)
        if second != self._second:
            self._second, self._count = second, 0
        if self._count < self.rate:
            self._count += 1
            return None
        return second + 1.0 - now

    def done(self, now: float) -> None:
        return None


class Bucket:
    """A token bucket: ``rate`` tokens/s, at most ``BURST_S x rate`` held, full at first."""

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self.size = BURST_S * rate
        self._tokens = self.size
        self._at: float | None = None

    def admit(self, now: float) -> float | None:
        if self._at is not None:
            self._tokens = min(self.size, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / self.rate

    def done(self, now: float) -> None:
        return None


class Concurrent:
    """At most ``cap`` requests in flight; the wait is until the first one in flight is due."""

    def __init__(self, cap: int, latency: float) -> None:
        self.cap = cap
        self.latency = latency
        self._due: list[float] = []  # when the requests in flight are due to be answered

    def admit(self, now: float) -> float | None:
        if len(self._due) < self.cap:
            heapq.heappush(self._due, now + self.latency)
            return None
        return max(0.0, self._due[0] - now)

    def done(self, now: float) -> None:
        if self._due:
            heapq.heappop(self._due)


def make_limit(kind: str, rate: float, cap: int, latency: float) -> Limit:
    """The limit of ``kind`` (one of :data:`KINDS`)."""
    if kind == "sliding":
        return Sliding(rate)
    if kind == "fixed":
        return Fixed(rate)
    if kind == "bucket":
        return Bucket(rate)
    if kind == "concurrent":
        return Concurrent(cap, latency)
    if kind == "none":
        return NoLimit()
    raise ValueError(f"unknown limit kind {kind!r}; one of {', '.join(KINDS)}")


def retry_after_header(mode: str, wait: float) -> str | None:
    """The ``Retry-After`` value of ``mode`` (one of :data:`RETRY_AFTER`) for a real wait."""
    if mode == "one":
        return "1"
    if mode == "real":
        return f"{max(wait, 0.001):.3f}"
    return None


# --- the server ------------------------------------------------------------------------
def _record(task_id: str) -> bytes:
    data = {
        "taskId": task_id,
        "paramJson": json.dumps(
            {"prompt": "a lighthouse at dusk", "model": "veo3_fast", "aspectRatio": "16:9"}
        ),
        "completeTime": "2026-01-06T08:17:04Z",
        "createTime": "2026-01-06T08:16:00Z",
        "successFlag": 1,
        "errorCode": None,
        "errorMessage": "",
        "response": {
            "taskId": task_id,
            "resultUrls": [f"https://example.invalid/v/{task_id}.mp4"],
            "originUrls": None,
            "resolution": "720p",
        },
    }
    return json.dumps({"code": 200, "msg": "success", "data": data}).encode()


_REFUSED = json.dumps({"code": 429, "msg": "Too Many Requests"}).encode()


@dataclass
class Counters:
    requests: int = 0
    accepted: int = 0
    limited: int = 0
    random: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    accepted_at: list[float] = field(default_factory=list)
    refused_at: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        times = self.accepted_at
        most, lo = 0, 0
        for hi, t in enumerate(times):  # the most accepted in any 1-second window
            while times[lo] <= t - 1.0:
                lo += 1
            most = max(most, hi - lo + 1)
        per_second: list[int] = []
        refused_per_second: list[int] = []
        if times:
            start = times[0]
            per_second = [0] * (int(times[-1] - start) + 1)
            refused_per_second = [0] * len(per_second)
            for t in times:
                per_second[int(t - start)] += 1
            for t in self.refused_at:
                if start <= t < start + len(per_second):
                    refused_per_second[int(t - start)] += 1
        return {
            "requests": self.requests,
            "accepted": self.accepted,
            "limited": self.limited,
            "random": self.random,
            "refused": self.limited + self.random,
            "peak_in_flight": self.peak_in_flight,
            "max_1s": most,
            "per_second": per_second,
            "refused_per_second": refused_per_second,
        }


class Server:
    """The asyncio server: one coroutine per connection, keep-alive, answers in order."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.limit = make_limit(args.kind, args.rate, args.cap, args.latency)
        self.mode = args.retry_after
        self.latency = args.latency
        self.random_429 = args.random_429
        self.rng = random.Random(args.seed)
        self.counters = Counters()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
                status, headers, body = await self.answer(target)
                lines = [f"HTTP/1.1 {status}", "Content-Type: application/json"]
                lines += [f"{k}: {v}" for k, v in headers.items()]
                lines.append(f"Content-Length: {len(body)}")
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        except asyncio.CancelledError:  # the server is stopping
            return
        finally:
            writer.close()

    async def answer(self, target: str) -> tuple[str, dict[str, str], bytes]:
        parts = urlsplit(target)
        c = self.counters
        if parts.path == "/__stats":
            return "200 OK", {}, json.dumps(c.as_dict()).encode()
        if parts.path == "/__reset":
            self.counters = Counters(in_flight=c.in_flight)
            return "200 OK", {}, b"{}"
        if parts.path != _RECORD_PATH:
            return "404 Not Found", {}, b'{"code":404,"msg":"Not Found"}'
        task_id = parse_qs(parts.query).get("taskId", [""])[0]
        now = time.monotonic()
        c.requests += 1
        wait: float | None
        if self.random_429 and self.rng.random() < self.random_429:
            c.random += 1
            wait = RANDOM_WAIT
        else:
            wait = self.limit.admit(now)
            if wait is not None:
                c.limited += 1
        if wait is not None:
            c.refused_at.append(now)
            value = retry_after_header(self.mode, wait)
            return "429 Too Many Requests", {"Retry-After": value} if value else {}, _REFUSED
        c.accepted += 1
        c.accepted_at.append(now)
        c.in_flight += 1
        c.peak_in_flight = max(c.peak_in_flight, c.in_flight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.counters.in_flight -= 1
            self.limit.done(time.monotonic())
        return "200 OK", {}, _record(task_id)


async def _main(args: argparse.Namespace) -> None:
    server = Server(args)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", args.port, backlog=512)
    port = srv.sockets[0].getsockname()[1]
    sys.stdout.write(f"http://127.0.0.1:{port}\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def watch_stdin() -> None:  # the parent closes our stdin (or dies): stop
        sys.stdin.read()
        loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    async with srv:
        await closed.wait()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", choices=KINDS, default="sliding")
    p.add_argument("--rate", type=float, default=50.0, help="requests/s (sliding, fixed, bucket)")
    p.add_argument("--cap", type=int, default=8, help="requests in flight (concurrent)")
    p.add_argument("--retry-after", choices=RETRY_AFTER, default="one")
    p.add_argument("--latency", type=float, default=0.1, help="seconds per accepted answer")
    p.add_argument("--random-429", type=float, default=0.0, help="share refused at random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--port", type=int, default=0)
    return p


# --- the parent's side -----------------------------------------------------------------
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


class LimitServer:
    """A running server in a child process: ``.url``, ``.stats()``, ``.reset()``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _get(self, path: str) -> dict[str, Any]:
        with _DIRECT.open(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def stats(self) -> dict[str, Any]:
        """What the server counted since the last reset."""
        return self._get("/__stats")

    def reset(self) -> None:
        """Clear the counters (the limit's state stays)."""
        self._get("/__reset")


@contextmanager
def serve_process(**options: Any) -> Iterator[LimitServer]:
    """Run the server in a child process with ``options`` (the command-line flags)."""
    cmd = [sys.executable, str(Path(__file__).resolve())]
    for key, value in options.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(START_TIMEOUT)
        if not box or not box[0].startswith("http://"):
            raise RuntimeError(f"the limit server did not start: {cmd}")
        yield LimitServer(box[0].strip())
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


if __name__ == "__main__":
    asyncio.run(_main(_parser().parse_args()))
