"""Pacing for the client: an adaptive limiter of rate and concurrency, and the retry policy.

record-info's query limit is not published, nor how it is counted (a sliding or a fixed
window, a token bucket with a burst, a cap on requests in flight; ``Retry-After`` as 1,
as the real wait, or absent), so the client has to find it, in both directions: fast up
when the API is generous, just under the limit when it is not. The limiter spaces
requests evenly (one slot every ``1/rate`` seconds, first come first served, no bursts:
a burst is what a window punishes; a sender that wakes late sends the slots it missed,
never more than the rate's count within a second) and caps the requests in flight at
about ``rate x round-trip`` (with headroom, never above ``max_in_flight``). ``rate``
adapts like TCP congestion control — slow start, back off to the limit as the server
counted it, cut again while refusals go on, random refusals taken as background, a
concurrency cap told from a rate limit, then probe — each phase described, for whoever
changes it, in ``docs/pacing.md`` ("The limiter, phase by phase").

The rate grows only while requests wait for the limiter (the caller is not the
bottleneck), never above ``max_rate``. Measured: ``bench/README.md`` (``bench/fetch.py``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from ..errors import ConfigError
from . import _tuning as tune
from ._cap import CapFinder
from ._fixed import FullWindow, at_one_phase, between_edges
from ._outstanding import Outstanding
from ._retry import RetryPolicy, congested, fell
from ._rtt import RoundTrip

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "AdaptiveLimiter", "Cancelled", "RetryPolicy", "congested"]

#: default cap on requests in flight: 64 lets a 300 ms API reach 200 requests/s
DEFAULT_MAX_IN_FLIGHT = 64


class Cancelled(Exception):
    """The batch was cancelled while this worker waited."""


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
        start: float = tune.START_RATE,
        *,
        max_rate: float | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        min_rate: float = tune.MIN_RATE,
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
        self._rt = RoundTrip()
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
        self._answers: deque[tuple[float, bool, int]] = deque()  # (answered at, refused, in flight)
        self._out = Outstanding(max_in_flight)  # requests sent and not yet answered
        self._chain = 0  # cuts in a row whose checks still saw refusals
        self._chain_rate = self._rate  # the rate the first of them checked
        self._cut_at = 0.0  # when the last cut was made
        self._trickle = False  # it was for a trickle of refusals (tune.HOLD_LOOK_S)
        self._above_since = 0.0  # since when the rate is above the limit found
        self._trickles = 0  # cuts for a trickle of refusals
        self._post: list[float] = []  # send times of refused requests sent after it
        self._drained = False  # the limit was measured between refusals (a bucket's rate)
        self._full = FullWindow()  # a full fixed window waited out
        self._refused: deque[float] = deque()  # send times of refused requests (tune.HOLD_LOOK_S)
        self._check_share: float | None = None  # refused share of the check before
        self._caps = CapFinder(max_in_flight)
        self._accepted: deque[float] = deque()  # send times of accepted requests (tune.HOLD_LOOK_S)
        self._replay: deque[float] = deque()  # send times of the slots a cut waits for
        self._sent: deque[float] = deque()  # send times of the last second
        self._room_at = 0.0  # when the last second's sends leave room for one more
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
    def estimate(self) -> float | None:
        """The server's rate limit as estimated now: the one a check confirmed, else the
        last cut's estimate (None before any cut), requests/s."""
        if self.ceiling is not None:
            return self.ceiling
        return self._ceiling_guess if self.drops else None

    @property
    def cap(self) -> int | None:
        """A cap on requests in flight the server applies, when one was found."""
        return self._caps.cap

    @property
    def caps(self) -> int:
        """Concurrency caps found."""
        return self._caps.caps

    @property
    def next_free(self) -> float:
        """Clock time of the next slot (a pause and a cut's wait for the server included)."""
        free = max(self._next, self._pause_until, self._room_at)
        return max(free, self._replay[0]) if self._replay else free

    @property
    def in_flight(self) -> int:
        """Requests acquired and not yet answered."""
        return self._in_flight

    @property
    def window(self) -> int:
        """Requests allowed in flight now: rate x round-trip, with headroom."""
        rtt = self._rt.smooth
        if rtt is None:
            w = max(tune.MIN_WINDOW, math.ceil(self._rate * 0.1))
        else:
            w = max(tune.MIN_WINDOW, math.ceil(self._rate * rtt * tune.WINDOW_HEADROOM))
        w = min(w, self.max_in_flight)
        return min(w, self.cap) if self.cap is not None else w

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
                        self._take_slot(now)
                        if waited or now - free < 1.0 / self._rate:  # the limiter binds
                            self._bound_at = now
                        if self._replay:
                            self._replay.popleft()
                        self._in_flight += 1
                        self._out.add(now, self._in_flight, self._rate)
                        return now
                    waited = True
                    wait = tune.CANCEL_POLL
                    if head and now < free:
                        wait = min(free - now, tune.CANCEL_POLL)
                    me.wait(wait)  # the head is woken early by answers (room in flight)
            finally:
                self._queue.remove(me)
                if self._queue:
                    self._queue[0].notify()

    def _take_slot(self, now: float) -> None:
        """Move the schedule past a slot taken at ``now``.

        A loaded machine wakes the waiting thread tens of milliseconds late, and each
        slot missed is a request not sent: the schedule keeps its pace, and the slots of
        the last ``CATCH_UP_S`` go at once, but never more requests within a second than
        the rate's count (no burst past a window). Not after a second or more without
        requests (an idle limiter missed nothing), nor while a cut waits for the server's
        window (its slots are the ones the window freed).
        """
        sent = self._sent
        while sent and sent[0] <= now - tune.SIGNAL_S:
            sent.popleft()
        sent.append(now)
        gap = 1.0 / self._rate
        if self._full.waiting:  # a full fixed window: one probe at a time
            self._next = now + tune.EDGE_PROBE_S
            return
        if self._replay:
            self._next = (self._next if now - self._next < gap else now) + gap
            return
        if now - self._next <= tune.SIGNAL_S:  # late, not idle for a while
            self._next = max(self._next, now - tune.CATCH_UP_S) + gap
        else:
            self._next = (self._next if now - self._next < gap else now) + gap
        room = math.ceil(self._rate * tune.SIGNAL_S)
        # the next send waits for the room-th last to leave the second
        self._room_at = sent[-room] + tune.SIGNAL_S if len(sent) >= room else 0.0

    def _answered(self, now: float, refused: bool, sent_at: float | None) -> float:
        """Count an answer; the rate when its request was sent."""
        self._in_flight = max(0, self._in_flight - 1)
        c, rate = self._out.pop(sent_at, self._rate)
        self._answers.append((now, refused, c))
        while len(self._answers) > tune.ANSWERS_KEPT:
            self._answers.popleft()
        if self._queue:
            self._queue[0].notify()
        return rate

    def _recent(self, since: float) -> tuple[int, int]:
        """(refused, answers) answered after ``since``."""
        n = k = 0
        for t, refused, _ in reversed(self._answers):
            if t <= since:
                break
            n += 1
            k += refused
        return k, n

    def _recent_signal(self, now: float) -> tuple[int, int]:
        """(refused, answers) of the last second, or of the last tune.SIGNAL_ANSWERS if more."""
        k, n = self._recent(now - tune.SIGNAL_S)
        if n >= tune.SIGNAL_ANSWERS:
            return k, n
        last = list(self._answers)[-tune.SIGNAL_ANSWERS :]
        return sum(r for _, r, _ in last), len(last)

    def release(self, sent_at: float | None = None) -> None:
        """A request that got no answer the limiter can learn from (an error, a cancel)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._out.pop(sent_at, self._rate)
            if self._queue:
                self._queue[0].notify()

    def on_error(self, sent_at: float | None = None) -> None:
        """A transient failure that is not a 429 (5xx, reset): room in flight, no signal."""
        self.release(sent_at)

    # ---------------------------------------------------------------- answers
    def on_success(self, sent_at: float | None = None) -> None:
        """A request sent at ``sent_at`` was answered: learn the round-trip, probe upwards."""
        with self._lock:
            now = self._clock()
            sent_rate = self._answered(now, False, sent_at)
            if sent_at is not None:
                self._accepted.append(sent_at)
                while self._accepted and self._accepted[0] < now - tune.HOLD_LOOK_S - tune.SIGNAL_S:
                    self._accepted.popleft()
                self._rt.add(now, max(now - sent_at, 1e-4))
            if self._full.passed(sent_at):  # a full fixed window's edge: cut to its limit
                limit = FullWindow.limit(self._let_in, self._post, sent_at or now)
                self._recheck(now, max(self.min_rate, limit))
                self._chain = 0  # measured once, not saturated: probed again soon
            self._evaluate(now)
            self._grow(now, sent_rate)
            self._caps.probe(now, now - self._bound_at <= tune.BOUND_S)

    def on_throttle(self, sent_at: float, retry_after: float | None = None) -> None:
        """A request sent at ``sent_at`` got a 429: count it; back off if refusals cluster.

        The refused request itself waits ``retry_after`` before its retry; a
        ``retry_after`` above :data:`tune.LONG_RETRY_AFTER` pauses every request for it.
        """
        with self._lock:
            now = self._clock()
            self.throttled += 1
            self._answered(now, True, sent_at)
            self._refused.append(sent_at)
            while self._refused[0] < now - tune.HOLD_LOOK_S:
                self._refused.popleft()
            if self._caps.probe_refused(now, self._answers[-1][2]) or self._found_cap(now):
                return
            wait = retry_after or 0.0
            if wait > tune.LONG_RETRY_AFTER:
                self._pause_until = max(self._pause_until, now + wait)
                self.pauses += 1
                if self._phase != "check":
                    self._cut(now, sent_at)
                return
            if self._phase == "slow_start":
                last = list(self._answers)[-tune.SLOW_START_LOOK :]
                if sum(r for _, r, _ in last) >= tune.SLOW_START_REFUSED:
                    self._cut(now, sent_at)
            elif self._phase == "probe":
                k, n = self._recent_signal(now)
                past = self.ceiling is not None and self._rate > self.ceiling
                # holding under a limit found twice, a pair of refusals is jitter (requests
                # sent on time, delayed on their way on a loaded machine), not the limit
                slack = 0.0 if past else tune.HOLD_SLACK if self._confirmed >= 2 else 1.0
                if congested(k, n, self.background, slack=slack):
                    self._cut(now, sent_at)
                    return
                # a trickle since the probe began: the refusals that made the last cut,
                # and the slower check after it, are not this rate's doing
                span = min(tune.HOLD_LOOK_S, now - self._clean_since)
                k, n = self._recent(now - span)
                if (
                    self._found
                    and self._trickles < tune.TRICKLE_CUTS
                    and span > tune.SIGNAL_S
                    and (
                        congested(k, n, self.background, slack=tune.TRICKLE_SLACK)
                        or at_one_phase([s for s in self._refused if s > now - span])
                    )
                ):
                    self._trickles += 1
                    self._cut(now, sent_at, span)
            else:
                if sent_at >= self._cut_at:
                    self._early(now, sent_at)
                self._evaluate(now)

    def _cut(self, now: float, sent_at: float, span: float = tune.SIGNAL_S) -> None:
        """Back off to a little under what the server accepted in the ``span`` before."""
        held = [s for s in self._accepted if sent_at - span < s <= sent_at]
        # requests still in flight that were sent before it were let in (a refusal comes
        # back at once): without them the estimate is short by rate x round-trip
        held += self._out.times(sent_at - span, sent_at)
        accepted = len(held) / span
        self._trickle = span > tune.SIGNAL_S
        if self._phase != "check":
            self._chain, self._check_share, self._drained = 0, None, False
        self._cut_at, self._post = now, []
        # the background's refusals took slots of the server's window too
        window = accepted / (1.0 - min(self.background, tune.MAX_BACKGROUND))
        base = min(self._rate, window) if window >= self.min_rate else self._rate
        self._before_cut = self._rate
        self._ceiling_guess = base
        self._rate = self._clamp(base * tune.BACKOFF)
        self._phase = "check"
        # the check begins once the server's window has turned over
        self._check_from = now + tune.SIGNAL_S + (self._rt.smooth or 0.0)
        # for the next second, send only as the server's window frees a slot: when each
        # request it accepted in the second before leaves it (sooner would be refused)
        margin = tune.REPLAY_MARGIN * (self._rt.smooth or 0.0)
        self._replay = deque(
            max(now, t + tune.SIGNAL_S + margin) for t in sorted(held) if t + tune.SIGNAL_S > now
        )
        self._next = max(now, self._pause_until)
        self._sent.clear()  # the rate's count per second starts again (not a stall)
        self._room_at = 0.0
        self._grown_at = None
        self.drops += 1

    def _evaluate(self, now: float) -> None:
        """End a check: keep the cut (the limit was found) or undo it (background 429s).

        Below the limit the server refuses only what it refuses anyway, so the check's
        share of refusals is the background, whatever the verdict.
        """
        if self._full.waiting:  # waiting for a full window's edge
            return
        if self._phase != "check" or now < self._check_from + tune.SIGNAL_S:
            return
        k, n = self._recent(self._check_from)
        if n < tune.CHECK_ANSWERS:
            return
        helped = not congested(k, n, self.background)
        if not helped and self._recut(now, k, n):
            return
        # after cuts again, a share that did not fall is the background, however small
        helped = helped and fell(k, n, self._check_share)
        chain, self._chain, self._check_share = self._chain, 0, None
        self._checked[0] += k
        self._checked[1] += n
        self.background = self._checked[0] / self._checked[1]
        if helped:
            self._found = True
            c, guess = self.ceiling, self._ceiling_guess
            same = c is not None and abs(guess - c) <= tune.SAME_CEILING * c
            self._confirmed = self._confirmed + 1 if same else 1
            if self._drained:  # a bucket's rate, measured once its burst was spent
                self._confirmed = max(self._confirmed, 2)
            # what the server accepted in a second is at most its limit, so the higher
            # estimate is closer; but a trickle of refusals at the higher one said it is not
            higher = same and c is not None and not self._trickle
            self.ceiling = max(guess, c) if higher and c is not None else guess
            if higher and c is not None and self._before_cut <= c:
                # refused while holding under it: it was a little high (the second
                # counted on this side's clock, requests delayed on their way)
                self.ceiling = max(guess, tune.LOWER * c)
            if not self._drained:  # else the check's rate is the one proven clean
                self._rate = self._clamp(max(self._rate, tune.HOLD * self.ceiling))
            self._phase = "probe"
        else:  # the refusals were not the rate's doing: back to where it was
            back = self._chain_rate if chain else self._before_cut
            self._rate = self._clamp(max(self._rate, back))
            self._phase = "probe" if self._found else "slow_start"
            self.restores += 1
        self._clean_since = now
        self._grown_at = now

    def _recut(self, now: float, refused: int, answers: int) -> bool:
        """A check still saw refusals: cut again to what the server accepted during it.

        While saturated, what a server accepts per second is its limit, whatever its
        kind: a token bucket's burst or a fixed window's double second, which inflated
        the first estimate, are spent by now. If the share refused did not fall after a
        cut, the refusals are not the rate's doing (False: the background).
        """
        share, p = refused / answers, self._check_share
        high = share > tune.NOT_BACKGROUND
        if not high and (self._chain >= tune.RECUTS or not fell(refused, answers, p)):
            return False  # as many refused as before the cut: not the rate's doing
        if p is None:
            self._chain_rate = self._rate
        span = max(now - self._check_from, 1e-3)
        self._check_share = share
        measured = (answers - refused) / span
        self._recheck(now, min(measured, tune.STEP * self._ceiling_guess) if high else measured)
        return True

    def _let_in(self, lo: float, hi: float) -> int:
        """Requests sent in ``[lo, hi]`` the server let in (answered, or still in flight)."""
        n = sum(lo <= s <= hi for s in self._accepted)
        return n + self._out.count(lo, hi)

    def _early(self, now: float, sent_at: float) -> None:
        """Refusals of requests sent after the cut: it was too shallow; cut again now.

        What the server let in between the first and the last of them is its rate once
        a token bucket's burst is spent. A full fixed window lets nothing in between:
        the rate is not the cause, so one request at a time finds its edge
        (``_fixed.FullWindow``).
        """
        self._post.append(sent_at)
        held = between_edges(sorted(self._post), self._let_in)
        if held is not None and self._chain < tune.RECUTS:  # a fixed window's two edges
            self._recheck(now, max(held, tune.EARLY_FLOOR * self._ceiling_guess))
            return
        a, b = self._post[0], sent_at
        if len(self._post) < tune.FULL_REFUSALS or self._chain >= tune.RECUTS:
            return
        between = self._let_in(a, b)
        # a full fixed window: the rate is not the cause; find its edge (within a second)
        if between == 0 and b - a >= tune.FULL_SPAN and not self._full.given_up(now):
            if not self._full.waiting:
                self._full.start(now)
                self._replay.clear()
                self._next = max(self._next, now + tune.EDGE_PROBE_S)
            return
        if len(self._post) < tune.EARLY_REFUSALS or b - a < tune.EARLY_SPAN:
            return
        if len(self._post) < tune.EARLY_SHARE * (len(self._post) + between):
            return
        measured = float(self._let_in(a - tune.SIGNAL_S, a))
        # enough let in between, at a rate under the second before's, are a token bucket's
        # rate once its burst is spent (then no fast re-probe); a few say little
        self._drained = between >= tune.EARLY_BETWEEN and between / (b - a) < measured
        if between >= 2:
            measured = min(measured, between / (b - a))
        floor = tune.DRAINED_FLOOR if self._drained else tune.EARLY_FLOOR
        self._recheck(
            now, min(max(measured, floor * self._ceiling_guess), tune.STEP * self._ceiling_guess)
        )

    def _recheck(self, now: float, measured: float) -> None:
        """Cut again to a little under ``measured`` and check again."""
        self._chain += 1
        self._ceiling_guess = min(measured, self._ceiling_guess)
        self._rate = self._clamp(self._ceiling_guess * tune.BACKOFF)
        self._check_from = now + tune.SIGNAL_S + (self._rt.smooth or 0.0)
        self._cut_at, self._post = now, []
        self._replay.clear()
        self._next = now
        self._sent.clear()
        self._room_at = 0.0
        self.drops += 1

    def _found_cap(self, now: float) -> bool:
        """Whether refusals read as a cap on requests in flight (``_cap.CapFinder``)."""
        if not self._caps.find(now, self._answers):
            return False
        if self._phase == "check":  # the cut was for a rate limit there is not: undo it
            self._rate = self._clamp(max(self._rate, self._before_cut))
            self._phase = "probe" if self._found else "slow_start"
            self._replay.clear()
            self._chain, self._check_share = 0, None
        return True

    def _slow_start(self, sent_rate: float) -> float | None:
        """The rate after one more clean answer in slow start: x ``SLOW_START_GAIN`` per
        round-trip (per answer when fewer than one a round-trip).

        An answer is weighed by the rate its request was sent at (``sent_rate``): a
        round-trip's answers are the requests of the round-trip before, sent slower than
        now; weighed by the rate now, the rate grew x1.38 a round-trip, not x1.6, and
        at 300 ms per answer slow start took a second longer to reach a limit.

        None (no growth, slow start goes on) while the round-trip is ``RTT_RISE`` x its
        recent minimum: a queue is building somewhere, or the machine is busy. Slow start
        does not end there: the probe's gentle gain would take seconds to find a limit.
        """
        r, rtt = self._rate, self._rt.smooth
        if self._rt.rising():
            return None
        turns = 1.0 / max(1.0, sent_rate * (rtt or 1.0 / r))  # 1 / answers per round-trip
        return r * tune.SLOW_START_GAIN**turns

    def _grow(self, now: float, sent_rate: float) -> None:
        if self._phase == "check":
            return
        r = self._rate
        if self._phase == "slow_start":
            grown = self._slow_start(sent_rate)
            if grown is None:
                return
            new = grown
        else:
            last = self._grown_at if self._grown_at is not None else now
            self._grown_at = now
            clean = now - self._clean_since
            c = self.ceiling
            if c is None or r <= c:
                self._above_since = now
            if c is not None and r > tune.RESTART * c and now - self._above_since >= tune.RESTART_S:
                self._phase, self.ceiling, self._confirmed = "slow_start", None, 0
                return
            if self._confirmed >= 2:  # a limit found twice: hold under it, then probe
                if clean < tune.PLATEAU_S:
                    return
                gain = tune.PROBE_GAIN
                if c is None or r > c:  # past the limit found: it rose
                    gain *= 2.0 ** ((clean - tune.PLATEAU_S) / tune.PROBE_ACCEL_S)
            else:  # found once (perhaps by chance): go back up soon and see again
                gain = tune.FAST_GAIN * 2.0 ** (clean / tune.PROBE_ACCEL_S)
            if self._rt.smooth:
                gain = min(gain, math.log(2.0) / self._rt.smooth)  # never faster than slow start
            new = r * (1.0 + gain * (now - last))
        # grow only while the limiter is what holds requests back (not the caller)
        if now - self._bound_at <= tune.BOUND_S:
            if self._rt.least:  # no faster than the in-flight cap allows
                new = min(new, tune.WINDOW_HEADROOM * self.max_in_flight / self._rt.least)
            self._rate = self._clamp(max(r, new))
