"""Bulk fetch and watch: many task ids, one :class:`Client`, one :class:`Store`.

:func:`fetch_records` fans the ids out over a thread pool sharing one connection pool
and one adaptive rate limiter, streams every answer into the store in small
transactions (an interrupted run keeps what was answered; the next run fetches only the
rest), and returns the typed frame built from the store: exactly one row per unique
non-blank id, in first-seen order, whatever happened to it.

:func:`watch` re-queries only the tasks still generating, on kie.ai's advised schedule
(:func:`poll_interval`), until all are terminal or a timeout.

>>> from veo_notebook import Client, simulator
>>> with simulator.serve() as url:
...     df = fetch_records(["veo_task_1"], client=Client(simulator.DEFAULT_API_KEY, base_url=url),
...                        progress=False)
>>> len(df)
1
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..client import Client
from ..config import REFRESH_MODES, Refresh
from ..errors import InputError
from ..frame import from_store, to_frame
from ..schema import NOT_IN_STORE
from ..store import Store
from ._ids import TASK_ID_PATTERN, IdsRead, is_task_id, read_ids, read_task_ids, unique_ids
from ._run import OnUpdate
from ._run import run as _run

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TASK_ID_PATTERN",
    "IdsRead",
    "fetch_records",
    "is_task_id",
    "poll_interval",
    "read_ids",
    "read_task_ids",
    "watch",
]

log = logging.getLogger(__name__)

#: kie.ai's advised polling schedule: (until this many seconds into a watch, poll every).
POLL_SCHEDULE = ((30.0, 2.5), (120.0, 7.5))
#: ... and after the last step.
POLL_LATE_S = 20.0
#: ``with_parents`` follows parents this many levels up at most (kie.ai families are a
#: generate, extends of it and upgrades: a few levels; a cycle in bad data stops sooner,
#: as every id is asked once).
MAX_PARENT_DEPTH = 16


# ---------------------------------------------------------------------------- schedule
def poll_interval(elapsed_s: float) -> float:
    """Seconds to wait before the next poll, ``elapsed_s`` seconds into a watch.

    kie.ai's advice: every 2–3 s for the first 30 s, 5–10 s until 2 minutes, 15–30 s after.

    >>> [poll_interval(t) for t in (0, 60, 600)]
    [2.5, 7.5, 20.0]
    """
    for until, every in POLL_SCHEDULE:
        if elapsed_s < until:
            return every
    return POLL_LATE_S


# ---------------------------------------------------------------------------- frame
def _frame_for(store: Store, ids: list[str]) -> pd.DataFrame:
    df = from_store(store, ids)  # the fast path: the store's bytes straight to the reader
    if len(df) == len(ids):
        return df
    held = {r["task_id"]: r for r in store.rows(ids)}
    missing: dict[str, Any] = {"raw": None, "fetched_at": None, "fetch_error": NOT_IN_STORE}
    rows: list[Any] = [held.get(i) or {"task_id": i, **missing} for i in ids]
    return to_frame(rows)


@contextlib.contextmanager
def _closing_if(made: bool, client: Client | None) -> Iterator[None]:
    """Close a client this module made; one the caller gave is the caller's to close."""
    try:
        yield
    finally:
        if made and client is not None:
            client.close()


@contextlib.contextmanager
def _open_store(
    store: Store | str | os.PathLike[str] | None, *, create: bool = True
) -> Iterator[Store]:
    """The store given, or one opened from a path (``create=False``: it must exist)."""
    if isinstance(store, Store):
        yield store
        return
    with Store(":memory:" if store is None else store, create=create or store is None) as s:
        yield s


def _check_refresh(refresh: str) -> None:
    if refresh not in REFRESH_MODES:
        raise InputError(f"refresh must be one of {', '.join(REFRESH_MODES)}; got {refresh!r}")


def fetch_records(
    task_ids: Iterable[Any],
    *,
    client: Client | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    refresh: Refresh = "pending",
    progress: bool = True,
    max_workers: int | None = None,
    on_update: OnUpdate | None = None,
    from_callbacks: Store | str | os.PathLike[str] | None = None,
    with_parents: bool = False,
) -> pd.DataFrame:
    """Fetch the record of every task id; one typed row per unique non-blank id.

    Parameters
    ----------
    task_ids : iterable
        Task ids, kept exactly as given (no stripping); None, NaN and blank strings are
        dropped, ints become str, duplicates keep their first place.
    client : Client, optional
        Default ``Client()`` (key from ``KIE_API_KEY``; base URL from ``KIE_BASE_URL``,
        else ``https://api.kie.ai``).
    store : Store or path, optional
        Where answers are written as they arrive; default an in-memory store.
    refresh : {"pending", "all", "none"}
        "pending": skip ids whose stored record is terminal; "all": query every id (a
        stored record is never replaced by a worse answer); "none": the store alone
        (ids it does not hold get ``fetch_error`` "not in store"; no key needed; a
        store path that does not exist is a :class:`StoreNotFoundError`, never created).
    progress : bool
        A ``tqdm.auto`` progress bar.
    max_workers : int, optional
        Most concurrent queries (default ``client.max_in_flight``; the client's limiter
        adapts below it).
    on_update : callable, optional
        Called with each :class:`~veo_notebook.client.Outcome`, in the calling thread.
    from_callbacks : Store or path, optional
        Also the ids the callback receiver has seen (its store, or a JSONL file of
        callback bodies), after ``task_ids``: ``fetch_records([], from_callbacks=store)``.
    with_parents : bool
        Also the parents the records name (an extend's, an upgrade's: ``parent_task_id``)
        that are not among the ids, and theirs, up to :data:`MAX_PARENT_DEPTH` levels:
        each asked once (by the same ``refresh`` rule), stored like any record; their rows
        follow the ids' rows. A parent older than kie.ai's 14 days is a row whose
        ``fetch_error`` says so (``veo.families`` names it).

    Raises
    ------
    AuthError
        The key was refused: the batch stops at once; what was answered stays stored.
    ConfigError
        No API key (before any request).

    >>> from veo_notebook import Client, simulator
    >>> with simulator.serve() as url:
    ...     c = Client(simulator.DEFAULT_API_KEY, base_url=url)
    ...     fetch_records(["nope", "nope", ""], client=c, progress=False)["fetch_error"].tolist()
    ['422 record is null.']
    """
    _check_refresh(refresh)
    if from_callbacks is not None:
        from ..callbacks import task_ids as callback_ids

        task_ids = [*task_ids, *callback_ids(from_callbacks)]
    ids = unique_ids(task_ids)
    made = refresh != "none" and client is None
    if made:
        client = Client()
    with _open_store(store, create=refresh != "none") as st, _closing_if(made, client):
        if refresh != "none" and ids:
            assert client is not None
            _ask(st, ids, client, refresh, max_workers, progress, on_update)
        if with_parents:
            ids = ids + _parents(st, ids, client, refresh, max_workers, progress, on_update)
        return _frame_for(st, ids)


def _ask(
    st: Store,
    ids: list[str],
    client: Client,
    refresh: Refresh,
    max_workers: int | None,
    progress: bool,
    on_update: OnUpdate | None,
) -> None:
    """Query those of ``ids`` that ``refresh`` asks for ("pending": not terminal in ``st``)."""
    done = st.terminal_ids(ids) if refresh == "pending" else set()
    todo = [i for i in ids if i not in done]
    log.info(
        "fetch: %d ids, %d already terminal in the store, %d to query",
        len(ids),
        len(done),
        len(todo),
    )
    if todo:
        workers = max_workers or client.max_in_flight
        _run(client, todo, st, workers=workers, progress=progress, on_update=on_update)


def _parents(
    st: Store,
    ids: list[str],
    client: Client | None,
    refresh: Refresh,
    max_workers: int | None,
    progress: bool,
    on_update: OnUpdate | None,
) -> list[str]:
    """The ancestors of ``ids`` not among them, fetched level by level, each id once."""
    seen = set(ids)
    added: list[str] = []
    level = ids
    for _ in range(MAX_PARENT_DEPTH):
        named = from_store(st, level)["parent_task_id"].dropna().unique().tolist()
        level = [p for p in named if p not in seen]
        if not level:
            break
        seen.update(level)
        added += level
        if refresh != "none":
            assert client is not None
            _ask(st, level, client, refresh, max_workers, progress, on_update)
    return added


def watch(
    task_ids: Iterable[Any],
    *,
    client: Client | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    timeout: float = 900,
    progress: bool = True,
    on_update: OnUpdate | None = None,
    max_workers: int | None = None,
    speed: float = 1.0,
) -> pd.DataFrame:
    """Poll until every task is terminal (successFlag 1, 2 or 3) or ``timeout`` seconds.

    Only tasks still generating are queried again, on :func:`poll_interval`'s schedule.
    Tasks whose query failed for good (422 "record is null." ...) are not re-polled. At
    the timeout the frame is returned as it is (pending tasks stay "generating").
    Parameters not listed here are those of :func:`fetch_records`.

    Parameters
    ----------
    speed : float
        Simulated seconds per real second: divides the schedule and the timeout (for a
        simulator whose clock runs faster than real time).

    Examples
    --------
    >>> from veo_notebook import Client, simulator
    >>> with simulator.serve(clock_speed=600) as url:
    ...     c = Client(simulator.DEFAULT_API_KEY, base_url=url)
    ...     df = watch(["veo_task_1"], client=c, progress=False, speed=600)
    """
    from tqdm.auto import tqdm

    ids = unique_ids(task_ids)
    made = client is None
    client = client or Client()
    workers = max_workers or client.max_in_flight
    start = time.monotonic()
    with _open_store(store) as st, _closing_if(made, client):
        settled = st.terminal_ids(ids)  # one query for the batch, not one per id
        todo = [i for i in ids if i not in settled]
        with tqdm(total=len(ids), desc="terminal", unit="task", disable=not progress) as bar:
            while True:
                bar.update(len(ids) - len(todo) - bar.n)
                elapsed = (time.monotonic() - start) * speed
                if not todo or elapsed >= timeout:
                    break
                if todo and elapsed > 0:
                    time.sleep(min(poll_interval(elapsed), timeout - elapsed) / speed)
                todo = sorted(
                    _run(client, todo, st, workers=workers, progress=False, on_update=on_update),
                    key={t: n for n, t in enumerate(ids)}.__getitem__,
                )
        if todo:
            log.info("watch: timeout after %.0fs with %d tasks still pending", timeout, len(todo))
        return _frame_for(st, ids)
