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
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from .. import schema
from ..analysis import classify_errors, family_of
from ..errors import InputError, VeoError
from ..export import read_parquet
from ..frame import from_store
from ..store import Store
from . import _html as H
from ._duckdb_model import DatasetModel, is_dataset_source
from ._live import READ_ONLY, LiveRefresh
from ._model import FACETS, TableModel
from ._widgets import Controls

__all__ = ["MEMORY_MAX_ROWS", "StatusViewer"]

#: A Store with more tasks than this is viewed through its frame dataset and DuckDB.
MEMORY_MAX_ROWS = 1_000_000
_STORE_SUFFIXES = (".sqlite", ".sqlite3", ".db")

logger = logging.getLogger(__name__)


_TABLE_COLUMNS = [
    "task_id", "status", "model", "task_type", "create_time", "latency_s",
    "error_code", "error_message", "fetch_error",
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


def _family(model: TableModel | DatasetModel, row: pd.Series) -> pd.DataFrame | None:
    """The family tree of ``row``'s task (None for a task alone in its family): only the
    rows of its ``root_task_id`` are read (one comparison of the column, or one query)."""
    root = row.get("root_task_id")
    if not isinstance(root, str):
        return None
    members = model.family_rows(root)
    if len(members) < 2 and members["parent_task_id"].isna().all():
        return None
    return family_of(members, str(row["task_id"]))


def _parse_time(text: str) -> pd.Timestamp | None:
    text = text.strip()
    if not text:
        return None
    ts = pd.Timestamp(text)
    if pd.isna(ts):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class StatusViewer(w.VBox):
    """A live status viewer: header, filters, paginated table, detail pane, export.

    Parameters
    ----------
    source : DataFrame | Store | str | path | DuckDB relation | iterable of str
        A typed frame (``to_frame`` / ``fetch_records``), a :class:`~veo_notebook.Store`
        (refreshes write to it), task ids (fetched now through ``fetch_records`` with
        ``client`` / ``store``), or a history too big for memory: a Parquet file or hive
        dataset folder, a store file (``.sqlite``; its frame dataset, synced first) or a
        DuckDB relation, viewed through DuckDB queries (see ``docs/viewer.md``).
    engine : {None, "pandas", "duckdb"}
        ``"duckdb"`` views a Store through its frame dataset; ``"pandas"`` loads a path
        whole. None: a frame or a Store with up to :data:`MEMORY_MAX_ROWS` tasks in
        memory, a bigger Store, a path or a relation through DuckDB.
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
        engine: str | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._suspend = False
        self._page = 0
        self._selected: str | None = None
        self._page_ids: set[str] = set()
        self._counts: dict[str, int] = {}
        self._pending = 0
        self._categories = _Categories()
        self.live = LiveRefresh(
            self, client=client, store=store, poll_scale=poll_scale, auto_timeout=auto_timeout
        )
        self._model: TableModel | DatasetModel = self._open(source, engine)
        self.controls = Controls(page_size=page_size, sort_by=sort_by, descending=descending)
        self._wire()
        if self.read_only:  # nothing to write answers to: the buttons say so when clicked
            self.controls.refresh_button.tooltip = READ_ONLY
            self.controls.auto_button.tooltip = READ_ONLY
        super().__init__(children=self.controls.layout())
        self.add_class("veo-viewer")
        self._after_frame_change()
        if auto_refresh:
            self.start()

    # -- loading ------------------------------------------------------------------------
    def _open(self, source: Any, engine: str | None) -> TableModel | DatasetModel:
        """The model for ``source``: in memory, or DuckDB queries over a dataset."""
        if engine not in (None, "pandas", "duckdb"):
            raise InputError(f"engine: {engine!r} is not one of pandas, duckdb")
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if path.suffix.lower() in _STORE_SUFFIXES:
                source = Store(path, create=False)
            elif engine == "pandas":
                return TableModel(read_parquet(path))
        if isinstance(source, Store):
            if self.live.store is None:
                self.live.store = source
            if engine == "duckdb" or (engine is None and source.count() > MEMORY_MAX_ROWS):
                return DatasetModel.from_store(source)
            return TableModel(from_store(source))
        if is_dataset_source(source):
            if isinstance(source, (str, os.PathLike)):
                return DatasetModel.from_path(source)
            return DatasetModel.from_relation(source)
        return TableModel(self._load(source))

    def _load(self, source: Any) -> pd.DataFrame:
        if isinstance(source, pd.DataFrame):
            return schema.enforce(source.copy(deep=False))
        if isinstance(source, Store):
            if self.live.store is None:
                self.live.store = source
            return from_store(source)
        if isinstance(source, (str, bytes)) or not isinstance(source, Iterable):
            raise InputError(
                "StatusViewer takes a typed frame, a Store, a Parquet path, a DuckDB "
                "relation or a list of task ids, "
                f"not {type(source).__name__}"
            )
        ids = [str(x) for x in source]
        return schema.enforce(self.live.fetch(ids))

    def _wire(self) -> None:
        """Connect the widgets' events to the viewer's handlers."""
        c = self.controls
        for widget in c.filters:
            widget.observe(self._on_filter, "value")
        c.prev_button.on_click(lambda _b: self._turn(-1))
        c.next_button.on_click(lambda _b: self._turn(+1))
        c.selector.observe(self._on_select, "value")
        c.refresh_button.on_click(lambda _b: self.live.refresh_clicked())
        c.auto_button.observe(self.live.on_auto, "value")
        c.export_parquet_button.on_click(lambda _b: self._export("parquet"))
        c.export_csv_button.on_click(lambda _b: self._export("csv"))

    # -- public -------------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """The whole typed frame as the viewer holds it now (refreshed rows included).

        Raises
        ------
        InputError
            For a dataset viewer: it never holds the history (use :meth:`view`).
        """
        if not isinstance(self._model, TableModel):
            raise InputError(
                "a dataset viewer does not hold the whole history in memory: use "
                "viewer.view() for the filtered rows, or veo.read_parquet on the dataset"
            )
        return self._model.df

    @property
    def read_only(self) -> bool:
        """True for a viewer over a Parquet dataset or a DuckDB relation (no store to
        refresh into): Refresh and Auto-refresh say so instead of polling."""
        return isinstance(self._model, DatasetModel) and self._model.store is None

    @property
    def page(self) -> int:
        """The current page, 0-based."""
        return self._page

    def page_frame(self) -> pd.DataFrame:
        """The rows of the current page, in display order."""
        with self._lock:
            size = int(self.controls.page_size.value)
            m = self._model
            return m.rows(self._page, size, *self._sort(), list(m.df.columns)
                          if isinstance(m, TableModel) else m.view_columns)  # fmt: skip

    def view(self) -> pd.DataFrame:
        """The filtered, sorted view (every page): what the export buttons write."""
        with self._lock:
            return self._model.view_frame(*self._sort())

    def select(self, task_id: str | None) -> None:
        """Show ``task_id`` in the detail pane (any task of the frame, not only this page)."""
        with self._lock:
            self._selected = task_id
            if task_id in self._page_ids:
                self._quiet(self.controls.selector, "value", task_id)
            self._render_detail()

    # -- live (see :class:`~veo_notebook.viewer._live.LiveRefresh`) -------------------------
    def refresh(self) -> int:
        """Re-poll the pending tasks once (synchronously); return how many were polled.

        >>> viewer.refresh()        # doctest: +SKIP
        12
        """
        return self.live.refresh()

    def pending_ids(self) -> list[str]:
        """Task ids a refresh would re-poll: what ``fetch_records(refresh="pending")`` asks."""
        return self.live.pending_ids()

    def start(self) -> None:
        """Start auto-refresh in a background thread (no-op if it already runs)."""
        self.live.start()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop auto-refresh and wait for its thread; True when it has ended."""
        return self.live.stop(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for auto-refresh (and a Refresh click's poll) to end; True when both have."""
        return self.live.wait(timeout)

    @property
    def running(self) -> bool:
        """True while auto-refresh runs."""
        return self.live.running

    @property
    def refresh_count(self) -> int:
        """Refresh rounds that re-polled something."""
        return self.live.count

    def __repr__(self) -> str:  # cheap: never renders the frame
        m = self._model
        pages = max(1, math.ceil(m.count() / int(self.controls.page_size.value)))
        return (
            f"StatusViewer(tasks={m.n}, matching={m.count()}, page={self._page + 1}/{pages}, "
            f"pending={self._pending})"
        )

    # -- events -------------------------------------------------------------------------
    def _on_filter(self, _change: Any = None) -> None:
        """Any filter, sort or page-size change: read every control, re-filter, page one."""
        c = self.controls
        bounds = []
        for box in (c.created_from, c.created_to):
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
            m = self._model
            for name, widget in c.facet_filters.items():  # the model skips unchanged ones
                m.set_facet(name, widget.value)
            m.set_created_range(bounds[0], bounds[1])
            m.set_text(c.search.value)
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
        self.controls.message.value = f"<span>{H.esc(text)}</span>"

    def _pages(self) -> int:
        return max(1, math.ceil(self._model.count() / int(self.controls.page_size.value)))

    def _sort(self) -> tuple[str, bool]:
        """The sort key and direction the controls ask for."""
        return self.controls.sort_by.value, bool(self.controls.sort_order.value)

    def _install(self, model: TableModel | DatasetModel | None) -> None:
        """Take a refreshed model (None: nothing changed), keeping the filters set meanwhile."""
        with self._lock:
            if model is not None:
                model.adopt_spec(self._model)
                self._model = model
            self._after_frame_change()

    def _after_frame_change(self) -> None:
        """Counts, progress and filter options after a new frame (load or refresh)."""
        with self._lock:
            m = self._model
            self._counts = m.status_counts()
            self._pending = m.pending_count()
            done = m.n - self._pending
            self.controls.progress.max = max(1, m.n)
            self.controls.progress.value = done
            self.controls.progress.bar_style = "success" if done == m.n else "info"
            for name, widget in self.controls.facet_filters.items():
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
            size = int(self.controls.page_size.value)
            page = m.rows(self._page, size, *self._sort(), _TABLE_COLUMNS)
            self.controls.header.value = H.header_html(self._counts, m.n, m.count(), self._pending)
            self.controls.table.value = H.table_html(page, self._categories(page))
            self.controls.page_label.value = (
                f"page {self._page + 1:,} of {self._pages():,} ({m.count():,} rows)"
            )
            self.controls.prev_button.disabled = self._page == 0
            self.controls.next_button.disabled = self._page >= self._pages() - 1
            ids = page["task_id"].tolist()
            self._page_ids = set(ids)
            options = self.controls.selector_options(ids, page["status"].tolist())
            self._suspend = True
            try:
                self.controls.selector.options = options
                self.controls.selector.value = (
                    self._selected if self._selected in self._page_ids else None
                )
            finally:
                self._suspend = False
            self._render_detail()

    def _render_detail(self) -> None:
        if self._selected is None:
            self.controls.detail.value = (
                "<i>Choose a task to see its parameters, error and video.</i>"
            )
            return
        row = self._model.task(self._selected)
        if row is None:
            self.controls.detail.value = f"<i>No task {H.esc(self._selected)} in this frame.</i>"
            return
        family = H.family_html(_family(self._model, row.iloc[0]), self._selected)
        self.controls.detail.value = H.detail_html(row.iloc[0], self._categories(row)[0], family)

    # -- export ---------------------------------------------------------------------------
    def _export(self, fmt: str) -> None:
        from .. import export

        path = self.controls.export_path.value.strip() or f"veo-view.{fmt}"
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


def _widget(name: str) -> property:
    return property(lambda self: getattr(self.controls, name), doc=f"The ``{name}`` widget.")


def _facet_filter(column: str) -> property:
    return property(
        lambda self: self.controls.facet_filters[column], doc=f"The ``{column}`` filter."
    )


for _name in Controls.PUBLIC:  # viewer.header, viewer.search, ...: the widgets, by name
    setattr(StatusViewer, _name, _widget(_name))
for _facet in FACETS:  # viewer.status_filter, viewer.model_filter, ...
    setattr(StatusViewer, f"{_facet.column}_filter", _facet_filter(_facet.column))
