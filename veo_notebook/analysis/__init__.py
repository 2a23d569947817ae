"""Latency and failure analysis: pure functions of the typed frame.

Every function takes the frame of :func:`veo_notebook.to_frame` (columns in
:mod:`veo_notebook.schema`) and returns a new DataFrame (or Series); nothing is
modified in place and nothing loops over rows in Python, so a million rows take well
under a second.

Definitions used throughout:

* **latency** — ``complete_time − create_time`` in seconds (the ``latency_s`` column),
  queueing included: the API gives no start time.
  Naive percentiles use the *successful* tasks only (or the failed ones with
  ``outcome="failed"``), interpolated like ``numpy.quantile`` (method ``"linear"``).
* **percentile interval** — the exact distribution-free interval from order statistics:
  ranks from Binomial(n, q), coverage ≥ the confidence asked; NaN where the group is too
  small to give a bound.
* **Kaplan–Meier (KM)** — time-to-success, where a task still generating is
  right-censored at its age (``now − create_time``) and a failed task is censored at its
  failure time (or left out with ``failed="exclude"``). It estimates how long success
  takes *had nothing failed*; it is not the share of tasks that succeed by a time. KM
  percentiles are the first time the curve falls to 1 − q (NaN when it never does);
  their intervals are Brookmeyer–Crowley with the log-transformed Greenwood band.
* **failure rate** — (failed + generation_failed) / terminal tasks, with the Wilson
  score interval. Tasks still generating, of unknown status or unread are not counted.
* **credits** — reported by the API where the frame has it, else estimated from a dated
  price table (:mod:`veo_notebook.pricing`); failed tasks cost 0 unless billed. Duplicate
  submissions: :mod:`veo_notebook.analysis.duplicates`; expiring media:
  :mod:`veo_notebook.analysis.cost`.
* **families** — every task under one root (``root_task_id``): a generate, its extends,
  its 1080p and 4K upgrades; the final deliverable is the best succeeded member, 4K >
  1080p > extended > base (:mod:`veo_notebook.analysis.family`).
* **generations and upgrades apart** — a 1080p/4K upgrade's latency and failures are not
  a generation's: ``latency_summary``, ``km_latency`` and ``failure_rates`` group them
  apart by a first key ``work`` when ``by`` names no column (``attrs["note"]`` says so);
  ``upgrades="pooled"`` mixes them.
* **groups** — ``by`` takes column names and/or time buckets such as ``"1D"`` or
  ``"1h"`` on ``create_time`` (UTC), which appear as the ``period`` key (bucket start).

>>> import veo_notebook as veo
>>> summary = veo.latency_summary(df, by="model")            # doctest: +SKIP
"""

from __future__ import annotations

from .cost import cost_summary, expiring
from .duplicates import duplicate_submissions
from .error_rules import CATEGORY_MEANINGS, ERROR_RULES, ErrorRule
from .failures import FailureBreakdown, classify_errors, failure_breakdown, failure_rates
from .family import FACET_LABELS, FORMS, families, family_of
from .latency import DEFAULT_PERCENTILES, km_curve, km_latency, latency_summary, stuck_tasks

__all__ = [
    "CATEGORY_MEANINGS",
    "DEFAULT_PERCENTILES",
    "ERROR_RULES",
    "FACET_LABELS",
    "FORMS",
    "ErrorRule",
    "FailureBreakdown",
    "classify_errors",
    "cost_summary",
    "duplicate_submissions",
    "expiring",
    "failure_breakdown",
    "failure_rates",
    "families",
    "family_of",
    "km_curve",
    "km_latency",
    "latency_summary",
    "stuck_tasks",
]
