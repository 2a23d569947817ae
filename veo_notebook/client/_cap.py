"""A cap on requests in flight, told from a rate limit by the counts refusals came with.

A gateway may limit how many requests are in flight rather than how many are sent per
second. Cutting the rate against such a cap wastes what it allows: the limiter asks
:class:`CapFinder` at every refusal whether the refusals read as a cap, and keeps at most
that many in flight (trying one more now and then) instead of cutting its rate.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import _tuning as tune

__all__ = ["CapFinder"]


class CapFinder:
    """Reads a concurrency cap from the answers, and probes it one higher now and then.

    ``cap`` is None until refusals read as a cap; ``caps`` counts the caps found.

    >>> f = CapFinder(max_in_flight=64)
    >>> answers = [(1.0, False, c) for c in (1, 2, 3, 4) * 3] + [(1.1, True, 5)] * 3
    >>> f.find(1.2, answers), f.cap
    (True, 4)
    """

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.cap: int | None = None  # a concurrency cap found (requests in flight)
        self.caps = 0  # caps found
        self._found = 0  # the cap before a probe one above it
        self._since = 0.0  # when the cap last changed

    def probe_refused(self, now: float, count: int) -> bool:
        """A refusal sent with ``count`` in flight: was it the probe above the cap? (then back)"""
        if self.cap is not None and self.cap > self._found and count > self._found:
            self.cap, self._since = self._found, now
            return True
        return False

    def find(self, now: float, answers: Iterable[tuple[float, bool, int]]) -> bool:
        """Whether refusals read as a cap on requests in flight (then it is ``cap``).

        ``answers`` are (answered at, refused, in flight when sent), newest last. Over a
        concurrency cap N, requests sent with more than N in flight are refused and the
        others accepted: every refusal comes above some count that nearly every accepted
        request was at or below. Over a rate limit, refusals come at the counts accepted
        requests had. The count a request was sent with includes answers on their way
        back, so it can only overstate the server's: the cap read is never below N.
        """
        refused: list[int] = []
        ok: list[int] = []
        for t, r, c in reversed(list(answers)):
            if t <= now - tune.CAP_LOOK_S:
                break
            if c:
                (refused if r else ok).append(c)
        if len(refused) < tune.CAP_REFUSALS or len(ok) < tune.SIGNAL_ANSWERS // 2:
            return False
        cap = min(refused) - 1
        if cap < 1 or (self.cap is not None and cap >= self.cap):
            return False
        if sum(c > cap for c in ok) > tune.CAP_ABOVE * len(ok):
            return False
        self.cap = self._found = cap
        self._since = now
        self.caps += 1
        return True

    def probe(self, now: float, bound: bool) -> None:
        """Try a cap found one higher every ``CAP_PROBE_S`` (a cap that rose, or a false one).

        ``bound``: the limiter is what holds requests back (else one more is not needed).
        """
        if self.cap is None or now - self._since < tune.CAP_PROBE_S:
            return
        if self.cap > self._found:  # the probe drew no refusal: keep it
            self._found, self._since = self.cap, now
        elif self.cap < self.max_in_flight and bound:
            self.cap, self._since = self.cap + 1, now
