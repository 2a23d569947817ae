"""Checks that run from cron: say when the numbers really crossed a line, and only then.

``check(source, rules)`` evaluates rules such as ``failure_rate > 5%`` or
``p90_latency > 300s`` with the intervals the analysis functions give (Wilson for
rates, exact order statistics or Kaplan–Meier for percentiles): a rule is **breached**
when its whole interval lies beyond the threshold, **suspect** when only the point
estimate does. ``veo-notebook check`` runs them on a store, keeps each run in it and
notifies a webhook when a rule's state changes. Every metric's meaning:
:data:`METRICS` (printed by ``docs/checks.md`` and ``veo-notebook check --help``).

>>> import veo_notebook as veo
>>> rows = veo.check("veo.sqlite", "failure_rate > 5%", window="1D", by="model")  # doctest: +SKIP
"""

from __future__ import annotations

from ._evaluate import ALL, CHECK_COLUMNS, DEFAULT_WINDOW, check
from ._notify import ENV_NOTIFY, NotifyError, mask_url
from ._rules import (
    METRICS,
    OPERATORS,
    STUCK_AFTER,
    Metric,
    Rule,
    RuleFile,
    load_rules,
    parse_rule,
    parse_rules,
    rules_help,
    rules_table,
)
from ._run import RunResult, run
from ._table import history
from ._text import shown

__all__ = [
    "ALL",
    "CHECK_COLUMNS",
    "DEFAULT_WINDOW",
    "ENV_NOTIFY",
    "METRICS",
    "OPERATORS",
    "STUCK_AFTER",
    "Metric",
    "NotifyError",
    "Rule",
    "RuleFile",
    "RunResult",
    "check",
    "history",
    "load_rules",
    "mask_url",
    "parse_rule",
    "parse_rules",
    "rules_help",
    "rules_table",
    "run",
    "shown",
]
