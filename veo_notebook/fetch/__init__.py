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
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Literal

from ..client import Client, Outcome
from ..errors import EndpointError, InputError, TransientError
from ..frame import from_store, to_frame
from ..schema import NOT_IN_STORE
from ..store import Answer, Store
from ._ids import IdsRead, read_ids, read_task_ids, unique_ids

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["IdsRead", "fetch_records", "poll_interval", "read_ids", "read_task_ids", "watch"]

log = logging.getLogger(__name__)

Refresh = Literal["pending", "all", "none"]
OnUpdate = Callable[[Outcome], Any]
#: Answers are committed to the store every this many rows or seconds, whichever first:
#: a killed process loses at most that much, and SQLite sees few, short transactions.
_FLUSH_ROWS = 50
_FLUSH_SECONDS = 0.5
#: kie.ai's advised polling schedule: (until this many seconds into a watch, poll every).
POLL_SCHEDULE = ((30.0, 2.5), (120.0, 7.5))
#: ... and after the last step.
POLL_LATE_S = 20.0
#: Consecutive ids that failed after all retries before the API is taken to be down: at
#: least this many, or three rounds of the workers.
_GIVE_UP_MIN = 20
_GIVE_UP_ROUNDS = 3


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


# ---------------------------------------------------------------------------- the run
class _Writer:
    """Buffers answers and writes them in small transactions (every 50 rows or 0.5 s).

    Until the client has seen the base URL answer like kie.ai, only a full buffer is
    written: if the URL then proves wrong (:class:`EndpointError`), its few answers are
    dropped instead of landing in the store as rows that all say "404".
    """

    def __init__(self, store: Store, client: Client) -> None:
        self.store = store
        self.client = client
        self.buf: list[Answer] = []
        self.last = time.monotonic()

    def add(self, o: Outcome) -> None:
        self.buf.append(Answer(o.task_id, o.raw, o.fetched_at, o.fetch_error, o.facts))
        if len(self.buf) >= _FLUSH_ROWS:
            self.flush()

    def tick(self) -> None:
        due = time.monotonic() - self.last >= _FLUSH_SECONDS
        if self.buf and due and self.client.proven:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.store.put_many(self.buf)
            self.buf = []
        self.last = time.monotonic()


def _one(client: Client, task_id: str, stop: threading.Event) -> tuple[Outcome, bool]:
    """Query one id; (outcome, poll again?). A transient failure past its retries is a row."""
    try:
        o = client.get_record(task_id, cancel=stop)
    except TransientError as exc:  # its message starts with the code when there is one
        o = Outcome(task_id, None, None, exc.message, False)
    return o, o.pending


def _run(
    client: Client,
    ids: list[str],
    store: Store,
    *,
    workers: int,
    progress: bool,
    on_update: OnUpdate | None,
    desc: str = "fetch",
) -> set[str]:
    """Fetch ``ids`` into ``store``; return the ids worth polling again (pending, transient)."""
    from tqdm.auto import tqdm

    stop = threading.Event()
    writer = _Writer(store, client)
    again: set[str] = set()
    pending: set[Future[tuple[Outcome, bool]]] = set()
    place: dict[Future[tuple[Outcome, bool]], int] = {}  # future -> its id's place
    running: set[int] = set()  # places of the ids still being asked
    asked: set[Future[tuple[Outcome, bool]]] = set()  # their futures
    held: dict[int, Future[tuple[Outcome, bool]]] = {}  # answered before an earlier id
    held_since = 0.0
    seq = itertools.count()
    it = iter(ids)
    window = 2 * workers
    give_up = max(_GIVE_UP_MIN, _GIVE_UP_ROUNDS * workers)
    failures = 0
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="veo-fetch")
    bar = tqdm(total=len(ids), desc=desc, unit="task", disable=not progress, leave=False)

    def take(fut: Future[tuple[Outcome, bool]], *, notify: bool = True) -> None:
        nonlocal failures
        pending.discard(fut)
        outcome, poll = fut.result()
        writer.add(outcome)
        if poll:
            again.add(outcome.task_id)
        failures = failures + 1 if outcome.raw is None and poll else 0
        bar.update(1)
        if notify and on_update is not None:
            on_update(outcome)

    try:
        while True:
            while len(pending) < window and (tid := next(it, None)) is not None:
                fut = executor.submit(_one, client, tid, stop)
                place[fut] = n = next(seq)
                running.add(n)
                pending.add(fut)
                asked.add(fut)
            if not pending:
                break
            if asked:
                done, _ = wait(asked, timeout=_FLUSH_SECONDS, return_when=FIRST_COMPLETED)
            else:
                done = set()
            asked -= done
            # stored in the order the ids were given: an answer waits for the earlier ids'
            # (at most _FLUSH_SECONDS, then what is held is stored, still in order)
            for fut in done:
                n = place.pop(fut)
                running.discard(n)
                if not held:
                    held_since = time.monotonic()
                held[n] = fut
            first = min(running, default=None)
            late = bool(held) and time.monotonic() - held_since >= _FLUSH_SECONDS
            for n in sorted(held):
                if first is not None and n > first and not late:
                    break
                take(held.pop(n))  # a future stays in `pending` until taken
            if held:
                held_since = time.monotonic() if late else held_since
            writer.tick()
            if failures >= give_up:
                where = "the store" if store.path == ":memory:" else store.path
                raise TransientError(
                    f"{failures} tasks in a row failed after all retries; the API looks down "
                    f"(everything answered so far is in {where})"
                )
    except BaseException as exc:
        stop.set()
        for fut in list(pending):
            fut.cancel()
        if isinstance(exc, EndpointError):
            writer.buf.clear()  # answers from a URL that is not kie.ai's API: not history
        else:
            for n in sorted(held):  # answered, held for an earlier id: kept, in order
                fut = held.pop(n)
                if fut.exception() is None:
                    take(fut, notify=False)
            for fut in list(pending):  # answered but not yet taken: kept too
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    take(fut, notify=False)
        raise
    finally:
        try:
            writer.flush()
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            bar.close()
    return again


def _check_refresh(refresh: str) -> None:
    if refresh not in ("pending", "all", "none"):
        raise InputError(f"refresh must be 'pending', 'all' or 'none', got {refresh!r}")


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
) -> pd.DataFrame:
    """Fetch the record of every task id; one typed row per unique non-blank id.

    Parameters
    ----------
    task_ids : iterable
        Task ids, kept exactly as given (no stripping); None, NaN and blank strings are
        dropped, ints become str, duplicates keep their first place.
    client : Client, optional
        Default ``Client()`` (key from ``KIE_API_KEY``, base ``https://api.kie.ai``).
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
            done = st.terminal_ids(ids) if refresh == "pending" else set()
            todo = [i for i in ids if i not in done]
            log.info(
                "fetch: %d ids, %d already terminal in the store, %d to query",
                len(ids),
                len(done),
                len(todo),
            )
            if todo:
                _run(
                    client,
                    todo,
                    st,
                    workers=max_workers or client.max_in_flight,
                    progress=progress,
                    on_update=on_update,
                )
        return _frame_for(st, ids)


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
