"""Pacing for the client: an adaptive rate limiter and the one retry policy.

record-info's query limit is not published, so the client has to find it. The limiter
spaces requests evenly (one slot every ``1/rate`` seconds, first come first served, no
bursts: a burst is what a sliding-window limit punishes) and adapts ``rate`` like TCP
congestion control:

* **slow start**: the rate grows exponentially (x e^2 per second) from a modest 10/s
  until the first 429;
* **on 429**: the rate is cut to ``decrease`` x what was sent in the second before the
  refused request (about what the server's window held: its limit), once per
  congestion event (429s for requests sent within ``hold`` seconds of the last cut are
  the same event). The refused request waits its ``Retry-After``; every worker pauses
  for it when the server asks for more than a second or cuts stop helping (a third cut
  within 5 s);
* **congestion avoidance**: afterwards the rate grows linearly, by ``increase`` (1 %)
  of itself per second, probing for a limit that may have risen.

The rate never runs more than 3x ahead of what is actually sent (the workers, not the
limiter, may be the bottleneck), and never above ``max_rate`` when one is given.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AdaptiveLimiter", "Cancelled", "RetryPolicy"]


class Cancelled(Exception):
    """The batch was cancelled while this worker waited."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry what is transient: exponential backoff, full jitter.

    ``delay(n)`` is uniform in ``[0, min(cap, base * 2**n)]`` (AWS's "full jitter"), and
    never shorter than a ``Retry-After`` the server gave.

    >>> RetryPolicy(max_retries=3, base=0.5, cap=4.0).delay(10, retry_after=2.0) >= 2.0
    True
    """

    max_retries: int = 6
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        backoff = random.uniform(0.0, min(self.cap, self.base * 2.0**attempt))
        return max(backoff, retry_after or 0.0)


class AdaptiveLimiter:
    """A thread-safe pacing limiter whose rate adapts to 429s (AIMD with slow start).

    Parameters
    ----------
    start : float
        Initial rate (requests/s).
    max_rate : float or None
        Fixed upper bound (for users who know their limit).
    increase : float
        After the first 429 the rate grows linearly by this fraction of itself per
        second (0.01: 50/s gains 0.5/s each second).
    decrease : float
        Multiplicative decrease factor on a 429.
    clock : callable
        Monotonic clock (injectable for tests).

    >>> lim = AdaptiveLimiter(start=100.0)
    >>> sent = lim.acquire()
    >>> lim.on_success()
    """

    def __init__(
        self,
        start: float = 10.0,
        *,
        max_rate: float | None = None,
        min_rate: float = 0.5,
        increase: float = 0.01,
        decrease: float = 0.9,
        hold: float = 1.0,
        slow_start_gain: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_rate = max_rate
        self.min_rate = min_rate
        self.increase = increase
        self.decrease = decrease
        self.hold = hold
        self.slow_start_gain = slow_start_gain
        self._clock = clock
        self._lock = threading.Lock()  # the rate state
        self._turn = threading.Condition()  # first come, first served
        self._queue: deque[object] = deque()
        self._rate = self._clamp(start)
        self._next = 0.0  # time of the next free slot
        self._pause_until = 0.0
        self._slow_start = True
        self._ceiling: float | None = None  # rate at the last 429
        self._last_drop = -1.0
        self._cuts: deque[float] = deque()  # times of recent cuts
        self._sent: deque[float] = deque()  # send times over the last second
        self._first: float | None = None  # first send
        self.throttled = 0  # 429s seen
        self.drops = 0  # rate cuts made
        self.pauses = 0  # pauses of every worker

    def _clamp(self, rate: float) -> float:
        rate = max(self.min_rate, rate)
        return min(rate, self.max_rate) if self.max_rate else rate

    @property
    def rate(self) -> float:
        """The current rate, requests/s."""
        return self._rate

    def _achieved(self, now: float) -> float:
        """Requests sent per second over the last half second (or since the first one)."""
        while self._sent and self._sent[0] < now - 2.0:
            self._sent.popleft()
        n = sum(1 for t in self._sent if t > now - 0.5)
        span = min(0.5, max(0.1, now - self._first)) if self._first is not None else 0.5
        return n / span

    def _sent_in_second_before(self, t: float) -> int:
        return sum(1 for s in self._sent if t - 1.0 < s <= t)

    def acquire(self, cancel: threading.Event | None = None) -> float:
        """Wait for a slot, first come first served; return the send time.

        Raises :class:`Cancelled` if ``cancel`` is set while waiting.
        """
        me = object()
        with self._turn:
            self._queue.append(me)
            try:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled
                    now = self._clock()
                    with self._lock:
                        free = max(self._next, self._pause_until)
                        if self._queue[0] is me and now >= free:
                            gap = 1.0 / self._rate  # a late wake-up may catch up one slot
                            self._next = (self._next if now - self._next < gap else now) + gap
                            self._sent.append(now)
                            if self._first is None:
                                self._first = now
                            return now
                    # first in line sleeps until its slot; the others wake to check `cancel`
                    head = self._queue[0] is me
                    self._turn.wait(min(free - now, 0.1) if head else 0.1)
            finally:
                self._queue.remove(me)
                self._turn.notify_all()

    def on_success(self) -> None:
        """A request went through: probe upwards."""
        with self._lock:
            now = self._clock()
            r, c = self._rate, self._ceiling
            # slow start: exponential (x e^gain per second); then additive
            if self._slow_start or c is None:
                gain = self.slow_start_gain * r
            else:  # linear probing, its slope proportional to the rate found
                gain = max(self.increase * r, 0.02)
            new = r + gain / r  # `gain` requests/s per second, spread over ~r successes
            # never run far ahead of what is actually sent (the workers may be the bottleneck)
            if new <= max(3.0 * self._achieved(now), 5.0):
                self._rate = self._clamp(new)

    def on_throttle(self, sent_at: float, retry_after: float | None = None) -> None:
        """A request sent at ``sent_at`` got a 429: slow down; pause everyone if it persists.

        The first 429 of a congestion event cuts the rate (the refused request itself
        waits ``retry_after`` before its retry). If 429s go on after a cut, or the server
        asks for more than a second, every worker pauses for ``retry_after``.
        """
        with self._lock:
            now = self._clock()
            self.throttled += 1
            wait = retry_after or 0.0
            if sent_at < self._last_drop + self.hold:
                return  # the server's window has not turned over since the last cut
            while self._cuts and self._cuts[0] < now - 5.0:
                self._cuts.popleft()
            persistent = len(self._cuts) >= 2  # a third cut within 5 s: cuts are not enough
            if wait and (wait > 1.0 or persistent):
                self._pause_until = max(self._pause_until, now + wait)
                self.pauses += 1
            # the server refused this request: what we sent in the second before it is
            # (about) what the server's window holds, i.e. its limit
            window = float(self._sent_in_second_before(sent_at))
            base = min(self._rate, window) if window >= self.min_rate else self._rate
            self._ceiling = base
            self._rate = self._clamp(base * self.decrease)
            self._slow_start = False
            self._last_drop = now
            self._cuts.append(now)
            self.drops += 1
            self._next = max(now, self._pause_until)  # re-space the queue at the new rate
