"""The simulator's shared, thread-safe state: clock, rate limiter, counters (private)."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any


class SimClock:
    """Sim time in epoch seconds: ``start + advanced + (real elapsed) x speed``.

    ``speed`` 0 freezes the clock: then only :meth:`advance` moves it, which is how a test
    makes sim minutes pass without sleeping. ``real`` is the monotonic source (tests may
    give their own). Listeners registered with :meth:`on_advance` are called after each
    step, so whoever waits on sim time (the callback sender) wakes at once.

    >>> clock = SimClock(1000.0, speed=0)
    >>> clock.advance(90); clock.now()
    1090.0
    """

    def __init__(
        self,
        start: float | None = None,
        speed: float = 1.0,
        *,
        real: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError(f"clock_speed must be >= 0, got {speed}")
        self.start = time.time() if start is None else float(start)
        self.speed = float(speed)
        self._real = real
        self._t0 = real()
        self._advanced = 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        """Sim time now, in epoch seconds."""
        return self.start + self._advanced + (self._real() - self._t0) * self.speed

    def advance(self, seconds: float) -> None:
        """Step sim time forward by ``seconds`` (>= 0), then wake every listener."""
        if seconds < 0:
            raise ValueError(f"the clock only moves forward; got advance({seconds})")
        with self._lock:
            self._advanced += float(seconds)
            listeners = list(self._listeners)
        for wake in listeners:
            wake()

    def on_advance(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` after every :meth:`advance`."""
        with self._lock:
            self._listeners.append(wake)


class SlidingWindowLimiter:
    """At most ``rate`` accepted requests in any sliding 1-second window, across all clients.

    Refused requests do not count. ``acquire`` returns 0 when accepted, else the whole
    seconds (>= 1) until a slot frees, for ``Retry-After``.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate_limit must be > 0, got {rate}")
        self.capacity = max(1, int(rate))
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> int:
        now = time.monotonic()
        with self._lock:
            while self._times and now - self._times[0] >= 1.0:
                self._times.popleft()
            if len(self._times) < self.capacity:
                self._times.append(now)
                return 0
            wait = 1.0 - (now - self._times[0])
        return max(1, math.ceil(wait))


class Stats:
    """Request counters: total, by outcome name, by task id (record-info queries only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._by_outcome: Counter[str] = Counter()
        self._by_task: Counter[str] = Counter()

    def count(self, outcome: str, task_id: str | None) -> None:
        with self._lock:
            self._requests += 1
            self._by_outcome[outcome] += 1
            if task_id is not None:
                self._by_task[task_id] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "by_outcome": dict(self._by_outcome),
                "by_task": dict(self._by_task),
            }

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._by_outcome.clear()
            self._by_task.clear()
