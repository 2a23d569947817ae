"""Pacing for the client: an adaptive limiter of rate and concurrency, and the retry policy.

record-info's query limit is not published, so the client has to find it, in both
directions: fast up when the API is generous, just under the limit when it is not. The
limiter spaces requests evenly (one slot every ``1/rate`` seconds, first come first
served, no bursts: a burst is what a sliding-window limit punishes) and caps the
requests in flight at about ``rate x round-trip`` (with headroom, never above
``max_in_flight``). ``rate`` adapts like TCP congestion control:

* **slow start**: the rate grows x ``SLOW_START_GAIN`` every round-trip (and the
  requests in flight with it) while answers are clean, until
  refusals cluster (several 429s among the last few answers), the server asks for a
  long ``Retry-After``, or the round-trip time rises well above its minimum (a queue);
* **back off**: at a congestion signal the rate is cut to a little under what the
  server accepted in the second before the refused request (about its window, i.e. its
  limit), and the next second, once the server's window has turned over, is a
  **check**: if refusals go on at the lower rate as before, they were not the rate's
  doing (random 429s that are not the limit) and the rate goes back to where it was.
  Either way, the share of refusals seen in checks and while holding under a limit
  found is the *background* the congestion signal is judged against;
* **probe**: a limit found once may be a fluke, so the rate climbs back quickly
  (``FAST_GAIN``, doubling every ``PROBE_ACCEL_S`` clean seconds) to find it again; far
  past it with no congestion (``RESTART``), slow start resumes. A limit found twice
  holds the rate just under it (``HOLD``) for ``PLATEAU_S``, then probes gently
  (``PROBE_GAIN``) for a limit that rose. Congestion is refusals significantly above
  the background (:func:`congested`).

The rate grows only while requests wait for the limiter (when the caller is the
bottleneck there is nothing to learn), and never above ``max_rate`` when one is given.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "AdaptiveLimiter", "Cancelled", "RetryPolicy", "congested"]

#: default cap on requests in flight: 64 lets a 300 ms API reach 200 requests/s
DEFAULT_MAX_IN_FLIGHT = 64
#: slow start multiplies the rate by this every round-trip while answers are clean; less
#: than TCP's 2: against a 1-second window, what is sent in the round-trip before the
#: first refusal comes back is refused, ln(gain) x the limit (2: 0.69x, 1.6: 0.47x)
SLOW_START_GAIN = 1.6
#: first rate, requests/s: modest, and slow start multiplies it every round-trip
START_RATE = 10.0
#: the rate never goes below this (one request every two seconds)
MIN_RATE = 0.5
#: in-flight cap = rate x round-trip x this: room for jitter in the answers' timing
WINDOW_HEADROOM = 2.0
#: the in-flight cap never goes below this (a slow start needs a few requests out)
MIN_WINDOW = 4
#: a cut sets the rate to this share of what the server accepted in the last second
BACKOFF = 0.95
#: once a check confirms the limit, the rate holds at this share of it ...
HOLD = 0.97
#: ... for this many seconds before probing above it again
PLATEAU_S = 30.0
#: a check judges at least this many answers (fewer say too little about the cause)
CHECK_ANSWERS = 30
#: the congestion signal looks at the last second's answers, or at least this many
SIGNAL_ANSWERS = 20
#: a refusal count is congestion beyond this many standard deviations above the background
SIGMAS = 3.0
#: answers remembered for the signals (several seconds' worth at the in-flight cap)
ANSWERS_KEPT = 4096
#: the background share of refusals is taken to be at most this
MAX_BACKGROUND = 0.5
#: probing gain: the rate grows by this fraction of itself per second after a cut
PROBE_GAIN = 0.01
#: the probing gain doubles after every this many seconds without congestion
PROBE_ACCEL_S = 2.0
#: a limit found once may be a fluke: the rate goes back up this much faster, ...
FAST_GAIN = 0.1
#: ... and a limit found again within this share of the first is taken as found
SAME_CEILING = 0.1
#: a clean rate this many times the limit found means there was none: slow start again
RESTART = 1.25
#: seconds of answers the congestion signal looks at (the server's window is 1 s)
SIGNAL_S = 1.0
#: slow start ends when this many of the last SLOW_START_LOOK answers were refused
SLOW_START_REFUSED = 4
SLOW_START_LOOK = 8
#: slow start ends when the smoothed round-trip exceeds its minimum by this factor
RTT_RISE = 2.0
#: a slot the server's window frees is used this share of a round-trip after it frees
REPLAY_MARGIN = 0.1
#: a Retry-After longer than this pauses every request, not just the refused one
LONG_RETRY_AFTER = 1.0
#: the rate grows only if a request waited for the limiter within this many seconds
BOUND_S = 1.0
#: weight of a new round-trip sample in the smoothed round-trip (TCP's 1/8)
RTT_WEIGHT = 0.125
#: waiters behind the first in line wake this often to see a cancel (seconds)
CANCEL_POLL = 0.2


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


def congested(refused: int, answers: int, background: float, *, slack: float = 1.0) -> bool:
    """Whether ``refused`` of ``answers`` is significantly more than a ``background`` share.

    More than the expected count plus three standard deviations plus ``slack``: with no
    background, two refusals; with a 5 % background at 50 answers, nine (it is asked
    at every 429, so it must rarely fire by chance). Probing past a limit already
    found, the slack is 0: one refusal with no background is the limit again.

    >>> congested(2, 50, 0.0), congested(8, 50, 0.05), congested(9, 50, 0.05)
    (True, False, True)
    """
    p = min(max(background, 0.0), 1.0)
    expected = answers * p
    return refused > expected + SIGMAS * math.sqrt(answers * p * (1.0 - p)) + slack


def check_max_in_flight(max_in_flight: int) -> None:
    """Refuse a cap on queries in flight below 1 (the client and the limiter alike)."""
    if max_in_flight < 1:
        raise ConfigError(f"max_in_flight must be at least 1, got {max_in_flight!r}")


class AdaptiveLimiter:
    """A thread-safe limiter of rate and requests in flight that finds the server's limit.

    Every :meth:`acquire` must be followed by one of :meth:`on_success`,
    :meth:`on_throttle`, :meth:`on_error` or :meth:`release` (the answer, or none).

    Parameters
    ----------
    start : float
        Initial rate (requests/s).
    max_rate : float or None
        Fixed upper bound (for users who know their limit).
    max_in_flight : int
        Fixed upper bound on requests in flight.
    clock : callable
        Monotonic clock (injectable for tests).

    >>> lim = AdaptiveLimiter(start=100.0)
    >>> sent = lim.acquire()
    >>> lim.on_success(sent)
    """

    def __init__(
        self,
        start: float = START_RATE,
        *,
        max_rate: float | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        min_rate: float = MIN_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_max_in_flight(max_in_flight)
        self.max_rate = max_rate
        self.max_in_flight = max_in_flight
        self.min_rate = min_rate
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: deque[threading.Condition] = deque()  # waiters, first come first served
        self._rate = self._clamp(start)
        self._next = 0.0  # time of the next free slot
        self._pause_until = 0.0
        self._in_flight = 0
        self._rtt: float | None = None  # smoothed round-trip
        self._rtt_min: float | None = None
        self._phase = "slow_start"  # "slow_start", "check" or "probe"
        self._found = False  # a check confirmed a limit
        self._confirmed = 0  # checks in a row that found about the same limit
        self._before_cut = self._rate
        self._ceiling_guess = self._rate
        self.ceiling: float | None = None  # the limit a check confirmed, requests/s
        self._check_from = 0.0
        self._clean_since = 0.0
        self._grown_at: float | None = None
        self.background = 0.0  # share of refusals that are not the rate's doing
        self._checked = [0, 0]  # refusals and answers seen below the limit (checks, holds)
        self._answers: deque[tuple[float, bool]] = deque()  # (answered at, refused)
        self._accepted: deque[float] = deque()  # send times of accepted requests, last 2 s
        self._replay: deque[float] = deque()  # send times of the slots a cut waits for
        self._bound_at = -math.inf  # when a request last waited for the limiter
        self.throttled = 0  # 429s seen
        self.drops = 0  # cuts made
        self.restores = 0  # cuts undone by a check (the refusals were not the rate's doing)
        self.pauses = 0  # pauses of every request

    # ---------------------------------------------------------------- state
    def _clamp(self, rate: float) -> float:
        rate = max(self.min_rate, rate)
        return min(rate, self.max_rate) if self.max_rate else rate

    @property
    def rate(self) -> float:
        """The current rate, requests/s."""
        return self._rate

    @property
    def phase(self) -> str:
        """``"slow_start"``, ``"check"`` (just cut) or ``"probe"``."""
        return self._phase

    @property
    def next_free(self) -> float:
        """Clock time of the next slot (a pause and a cut's wait for the server included)."""
        free = max(self._next, self._pause_until)
        return max(free, self._replay[0]) if self._replay else free

    @property
    def in_flight(self) -> int:
        """Requests acquired and not yet answered."""
        return self._in_flight

    @property
    def window(self) -> int:
        """Requests allowed in flight now: rate x round-trip, with headroom."""
        if self._rtt is None:
            w = max(MIN_WINDOW, math.ceil(self._rate * 0.1))
        else:
            w = max(MIN_WINDOW, math.ceil(self._rate * self._rtt * WINDOW_HEADROOM))
        return min(w, self.max_in_flight)

    # ---------------------------------------------------------------- sending
    def acquire(self, cancel: threading.Event | None = None) -> float:
        """Wait for a slot and room in flight, first come first served; return the send time.

        Raises :class:`Cancelled` if ``cancel`` is set while waiting.
        """
        me = threading.Condition(self._lock)
        waited = False
        with self._lock:
            self._queue.append(me)
            try:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled
                    now = self._clock()
                    free = self.next_free
                    head = self._queue[0] is me
                    if head and now >= free and self._in_flight < self.window:
                        gap = 1.0 / self._rate  # a late wake-up may catch up one slot
                        if waited or now - free < gap:  # the limiter, not the caller, binds
                            self._bound_at = now
                        self._next = (self._next if now - self._next < gap else now) + gap
                        if self._replay:
                            self._replay.popleft()
                        self._in_flight += 1
                        return now
                    waited = True
                    wait = CANCEL_POLL
                    if head and now < free:
                        wait = min(free - now, CANCEL_POLL)
                    me.wait(wait)  # the head is woken early by answers (room in flight)
            finally:
                self._queue.remove(me)
                if self._queue:
                    self._queue[0].notify()

    def _answered(self, now: float, refused: bool) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        if self._phase == "probe" and self._confirmed >= 2 and now - self._clean_since < PLATEAU_S:
            # holding under the limit found: what is refused now is the background
            self._checked[0] += refused
            self._checked[1] += 1
            self.background = self._checked[0] / self._checked[1]
        self._answers.append((now, refused))
        while len(self._answers) > ANSWERS_KEPT:
            self._answers.popleft()
        if self._queue:
            self._queue[0].notify()

    def _recent(self, since: float) -> tuple[int, int]:
        """(refused, answers) answered after ``since``."""
        n = k = 0
        for t, refused in reversed(self._answers):
            if t <= since:
                break
            n += 1
            k += refused
        return k, n

    def _recent_signal(self, now: float) -> tuple[int, int]:
        """(refused, answers) of the last second, or of the last SIGNAL_ANSWERS if more."""
        k, n = self._recent(now - SIGNAL_S)
        if n >= SIGNAL_ANSWERS:
            return k, n
        last = list(self._answers)[-SIGNAL_ANSWERS:]
        return sum(r for _, r in last), len(last)

    def release(self) -> None:
        """A request that got no answer the limiter can learn from (an error, a cancel)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if self._queue:
                self._queue[0].notify()

    def on_error(self, sent_at: float | None = None) -> None:
        """A transient failure that is not a 429 (5xx, reset): room in flight, no signal."""
        self.release()

    # ---------------------------------------------------------------- answers
    def on_success(self, sent_at: float | None = None) -> None:
        """A request sent at ``sent_at`` was answered: learn the round-trip, probe upwards."""
        with self._lock:
            now = self._clock()
            self._answered(now, refused=False)
            if sent_at is not None:
                self._accepted.append(sent_at)
                while self._accepted and self._accepted[0] < now - 2.0 * SIGNAL_S - 1.0:
                    self._accepted.popleft()
                rtt = max(now - sent_at, 1e-4)
                self._rtt = rtt if self._rtt is None else self._rtt + RTT_WEIGHT * (rtt - self._rtt)
                self._rtt_min = rtt if self._rtt_min is None else min(self._rtt_min, rtt)
            self._evaluate(now)
            self._grow(now)

    def on_throttle(self, sent_at: float, retry_after: float | None = None) -> None:
        """A request sent at ``sent_at`` got a 429: count it; back off if refusals cluster.

        The refused request itself waits ``retry_after`` before its retry; a
        ``retry_after`` above :data:`LONG_RETRY_AFTER` pauses every request for it.
        """
        with self._lock:
            now = self._clock()
            self.throttled += 1
            self._answered(now, refused=True)
            wait = retry_after or 0.0
            if wait > LONG_RETRY_AFTER:
                self._pause_until = max(self._pause_until, now + wait)
                self.pauses += 1
                if self._phase != "check":
                    self._cut(now, sent_at)
                return
            if self._phase == "slow_start":
                last = list(self._answers)[-SLOW_START_LOOK:]
                if sum(r for _, r in last) >= SLOW_START_REFUSED:
                    self._cut(now, sent_at)
            elif self._phase == "probe":
                k, n = self._recent_signal(now)
                past = self.ceiling is not None and self._rate > self.ceiling
                if congested(k, n, self.background, slack=0.0 if past else 1.0):
                    self._cut(now, sent_at)
            else:
                self._evaluate(now)

    def _cut(self, now: float, sent_at: float) -> None:
        """Back off to a little under what the server accepted in the second before."""
        held = [s for s in self._accepted if sent_at - SIGNAL_S < s <= sent_at]
        accepted = len(held)
        # the background's refusals took slots of the server's window too
        window = accepted / (1.0 - min(self.background, MAX_BACKGROUND))
        base = min(self._rate, window) if window >= self.min_rate else self._rate
        self._before_cut = self._rate
        self._ceiling_guess = base
        self._rate = self._clamp(base * BACKOFF)
        self._phase = "check"
        self._check_from = now + SIGNAL_S + (self._rtt or 0.0)  # the window has turned over
        # for the next second, send only as the server's window frees a slot: when each
        # request it accepted in the second before leaves it (sooner would be refused)
        margin = REPLAY_MARGIN * (self._rtt or 0.0)
        self._replay = deque(max(now, t + SIGNAL_S + margin) for t in held if t + SIGNAL_S > now)
        self._next = max(now, self._pause_until)
        self._grown_at = None
        self.drops += 1

    def _evaluate(self, now: float) -> None:
        """End a check: keep the cut (the limit was found) or undo it (background 429s).

        Below the limit the server refuses only what it refuses anyway, so the check's
        share of refusals is the background, whatever the verdict.
        """
        if self._phase != "check" or now < self._check_from + SIGNAL_S:
            return
        k, n = self._recent(self._check_from)
        if n < CHECK_ANSWERS:
            return
        helped = not congested(k, n, self.background)
        self._checked[0] += k
        self._checked[1] += n
        self.background = self._checked[0] / self._checked[1]
        if helped:
            self._found = True
            c, guess = self.ceiling, self._ceiling_guess
            same = c is not None and abs(guess - c) <= SAME_CEILING * c
            self._confirmed = self._confirmed + 1 if same else 1
            # what the server accepted is at most its limit: the higher estimate is closer
            self.ceiling = max(guess, c) if same and c is not None else guess
            self._rate = self._clamp(max(self._rate, HOLD * self.ceiling))
            self._phase = "probe"
        else:  # the refusals were not the rate's doing: back to where it was
            self._rate = self._clamp(max(self._rate, self._before_cut))
            self._phase = "probe" if self._found else "slow_start"
            self.restores += 1
        self._clean_since = now
        self._grown_at = now

    def _grow(self, now: float) -> None:
        if self._phase == "check":
            return
        r = self._rate
        if self._phase == "slow_start":
            if (
                self._rtt is not None
                and self._rtt_min is not None
                and self._rtt > RTT_RISE * self._rtt_min
            ):
                self._phase = "probe"  # answers slow down: a queue is building somewhere
                self._clean_since = self._grown_at = now
                return
            turns = 1.0 / max(1.0, r * (self._rtt or 1.0 / r))  # 1 / answers per round-trip
            new = r * SLOW_START_GAIN**turns  # x SLOW_START_GAIN every round-trip
        else:
            last = self._grown_at if self._grown_at is not None else now
            self._grown_at = now
            clean = now - self._clean_since
            c = self.ceiling
            if c is not None and r > RESTART * c:  # far past the limit found, all clean
                self._phase, self.ceiling, self._confirmed = "slow_start", None, 0
                return
            if self._confirmed >= 2:  # a limit found twice: hold under it, then probe
                if clean < PLATEAU_S:
                    return
                gain = PROBE_GAIN
                if c is None or r > c:  # past the limit found: it rose
                    gain *= 2.0 ** ((clean - PLATEAU_S) / PROBE_ACCEL_S)
            else:  # found once (perhaps by chance): go back up soon and see again
                gain = FAST_GAIN * 2.0 ** (clean / PROBE_ACCEL_S)
            if self._rtt:
                gain = min(gain, math.log(2.0) / self._rtt)  # never faster than slow start
            new = r * (1.0 + gain * (now - last))
        # grow only while the limiter is what holds requests back (not the caller)
        if now - self._bound_at <= BOUND_S:
            if self._rtt_min:  # no faster than the in-flight cap allows
                new = min(new, WINDOW_HEADROOM * self.max_in_flight / self._rtt_min)
            self._rate = self._clamp(max(r, new))
