"""One fetch run: ids fanned out over a thread pool, answers stored in order, in batches.

The parts, each small enough to test alone:

* the submission window — at most ``2 × workers`` ids asked at once (in :func:`run`);
* :class:`InOrder` — answers come back in any order but are stored in the order the ids
  were given: an answer waits for the earlier ids' (at most ``patience`` seconds, then
  what is held is released, still in order);
* :class:`GiveUp` — so many ids in a row failing after all their retries mean the API is
  down: the run stops with a :class:`~veo_notebook.errors.TransientError`;
* :class:`Writer` — answers written in small transactions (every :data:`FLUSH_ROWS` rows
  or :data:`FLUSH_SECONDS`), none from a base URL not yet proven to be kie.ai's;
* saving on Ctrl-C — what was answered before an interrupt is kept (:func:`_save`).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from ..client import Client, Outcome
from ..errors import EndpointError, TransientError
from ..store import Answer, Store

__all__ = ["FLUSH_ROWS", "FLUSH_SECONDS", "GiveUp", "InOrder", "Writer", "run"]

T = TypeVar("T")
OnUpdate = Callable[[Outcome], Any]
Asked = Future[tuple[Outcome, bool]]
#: Answers are committed to the store every this many rows or seconds, whichever first:
#: a killed process loses at most that much, and SQLite sees few, short transactions.
FLUSH_ROWS = 50
FLUSH_SECONDS = 0.5
#: Consecutive ids that failed after all retries before the API is taken to be down: at
#: least this many, or three rounds of the workers.
GIVE_UP_MIN = 20
GIVE_UP_ROUNDS = 3
WINDOW_ROUNDS = 2  # ids asked at once, in rounds of the workers


class InOrder(Generic[T]):
    """Items finished in any order, released in the order they were started.

    An item is released once every earlier one has finished; after ``patience`` seconds
    of holding, everything held is released (still in order), so one slow item does not
    hold back the rest for long.

    >>> buf = InOrder[str](patience=60.0)
    >>> a, b = buf.start(), buf.start()
    >>> buf.finish(b, "b"); buf.ready()
    []
    >>> buf.finish(a, "a"); buf.ready()
    ['a', 'b']
    """

    def __init__(self, patience: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.patience = patience
        self._clock = clock
        self._places = itertools.count()
        self._running: set[int] = set()
        self._held: dict[int, T] = {}
        self._since = 0.0  # when the oldest item now held was held

    def start(self) -> int:
        """A place for the next item (started now, not finished)."""
        place = next(self._places)
        self._running.add(place)
        return place

    def finish(self, place: int, item: T) -> None:
        """The item at ``place`` has finished: hold it until it may be released."""
        self._running.discard(place)
        if not self._held:
            self._since = self._clock()
        self._held[place] = item

    def ready(self) -> list[T]:
        """The items that may be released now, in order (taken out of the buffer)."""
        first = min(self._running, default=None)
        late = bool(self._held) and self._clock() - self._since >= self.patience
        out = []
        for place in sorted(self._held):
            if first is not None and place > first and not late:
                break
            out.append(self._held.pop(place))
        return out

    def drain(self) -> list[T]:
        """Every held item, in order, whatever is still running (an interrupt)."""
        out = [self._held[p] for p in sorted(self._held)]
        self._held.clear()
        return out

    def __len__(self) -> int:
        return len(self._held)


class GiveUp:
    """The give-up rule: ``limit`` ids in a row that failed after all their retries.

    >>> rule = GiveUp(workers=2)
    >>> rule.limit
    20
    >>> for _ in range(20): rule.record(failed=True)
    >>> rule.reached
    True
    """

    def __init__(self, workers: int) -> None:
        self.limit = max(GIVE_UP_MIN, GIVE_UP_ROUNDS * workers)
        self.run = 0  # failures in a row

    def record(self, failed: bool) -> None:
        """One id's outcome: a failure after all retries, or anything else (resets)."""
        self.run = self.run + 1 if failed else 0

    @property
    def reached(self) -> bool:
        return self.run >= self.limit

    def error(self, where: str) -> TransientError:
        """The error that stops the run (everything answered so far is in ``where``)."""
        return TransientError(
            f"{self.run} tasks in a row failed after all retries; the API looks down "
            f"(everything answered so far is in {where})"
        )


class Writer:
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
        if len(self.buf) >= FLUSH_ROWS:
            self.flush()

    def tick(self) -> None:
        due = time.monotonic() - self.last >= FLUSH_SECONDS
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


class _Taker:
    """What becomes of one answer: stored, counted, noted for a later poll, reported."""

    def __init__(self, writer: Writer, rule: GiveUp, bar: Any, on_update: OnUpdate | None):
        self.writer, self.rule, self.bar, self.on_update = writer, rule, bar, on_update
        self.again: set[str] = set()

    def __call__(self, fut: Asked, *, notify: bool = True) -> None:
        outcome, poll = fut.result()
        self.writer.add(outcome)
        if poll:
            self.again.add(outcome.task_id)
        self.rule.record(failed=outcome.raw is None and poll)
        self.bar.update(1)
        if notify and self.on_update is not None:
            self.on_update(outcome)


def run(
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
    writer = Writer(store, client)
    rule = GiveUp(workers)
    order: InOrder[Asked] = InOrder(FLUSH_SECONDS)
    pending: dict[Asked, int] = {}  # asked, not yet taken -> its place in the order
    asked: set[Asked] = set()  # asked, not yet answered
    it = iter(ids)
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="veo-fetch")
    bar = tqdm(total=len(ids), desc=desc, unit="task", disable=not progress, leave=False)
    take = _Taker(writer, rule, bar, on_update)
    finished: queue.SimpleQueue[Asked] = queue.SimpleQueue()  # answered, as they finish
    try:
        while True:
            while len(pending) < WINDOW_ROUNDS * workers and (tid := next(it, None)) is not None:
                fut = executor.submit(_one, client, tid, stop)
                pending[fut] = order.start()
                asked.add(fut)
                fut.add_done_callback(finished.put)
            if not pending:
                break
            done = _finished(finished, FLUSH_SECONDS) if asked else set()
            asked -= done
            for fut in done:
                order.finish(pending[fut], fut)
            for fut in order.ready():
                del pending[fut]
                take(fut)
            writer.tick()
            if rule.reached:
                raise rule.error("the store" if store.path == ":memory:" else store.path)
    except BaseException as exc:
        stop.set()
        _save(exc, order, pending, writer, take)
        raise
    finally:
        try:
            writer.flush()
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            bar.close()
    return take.again


def _finished(finished: queue.SimpleQueue[Asked], timeout: float) -> set[Asked]:
    """The requests answered since the last call, waiting up to ``timeout`` for the first.

    Not ``concurrent.futures.wait``: it takes every future's lock in a Python loop, and a
    Ctrl-C landing there leaves a lock held that a worker then waits on forever (the
    process hangs at exit joining it). ``SimpleQueue.get`` is interrupted cleanly."""
    done: set[Asked] = set()
    try:
        done.add(finished.get(timeout=timeout))
        while True:
            done.add(finished.get_nowait())
    except queue.Empty:
        pass
    return done


def _save(
    exc: BaseException,
    order: InOrder[Asked],
    pending: dict[Asked, int],
    writer: Writer,
    take: _Taker,
) -> None:
    """On an interrupt: keep what was answered (held ones first, in order), drop the rest."""
    for fut in pending:
        fut.cancel()
    if isinstance(exc, EndpointError):
        writer.buf.clear()  # answers from a URL that is not kie.ai's API: not history
        return
    held = order.drain()
    for fut in held:  # answered, held for an earlier id: kept, in order
        if fut.exception() is None:
            take(fut, notify=False)
    for fut in pending:  # answered but not yet taken: kept too
        if fut not in held and fut.done() and not fut.cancelled() and fut.exception() is None:
            take(fut, notify=False)
