"""What an analysis asks an engine for: group keys, row conditions, measures (private).

A tiny vocabulary, translated once per engine (numpy for pandas, SQL text for DuckDB
and Spark), so a statistic states its aggregate once and every engine computes the
same thing. Values an engine hands back are plain: strings, integers, floats, and
times as integer microseconds since the epoch (UTC); the finishing step turns them into
the frame's types.

>>> where = All((In("status", ("success",)), NotNull("latency_s")))
>>> where.parts[0].values
('success',)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "All",
    "Any",
    "Bucket",
    "Cond",
    "Count",
    "Credit",
    "In",
    "Key",
    "Keys",
    "Max",
    "Micros",
    "Not",
    "NotNull",
    "Sum",
    "SumMicros",
    "TimeBefore",
    "Value",
]


# --- row conditions ---------------------------------------------------------------------
@dataclass(frozen=True)
class In:
    """``column`` is one of ``values`` (NA is never in)."""

    column: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class NotNull:
    """``column`` holds a value."""

    column: str


@dataclass(frozen=True)
class TimeBefore:
    """The time ``column`` is strictly before ``micros`` (epoch µs, UTC); NA is not."""

    column: str
    micros: int


@dataclass(frozen=True)
class All:
    """Every part holds."""

    parts: tuple[Cond, ...]


@dataclass(frozen=True)
class Any:
    """At least one part holds."""

    parts: tuple[Cond, ...]


@dataclass(frozen=True)
class Not:
    """The part does not hold (NA counts as not holding, before the negation)."""

    part: Cond


Cond = In | NotNull | TimeBefore | All | Any | Not


# --- values -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Micros:
    """A time column as integer microseconds since the epoch (UTC)."""

    column: str


Value = str | Micros  # a column as it is, or a time column in µs


# --- group keys -------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    """Group by a column; a missing value is labelled (``labels``: the label of a missing
    key by (unread, upgrade) — see :func:`veo_notebook.fmt.group_column`), else kept NA.
    """

    column: str
    labels: tuple[tuple[bool, bool, str], ...] | None = None
    kind: str = "string"  # string / int / bool: the type its values come back as; "work":
    # the kind of work of the task type (labels_work: (other, 1080p/4K upgrade))
    labels_work: tuple[str, str] = ("generation", "upgrade")


@dataclass(frozen=True)
class Bucket:
    """Group by the start of a bucket of ``create_time``, as µs: fixed-size buckets of
    ``step`` µs starting ``offset`` µs after the epoch (weeks start on a weekday), or a
    calendar ``period`` (``"MS"``: months; the pandas engine only). A missing time is
    labelled as :class:`Key` does."""

    step: int
    labels: tuple[tuple[bool, bool, str], ...] | None = None
    offset: int = 0
    period: str | None = None
    column: str = "create_time"


Keys = tuple[Key | Bucket, ...]


# --- measures ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Count:
    """Rows (where ``where`` holds)."""

    where: Cond | None = None


@dataclass(frozen=True)
class Sum:
    """Sum of a float column over the rows where it is set (and ``where`` holds)."""

    column: str
    where: Cond | None = None


@dataclass(frozen=True)
class SumMicros:
    """Exact sum of a seconds column in integer microseconds (order-free: identical on
    every engine), over the rows where it is set (and ``where`` holds)."""

    column: str
    where: Cond | None = None


@dataclass(frozen=True)
class Max:
    """Largest value of a column (or time in µs) where ``where`` holds; NA if none."""

    value: Value
    where: Cond | None = None


Measure = Count | Sum | SumMicros | Max


# --- a number per row -------------------------------------------------------------------
@dataclass(frozen=True)
class Credit:
    """A number per row: ``column`` where it is set (None: no such column), else the
    number ``table`` gives the row's ``keys`` values (``(values, number)`` pairs; a
    missing value matches a missing one), else 0 — a task's credits, priced for the few
    combinations there are."""

    keys: tuple[str, ...] = ()
    table: tuple[tuple[tuple[object, ...], float], ...] = ()
    column: str | None = None
