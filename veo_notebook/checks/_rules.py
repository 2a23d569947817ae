"""The rule grammar: what each metric means (the ONE table), parsing, and TOML files (private).

A rule is ``METRIC[(ARG)] OP THRESHOLD[UNIT]``, e.g. ``failure_rate > 5%``,
``p90_latency > 300s``, ``generating_longer_than(30min) > 10``, ``spend(1D) > 20000 credits``.
:data:`METRICS` says what every metric means, once; the docs (``docs/checks.md``) and
``veo-notebook check --help`` print it (:func:`rules_table`, :func:`rules_help`).

>>> parse_rule("failure_rate > 5%").threshold
0.05
>>> parse_rule("p90_latency > 5min").threshold
300.0
"""

from __future__ import annotations

import math
import os
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis.duplicates import DEFAULT_WINDOW as DUPLICATE_WINDOW
from ..analysis.latency import STUCK_AFTER
from ..errors import InputError
from ..schema import MEDIA_RETENTION

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "METRICS",
    "OPERATORS",
    "STUCK_AFTER",
    "Metric",
    "Rule",
    "RuleFile",
    "load_rules",
    "parse_rule",
    "parse_rules",
    "rules_help",
    "rules_table",
    "span_text",
]


# the kinds of value a metric has, and the units its threshold may carry
SHARE, SECONDS, COUNT, CREDITS = "share", "seconds", "count", "credits"
_UNITS: dict[str, dict[str, float]] = {
    SHARE: {"%": 0.01, "": 1.0},
    SECONDS: {"": 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0},
    COUNT: {"": 1.0, "tasks": 1.0},
    CREDITS: {"": 1.0, "credits": 1.0},
}
# where a metric looks: the check's window, its own span, or every task as it is now
CHECK_WINDOW, OWN_SPAN, NOW = "the check's window", "its own span", "every task, now"
WILSON, LATENCY_CI, EXACT = (
    "Wilson score",
    "exact order statistics; Kaplan–Meier while tasks generate",
    "exact (an observed count or sum)",
)


@dataclass(frozen=True)
class Metric:
    """One metric a rule can test: its syntax, unit, interval, window and meaning."""

    name: str
    syntax: str
    kind: str
    interval: str
    window: str
    meaning: str
    built_from: str
    arg: str | None = None  # "span" when the metric takes one; its default if optional


#: Every metric a rule can name, with its meaning: the one definition docs and --help print.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "failure_rate",
            "failure_rate",
            SHARE,
            WILSON,
            CHECK_WINDOW,
            "failed + generation_failed over finished tasks created in the window "
            "(tasks still generating or unread do not count); n = finished tasks",
            "failure_rates",
        ),
        Metric(
            "latency",
            "pNN_latency",
            SECONDS,
            LATENCY_CI,
            CHECK_WINDOW,
            "the NN-th percentile of time to success, creation → completion (queueing "
            "included), of the tasks created in the window; a task still generating counts "
            "as 'at least its age' (Kaplan–Meier), failed tasks are left out; "
            "n = succeeded + generating",
            "latency_summary / km_latency",
        ),
        Metric(
            "stuck",
            "stuck",
            COUNT,
            EXACT,
            NOW,
            f"tasks still generating longer than {STUCK_AFTER} after creation (as "
            f"generating_longer_than({STUCK_AFTER})); n = tasks generating",
            "stuck_tasks",
        ),
        Metric(
            "generating_longer_than",
            "generating_longer_than(SPAN)",
            COUNT,
            EXACT,
            NOW,
            "tasks still generating longer than SPAN after creation; n = tasks generating",
            "stuck_tasks",
            "span",
        ),
        Metric(
            "expiring_unarchived",
            "expiring_unarchived(SPAN)",
            COUNT,
            EXACT,
            NOW,
            "succeeded tasks whose video kie.ai deletes within SPAN "
            f"({MEDIA_RETENTION.days} days after completion) and that are not archived; "
            "already deleted ones do not count; "
            "n = succeeded tasks",
            "expiring",
            "span",
        ),
        Metric(
            "spend",
            "spend(SPAN)",
            CREDITS,
            EXACT,
            OWN_SPAN,
            "credits of the tasks created in the last SPAN (reported, else estimated "
            "from the price table; failed tasks cost 0); n = tasks",
            "cost_summary",
            "span",
        ),
        Metric(
            "duplicates_wasted",
            "duplicates_wasted(SPAN)",
            CREDITS,
            EXACT,
            OWN_SPAN,
            "credits spent in the last SPAN on repeated submissions of a request whose "
            f"earlier submission (up to {DUPLICATE_WINDOW} before, in or before the span) "
            "had not failed; n = tasks",
            "duplicate_submissions",
            "span",
        ),
        Metric(
            "callbacks_missing",
            "callbacks_missing",
            SHARE,
            WILSON,
            CHECK_WINDOW,
            "finished tasks created in the window that named a callBackUrl and whose "
            "callback never arrived, over finished tasks that named one; n = those tasks",
            "callback_audit",
        ),
    )
}
#: The comparison operators, each with "the value is beyond the threshold".
OPERATORS: dict[str, Any] = {
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
}
_LATENCY = re.compile(r"p(?P<q>\d{1,2}(?:\.\d+)?)_latency")
_RULE = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*(?:\(\s*(?P<arg>[^()]*?)\s*\))?\s*"
    r"(?P<op>>=|<=|>|<)\s*(?P<num>[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+))\s*(?P<unit>[A-Za-z%]*)\s*$"
)


@dataclass(frozen=True)
class Rule:
    """One parsed rule. ``threshold`` is in base units: a share in [0, 1], seconds,
    a count or credits; ``window`` a span overriding the check's (from a TOML file)."""

    text: str
    metric: str
    op: str
    threshold: float
    span: str | None = None
    quantile: float | None = None
    window: str | None = None

    @property
    def kind(self) -> str:
        """The kind of value (share, seconds, count, credits)."""
        return METRICS[self.metric].kind

    def beyond(self, value: float) -> bool:
        """Whether ``value`` is on the wrong side of the threshold (NaN never is)."""
        return not math.isnan(value) and bool(OPERATORS[self.op](value, self.threshold))

    def __str__(self) -> str:
        return self.text


def span_text(value: object, what: str) -> str:
    """A positive span (``"30min"``, ``"1D"``) checked and kept as the user wrote it."""
    text = str(value).strip()
    try:
        td = pd.Timedelta(text)
    except (ValueError, TypeError):
        td = pd.NaT
    if pd.isna(td) or td <= pd.Timedelta(0):
        raise InputError(f"{what}: {text!r} is not a time span like '30min', '1h' or '1D'")
    return text


def _metric(name: str) -> tuple[str, float | None]:
    m = _LATENCY.fullmatch(name)
    if m:
        q = float(m.group("q")) / 100
        if not 0 < q < 1:
            raise InputError(f"rule {name!r}: the percentile must be between p1 and p99.9")
        return "latency", q
    if name in METRICS and name != "latency":
        return name, None
    known = ", ".join(m.syntax for m in METRICS.values())
    raise InputError(f"rule: unknown metric {name!r}; known: {known}")


def parse_rule(text: str, *, window: str | None = None) -> Rule:
    """One rule from its text (``"failure_rate > 5%"``); an :class:`InputError` names the fix.

    >>> r = parse_rule("generating_longer_than(30min) > 10")
    >>> r.metric, r.span, r.threshold
    ('generating_longer_than', '30min', 10.0)
    """
    m = _RULE.match(str(text))
    if m is None:
        raise InputError(
            f"rule {text!r} does not read as METRIC[(SPAN)] OP THRESHOLD, e.g. "
            "'failure_rate > 5%' or 'p90_latency > 300s'"
        )
    metric, q = _metric(m.group("name"))
    spec = METRICS[metric]
    arg = m.group("arg")
    if spec.arg == "span" and not arg:
        raise InputError(f"rule {text!r}: {spec.syntax} needs a span, e.g. {metric}(1D)")
    if spec.arg is None and arg is not None:
        raise InputError(f"rule {text!r}: {spec.syntax} takes no argument")
    span = span_text(arg, f"rule {text!r}") if arg else None
    unit = m.group("unit")
    scale = _UNITS[spec.kind].get(unit if unit in ("%", "") else unit.lower())
    if scale is None:
        units = " or ".join(repr(u) for u in _UNITS[spec.kind] if u) or "no unit"
        raise InputError(f"rule {text!r}: {spec.syntax} is a {spec.kind}; use {units}")
    threshold = float(m.group("num").replace("_", "")) * scale
    if spec.kind == SHARE and not 0 <= threshold <= 1:
        raise InputError(f"rule {text!r}: a share is between 0 and 1; write 5% or 0.05")
    if window is not None:
        window = span_text(window, f"rule {text!r}: window")
    canonical = " ".join(str(text).split())
    return Rule(canonical, metric, m.group("op"), threshold, span, q, window)


def parse_rules(rules: object) -> list[Rule]:
    """Rules from a rule, a text (one rule per line; ``#`` comments), a ``.toml`` path,
    or a sequence of those (a mapping item: ``{"rule": ..., "window": ...}``)."""
    if isinstance(rules, Rule):
        return [rules]
    if isinstance(rules, os.PathLike) or (
        isinstance(rules, str) and rules.strip().lower().endswith(".toml")
    ):
        return load_rules(rules).rules
    if isinstance(rules, str):
        lines = [ln.split("#", 1)[0].strip() for ln in rules.splitlines()]
        out = [parse_rule(ln) for ln in lines if ln]
    elif isinstance(rules, Mapping):
        out = [_from_item(rules)]
    elif isinstance(rules, Iterable):
        out = [r for item in rules for r in parse_rules(item)]
    else:
        raise InputError(
            f"rules: a {type(rules).__name__} is not a rule; give a text like "
            "'failure_rate > 5%', a list of them, or a .toml file"
        )
    if not out:
        raise InputError("rules: no rule given")
    return out


def _from_item(item: Mapping[str, Any]) -> Rule:
    extra = set(item) - {"rule", "window"}
    if "rule" not in item or extra:
        raise InputError(
            "rules: a table item has a 'rule' (and optionally a 'window'), e.g. "
            '{ rule = "failure_rate > 5%", window = "1h" }'
        )
    return parse_rule(str(item["rule"]), window=item.get("window"))


@dataclass(frozen=True)
class RuleFile:
    """What a rules file holds: the rules, and the defaults it sets (``window``, ``by``)."""

    rules: list[Rule]
    window: str | None = None
    by: tuple[str, ...] = ()


def load_rules(path: str | os.PathLike[str]) -> RuleFile:
    """Read a rules file (TOML): ``rules = [...]`` (texts, or ``{rule, window}`` tables),
    and optionally ``window = "1D"`` and ``by = "model"`` (or a list).

    >>> load_rules("rules.toml").rules[0].text                 # doctest: +SKIP
    'failure_rate > 5%'
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"rules: no file {str(p)!r}; give a .toml file with rules = [...]")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"rules: {p.name} is not valid TOML ({exc})") from exc
    unknown = set(doc) - {"rules", "window", "by"}
    if unknown:
        raise InputError(
            f"rules: {p.name} has unknown keys {sorted(unknown)}; use rules, window and by"
        )
    items = doc.get("rules")
    if not isinstance(items, list) or not items:
        raise InputError(f'rules: {p.name} has no rules = ["failure_rate > 5%", ...] list')
    window = doc.get("window")
    by = doc.get("by", ())
    by_t = (by,) if isinstance(by, str) else tuple(str(b) for b in by)
    return RuleFile(
        parse_rules(items),
        None if window is None else span_text(window, f"rules: {p.name}: window"),
        by_t,
    )


def _rows() -> list[tuple[str, ...]]:
    return [
        (m.syntax, m.kind, m.interval, m.window, m.meaning, m.built_from) for m in METRICS.values()
    ]


_HEAD = ("rule", "unit", "interval", "looks at", "meaning", "built from")


def rules_table() -> str:
    """The metrics as a Markdown table (``docs/checks.md`` holds it; a test keeps it in step)."""
    lines = ["| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
    for row in _rows():
        cells = [f"`{row[0]}`", *row[1:-1], f"`{row[-1]}`"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rules_help(width: int = 88) -> str:
    """The metrics as plain text, for ``veo-notebook check --help``."""
    out = []
    for syntax, kind, interval, where, meaning, _ in _rows():
        out.append(f"  {syntax}  ({kind}; {where}; interval: {interval})")
        out.append(textwrap.fill(meaning, width, initial_indent=" " * 6, subsequent_indent=" " * 6))
    return "\n".join(out)
