"""The requests out: sent and not yet answered, by send time, each with what it was sent with.

A refusal comes back at once, so a request sent before it and still out was let in: the
limiter's estimates of what the server accepted count these too. Each request keeps the
number in flight when it was sent (a concurrency cap reads refusals by it) and the rate
it was sent at (slow start weighs an answer by it).
"""

from __future__ import annotations

__all__ = ["Outstanding"]

#: send times older than this are forgotten once the table is large (released without one)
FORGET_S = 120.0


class Outstanding:
    """Requests out, by send time: ``add`` at a send, ``pop`` at its answer.

    >>> out = Outstanding(max_in_flight=4)
    >>> out.add(1.0, 1, 10.0); out.add(1.0, 2, 10.0); out.add(1.5, 3, 12.0)
    >>> out.count(1.0, 1.2), out.times(0.5, 1.5), out.pop(1.5, 20.0), out.pop(9.0, 20.0)
    (2, [1.0, 1.0], (3, 12.0), (0, 20.0))
    """

    def __init__(self, max_in_flight: int) -> None:
        self._max = max_in_flight
        self._out: dict[float, list[tuple[int, float]]] = {}  # send time -> (in flight, rate)

    def add(self, now: float, in_flight: int, rate: float) -> None:
        """A request sent at ``now``, with ``in_flight`` out (itself included), at ``rate``."""
        self._out.setdefault(now, []).append((in_flight, rate))
        if len(self._out) > 8 * self._max:  # requests released without their send time
            for t in [t for t in self._out if t < now - FORGET_S]:
                del self._out[t]

    def pop(self, sent_at: float | None, rate: float) -> tuple[int, float]:
        """Forget the request sent at ``sent_at``: (in flight, rate) when it was sent; for an
        unknown one, (0, ``rate``)."""
        if sent_at is None or sent_at not in self._out:
            return 0, rate
        sent = self._out[sent_at]
        with_ = sent.pop()
        if not sent:
            del self._out[sent_at]
        return with_

    def count(self, lo: float, hi: float) -> int:
        """Requests out that were sent in ``[lo, hi]``."""
        return sum(len(cs) for s, cs in self._out.items() if lo <= s <= hi)

    def times(self, lo: float, hi: float) -> list[float]:
        """The send times of the requests out sent in ``(lo, hi)``, one per request."""
        return [s for s, cs in self._out.items() if lo < s < hi for _ in cs]
