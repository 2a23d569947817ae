"""The round-trip as the limiter sees it: smoothed, and its least over the last seconds.

The smoothed round-trip sizes the window of requests in flight; the ratio of the two
tells slow start that a queue is building (or that the machine is busy) and it should wait.
"""

from __future__ import annotations

from collections import deque

from . import _tuning as tune

__all__ = ["RoundTrip"]


class RoundTrip:
    """Round-trip samples in, ``smooth`` (TCP's weighted mean) and ``least`` out (seconds).

    >>> rt = RoundTrip()
    >>> rt.add(10.0, 0.1); rt.add(10.5, 0.3)
    >>> round(rt.smooth, 3), rt.least
    (0.125, 0.1)
    """

    def __init__(self) -> None:
        self.smooth: float | None = None  # smoothed round-trip
        self.least: float | None = None  # least round-trip of the last tune.RTT_MIN_S
        self._lows: deque[tuple[float, float]] = deque()  # (answered at, round-trip) rising

    def add(self, now: float, rtt: float) -> None:
        """A request answered at ``now`` took ``rtt`` seconds."""
        s = self.smooth
        self.smooth = rtt if s is None else s + tune.RTT_WEIGHT * (rtt - s)
        # a running minimum over a recent span, not the whole run: a machine that became
        # slower (load) is a new normal after a few seconds, not a queue building for ever
        lows = self._lows
        while lows and lows[-1][1] >= rtt:
            lows.pop()
        lows.append((now, rtt))
        while lows[0][0] < now - tune.RTT_MIN_S:
            lows.popleft()
        self.least = lows[0][1]

    def rising(self) -> bool:
        """Whether the round-trip is ``RTT_RISE`` x its recent least (a queue, a busy machine)."""
        s, low = self.smooth, self.least
        return s is not None and low is not None and s > tune.RTT_RISE * low
