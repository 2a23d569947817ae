"""Live mode of the status viewer: re-poll pending tasks through the fetch layer.

``refresh()`` re-polls exactly the rows :func:`veo_notebook.schema.is_pending` names (what
``fetch_records(refresh="pending")`` would ask) and puts the answers in place; the
auto-refresh thread repeats it on ``fetch.poll_interval``'s schedule (times
``poll_scale``) and stops by itself once no task is pending. The kernel is never
blocked: the thread only takes the viewer's lock to swap rows in.

>>> viewer.refresh()        # doctest: +SKIP
3
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import AuthError, ConfigError, VeoError
from ..fetch import fetch_records, poll_interval
from ..frame import _roots
from ._model import TableModel

__all__ = ["READ_ONLY", "LiveRefresh", "merge_rows"]

#: What a viewer over a Parquet file or a DuckDB relation says when asked to refresh: it
#: has no store to write answers to, so it shows the data as it was read.
READ_ONLY = (
    "read-only: this viewer shows a Parquet dataset or a DuckDB relation as it is; "
    "view a Store to refresh"
)

logger = logging.getLogger("veo_notebook.viewer")


def merge_rows(
    df: pd.DataFrame, positions: np.ndarray, answers: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """``df`` with the rows at ``positions`` replaced by the answers for the same task ids.

    A row that was read is never replaced by an answer that could not be (a fetch
    error); rows keep their places. Returns the new frame and how many rows changed.

    >>> from veo_notebook import schema
    >>> old = schema.enforce(pd.DataFrame({"task_id": ["a", "b"], "status": ["generating"] * 2}))
    >>> new = schema.enforce(pd.DataFrame({"task_id": ["b"], "status": ["success"]}))
    >>> df, n = merge_rows(old, np.array([0, 1]), new)
    >>> n, df["status"].tolist()
    (1, ['generating', 'success'])
    """
    frame, replaced = _merge(df, positions, answers)
    return frame, len(replaced)


def _merge(
    df: pd.DataFrame, positions: np.ndarray, answers: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`merge_rows`, returning the positions replaced."""
    answers = schema.enforce(answers).drop_duplicates("task_id", keep="last")
    where = dict(zip(df["task_id"].iloc[positions].tolist(), positions.tolist(), strict=True))
    old_read = df["status"].notna().to_numpy()
    new_read = answers["status"].notna().to_numpy()
    src, dst = [], []
    for i, tid in enumerate(answers["task_id"].tolist()):
        p = where.get(tid)
        if p is not None and (new_read[i] or not old_read[p]):
            src.append(i)
            dst.append(p)
    if not src:
        return df, np.asarray(dst, dtype=np.intp)
    rows = answers.iloc[src].reindex(columns=df.columns)
    combined = pd.concat([df, rows], ignore_index=True)
    take = np.arange(len(df))
    take[np.asarray(dst)] = len(df) + np.arange(len(src))
    out = combined.take(take).reset_index(drop=True)
    # the answers' roots were derived over the answers alone: keep the frame's, unless a
    # refreshed row now names another parent (an unread row read at last)
    old_parent = df["parent_task_id"].iloc[dst].reset_index(drop=True)
    new_parent = out["parent_task_id"].iloc[dst].reset_index(drop=True)
    if old_parent.equals(new_parent):
        out[_roots.ROOT_COLUMN] = df[_roots.ROOT_COLUMN]
    else:
        _roots.assign(out)
    return out, np.asarray(dst, dtype=np.intp)


if TYPE_CHECKING:
    from . import StatusViewer


class LiveRefresh:
    """Re-polls a viewer's pending tasks through ``fetch_records``: once, or on a schedule.

    It owns the client, the store and the threads; the viewer owns the frame. It reads the
    viewer's model under the viewer's lock and hands a new model back with
    ``viewer._install``; it never touches a widget but the two refresh buttons.
    """

    def __init__(
        self,
        viewer: StatusViewer,
        *,
        client: Any,
        store: Any,
        poll_scale: float,
        auto_timeout: float,
    ) -> None:
        self.viewer = viewer
        self.client, self.store = client, store
        self.poll_scale = float(poll_scale)
        self.auto_timeout = float(auto_timeout)
        self.count = 0  # refresh rounds that re-polled something
        self._refresh_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._button_thread: threading.Thread | None = None
        self._auto_sync = False

    def fetch(self, ids: list[str]) -> pd.DataFrame:
        """The typed rows of ``ids`` from the fetch layer (the store first, by the one rule)."""
        return fetch_records(
            ids, client=self.client, store=self.store, refresh="pending", progress=False
        )

    def pending_ids(self) -> list[str]:
        """Task ids a refresh would re-poll (:func:`veo_notebook.schema.is_pending`)."""
        v = self.viewer
        with v._lock:
            return v._model.pending_ids()

    def refresh(self) -> int:
        """Re-poll the pending tasks once (synchronously); return how many were polled."""
        v = self.viewer
        with self._refresh_lock:
            with v._lock:
                model = v._model
            if not isinstance(model, TableModel):
                return self._refresh_dataset(model)
            pending = model.pending_positions()
            ids = model.df["task_id"].iloc[pending].tolist()
            if not ids:
                v._say("every task is terminal: nothing to refresh")
                return 0
            answers = self.fetch(ids)
            # Build the new frame and model outside the lock (O(n) on a big frame), so
            # the kernel's own handlers never wait for more than the swap and a render.
            frame, rows = _merge(model.df, pending, answers)
            replaced = len(rows)
            fresh = None
            if replaced:  # only the replaced rows are re-indexed, not the frame
                fresh = model.with_rows(frame, rows)
                fresh.order(*v._sort())
            with v._lock:
                self.count += 1
                v._install(fresh)  # filters changed while we polled are kept
                left = v._model.pending_count()
            v._say(
                f"{time.strftime('%H:%M:%S')}: re-polled {len(ids):,} tasks, "
                f"{replaced:,} updated, {left:,} still pending"
            )
            return len(ids)

    def _refresh_dataset(self, model: Any) -> int:
        """A dataset viewer's refresh: re-poll its pending tasks into its store, re-sync the
        store's frame dataset (only the touched days are rewritten) and view it again."""
        v = self.viewer
        if model.store is None:
            v._say(READ_ONLY)
            return 0
        ids = model.pending_ids()
        if not ids:
            v._say("every task is terminal: nothing to refresh")
            return 0
        if self.store is None:
            self.store = model.store
        self.fetch(ids)
        fresh = model.reopened()
        with v._lock:
            self.count += 1
            v._install(fresh)
            left = v._model.pending_count()
        v._say(f"{time.strftime('%H:%M:%S')}: re-polled {len(ids):,} tasks, {left:,} still pending")
        return len(ids)

    def refresh_clicked(self) -> None:
        """The Refresh button: one refresh in a background thread (the kernel stays free)."""
        if self._button_thread is not None and self._button_thread.is_alive():
            return
        self.viewer.controls.refresh_button.disabled = True
        self._button_thread = threading.Thread(
            target=self._refresh_once, name="veo-viewer-refresh-once", daemon=True
        )
        self._button_thread.start()

    def _refresh_once(self) -> None:
        try:
            self.refresh()
        except VeoError as exc:
            logger.warning("refresh failed: %s", exc)
            self.viewer._say(f"refresh failed: {exc}")
        finally:
            self.viewer.controls.refresh_button.disabled = False

    # -- auto-refresh -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the auto-refresh thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start auto-refresh in a background thread (no-op if it already runs)."""
        with self.viewer._lock:
            if self.running:
                return
            if self.viewer.read_only:
                self.viewer._say(READ_ONLY)
                self._set_auto_button(False)
                return
            self._stop_event = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop_event,), name="veo-viewer-refresh", daemon=True
            )
            self._set_auto_button(True)
            self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop auto-refresh and wait for its thread; True when it has ended."""
        self._stop_event.set()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for auto-refresh (and a Refresh click's poll) to end; True when both have."""
        for thread in (self._thread, self._button_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
        button = self._button_thread
        return not self.running and not (button is not None and button.is_alive())

    def _set_auto_button(self, value: bool) -> None:
        self._auto_sync = True
        try:
            self.viewer.controls.auto_button.value = value
        finally:
            self._auto_sync = False

    def on_auto(self, change: Any) -> None:
        """The Auto-refresh toggle."""
        if self._auto_sync:
            return
        if change["new"]:
            self.start()
        else:
            self._stop_event.set()  # the thread ends after its current poll

    def _run(self, stop: threading.Event) -> None:
        say = self.viewer._say
        t0 = time.monotonic()
        try:
            while not stop.is_set():
                if not self.pending_ids():
                    say("every task is terminal: auto-refresh stopped")
                    break
                if time.monotonic() - t0 > self.auto_timeout:
                    say(f"auto-refresh gave up after {self.auto_timeout:.0f} s")
                    break
                try:
                    self.refresh()
                except (AuthError, ConfigError) as exc:
                    say(f"auto-refresh stopped: {exc}")
                    break
                except Exception as exc:  # keep polling through transient trouble
                    logger.warning("auto-refresh round failed: %s", exc)
                    say(f"refresh failed ({type(exc).__name__}): {exc}; will retry")
                if not self.pending_ids():
                    say("every task is terminal: auto-refresh stopped")
                    break
                stop.wait(poll_interval(time.monotonic() - t0) * self.poll_scale)
        finally:
            self._set_auto_button(False)
