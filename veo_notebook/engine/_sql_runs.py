"""Runs of identical requests as SQL: duplicate submissions found in the engine (private).

The SQL engines' :meth:`~._base.Engine.repeats`, :meth:`~._base.Engine.extras` and
:meth:`~._base.Engine.worst_extras`, built here from one relation of runs (the rows near
a repeat of their request, ordered within it, each marked: does it repeat the one before,
where does its run start, which earlier row was ``ok``). A request is a 64-bit hash
(:attr:`._sql.Dialect.hash`) of its ``same`` values: two different requests are merged
only if their hashes collide and they were made within the window of each other.

Where the engine tells rows apart (DuckDB over Parquet: :attr:`._sql.SqlEngine.row_src`)
the runs are marked on a staged table of the near rows alone (request hash, time, not a
failure, identity), and only the extras' own rows are read again (:func:`_flags`); the
near rows are read from the request gaps a store's dataset keeps, where it keeps them
(:func:`_from_gaps`), else found by a window over every row, in pieces of time;
elsewhere (Spark, a user's DuckDB relation) the rows at the near times are read whole
and marked (:func:`_runs`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from ..frame._request_gaps import REQUEST_HINTS
from . import _plan as p
from ._base import EARLIER
from ._dialect import arrow_type as _arrow_type
from ._dialect import lit as _lit

if TYPE_CHECKING:
    from ._sql import SqlEngine

__all__ = ["credit", "extras", "repeats", "worst_extras"]

#: The columns :func:`worst_extras` adds: the run's first task id and time (µs), the
#: row's credit and the credit it wasted.
FIRST_ID, FIRST_T, CREDIT, WASTED = "veo_first_id", "veo_first_t", "veo_credit", "veo_wasted"


def repeats(
    eng: SqlEngine,
    same: Sequence[str],
    within_us: int,
    where: p.Cond | None,
    columns: Sequence[str],
) -> pd.DataFrame:
    """See :meth:`._base.Engine.repeats`: a window over two integers a row (the costly sort
    never carries the rows), the rows then fetched by a join."""
    cols = [c for c in columns if eng.has(c)]
    names = ", ".join(eng.q(c) for c in cols)
    present = [eng.q(c) for c in same if eng.has(c)]
    h = eng.dialect.hash.format(", ".join(present)) if present else "0"
    t = eng.us("create_time")
    cond = eng.cond(p.All(((where or p.All(())), p.NotNull("create_time"))))
    w = "OVER (PARTITION BY veo_h ORDER BY veo_t)"  # equal times: a gap of 0 either way
    near = f"veo_before <= {int(within_us)} OR veo_after <= {int(within_us)}"
    keyed = f"SELECT {{}}, {h} AS veo_h, {t} AS veo_t FROM {eng.src} WHERE {cond}"
    sql = (
        f"WITH c AS (SELECT DISTINCT veo_h, veo_t FROM (SELECT veo_h, veo_t, "
        f"veo_t - lag(veo_t) {w} AS veo_before, lead(veo_t) {w} - veo_t AS veo_after "
        f"FROM ({keyed.format('1 AS veo_one')}) AS a) AS b WHERE {near}) "
        f"SELECT {', '.join(f's.{eng.q(c)}' for c in cols)} FROM ({keyed.format(names)}) AS s "
        "JOIN c ON s.veo_h = c.veo_h AND s.veo_t = c.veo_t"
    )
    return eng._typed(eng._fetch(sql))


@contextmanager
def _runs(
    eng: SqlEngine,
    same: Sequence[str],
    within_us: int,
    where: p.Cond | None,
    ok: p.Cond,
    first: bool = False,
) -> Iterator[str]:
    """The relation of runs, while the near times it reads exist. Two scans: the first
    finds the creation times of the rows with a row of the same request within
    ``within_us``; the second keeps the rows created at one of those times (a superset of
    the runs' rows, :func:`_kept`), orders them within their request and marks them
    (``veo_rep``: repeats the row before; ``veo_start``: its run's first row number;
    ``veo_last_ok``: the last earlier ``ok`` row number; with ``first``, :data:`FIRST_ID`
    and :data:`FIRST_T`: the task id and time of the run's first row, the last non-repeat
    so far, in the same window)."""
    h, cond = _request(eng, same, where)
    w = int(within_us)
    with _kept(eng, h, w, cond, eng.cond(ok)) as (rows, tie):
        yield _marked(eng, rows, tie, w, eng.cond(ok), eng.q("task_id") if first else None)


def _request(eng: SqlEngine, same: Sequence[str], where: p.Cond | None) -> tuple[str, str]:
    """The request's hash, and the rows that may repeat one (with a creation time)."""
    present = [_same(eng, c) for c in same if eng.has(c)]
    h = eng.dialect.hash.format(", ".join(present)) if present else "0"
    return h, eng.cond(p.All(((where or p.All(())), p.NotNull("create_time"))))


def _marked(
    eng: SqlEngine,
    rows: str,
    tie: str,
    w: int,
    ok: str,
    first: str | None,
    rep: str | None = None,
) -> str:
    """``rows`` ordered within their request (by time, then ``tie``) and marked; ``ok``:
    the SQL of a row that is not a failure. With ``rep`` (whether the row repeats the one
    before, known where no two rows of a request share a time), the rows are ordered by
    time alone and the first window level is not needed."""
    ok_flag = f"CASE WHEN coalesce({ok}, FALSE) THEN 1 ELSE 0 END AS veo_ok"
    if rep is None:
        part = f"PARTITION BY veo_h ORDER BY veo_t, {tie}"
        marked = (
            f"SELECT *, coalesce(veo_t - lag(veo_t) OVER ({part}) <= {w}, FALSE) AS veo_rep, "
            f"row_number() OVER ({part}) AS veo_rn, {ok_flag} FROM ({rows}) AS r"
        )
    else:  # the time orders the rows: it numbers them too
        marked = f"SELECT *, {rep} AS veo_rep, veo_t AS veo_rn, {ok_flag} FROM ({rows}) AS r"
    # the second level orders by the row number: one integer to sort, not (time, id); the
    # last number seen is the greatest (a running max over a frame costs twice as much)
    before = "PARTITION BY veo_h ORDER BY veo_rn ROWS BETWEEN UNBOUNDED PRECEDING AND"
    seen = eng.dialect.last_seen
    firsts = "".join(
        f", {seen.format(f'CASE WHEN NOT veo_rep THEN {v} END')} OVER ({before} CURRENT ROW) "
        f"AS {name}"
        for v, name in ((first, FIRST_ID), ("veo_t", FIRST_T))
        if first is not None
    )
    start = seen.format("CASE WHEN NOT veo_rep THEN veo_rn END")
    last_ok = seen.format("CASE WHEN veo_ok = 1 THEN veo_rn END")
    return (
        f"SELECT *, {start} OVER ({before} CURRENT ROW) AS veo_start, "
        f"{last_ok} OVER ({before} 1 PRECEDING) AS veo_last_ok{firsts} FROM ({marked}) AS m"
    )


@contextmanager
def _kept(eng: SqlEngine, h: str, w: int, cond: str, ok: str) -> Iterator[tuple[str, str]]:
    """The rows created at a time with a row of the same request within ``w`` µs, with
    ``veo_t`` and ``veo_h``, and what orders rows of one time: the task id. Where the
    dialect says so (:attr:`._dialect.Dialect.tie_join`), the id only where a time ties
    within its request (``veo_tie``, NULL elsewhere): every row's id in the sort cost
    ~1.2 of 8.2 s at 20M rows in DuckDB (bench/README.md); the times are then those of
    the near rows :func:`_near` stages."""
    t, task = eng.us("create_time"), eng.q("task_id")
    if not eng.dialect.tie_join:
        rows = f"SELECT *, {t} AS veo_t, {h} AS veo_h FROM {eng.src} WHERE {cond}"
        yield f"{rows} AND {t} IN (SELECT veo_t FROM ({_gaps(eng, h, w, cond)}) AS g)", task
        return
    with _near(eng, h, w, cond, ok) as n:
        times = f"SELECT veo_t, bool_or(veo_tied) AS veo_tied FROM {n} GROUP BY veo_t"
        tie = f"CASE WHEN k.veo_tied THEN s.{task} END AS veo_tie"
        yield (
            (
                f"SELECT s.*, k.veo_t, {h} AS veo_h, {tie} FROM {eng.src} AS s "
                f"JOIN ({times}) AS k ON {t} = k.veo_t WHERE {cond}"
            ),
            "veo_tie",
        )


def _gaps(
    eng: SqlEngine,
    h: str,
    w: int,
    cond: str,
    span: tuple[int, int] | None = None,
    carried: Sequence[tuple[str, str]] = (),
    source: str | None = None,
) -> str:
    """The near rows (``veo_h``, ``veo_t`` and the ``carried`` (SQL, name) pairs, then
    ``veo_tied``) created in ``span`` [lo, hi), told from the rows within ``w`` of it:
    those with a row of the same request within ``w``. Read from ``source`` (by default
    the engine's)."""
    t = eng.us("create_time")
    near = "OVER (PARTITION BY veo_h ORDER BY veo_t)"
    rows = own = ""
    if span is not None:
        lo, hi = span
        rows = f" AND {t} >= {lo - w} AND {t} < {hi + w}"
        own = f" AND veo_t >= {lo} AND veo_t < {hi}"
    made = "".join(f", {sql} AS {name}" for sql, name in carried)
    kept = "".join(f", {name}" for _, name in carried)
    if carried:  # whether another row of its request has its time; whether it repeats
        kept += (
            f", coalesce(veo_b = 0 OR veo_a = 0, FALSE) AS veo_tied, "
            f"coalesce(veo_b <= {w}, FALSE) AS veo_repeats"
        )
    return (
        f"SELECT veo_h, veo_t{kept} FROM (SELECT *, veo_t - lag(veo_t) {near} AS veo_b, "
        f"lead(veo_t) {near} - veo_t AS veo_a FROM (SELECT {h} AS veo_h, {t} AS veo_t{made} "
        f"FROM {source or eng.src} WHERE {cond}{rows}) AS a) AS b "
        f"WHERE (veo_b <= {w} OR veo_a <= {w}){own}"
    )


def _near(
    eng: SqlEngine, h: str, w: int, cond: str, ok: str, same: Sequence[str] = ()
) -> AbstractContextManager[str]:
    """The near rows (:func:`_gaps`) with ``veo_good`` (``ok`` holds) and, where the
    engine has them (:attr:`~._sql.SqlEngine.row_src`), their identities ``veo_rid`` and
    whether each repeats the one before (``veo_repeats``), staged
    (:meth:`~._sql.SqlEngine.staged`): in DuckDB a table made once per report, in pieces
    of creation time (each piece's window fits in memory); in one piece, read from the
    gaps a store's dataset keeps, where they hash ``same`` (:func:`_from_gaps`)."""
    kept = _gaps_for(eng, same, w, ok, cond)
    if kept is not None:
        return eng.staged(
            ("near rows", h, w, cond, ok), None, lambda lo, hi: _from_gaps(kept, w, ok)
        )
    carried = [(f"coalesce({ok}, FALSE)", "veo_good")]
    if eng.row_src is not None:
        carried.append(("veo_rid", "veo_rid"))

    def rows(lo: int | None, hi: int | None) -> str:
        span = None if lo is None or hi is None else (lo, hi)
        return _gaps(eng, h, w, cond, span, carried, eng.row_src)

    return eng.staged(("near rows", h, w, cond, ok), "create_time", rows, w)


#: a day in µs: the gaps a dataset keeps are within a UTC day (_request_gaps)
_DAY_US = 86_400_000_000
#: the longest window read from the gaps: the rows within it of a midnight, ordered in
#: one piece, are then at most a quarter of all (longer: the window over every row)
LONGEST_GAPS_WINDOW = _DAY_US // 8


def _gaps_for(eng: SqlEngine, same: Sequence[str], w: int, ok: str, cond: str) -> str | None:
    """The engine's gaps relation (:meth:`~._sql.SqlEngine.request_gaps`) where its key
    hashes the columns ``same``, the rows asked (``cond``) are those it keys (a request
    and a creation time), ``ok`` reads nothing but the status and the window ``w`` is
    at most :data:`LONGEST_GAPS_WINDOW`; else None."""
    found = eng.request_gaps()  # first: it fixes the order the rows' identities follow
    hints = tuple(p.NotNull(c) for c in REQUEST_HINTS if eng.has(c))
    if not same or cond != eng.cond(p.All((p.Any(hints), p.NotNull("create_time")))):
        return None
    if w > LONGEST_GAPS_WINDOW or found is None or list(found[1]) != list(same):
        return None
    others = [c for c in eng.columns() if c != "status" and eng.q(c) in ok]
    return None if others else found[0]


def _from_gaps(gaps: str, w: int, ok: str) -> str:
    """The near rows of :func:`_near`, from a dataset's gaps (a row's in its day): a row
    is near when a gap is within ``w``, or, for the rows within ``w`` of a midnight,
    when its neighbour among those rows (ordered by request and time) is. A repeat
    across a midnight has both rows within ``w`` of it, so nothing else is ordered."""
    d = _DAY_US
    clock = f"(((veo_t % {d}) + {d}) % {d})"
    edge = f"({clock} < {w} OR {clock} >= {d - w})"
    rows = (
        f"SELECT veo_h, veo_t, coalesce({ok}, FALSE) AS veo_good, veo_rid, veo_gb, veo_ga "
        f"FROM {gaps} WHERE veo_h IS NOT NULL"
    )
    tied = "coalesce(veo_gb = 0 OR veo_ga = 0, FALSE) AS veo_tied"
    inner = (
        f"SELECT veo_h, veo_t, veo_good, veo_rid, {tied}, coalesce(veo_gb <= {w}, FALSE) "
        f"AS veo_repeats FROM ({rows}) AS g WHERE (veo_gb <= {w} OR veo_ga <= {w}) "
        f"AND NOT {edge}"
    )
    part = "OVER (PARTITION BY veo_h ORDER BY veo_t)"
    edges = (
        f"SELECT *, veo_t - lag(veo_t) {part} AS veo_eb, lead(veo_t) {part} - veo_t AS "
        f"veo_ea FROM ({rows}) AS g WHERE {edge}"
    )
    outer = (
        f"SELECT veo_h, veo_t, veo_good, veo_rid, {tied}, coalesce(veo_gb <= {w} OR veo_eb "
        f"<= {w}, FALSE) AS veo_repeats FROM ({edges}) AS e WHERE veo_gb <= {w} OR "
        f"veo_ga <= {w} OR veo_eb <= {w} OR veo_ea <= {w}"
    )
    return f"{inner} UNION ALL {outer}"


_EARLIER_OK = "coalesce(veo_last_ok >= veo_start, FALSE)"


def extras(
    eng: SqlEngine,
    same: Sequence[str],
    within_us: int,
    where: p.Cond | None,
    ok: p.Cond,
    keys: p.Keys,
    measures: Mapping[str, p.Measure],
    extra: Sequence[p.Value] = (),
) -> pd.DataFrame:
    """See :meth:`._base.Engine.extras`: the runs' extras grouped, one small answer.
    Where the engine tells rows apart (:attr:`~._sql.SqlEngine.row_src`), the runs are
    marked on the staged near rows alone (:func:`_flags`) and only the extras' own rows
    are read again; elsewhere the rows at the near times are read whole and marked."""
    if _narrow(eng):
        h, cond = _request(eng, same, where)
        with _near(eng, h, int(within_us), cond, eng.cond(ok), same) as n:
            flags = _flags(eng, n, int(within_us))
            flagged = (
                f"(SELECT s.*, f.{EARLIER} FROM {eng.row_src} AS s JOIN ({flags}) AS f "
                f"ON s.veo_rid = f.veo_rid) AS x"
            )
            return eng._grouped_over(flagged, keys, measures, None, (*extra, EARLIER))
    with _runs(eng, same, within_us, where, ok) as runs:
        flagged = f"(SELECT *, {_EARLIER_OK} AS {EARLIER} FROM ({runs}) AS u WHERE veo_rep) AS x"
        return eng._grouped_over(flagged, keys, measures, None, (*extra, EARLIER))


def _narrow(eng: SqlEngine) -> bool:
    """Whether the runs are marked on staged near rows (:func:`_flags`)."""
    return eng.row_src is not None


def _flags(eng: SqlEngine, n: str, w: int, first: bool = False) -> str:
    """The extras among the staged near rows ``n``, marked on those rows alone: their
    identity ``veo_rid`` and :data:`EARLIER` (with ``first``: their run's first row's
    identity and time). Rows of one request at one time are ordered by task id, read
    for those rows alone."""
    rows, tie = f"SELECT *, veo_good AS veo_k FROM {n}", "veo_t"
    rep: str | None = "veo_repeats"
    tied = eng._fetch(f"SELECT count(*) AS n FROM {n} WHERE veo_tied").column(0)[0].as_py()
    if tied:  # the task ids of the rows at a time with another row of their request
        task = eng.q("task_id")
        ids = f"SELECT s.veo_rid AS veo_ti, s.{task} AS veo_tie FROM {eng.row_src} AS s"
        rows = (
            f"SELECT n.*, n.veo_good AS veo_k, i.veo_tie FROM {n} AS n LEFT JOIN ({ids} WHERE "
            f"s.veo_rid IN (SELECT veo_rid FROM {n} WHERE veo_tied)) AS i ON n.veo_rid = i.veo_ti"
        )
        tie, rep = "veo_tie", None
    marked = _marked(eng, rows, tie, w, "veo_k", "veo_rid" if first else None, rep)
    firsts = f", {FIRST_ID}, {FIRST_T}" if first else ""
    return f"SELECT veo_rid, {_EARLIER_OK} AS {EARLIER}{firsts} FROM ({marked}) AS m WHERE veo_rep"


def worst_extras(
    eng: SqlEngine,
    same: Sequence[str],
    within_us: int,
    where: p.Cond | None,
    ok: p.Cond,
    weight: p.Credit,
    columns: Sequence[str],
    limit: int,
) -> pd.DataFrame:
    """See :meth:`._base.Engine.worst_extras`: the extras ordered by what they wasted, then
    by creation; ``LIMIT`` keeps the answer to ``limit`` rows. Marked on the staged near
    rows where :func:`extras` is (the runs' first task ids then read for those rows)."""
    if _narrow(eng):
        h, cond = _request(eng, same, where)
        with _near(eng, h, int(within_us), cond, eng.cond(ok), same) as n:
            flags = _flags(eng, n, int(within_us), first=True)
            return _worst_flagged(eng, flags, weight, columns, limit)
    with _runs(eng, same, within_us, where, ok, first=True) as runs:
        return _worst(eng, runs, weight, columns, limit)


def _worst_flagged(
    eng: SqlEngine, flags: str, weight: p.Credit, columns: Sequence[str], limit: int
) -> pd.DataFrame:
    """:func:`_worst` over the extras :func:`_flags` marked: their rows read by identity,
    the ``limit`` worst kept, then each one's run's first task id read."""
    cols = [eng.q(c) for c in columns if eng.has(c)]
    task = eng.q("task_id")
    c = credit(eng, weight)
    wasted = f"CAST(CASE WHEN f.{EARLIER} THEN coalesce({c}, 0) ELSE 0 END AS DOUBLE)"
    top = (
        f"SELECT {', '.join(f's.{x}' for x in cols)}, f.{FIRST_ID} AS veo_first_rid, "
        f"f.{FIRST_T}, {c} AS {CREDIT}, {wasted} AS {WASTED}, {eng.us('create_time')} AS "
        f"veo_t, s.{task} AS veo_task FROM {eng.row_src} AS s JOIN ({flags}) AS f "
        f"ON s.veo_rid = f.veo_rid ORDER BY {WASTED} DESC, veo_t ASC, veo_task ASC "
        f"LIMIT {int(limit)}"
    )
    picked = ", ".join([*(f"w.{x}" for x in cols), f"i.{task} AS {FIRST_ID}"])
    sql = (
        f"SELECT {picked}, w.{FIRST_T}, w.{CREDIT}, w.{WASTED} FROM ({top}) AS w "
        f"LEFT JOIN {eng.row_src} AS i ON i.veo_rid = w.veo_first_rid "
        f"ORDER BY w.{WASTED} DESC, w.veo_t ASC, w.veo_task ASC"
    )
    return eng._typed(eng._fetch(sql))


def _worst(
    eng: SqlEngine, runs: str, weight: p.Credit, columns: Sequence[str], limit: int
) -> pd.DataFrame:
    """The query of :func:`worst_extras` over ``runs``."""
    cols = [c for c in columns if eng.has(c)]
    task = eng.q("task_id")
    named = (
        f"SELECT *, {credit(eng, weight)} AS {CREDIT}, {_EARLIER_OK} AS veo_e FROM ({runs}) AS u"
    )
    wasted = f"CASE WHEN veo_e THEN coalesce({CREDIT}, 0) ELSE 0 END"
    picked = ", ".join([*(eng.q(c) for c in cols), FIRST_ID, FIRST_T, CREDIT])
    sql = (
        f"SELECT {picked}, CAST({wasted} AS DOUBLE) AS {WASTED} FROM ({named}) AS n "
        f"WHERE veo_rep ORDER BY {WASTED} DESC, veo_t ASC, {task} ASC LIMIT {int(limit)}"
    )
    return eng._typed(eng._fetch(sql))


def credit(eng: SqlEngine, c: p.Credit) -> str:
    """SQL of a :class:`._plan.Credit`: the column where set, else the table's number for
    the row's keys (a ``CASE`` over the few combinations), else NULL."""
    arms = []
    for values, number in c.table:
        if number is None or np.isnan(number):
            continue
        test = " AND ".join(
            eng.dialect.null_eq.format(a=eng.q(k) if eng.has(k) else "NULL", b=_number(v, _lit))
            for k, v in zip(c.keys, values, strict=True)
        )
        arms.append(f"WHEN {test or 'TRUE'} THEN CAST('{float(number)!r}' AS DOUBLE)")
    table = f"CASE {' '.join(arms)} END" if arms else "CAST(NULL AS DOUBLE)"
    if c.column is not None and eng.has(c.column):
        return f"coalesce(CAST({eng.q(c.column)} AS DOUBLE), {table})"
    return table


def _number(value: object, lit) -> str:  # type: ignore[no-untyped-def]
    """A key value as a literal of its own type (a float stays a float)."""
    if isinstance(value, float | np.floating) and not isinstance(value, bool):
        return "NULL" if np.isnan(value) else f"CAST('{float(value)!r}' AS DOUBLE)"
    return str(lit(value))


def _same(eng: SqlEngine, column: str) -> str:
    """A request column as compared: a list by its items joined (missing: empty), as
    the pandas engine compares it (:func:`._pandas.row_codes`)."""
    if pa.types.is_list(_arrow_type(column)):
        return f"coalesce({eng.dialect.join.format(eng.q(column))}, '')"
    return eng.q(column)
