"""The retry policy (exponential backoff, full jitter) and the congestion test of the limiter.

Both are pure: :class:`RetryPolicy` says how long to wait before a retry,
:func:`congested` whether a count of refusals is more than a background share explains,
:func:`fell` whether it is significantly under a share seen before.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from . import _tuning as tune

__all__ = ["RetryPolicy", "congested", "fell"]

#: a refusal count is congestion beyond this many standard deviations above the background
SIGMAS = 3.0


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


def fell(refused: int, answers: int, before: float | None) -> bool:
    """Whether ``refused`` of ``answers`` is significantly under a share ``before``.

    True too when there is no share before, or too few answers to tell.
    """
    if before is None:
        return True
    bound = answers * before - tune.FELL_SIGMAS * math.sqrt(answers * before * (1.0 - before))
    return refused < bound or bound < 0.5
