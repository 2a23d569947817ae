"""The "Definitions" section: what each number means, built from the constants it names.

Every length, share and column list in these sentences comes from the constant the
code uses (``STUCK_AFTER``, ``CHANGE_COVER``, ``cost.DEFAULT_WINDOW``,
``duplicates.REQUEST_COLUMNS``, ``MEDIA_RETENTION``, ...), so the text cannot drift from
what was computed.
"""

from __future__ import annotations

from .. import fmt
from ..analysis._kernels import pct_name
from ..analysis.duplicates import DEFAULT_WINDOW, REQUEST_COLUMNS
from ..analysis.family import FORMS
from ..analysis.latency import STUCK_AFTER
from ..schema import MEDIA_RETENTION
from ._cells import CONFIDENCE, in_words
from .blocks import Facts, Section
from .context import Context
from .headline import CHANGE_COVER, CHANGE_PERIODS
from .latency import KM_PERCENTILES, LATENCY_IS, PERCENTILES, min_n_for_interval
from .videos import AT_RISK_WITHIN

__all__ = ["DEFINITIONS", "definitions"]

_CI = fmt.pct(CONFIDENCE, 0)


def _listing(words: list[str]) -> str:
    """``a, b or c``."""
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else "".join(words)


def _needs() -> str:
    """How many successful tasks each percentile's two-sided interval needs."""
    parts = [f"{min_n_for_interval(q)} for the {pct_name(q)}" for q in PERCENTILES]
    parts[0] = parts[0].replace(" for", " successful tasks for", 1)
    return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0]


DEFINITIONS: list[tuple[str, str]] = [
    ("latency", LATENCY_IS + " Naive percentiles use the successful tasks only."),
    (
        f"{pct_name(PERCENTILES[0])} … {pct_name(PERCENTILES[-1])}",
        f"percentiles of latency, linear interpolation (as numpy.quantile); in brackets the "
        f"exact {_CI} order-statistic interval. A small group gives one bound only "
        f"(≥ a / ≤ b) or none ({fmt.TOO_FEW}): both bounds need at least {{needs}}.",
    ),
    (
        ", ".join(f"KM {pct_name(q)}" for q in KM_PERCENTILES),
        "Kaplan–Meier percentiles of time to success: tasks still generating count as "
        "censored at their age, failed tasks as censored at their failure time. Larger than "
        f"the naive value when slow tasks are still running; '{fmt.NOT_REACHED}' when the "
        "curve never gets there (late failures, such as timeouts, hold it up). In brackets "
        f"the {_CI} Brookmeyer–Crowley interval (log-transformed Greenwood band).",
    ),
    ("time to failure", "complete_time − create_time of tasks that failed (successFlag 2 or 3)."),
    (
        "family (video)",
        "a root task and every task under it by parentTaskId (extends, 1080p and 4K "
        "upgrades); the final file is the best member that succeeded, "
        + ", then ".join(FORMS)
        + "; time to final runs from the root's creation to that member's completion.",
    ),
    (
        "failure rate",
        "(failed + generation_failed) / finished tasks; tasks still generating, of unknown "
        f"status or {fmt.UNREAD} are left out. In brackets the {_CI} Wilson score interval. "
        "The success rate is 1 − the failure rate.",
    ),
    (
        "change",
        f"the latest period ({_listing([in_words(p) for _, p in CHANGE_PERIODS])}: the longest "
        f"that the tasks' span covers {CHANGE_COVER:g} times) against the period of the same "
        f"length before it; CHANGED when the two {_CI} intervals do not overlap.",
    ),
    (
        "stuck",
        f"still generating more than {in_words(STUCK_AFTER)} after creation, at the latest fetch.",
    ),
    (
        "credits",
        "reported by the API where an answer carries creditsConsumed, else estimated from a "
        "dated, sourced price table (veo_notebook/pricing/prices.csv, replaceable: "
        "veo.with_credits(df, prices=...) before the report); failed tasks cost 0 (reported "
        "as not billed).",
    ),
    (
        "duplicate submission",
        f"a task whose request ({', '.join(c.replace('_', ' ') for c in REQUEST_COLUMNS)}) "
        f"repeats one made less than {in_words(DEFAULT_WINDOW)} before; its credits are "
        "wasted when an earlier identical submission did not fail.",
    ),
    (
        "at risk",
        f"a succeeded task whose video kie.ai deletes ({in_words(MEDIA_RETENTION)} after "
        f"completion) within {in_words(AT_RISK_WITHIN)}.",
    ),
    (
        fmt.UNREAD,
        "a task whose record could not be read; counted on its own line, not as a model.",
    ),
    (fmt.UPGRADE, "a 1080p or 4k upgrade: it has no model of its own."),
    (fmt.MISSING, "the value does not apply, or the reason is given beside it."),
    ("times", "all times are UTC."),
]


def definitions(ctx: Context) -> Section | None:
    """What each number means (once, at the end)."""
    if not ctx.n:
        return None
    needs = _needs()  # computed on first use: it scans interval bounds up to 1,000 tasks
    rows = [(k, v.replace("{needs}", needs)) for k, v in DEFINITIONS]
    return Section("Definitions", [Facts(rows)])
