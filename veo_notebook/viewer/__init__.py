"""``StatusViewer``: a live, paginated status viewer for a batch of Veo tasks (ipywidgets).

The viewer is an :class:`ipywidgets.VBox` (stock widgets only: it runs in JupyterLab,
Notebook 7, VS Code and Colab with no front-end build). Filtering, sorting and paging
live in :mod:`veo_notebook.viewer._model` (cost per view follows the page, not the
frame), HTML in :mod:`veo_notebook.viewer._html` (every API text escaped, only http(s)
links), live re-polling in :mod:`veo_notebook.viewer._live` (through ``fetch_records``;
the viewer never builds a URL).

>>> import pandas as pd
>>> from veo_notebook import schema
>>> v = StatusViewer(schema.enforce(pd.DataFrame({"task_id": ["a"], "status": ["success"]})))
>>> v
StatusViewer(tasks=1, matching=1, page=1/1, pending=0)
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from .. import schema
from ..analysis import classify_errors
from ..errors import InputError, VeoError
from ..frame import from_store
from ..store import Store
from . import _html as H
from ._live import LiveMixin
from ._model import TableModel
from ._widgets import WidgetsMixin

__all__ = ["StatusViewer"]

logger = logging.getLogger(__name__)


_TABLE_COLUMNS = [
    "task_id", "status", "model", "task_type", "create_time", "latency_s",
    "error_code", "error_message",
]  # fmt: skip


class _Categories:
    """Error category per row via ``analysis.classify_errors``, memoised per distinct
    (code, message, status): a page costs a dict look-up per row, not a classification."""

    def __init__(self) -> None:
        self._memo: dict[tuple[Any, Any, Any], Any] = {}

    def __call__(self, df: pd.DataFrame) -> list[Any]:
        status = df["status"].tolist()
        failed = [s in schema.FAILED_STATUSES for s in status]
        if not any(failed):
            return [None] * len(df)
        keys = list(
            zip(df["error_code"].tolist(), df["error_message"].tolist(), status, strict=True)
        )
        todo = [k for k, f in zip(keys, failed, strict=True) if f and k not in self._memo]
        if todo:
            self._classify(list(dict.fromkeys(todo)))
        return [self._memo.get(k) if f else None for k, f in zip(keys, failed, strict=True)]

    def _classify(self, keys: list[tuple[Any, Any, Any]]) -> None:
        frame = schema.enforce(
            pd.DataFrame(keys, columns=["error_code", "error_message", "status"])
        )
        cats = classify_errors(frame).tolist()
        for k, c in zip(keys, cats, strict=True):
            self._memo[k] = None if c is None or c is pd.NA else c


def _parse_time(text: str) -> pd.Timestamp | None:
    text = text.strip()
    if not text:
        return None
    ts = pd.Timestamp(text)
    if pd.isna(ts):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class StatusViewer(WidgetsMixin, LiveMixin, w.VBox):
    """A live status viewer: header, filters, paginated table, detail pane, export.

    Parameters
    ----------
    source : DataFrame | Store | iterable of str
        A typed frame (``to_frame`` / ``fetch_records``), a :class:`~veo_notebook.Store`
        (read with ``to_frame``; refreshes write to it) or task ids (fetched now through
        ``fetch_records`` with ``client`` / ``store``).
    client, store
        What refreshes use (passed to ``fetch_records``; no client → its default).
    page_size : int
        Rows per page (10, 25, 50, 100 or 250 offered).
    auto_refresh : bool
        Start re-polling pending tasks at once (stops when every task is terminal).
    poll_scale : float
        Multiplies ``fetch.poll_interval`` (tests use a small value).
    auto_timeout : float
        Seconds after which auto-refresh gives up, like ``watch``'s timeout.

    Examples
    --------
    >>> viewer = StatusViewer(df, client=client)  # doctest: +SKIP
    >>> viewer  # the cell's value shows it  # doctest: +SKIP
    """

    def __init__(
        self,
        source: Any,
        *,
        client: Any = None,
        store: Any = None,
        page_size: int = 25,
        auto_refresh: bool = False,
        poll_scale: float = 1.0,
        auto_timeout: float = 900.0,
        sort_by: str = "created",
        descending: bool = True,
    ) -> None:
        self._client, self._store = client, store
        self._lock = threading.RLock()
        self._suspend = False
        self._page = 0
        self._selected: str | None = None
        self._counts: dict[str, int] = {}
        self._pending = 0
        self._categories = _Categories()
        self._model = TableModel(self._load(source))
        self._build_widgets(page_size, sort_by, descending)
        self._wire()
        super().__init__(children=self._layout())
        self.add_class("veo-viewer")
        self._init_live(poll_scale=poll_scale, auto_timeout=auto_timeout)
        self._after_frame_change()
        if auto_refresh:
            self.start()

    # -- loading ------------------------------------------------------------------------
    def _load(self, source: Any) -> pd.DataFrame:
        if isinstance(source, pd.DataFrame):
            return schema.enforce(source.copy(deep=False))
        if isinstance(source, Store):
            if self._store is None:
                self._store = source
            return from_store(source)
        if isinstance(source, (str, bytes)) or not isinstance(source, Iterable):
            raise InputError(
                "StatusViewer takes a typed frame, a Store or a list of task ids, "
                f"not {type(source).__name__}"
            )
        ids = [str(x) for x in source]
        return schema.enforce(self._fetch(ids))

    def _wire(self) -> None:
        """Connect the widgets' events to the viewer's handlers."""
        for name, widget in self.facet_filters.items():
            widget.observe(lambda ch, n=name: self._on_facet(n, ch["new"]), "value")
        self.created_from.observe(self._on_created, "value")
        self.created_to.observe(self._on_created, "value")
        self.search.observe(self._on_search, "value")
        for widget in (self.sort_by, self.sort_order, self.page_size):
            widget.observe(self._on_view_change, "value")
        self.prev_button.on_click(lambda _b: self._turn(-1))
        self.next_button.on_click(lambda _b: self._turn(+1))
        self.selector.observe(self._on_select, "value")
        self.refresh_button.on_click(lambda _b: self._refresh_clicked())
        self.auto_button.observe(self._on_auto, "value")
        self.export_parquet_button.on_click(lambda _b: self._export("parquet"))
        self.export_csv_button.on_click(lambda _b: self._export("csv"))

    # -- public -------------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """The whole typed frame as the viewer holds it now (refreshed rows included)."""
        return self._model.df

    @property
    def page(self) -> int:
        """The current page, 0-based."""
        return self._page

    def page_frame(self) -> pd.DataFrame:
        """The rows of the current page, in display order."""
        with self._lock:
            return self._model.df.iloc[self._page_positions()]

    def view(self) -> pd.DataFrame:
        """The filtered, sorted view (every page): what the export buttons write."""
        with self._lock:
            pos = self._model.positions(self.sort_by.value, bool(self.sort_order.value))
            return self._model.df.iloc[pos].reset_index(drop=True)

    def select(self, task_id: str | None) -> None:
        """Show ``task_id`` in the detail pane (any task of the frame, not only this page)."""
        with self._lock:
            self._selected = task_id
            if task_id in self._page_ids:
                self._quiet(self.selector, "value", task_id)
            self._render_detail()

    def __repr__(self) -> str:  # cheap: never renders the frame
        m = self._model
        pages = max(1, math.ceil(m.count() / int(self.page_size.value)))
        return (
            f"StatusViewer(tasks={m.n}, matching={m.count()}, page={self._page + 1}/{pages}, "
            f"pending={self._pending})"
        )

    # -- events -------------------------------------------------------------------------
    def _on_facet(self, name: str, values: Any) -> None:
        with self._lock:
            if self._suspend:
                return
            self._model.set_facet(name, values)
            self._page = 0
            self._render()

    def _on_created(self, _change: Any) -> None:
        bounds = []
        for box in (self.created_from, self.created_to):
            try:
                bounds.append(_parse_time(box.value))
                box.remove_class("veo-invalid")
            except (ValueError, TypeError):
                bounds.append(None)
                box.add_class("veo-invalid")
                self._say(f"not a date/time: {box.value!r}")
        with self._lock:
            if self._suspend:
                return
            self._model.set_created_range(bounds[0], bounds[1])
            self._page = 0
            self._render()

    def _on_search(self, change: Any) -> None:
        with self._lock:
            if self._suspend:
                return
            self._model.set_text(change["new"])
            self._page = 0
            self._render()

    def _on_view_change(self, _change: Any) -> None:
        with self._lock:
            if self._suspend:
                return
            self._page = 0
            self._render()

    def _turn(self, step: int) -> None:
        with self._lock:
            self._page += step
            self._render()

    def _on_select(self, change: Any) -> None:
        with self._lock:
            if self._suspend or change["new"] is None:
                return
            self.select(change["new"])

    # -- rendering ------------------------------------------------------------------------
    def _quiet(self, widget: w.Widget, trait: str, value: Any) -> None:
        """Set a trait without triggering the viewer's own handlers."""
        with self._lock:
            self._suspend = True
            try:
                setattr(widget, trait, value)
            finally:
                self._suspend = False

    def _say(self, text: str) -> None:
        self.message.value = f"<span>{H.esc(text)}</span>"

    def _pages(self) -> int:
        return max(1, math.ceil(self._model.count() / int(self.page_size.value)))

    def _page_positions(self) -> np.ndarray:
        size = int(self.page_size.value)
        return self._model.page_positions(
            self._page, size, self.sort_by.value, bool(self.sort_order.value)
        )

    def _after_frame_change(self) -> None:
        """Counts, progress and filter options after a new frame (load or refresh)."""
        with self._lock:
            m = self._model
            self._counts = m.status_counts()
            self._pending = len(m.pending_positions())
            done = m.n - self._pending
            self.progress.max = max(1, m.n)
            self.progress.value = done
            self.progress.bar_style = "success" if done == m.n else "info"
            for name, widget in self.facet_filters.items():
                options = m.options(name)
                if list(widget.options) != options:
                    keep = tuple(v for v in widget.value if v in options)
                    self._suspend = True
                    try:
                        widget.options = options
                        widget.value = keep
                    finally:
                        self._suspend = False
            self._render()

    def _render(self) -> None:
        with self._lock:
            m = self._model
            self._page = min(max(self._page, 0), self._pages() - 1)
            pos = self._page_positions()
            page = m.df.iloc[pos, [m.df.columns.get_loc(c) for c in _TABLE_COLUMNS]]
            self.header.value = H.header_html(self._counts, m.n, m.count(), self._pending)
            self.table.value = H.table_html(page, self._categories(page))
            self.page_label.value = (
                f"page {self._page + 1:,} of {self._pages():,} ({m.count():,} rows)"
            )
            self.prev_button.disabled = self._page == 0
            self.next_button.disabled = self._page >= self._pages() - 1
            ids = page["task_id"].tolist()
            statuses = page["status"].tolist()
            self._page_ids = set(ids)
            options = [("— choose a task on this page —", None)] + [
                (f"{tid} · {st if isinstance(st, str) else 'unread'}", tid)
                for tid, st in zip(ids, statuses, strict=True)
            ]
            self._suspend = True
            try:
                self.selector.options = options
                self.selector.value = self._selected if self._selected in self._page_ids else None
            finally:
                self._suspend = False
            self._render_detail()

    def _render_detail(self) -> None:
        if self._selected is None:
            self.detail.value = "<i>Choose a task to see its parameters, error and video.</i>"
            return
        pos = self._model.find(self._selected)
        if pos is None:
            self.detail.value = f"<i>No task {H.esc(self._selected)} in this frame.</i>"
            return
        row = self._model.df.iloc[pos : pos + 1]
        self.detail.value = H.detail_html(row.iloc[0], self._categories(row)[0])

    # -- export ---------------------------------------------------------------------------
    def _export(self, fmt: str) -> None:
        from .. import export

        path = self.export_path.value.strip() or f"veo-view.{fmt}"
        if fmt == "csv" and path.endswith(".parquet"):
            path = path[: -len(".parquet")] + ".csv"
        elif fmt == "parquet" and path.endswith(".csv"):
            path = path[: -len(".csv")] + ".parquet"
        df = self.view()
        try:
            (export.to_parquet if fmt == "parquet" else export.to_csv)(df, path)
        except (VeoError, OSError) as exc:
            self._say(f"export failed: {exc}")
            return
        self._say(f"wrote {len(df):,} rows to {path}")

    def close(self) -> None:
        """Stop auto-refresh and close the widgets."""
        self.stop(timeout=5.0)

        def close_all(widget: w.Widget) -> None:
            for child in getattr(widget, "children", ()):
                close_all(child)
                child.close()

        close_all(self)
        super().close()
