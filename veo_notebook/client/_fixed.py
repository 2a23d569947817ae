"""The signs of a fixed per-second window, read from the send times of refused requests.

A fixed window counts requests per second of the server's clock and refuses the rest
until the second turns: a sender held just over its limit is refused at the same phase
of every second, which random refusals never are; a full window refuses everything
until its edge, which the limiter then finds with one request at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from . import _tuning as tune

__all__ = ["at_one_phase"]


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
