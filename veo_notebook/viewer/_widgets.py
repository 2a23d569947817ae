"""The status viewer's widgets, built once, and their layout (CSS classes for tests and themes).

Every important widget carries a ``veo-*`` CSS class: ``veo-header``, ``veo-progress``,
``veo-message``, ``veo-refresh``, ``veo-auto``, one ``veo-filter-<column>`` per facet
(``veo-filter-status`` / ``-model`` / ``-task-type`` / ``-generation-type`` / ``-family``),
``veo-filter-from`` / ``-to`` / ``-text``, ``veo-sort``, ``veo-sort-order``,
``veo-page-size``, ``veo-prev``, ``veo-next``, ``veo-page-label``, ``veo-table``,
``veo-select``, ``veo-detail``, ``veo-export-path``, ``veo-export-parquet``,
``veo-export-csv``.

>>> c = Controls(page_size=25, sort_by="created", descending=True)
>>> sorted(c.facet_filters), c.sort_by.options[0]
(['family', 'generation_type', 'model', 'status', 'task_type'], ('created', 'created'))
"""

from __future__ import annotations

from typing import Any, TypeVar

import ipywidgets as w

from .. import schema
from . import _html as H
from ._model import FACETS, SORT_KEYS

__all__ = ["Controls"]

#: Page sizes offered (a caller's own size is added to them).
PAGE_SIZES = (10, 25, 50, 100, 250)
#: Rows a facet filter shows before it scrolls.
FACET_ROWS = 5
_TIME_HINT = "YYYY-MM-DD [HH:MM] UTC"
_NO_TASK = ("— choose a task on this page —", None)

_W = TypeVar("_W", bound=w.DOMWidget)


def _cls(widget: _W, name: str) -> _W:
    widget.add_class(name)
    return widget


class Controls:
    """Every widget of the viewer. The viewer reads and wires them; nothing else does."""

    #: Widgets the viewer exposes as its own attributes (``viewer.header``, ...).
    PUBLIC = (
        "header", "progress", "message", "refresh_button", "auto_button", "facet_filters",
        "created_from", "created_to", "search", "sort_by", "sort_order", "page_size",
        "prev_button", "next_button", "page_label", "table", "selector", "detail",
        "export_path", "export_parquet_button", "export_csv_button",
    )  # fmt: skip

    def __init__(self, *, page_size: int, sort_by: str, descending: bool) -> None:
        self.style_html = w.HTML(H.STYLE)
        self.header = _cls(w.HTML(), "veo-header")
        self.progress = _cls(
            w.IntProgress(value=0, min=0, max=1, description="done", bar_style="info"),
            "veo-progress",
        )
        self.message = _cls(w.HTML(), "veo-message")
        self.refresh_button = _cls(w.Button(description="Refresh", icon="refresh"), "veo-refresh")
        self.auto_button = _cls(w.ToggleButton(value=False, description="Auto-refresh"), "veo-auto")
        self.facet_filters: dict[str, w.SelectMultiple] = {
            f.column: _cls(
                w.SelectMultiple(
                    description=f.label, rows=FACET_ROWS, layout=w.Layout(width=f.width)
                ),
                "veo-filter-" + f.column.replace("_", "-"),
            )
            for f in FACETS
        }
        txt: dict[str, Any] = {"continuous_update": False, "layout": w.Layout(width="260px")}
        self.created_from = _cls(
            w.Text(description="from", placeholder=_TIME_HINT, **txt), "veo-filter-from"
        )
        self.created_to = _cls(
            w.Text(description="to", placeholder=_TIME_HINT, **txt), "veo-filter-to"
        )
        self.search = _cls(
            w.Text(description="search", placeholder="task id, prompt, error", **txt),
            "veo-filter-text",
        )
        sorts = [(key, key) for key in SORT_KEYS]
        self.sort_by = _cls(
            w.Dropdown(options=sorts, value=sort_by, description="sort"), "veo-sort"
        )
        self.sort_order = _cls(
            w.ToggleButtons(options=[("desc", True), ("asc", False)], value=descending),
            "veo-sort-order",
        )
        self.sort_order.style.button_width = "56px"
        self.page_size = _cls(
            w.Dropdown(
                options=sorted({*PAGE_SIZES, int(page_size)}),
                value=int(page_size),
                description="rows",
                layout=w.Layout(width="140px"),
            ),
            "veo-page-size",
        )
        small = {"layout": w.Layout(width="80px")}
        self.prev_button = _cls(w.Button(description="◀ prev", **small), "veo-prev")
        self.next_button = _cls(w.Button(description="next ▶", **small), "veo-next")
        self.page_label = _cls(w.HTML(), "veo-page-label")
        self.table = _cls(w.HTML(), "veo-table")
        self.selector = _cls(
            w.Dropdown(options=[_NO_TASK], description="detail", layout=w.Layout(width="520px")),
            "veo-select",
        )
        self.detail = _cls(w.HTML(), "veo-detail")
        self.export_path = _cls(
            w.Text(value="veo-view.parquet", description="export to"), "veo-export-path"
        )
        self.export_parquet_button = _cls(
            w.Button(description="Parquet", icon="download"), "veo-export-parquet"
        )
        self.export_csv_button = _cls(
            w.Button(description="CSV", icon="download"), "veo-export-csv"
        )

    @property
    def filters(self) -> list[w.Widget]:
        """Every widget whose value filters the rows or changes the view."""
        return [
            *self.facet_filters.values(),
            self.created_from,
            self.created_to,
            self.search,
            self.sort_by,
            self.sort_order,
            self.page_size,
        ]

    def selector_options(self, ids: list[str], statuses: list[Any]) -> list[tuple[str, Any]]:
        """The detail selector's options for one page of tasks."""
        return [_NO_TASK] + [
            (f"{tid} · {st if isinstance(st, str) else schema.UNREAD}", tid)
            for tid, st in zip(ids, statuses, strict=True)
        ]

    def layout(self) -> list[w.Widget]:
        """The viewer's children, top to bottom."""
        return [
            self.style_html,
            w.HBox([self.header, self.progress, self.refresh_button, self.auto_button]),
            self.message,
            w.HBox(list(self.facet_filters.values())),
            w.HBox([self.created_from, self.created_to, self.search]),
            w.HBox(
                [
                    self.sort_by,
                    self.sort_order,
                    self.page_size,
                    self.prev_button,
                    self.page_label,
                    self.next_button,
                ]
            ),
            self.table,
            self.selector,
            self.detail,
            w.HBox([self.export_path, self.export_parquet_button, self.export_csv_button]),
        ]
