"""``report(df, path)``: one self-contained HTML file (or Markdown + PNGs) about a batch of tasks.

The report leads with the answer (a headline: tasks, success rate, latency, the top
failure category, the change against the previous period, tasks in flight), then the
detail. It is built from **section functions**: each takes the :class:`Context` and
returns a :class:`Section` (a heading and a list of blocks: :class:`Text`,
:class:`Facts`, :class:`Table`, :class:`Fig`), or None to leave itself out.

Adding a section is one function (in its own module here, or beside a like one) and
one line in :data:`SECTIONS`. The parts:

* :mod:`.blocks` (the blocks and :class:`Section`), :mod:`.context` (:class:`Context`,
  figures), :mod:`._cells` (counts, seconds, times, lengths in words);
* the sections, by concept: :mod:`.headline`, :mod:`.tasks`, :mod:`.latency`,
  :mod:`.failures`, :mod:`.money`, :mod:`.families`, :mod:`.videos`, :mod:`.callbacks`,
  :mod:`.checks`,
  :mod:`.definitions`;
* the renderers: :mod:`.render_html`, :mod:`.render_markdown`.

Every value is formatted through :mod:`veo_notebook.fmt` (``unread``, ``n/a``,
``≥ 182.0``; never NaN). An empty table is a sentence and an empty frame draws no
figure. Only aggregates are drawn, so a million rows render in well under a minute.

This package is ``veo_notebook.reporting`` so that ``veo_notebook.report`` stays the
function; ``veo_notebook.report`` as a module path still works, with a
DeprecationWarning.

>>> from veo_notebook import report
>>> report(df, "report.html")                              # doctest: +SKIP
PosixPath('report.html')
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from ..analysis._groups import now_utc
from ..analysis.latency import STUCK_AFTER
from ..analysis.latency import _now as latency_now
from ..engine import resolve
from ..engine._pandas import PandasEngine
from ..export import atomic_path
from . import over_engine, over_engine_money, render_html, render_markdown
from .blocks import Block, Facts, Fig, Section, Table, Text
from .callbacks import callbacks_section
from .checks import checks_section
from .context import Context, auto_freq
from .definitions import DEFINITIONS, definitions
from .failures import failure_rates, why_fail
from .families import families_section
from .headline import CHANGE_COVER, CHANGE_PERIODS, headline
from .latency import KM_PERCENTILES, PERCENTILES, latency, min_n_for_interval
from .money import money
from .over_engine import SourceContext, auto_freq_of
from .tasks import overview, stuck
from .videos import AT_RISK_WITHIN, at_risk, delivery

__all__ = [
    "AT_RISK_WITHIN",
    "CHANGE_COVER",
    "CHANGE_PERIODS",
    "DEFINITIONS",
    "ENGINE_SECTIONS",
    "KM_PERCENTILES",
    "PERCENTILES",
    "SECTIONS",
    "STUCK_AFTER",
    "Block",
    "Context",
    "Facts",
    "Fig",
    "Section",
    "SourceContext",
    "Table",
    "Text",
    "build",
    "min_n_for_interval",
    "report",
]

log = logging.getLogger(__name__)

#: The report, in order. A new section: write ``def my_section(ctx) -> Section | None``
#: and add it here.
SECTIONS: list[Callable[[Context], Section | None]] = [
    headline,
    overview,
    latency,
    failure_rates,
    why_fail,
    stuck,
    money,
    families_section,
    at_risk,
    delivery,
    callbacks_section,
    checks_section,
    definitions,
]


#: The report over an engine (:mod:`.over_engine`): the same order, each section built
#: from aggregates; the ones that need every row say so in a sentence.
ENGINE_SECTIONS: list[Callable[[SourceContext], Section | None]] = [
    over_engine.headline,
    over_engine.overview,
    over_engine.latency,
    over_engine.failure_rates,
    why_fail,  # type: ignore[list-item]  # uses the breakdown only
    stuck,  # type: ignore[list-item]  # uses the stuck tasks only (a bounded set)
    over_engine_money.money,
    over_engine_money.families_section,
    over_engine_money.at_risk,
    over_engine_money.delivery,
    over_engine_money.callbacks_section,
    checks_section,  # type: ignore[list-item]  # uses the checks table only
    definitions,  # type: ignore[list-item]
]


def _sections(ctx: Context) -> list[Section]:
    return [s for s in (make(ctx) for make in SECTIONS) if s is not None]


#: Built before the others, shown in its place: the section whose queries take the most
#: memory (the duplicate runs' windows) runs while the process holds least: at 20M tasks
#: the report's peak fell from 563 to 513–522 MB (bench/README.md).
BUILT_FIRST = (over_engine_money.money,)


def _engine_sections(ctx: SourceContext) -> list[Section]:
    order = sorted(ENGINE_SECTIONS, key=lambda make: make not in BUILT_FIRST)
    built = {make: make(ctx) for make in order}
    return [s for s in (built[make] for make in ENGINE_SECTIONS) if s is not None]


def build(
    source: object,
    *,
    engine: str | None = None,
    freq: str | None = None,
    now: object = None,
    figures: bool = True,
    callbacks: pd.DataFrame | None = None,
    callback_url: str | Sequence[str] | None = None,
    archive: pd.DataFrame | None = None,
    checks: pd.DataFrame | None = None,
) -> tuple[list[Section], int]:
    """The report's sections on ``source`` and its number of tasks (see :func:`report`).

    A pandas frame (and a source its engine reads whole) is reported in memory; any
    other engine builds every section from aggregates (:mod:`.over_engine`).
    """
    options = {"callbacks": callbacks, "callback_url": callback_url, "archive": archive}
    options["checks"] = checks
    if isinstance(source, pd.DataFrame) and engine in (None, "pandas"):
        df = source
    else:
        eng = resolve(source, engine)
        if not isinstance(eng, PandasEngine):
            over_engine.remember(eng)  # the clock and the span are asked again below
            sctx = SourceContext(
                eng, latency_now(eng, now), freq or auto_freq_of(eng), figures, **options
            )
            return _engine_sections(sctx), sctx.n
        df = eng.df
    ctx = Context(df, now_utc(df, now), freq or auto_freq(df), figures, **options)
    return _sections(ctx), len(df)


def report(
    df: object,
    path: str | Path,
    *,
    title: str = "Veo task report",
    freq: str | None = None,
    now: object = None,
    figures: bool = True,
    callbacks: pd.DataFrame | None = None,
    callback_url: str | Sequence[str] | None = None,
    archive: pd.DataFrame | None = None,
    checks: pd.DataFrame | None = None,
    engine: str | None = None,
) -> Path:
    """Write a one-file report on the tasks in ``df``; return its path.

    ``df`` is the typed frame or any source :func:`veo_notebook.engine.resolve` takes (a
    Parquet file or hive dataset, a ``Store`` or store path, a DuckDB relation, a Spark
    DataFrame); ``engine`` forces one. A frame is reported in memory; over DuckDB or
    Spark every table and figure comes from aggregates the engine computes, and the
    video families, the delivery check and the callback audit (which need every row)
    are a sentence each (``docs/engines.md``).
    ``path`` ending in ``.md`` gives Markdown with the figures as PNG files in a
    ``<name>_figures`` folder beside it; anything else gives self-contained HTML.
    ``freq`` is the time bucket of the over-time figures (default: from the time span);
    ``now`` the time tasks still generating are aged at (default: the latest fetch);
    ``figures=False`` leaves the figures out (a quicker, text-only report);
    ``callbacks`` (:func:`veo_notebook.callbacks.read_callbacks`'s frame) adds a
    "Callbacks" section: the audit against record-info and the delivery delays;
    ``callback_url`` (the receiver's URL) limits "terminal with no callback" to the tasks
    that named it (default: any callBackUrl); ``archive`` (what
    :func:`~veo_notebook.archive_videos` returned) adds a "Delivery" section and leaves
    the videos it saved out of "At risk"; ``checks``
    (:func:`veo_notebook.checks.history` of the store) adds a "Checks" section: the last
    run of each rule, what tripped and when.

    >>> report(df, "out/report.html", title="March batch")     # doctest: +SKIP
    PosixPath('out/report.html')
    >>> report("history/", "big.html", engine="duckdb")        # doctest: +SKIP
    PosixPath('big.html')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sections, n = build(
        df,
        engine=engine,
        freq=freq,
        now=now,
        figures=figures,
        callbacks=callbacks,
        callback_url=callback_url,
        archive=archive,
        checks=checks,
    )
    if path.suffix.lower() == ".md":
        text = render_markdown.render(title, sections, path.with_name(f"{path.stem}_figures"))
    else:
        text = render_html.render(title, sections)
    with atomic_path(path) as tmp:  # no half-written report under the final name
        tmp.write_text(text, encoding="utf-8")
    log.info("report: %d tasks → %s", n, path)
    return path
