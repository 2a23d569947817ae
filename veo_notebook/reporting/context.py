"""What every section may use: :class:`Context` (the frame, its read rows, the clock).

It also draws the figures: :meth:`Context.figure` turns a drawing function into a
:class:`~.blocks.Fig` (or nothing, when figures are off or the drawing fails).
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure

from .. import analysis, fmt, plots
from ..analysis.latency import STUCK_AFTER
from .blocks import Block, Fig

__all__ = ["FIGURE_DPI", "Context", "auto_freq", "figure_block", "on_ax"]

log = logging.getLogger(__name__)

FIGURE_DPI = 150  # 10 in wide → 1500 px: sharp on HiDPI screens at the page's width
TOP_CATEGORIES = 5  # error categories the failure breakdown names


@dataclass
class Context:
    """What every section may use: the frame, its read rows, the clock, the options."""

    df: pd.DataFrame
    now: pd.Timestamp
    freq: str
    figures: bool = True
    callbacks: pd.DataFrame | None = None  # read_callbacks' frame: adds the Callbacks section
    callback_url: str | Sequence[str] | None = None  # the receiver's URL(s), for the audit
    archive: pd.DataFrame | None = None  # archive_videos' rows: adds the Delivery section
    checks: pd.DataFrame | None = None  # veo_notebook.checks.history: adds the Checks section
    read: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.read = fmt.readable(self.df)

    @functools.cached_property
    def by_model(self) -> pd.DataFrame:
        """The read rows with ``model`` as display labels (``upgrade task``, ``n/a``)."""
        return self.read.assign(model=fmt.group_column(self.read, "model"))

    @functools.cached_property
    def breakdown(self) -> analysis.FailureBreakdown:
        """The failure breakdown by model (the headline and "Why tasks fail" share it)."""
        return analysis.failure_breakdown(self.by_model, top=TOP_CATEGORIES)

    @functools.cached_property
    def stuck(self) -> pd.DataFrame:
        """Tasks generating for longer than :data:`STUCK_AFTER` at :attr:`now`."""
        return analysis.stuck_tasks(self.read, STUCK_AFTER, now=self.now)

    @property
    def n(self) -> int:
        """How many tasks the report is on."""
        return len(self.df)

    @property
    def n_read(self) -> int:
        """How many records were read (the sections with nothing to say leave themselves out)."""
        return len(self.read)

    def figure(self, name: str, caption: str, draw: Callable[[Figure], object]) -> list[Block]:
        """``[Fig]`` drawn by ``draw(fig)``, or ``[]`` without figures or if drawing fails."""
        return figure_block(self.figures, name, caption, draw)


def figure_block(
    figures: bool, name: str, caption: str, draw: Callable[[Figure], object]
) -> list[Block]:
    """``[Fig]`` drawn by ``draw(fig)``, or ``[]`` when ``figures`` is off or drawing fails."""
    if not figures:
        return []
    try:
        fig = Figure(figsize=plots.DEFAULT_SIZE, layout="constrained")
        draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    except Exception:  # a figure that cannot be drawn must not sink the report
        log.exception("report: figure %s could not be drawn", name)
        return []
    return [Fig(name, caption, buf.getvalue())]


def on_ax(plot: Callable[..., object], *args: object, **kwargs: object):
    """A drawing function for :meth:`Context.figure`: ``plot(*args, ax=<one Axes>)``."""
    return lambda fig: plot(*args, ax=fig.add_subplot(), **kwargs)


def auto_freq(df: pd.DataFrame) -> str:
    """The over-time figures' bucket: a day, an hour or ten minutes, by the tasks' span."""
    times = df["create_time"].dropna()
    if len(times) < 2:
        return "1D"
    span = times.max() - times.min()
    if span > pd.Timedelta("3D"):
        return "1D"
    if span > pd.Timedelta("6h"):
        return "1h"
    return "10min"
