"""The widgets of the status viewer and their wiring (CSS classes for tests and themes).

Every important widget carries a ``veo-*`` CSS class: ``veo-header``, ``veo-progress``,
``veo-message``, ``veo-refresh``, ``veo-auto``, ``veo-filter-status`` / ``-model`` /
``-task-type`` / ``-generation-type`` / ``-from`` / ``-to`` / ``-text``, ``veo-sort``,
``veo-sort-order``, ``veo-page-size``, ``veo-prev``, ``veo-next``, ``veo-page-label``,
``veo-table``, ``veo-select``, ``veo-detail``, ``veo-export-path``,
``veo-export-parquet``, ``veo-export-csv``.

>>> sorted(_SORTS)[0]
('created', 'created')
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from . import _html as H

__all__ = ["WidgetsMixin"]

_PAGE_SIZES = (10, 25, 50, 100, 250)
_SORTS = (("created", "created"), ("latency", "latency"), ("status", "status"))


class WidgetsMixin:
    """Builds the viewer's child widgets; mixed into :class:`StatusViewer`."""

    def _build_widgets(self, page_size: int, sort_by: str, descending: bool) -> None:
        def cls(widget: w.DOMWidget, name: str) -> Any:
            widget.add_class(name)
            return widget

        self.style_html = w.HTML(H.STYLE)
        self.header = cls(w.HTML(), "veo-header")
        self.progress = cls(
            w.IntProgress(value=0, min=0, max=1, description="done", bar_style="info"),
            "veo-progress",
        )
        self.message = cls(w.HTML(), "veo-message")
        self.refresh_button = cls(w.Button(description="Refresh", icon="refresh"), "veo-refresh")
        self.auto_button = cls(w.ToggleButton(value=False, description="Auto-refresh"), "veo-auto")
        sel = {"rows": 5, "layout": w.Layout(width="190px")}
        self.status_filter = cls(w.SelectMultiple(description="status", **sel), "veo-filter-status")
        self.model_filter = cls(w.SelectMultiple(description="model", **sel), "veo-filter-model")
        self.task_type_filter = cls(
            w.SelectMultiple(description="task type", **sel), "veo-filter-task-type"
        )
        self.generation_type_filter = cls(
            w.SelectMultiple(description="gen. type", rows=5, layout=w.Layout(width="330px")),
            "veo-filter-generation-type",
        )
        self.facet_filters = {
            "status": self.status_filter,
            "model": self.model_filter,
            "task_type": self.task_type_filter,
            "generation_type": self.generation_type_filter,
        }
        txt = {"continuous_update": False, "layout": w.Layout(width="260px")}
        self.created_from = cls(
            w.Text(description="from", placeholder="YYYY-MM-DD [HH:MM] UTC", **txt),
            "veo-filter-from",
        )
        self.created_to = cls(
            w.Text(description="to", placeholder="YYYY-MM-DD [HH:MM] UTC", **txt), "veo-filter-to"
        )
        self.search = cls(
            w.Text(description="search", placeholder="task id, prompt, error", **txt),
            "veo-filter-text",
        )
        self.sort_by = cls(
            w.Dropdown(options=_SORTS, value=sort_by, description="sort"), "veo-sort"
        )
        self.sort_order = cls(
            w.ToggleButtons(options=[("desc", True), ("asc", False)], value=descending),
            "veo-sort-order",
        )
        self.sort_order.style.button_width = "56px"
        sizes = sorted({*_PAGE_SIZES, int(page_size)})
        self.page_size = cls(
            w.Dropdown(
                options=sizes,
                value=int(page_size),
                description="rows",
                layout=w.Layout(width="140px"),
            ),
            "veo-page-size",
        )
        self.prev_button = cls(
            w.Button(description="◀ prev", layout=w.Layout(width="80px")), "veo-prev"
        )
        self.next_button = cls(
            w.Button(description="next ▶", layout=w.Layout(width="80px")), "veo-next"
        )
        self.page_label = cls(w.HTML(), "veo-page-label")
        self.table = cls(w.HTML(), "veo-table")
        self.selector = cls(
            w.Dropdown(
                options=[("— choose a task on this page —", None)],
                description="detail",
                layout=w.Layout(width="520px"),
            ),
            "veo-select",
        )
        self.detail = cls(w.HTML(), "veo-detail")
        self.export_path = cls(
            w.Text(value="veo-view.parquet", description="export to"), "veo-export-path"
        )
        self.export_parquet_button = cls(
            w.Button(description="Parquet", icon="download"), "veo-export-parquet"
        )
        self.export_csv_button = cls(w.Button(description="CSV", icon="download"), "veo-export-csv")

    def _layout(self) -> list[w.Widget]:
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
