"""The signs of a fixed per-second window, read from the send times of refused requests.

A fixed window counts requests per second of the server's clock and refuses the rest
until the second turns: a sender held just over its limit is refused at the same phase
of every second, which random refusals never are; a full window refuses everything
until its edge, which the limiter then finds with one request at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from . import _tuning as tune

__all__ = ["FullWindow", "at_one_phase", "between_edges"]


def at_one_phase(sent: Sequence[float]) -> bool:
    """Whether refused requests sent at ``sent`` (rising) are a fixed window's edge.

    ``EDGE_REFUSALS`` or more over as many seconds, all within ``EDGE_WIDTH`` of a
    second of one phase of the clock (the phases are on a circle: 0.97 is near 0.02).

    >>> at_one_phase([3.98, 5.01, 6.0]), at_one_phase([3.2, 5.01, 6.0])
    (True, False)
    """
    if (
        len(sent) < tune.EDGE_REFUSALS
        or sent[-1] - sent[0] < tune.EDGE_REFUSALS - 1.0 - tune.EDGE_WIDTH
    ):
        return False
    phases = sorted(s % 1.0 for s in sent)
    gaps = [b - a for a, b in itertools.pairwise(phases)] + [phases[0] + 1.0 - phases[-1]]
    return 1.0 - max(gaps) <= tune.EDGE_WIDTH


def between_edges(refused: Sequence[float], let_in: Callable[[float, float], int]) -> int | None:
    """What one window held, when refused requests at ``refused`` (rising) are two of its edges.

    A fixed window held just over its limit refuses a cluster of requests at the end of
    each of its seconds (``EDGE_CLUSTER`` or more within ``EDGE_WIDTH``), the next
    cluster a little under a second after the last (the window fills before its end):
    everything let in between the two is what one window holds. Random refusals do not
    come in such pairs of clusters with nothing refused between them. None if not.

    >>> between_edges([1.90, 1.95, 2.85, 2.88], lambda lo, hi: 50)
    50
    >>> between_edges([1.90, 2.30, 2.85, 2.88], lambda lo, hi: 50) is None
    True
    """
    clusters: list[list[float]] = []
    for s in refused:
        if clusters and s - clusters[-1][-1] <= tune.EDGE_WIDTH:
            clusters[-1].append(s)
        else:
            clusters.append([s])
    if len(clusters) < 2:
        return None
    first, second = clusters[-2], clusters[-1]
    gap = second[0] - first[-1]
    if min(len(first), len(second)) < tune.EDGE_CLUSTER or not (
        tune.EDGE_GAP <= gap <= tune.SIGNAL_S + tune.EDGE_WIDTH
    ):
        return None
    return let_in(first[-1], second[0])


class FullWindow:
    """A full fixed window, waited out with one request every ``EDGE_PROBE_S`` until one passes.

    >>> w = FullWindow()
    >>> w.start(3.0); w.passed(2.9), w.waiting, w.passed(3.4), w.waiting
    (False, True, True, False)
    >>> w.start(5.0); w.given_up(5.5), w.given_up(6.2), w.waiting
    (False, True, False)
    """

    def __init__(self) -> None:
        self.since: float | None = None  # when the wait began

    @property
    def waiting(self) -> bool:
        """Whether the limiter waits for the window's edge (one probe at a time)."""
        return self.since is not None

    def start(self, now: float) -> None:
        """Nothing sent after a cut got in: wait for the edge from ``now``."""
        if self.since is None:
            self.since = now

    def given_up(self, now: float) -> bool:
        """Whether the wait has lasted past any window's edge (then it ends: not a window)."""
        if self.since is None or now - self.since <= tune.SIGNAL_S + tune.EDGE_PROBE_S:
            return False
        self.since = None
        return True

    def passed(self, sent_at: float | None) -> bool:
        """Whether an accepted request sent at ``sent_at`` passed the edge (the wait ends)."""
        if self.since is None or sent_at is None or sent_at < self.since:
            return False
        self.since = None
        return True

    @staticmethod
    def limit(
        let_in: Callable[[float, float], int], refused: Sequence[float], edge: float
    ) -> float:
        """What the window held: let in from its start to its first ``refused`` request.

        Its start is one second before its edge, which lies between the last refused
        request and the one accepted at ``edge``: the mean of the two counts, within half
        a probe's worth of requests.
        """
        lo = let_in(edge - tune.SIGNAL_S, refused[0])
        hi = let_in(refused[-1] - tune.SIGNAL_S, refused[0])
        return (lo + hi) / 2.0
