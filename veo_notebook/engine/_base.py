"""What every engine answers, and the helpers all of them share (private).

An engine answers five questions about a source of task rows, each with a small table:

* :meth:`Engine.grouped` — per group (and per distinct ``extra`` value): counts, exact
  sums, maxima (:meth:`Engine.grouped_pieces`: the same per distinct value of a column,
  asked in pieces when there are many);
* :meth:`Engine.ranks` — per group, the values at given 1-based ranks of a column
  sorted ascending (exact order statistics; never an approximate quantile);
* :meth:`Engine.rows` — a bounded set of rows (stuck tasks, media about to expire);
* :meth:`Engine.repeats` — the rows with an identical request close in time (the
  candidates of a duplicate submission);
* :meth:`Engine.extras` — grouped counts and sums over the extra submissions of those
  repeats (each after the first of a run of identical requests), computed in the engine;
* :meth:`Engine.worst_extras` — the few extra submissions that wasted the most (a
  bounded list, however many extras there are);
* :meth:`Engine.count` — the number of rows.

And four the report asks for (:mod:`veo_notebook.reporting.over_engine`), so that a
history it cannot hold is still drawn from aggregates:

* :meth:`Engine.subset` — the same source narrowed to some rows (lazily on SQL engines);
* :meth:`Engine.time_span` — the first and last value of a time column;
* :meth:`Engine.histogram` — per group, rows counted per log-scale bin of a value (the
  bins of the order statistics' first pass, :data:`._sql.BINS_PER_OCTAVE` an octave);
* :meth:`Engine.first` — a bounded list of rows in a stated order (``LIMIT``);
* :meth:`Engine.project` — the same rows with only some columns, so that a query asking
  for every column (:meth:`Engine.rows` of ``columns()``) reads only those.

Group keys come back as columns ``k0, k0_na, k1, k1_na, ...``: the key's value (NA where
missing) and, where it is missing, the label :func:`veo_notebook.fmt.group_column` gives
it (``unread``, ``upgrade task``, ``n/a``), computed inside the engine so that rows with
the same label form one group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from functools import cache

import pandas as pd

from . import _plan as p

__all__ = [
    "EARLIER",
    "UNREAD_COLUMN",
    "UPGRADE_COLUMN",
    "Engine",
    "key_columns",
    "missing_label_of",
    "missing_labels",
]

#: The columns the missing-key labels are decided by (see fmt.group_column).
UNREAD_COLUMN = "fetch_error"
UPGRADE_COLUMN = "task_type"
#: The last extra column of :meth:`Engine.extras`: an earlier row of the run is ``ok``.
EARLIER = "veo_earlier"


def key_columns(n: int) -> list[str]:
    """Names of the key columns of ``n`` keys: ``k0, k0_na, k1, k1_na, ...``."""
    return [name for i in range(n) for name in (f"k{i}", f"k{i}_na")]


@cache
def missing_labels(column: str) -> tuple[tuple[bool, bool, str], ...]:
    """The label of a missing ``column`` value by (unread, upgrade): the rule of
    :func:`veo_notebook.fmt.group_column`, asked of it on four rows (never retyped)."""
    from .. import fmt

    combos = [(u, g) for u in (False, True) for g in (False, True)]
    upgrade = sorted(fmt.UPGRADE_TYPES)[0]
    mini = pd.DataFrame(
        {
            column: pd.Series([None] * 4, dtype="string"),
            UNREAD_COLUMN: pd.Series(["x" if u else None for u, _ in combos], dtype="string"),
        }
    )
    if column != UPGRADE_COLUMN:
        mini[UPGRADE_COLUMN] = pd.Series(
            [upgrade if g else None for _, g in combos], dtype="string"
        )
    labels = fmt.group_column(mini, column).tolist()
    return tuple((u, g, str(text)) for (u, g), text in zip(combos, labels, strict=True))


def missing_label_of(labels: tuple[tuple[bool, bool, str], ...]) -> dict[tuple[bool, bool], str]:
    return {(u, g): text for u, g, text in labels}


class Engine(ABC):
    """The aggregates an analysis asks for; see the module docstring."""

    name: str
    #: Results a caller lets the engine keep while its source does not change (the
    #: report sets a dict: the latency table and its figure ask for the same curve);
    #: None, the default, keeps nothing.
    answers: dict | None = None

    @abstractmethod
    def columns(self) -> list[str]:
        """Column names of the source."""

    @abstractmethod
    def count(self) -> int:
        """Number of rows of the source."""

    @abstractmethod
    def grouped(
        self,
        keys: p.Keys,
        measures: Mapping[str, p.Measure],
        where: p.Cond | None = None,
        extra: Sequence[p.Value] = (),
        top: int | None = None,
    ) -> pd.DataFrame:
        """One row per group (and distinct ``extra`` values ``x0, x1, ...``) of the rows
        where ``where`` holds, with the key columns and one column per measure; with no
        keys and no extra, exactly one row. With ``top``: only the ``top`` rows with the
        largest first measure (ties: by the group columns, ascending, missing last)."""

    def grouped_pieces(
        self,
        keys: p.Keys,
        measures: Mapping[str, p.Measure],
        where: p.Cond | None,
        value: str,
    ) -> Iterator[pd.DataFrame]:
        """:meth:`grouped` with ``extra=(value,)``, in pieces: each piece holds every row
        of some distinct values of ``value``, the pieces together the whole answer (an
        engine can bound its hash table by the piece: a Kaplan–Meier curve has a row per
        distinct time). Here one piece."""
        yield self.grouped(keys, measures, where, extra=(value,))

    def forget(self) -> None:
        """Drop the answers kept (:attr:`answers`) and what holds them: the caller is done
        with the questions that shared them."""
        if self.answers is not None:
            self.answers.clear()

    @abstractmethod
    def ranks(
        self, keys: p.Keys, value: str, where: p.Cond | None, wanted: pd.DataFrame
    ) -> pd.DataFrame:
        """The ``value`` at each 1-based ``rank`` of ``wanted`` (key columns + ``rank``)
        within its group, the column sorted ascending over the rows where ``where``
        holds (and the value is set): ``wanted``'s columns + ``value``."""

    def will_rank(self, keys: p.Keys, value: str, where: p.Cond | None) -> None:
        """A hint: :meth:`ranks` of ``value`` over ``keys`` where ``where`` holds follows
        the next :meth:`grouped` of the same keys (SQL engines then count the ranks' bins
        in that grouped scan: one scan of the source instead of two)."""
        return None  # the pandas engine has nothing to share

    @abstractmethod
    def rows(
        self, columns: Sequence[str], where: p.Cond | None = None, limit: int | None = None
    ) -> pd.DataFrame:
        """The rows where ``where`` holds (at most ``limit``), the ``columns`` the source
        has, typed as the frame (:mod:`veo_notebook.schema`)."""

    @abstractmethod
    def repeats(
        self,
        same: Sequence[str],
        within_us: int,
        where: p.Cond | None,
        columns: Sequence[str],
    ) -> pd.DataFrame:
        """The rows (where ``where`` holds and ``create_time`` is set) that have another
        row with the same values in ``same`` created at most ``within_us`` µs before or
        after them: the candidates of a duplicate submission, a bounded set. SQL engines
        compare a 64-bit hash of ``same`` (a collision only adds rows; the caller checks
        them exactly), typed as :meth:`rows`."""

    @abstractmethod
    def extras(
        self,
        same: Sequence[str],
        within_us: int,
        where: p.Cond | None,
        ok: p.Cond,
        keys: p.Keys,
        measures: Mapping[str, p.Measure],
        extra: Sequence[p.Value] = (),
    ) -> pd.DataFrame:
        """:meth:`grouped` over the extra submissions: the rows (where ``where`` holds and
        ``create_time`` is set), ordered by ``create_time`` then ``task_id`` within equal
        values of ``same`` (missing equals missing; a list compares item by item), that
        follow the previous such row by at most ``within_us`` µs — every row of a run
        after its first. One more extra column (the last ``x``) says whether an earlier
        row of the row's run satisfies ``ok``. SQL engines compare the 64-bit hash of
        ``same`` (see :meth:`._sql.SqlEngine.extras`); pandas the values."""

    @abstractmethod
    def worst_extras(
        self,
        same: Sequence[str],
        within_us: int,
        where: p.Cond | None,
        ok: p.Cond,
        weight: p.Credit,
        columns: Sequence[str],
        limit: int,
    ) -> pd.DataFrame:
        """At most ``limit`` of the extra submissions of :meth:`extras` (same ``same``,
        ``within_us``, ``where``, ``ok``), those with the largest ``veo_wasted`` (the row's
        ``weight``, ``veo_credit``, where an earlier row of its run satisfies ``ok``, else
        0) first, ties by ``create_time`` then ``task_id``: the ``columns`` the source
        has (typed as :meth:`rows`), ``veo_first_id`` and ``veo_first_t`` (the task id
        and creation µs of the run's first row), ``veo_credit`` (NaN where none) and
        ``veo_wasted``. A bounded answer however many extras there are."""

    @abstractmethod
    def subset(self, where: p.Cond) -> Engine:
        """The same source narrowed to the rows where ``where`` holds; nothing is read."""

    @abstractmethod
    def time_span(self, column: str, where: p.Cond | None = None) -> tuple[int, int] | None:
        """(first, last) of a time column in µs over the rows where ``where`` holds (and
        the time is set); None when there is none."""

    @abstractmethod
    def histogram(self, keys: p.Keys, value: str, where: p.Cond | None) -> pd.DataFrame:
        """Per group, rows (where ``where`` holds and ``value`` is set) counted per
        log-scale bin ``b`` of ``value`` (``floor(log2(value) · BINS_PER_OCTAVE)``,
        values ≤ 0 in one lowest bin): key columns, ``b``, ``c``,
        sorted by group then bin."""

    @abstractmethod
    def first(
        self,
        columns: Sequence[str],
        where: p.Cond | None,
        order: str,
        limit: int,
        descending: bool = False,
    ) -> pd.DataFrame:
        """At most ``limit`` rows where ``where`` holds, sorted by ``order`` (missing
        last, ties by ``task_id``), the ``columns`` the source has, typed as :meth:`rows`."""

    def project(self, columns: Sequence[str]) -> Engine:
        """The same rows with only ``columns`` (those the source has); nothing is read.
        By default the engine itself: an engine whose rows are in memory reads nothing."""
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
