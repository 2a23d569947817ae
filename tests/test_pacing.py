"""The adaptive limiter: deterministic runs on a fake clock, then the client over real sockets.

The discrete-event runs drive :class:`AdaptiveLimiter` against a model server (a sliding
1-second window limit, optional random 429s, a fixed latency): no wall time, no timed
assertions, the same answer on every machine.
"""

from __future__ import annotations

import heapq
import importlib.util
import itertools
import random
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import SENTINEL_KEY

from veo_notebook.client import Client
from veo_notebook.client._pacing import (
    DEFAULT_MAX_IN_FLIGHT,
    AdaptiveLimiter,
    Cancelled,
    RetryPolicy,
    congested,
)
from veo_notebook.client._tuning import SLOW_START_GAIN, START_RATE
from veo_notebook.fetch import fetch_records

ROOT = Path(__file__).resolve().parent.parent


def _bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


limits = _bench("limits")


class _Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Run:
    rate: float  # accepted answers per second
    share_429: float
    peak_in_flight: int
    limiter: AdaptiveLimiter


def simulate(
    *,
    limit: int | None = None,
    kind: str = "sliding",
    retry_after: str = "one",
    random_429: float = 0.0,
    latency: float = 0.1,
    workers: int = DEFAULT_MAX_IN_FLIGHT,
    duration: float = 60.0,
    seed: int = 0,
    late: float = 0.0,
    busy: tuple[float, float] = (0.0, 0.0),
    phase: float = 0.0,
    **kw: Any,
) -> Run:
    """A discrete-event run of the limiter against a model of ``bench/limits.py``.

    ``workers`` callers send as the limiter allows; the server applies the limit ``kind``
    (``limit`` requests/s, or requests in flight for ``"concurrent"``; refused ones do
    not count), refuses a further ``random_429`` share at random, answers an accepted
    request after ``latency`` (jitter 0-10 %) and a refused one at once, with the
    ``retry_after`` behaviour of the server. A refused request waits what the client
    would (``Retry-After``, else a jittered backoff) and is sent again. A caller waiting
    for a slot wakes ``late`` seconds after it on average (exponential: a loaded machine);
    requests sent within ``busy`` (from, to) take ten times as long. The server's clock
    is ``phase`` seconds ahead of the client's (where a fixed window's seconds begin).
    """
    rng = random.Random(seed)
    clock = _Clock()
    lim = AdaptiveLimiter(clock=clock, **kw)
    server = limits.make_limit(kind if limit else "none", limit or 0, limit or 0, latency)
    seq = itertools.count()
    events = [(0.0, next(seq), "try", 0.0, 0.0) for _ in range(workers)]
    ok = refused = peak = 0
    lateness: dict[float, float] = {}
    while events and events[0][0] <= duration:
        t, _, what, sent, wait = heapq.heappop(events)
        clock.t = t
        if what == "try":
            free = lim.next_free
            if t < free or lim.in_flight >= lim.window or lim._queue:
                if late and free not in lateness:  # the one thread timing the slot wakes late
                    lateness[free] = rng.expovariate(1.0 / late)
                wake = max(free, t + 0.001) + lateness.get(free, 0.0)
                heapq.heappush(events, (wake, next(seq), "try", 0.0, 0.0))
                continue
            sent = lim.acquire()
            peak = max(peak, lim.in_flight)
            arrive = sent + 0.002 * rng.random()
            heapq.heappush(events, (arrive, next(seq), "arrive", sent, 0.0))
        elif what == "arrive":
            real = limits.RANDOM_WAIT if rng.random() < random_429 else server.admit(t + phase)
            if real is None:
                slow = 10.0 if busy[0] <= t < busy[1] else 1.0
                done = t + slow * latency * rng.uniform(1.0, 1.1)
                heapq.heappush(events, (done, next(seq), "ok", sent, 0.0))
            else:
                heapq.heappush(events, (t + 0.001, next(seq), "429", sent, real))
        elif what == "ok":
            server.done(t + phase)
            ok += 1
            lim.on_success(sent)
            heapq.heappush(events, (t, next(seq), "try", 0.0, 0.0))
        else:
            refused += 1
            header = limits.retry_after_header(retry_after, wait)
            after = float(header) if header else None
            lim.on_throttle(sent, after)
            delay = RetryPolicy().delay(0, after)
            heapq.heappush(events, (t + delay, next(seq), "try", 0.0, 0.0))
    return Run(ok / duration, refused / max(1, ok + refused), peak, lim)


# --- the signal --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("refused", "answers", "background", "expected"),
    [
        pytest.param(1, 50, 0.0, False, id="one-refusal-is-noise"),
        pytest.param(2, 50, 0.0, True, id="two-with-no-background"),
        pytest.param(8, 50, 0.05, False, id="random-429s-near-their-share"),
        pytest.param(10, 50, 0.05, True, id="well-above-the-background"),
    ],
)
def test_congestion_is_refusals_significantly_above_the_background(
    refused: int, answers: int, background: float, expected: bool
) -> None:
    assert congested(refused, answers, background) is expected


# --- slow start, and the ceiling in both directions ------------------------------------
def test_slow_start_grows_every_round_trip_while_answers_are_clean() -> None:
    run = simulate(latency=0.3, duration=5.0)
    assert run.limiter.phase == "slow_start" and run.limiter.drops == 0
    assert run.peak_in_flight == DEFAULT_MAX_IN_FLIGHT  # the cap, not the limiter, binds


@pytest.mark.parametrize("latency", [0.1, 0.3])
def test_slow_start_multiplies_the_rate_by_its_gain_every_round_trip(latency: float) -> None:
    # a round-trip's answers are the requests of the round-trip before, sent slower: an
    # answer weighed by the rate now grew x1.38 a round-trip, and at 300 ms slow start
    # reached a 50/s limit half a second late (94.6 % of it over 2,000 ids)
    trips = 4
    run = simulate(latency=latency, duration=latency * 1.05 * (trips + 1))
    assert run.limiter.rate >= START_RATE * (0.95 * SLOW_START_GAIN) ** trips, run.limiter.rate


def test_a_busy_machine_pauses_slow_start_and_does_not_end_it() -> None:
    # answers take 10x as long for a while early on (a loaded machine): slow start
    # waits, then climbs on; leaving it for the probe's gentle gain crawled up for seconds
    run = simulate(limit=100, latency=0.05, duration=6.0, busy=(0.2, 1.0))
    assert run.limiter.drops >= 1 and run.rate >= 0.75 * 100, run


@pytest.mark.parametrize("latency", [0.1, 0.3])
def test_no_limit_reaches_the_in_flight_ceiling(latency: float) -> None:
    run = simulate(latency=latency, duration=20.0)
    assert run.rate >= 0.8 * DEFAULT_MAX_IN_FLIGHT / (latency * 1.05)
    assert run.share_429 == 0.0


@pytest.mark.parametrize(
    ("limit", "share", "refused"),
    [(5, 0.85, 0.05), (20, 0.94, 0.02), (50, 0.95, 0.02), (100, 0.95, 0.02)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_an_unpublished_limit_is_found_and_held_without_hammering_it(
    limit: int, share: float, refused: float, seed: int
) -> None:
    run = simulate(limit=limit, seed=seed, duration=60.0)
    assert run.rate >= share * limit, run
    assert run.share_429 <= refused, run
    assert run.limiter.ceiling is not None and run.limiter.ceiling <= 1.02 * limit


# --- every common kind of limit (the model of bench/limits.py, fake clock) --------------
@pytest.mark.parametrize("retry_after", ["one", "real", "absent"])
@pytest.mark.parametrize(
    ("kind", "limit", "latency", "share", "refused"),
    [
        pytest.param("sliding", 50, 0.1, 0.95, 0.02, id="sliding"),
        pytest.param("sliding", 50, 0.3, 0.95, 0.02, id="sliding-300ms"),
        pytest.param("fixed", 50, 0.1, 0.95, 0.02, id="fixed"),
        # at 300 ms a fixed window's overshoot is refused a round-trip later: dearer
        pytest.param("fixed", 50, 0.3, 0.95, 0.02, id="fixed-300ms"),
        # a bucket's rate, measured once its burst is spent, is held where a check found it
        pytest.param("bucket", 50, 0.1, 0.95, 0.02, id="bucket"),
        pytest.param("bucket", 50, 0.3, 0.95, 0.02, id="bucket-300ms"),
    ],
)
def test_each_kind_of_rate_limit_is_found_and_held(
    kind: str, limit: int, latency: float, share: float, refused: float, retry_after: str
) -> None:
    run = simulate(limit=limit, kind=kind, latency=latency, retry_after=retry_after, duration=40.0)
    assert run.rate >= share * limit, run
    assert run.share_429 <= refused, run
    assert run.limiter.ceiling is not None
    assert 0.9 * limit <= run.limiter.ceiling <= 1.1 * limit, run.limiter.ceiling


@pytest.mark.parametrize("phase", [0.137, 0.427, 0.717, 0.877])
def test_a_fixed_windows_edge_is_found_wherever_its_seconds_begin(phase: float) -> None:
    # slow start fills a window early in its second: everything until its edge is refused
    # (sent at the rate, 30-40 refusals); one probe at a time finds the edge, and
    # refusals at one phase of every second later are its edge too (not background)
    run = simulate(limit=50, kind="fixed", phase=phase, duration=40.0)
    assert run.rate >= 0.95 * 50, run
    assert run.share_429 <= 0.02, run


@pytest.mark.parametrize("kind", ["sliding", "fixed"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_sender_that_wakes_late_catches_up_without_passing_the_limit(
    kind: str, seed: int
) -> None:
    # a thread woken 30 ms late on average (a loaded machine; the slot is every 20 ms)
    # lost the slots it missed: 89-90 % of a sliding window's limit before catching up
    run = simulate(limit=50, kind=kind, duration=40.0, seed=seed, late=0.03)
    assert run.rate >= 0.92 * 50, run
    assert run.share_429 <= 0.02, run


def _send_due(lim: AdaptiveLimiter, clock: _Clock) -> list[float]:
    """Every request the limiter lets out at ``clock.t`` (each released at once)."""
    sent = []
    while lim.next_free <= clock.t:
        sent.append(lim.acquire())
        lim.release(sent[-1])
    return sent


@pytest.mark.parametrize(("late", "caught_up"), [(0.3, 3), (0.1, 2)])
def test_a_late_wake_up_sends_the_slots_it_missed_within_the_rate(
    late: float, caught_up: int
) -> None:
    clock = _Clock()
    lim = AdaptiveLimiter(start=12.0, clock=clock)
    times = []
    for slot in range(12):  # on time for a second: one request every 1/12 s
        clock.t = slot / 12 + 1e-9
        times += _send_due(lim, clock)
    clock.t = 1.0 + late  # the slot at 1.0 was missed by the thread that waits for it
    now = _send_due(lim, clock)
    # the slots of the last 0.2 s go at once (one, before catching up: the schedule
    # restarted from the wake-up)
    assert len(now) == caught_up
    times += now
    for t in [i / 100 for i in range(300)]:
        clock.t = max(clock.t, t)
        times += _send_due(lim, clock)
    per_second = [sum(t - 1.0 + 1e-9 < s <= t for s in times) for t in times]
    assert max(per_second) <= 12  # 12/s at most


@pytest.mark.parametrize("latency", [0.1, 0.3])
def test_a_concurrency_cap_is_told_from_a_rate_limit(latency: float) -> None:
    run = simulate(limit=8, kind="concurrent", latency=latency, duration=10.0)
    assert run.limiter.cap in (8, 9)  # 9: a probe one above it
    assert run.rate >= 0.9 * 8 / (latency * 1.05), run
    assert run.share_429 <= 0.02, run
    assert run.limiter.drops == 0  # no rate cut: the rate was never the limit


def test_a_token_buckets_burst_is_not_taken_for_its_rate() -> None:
    run = simulate(limit=50, kind="bucket", latency=0.1, duration=20.0)
    lim = run.limiter
    assert lim.drops >= 2  # the first cut, to what passed with the burst, was cut again
    assert lim.rate <= 1.02 * 50 and lim.restores == 0
    # the rate measured between refusals once the burst was spent is held, not re-probed
    # (which cost 10-15 more refusals a run); finding it costs 20-30
    assert lim.throttled <= 30, lim.throttled


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_429s_that_are_not_the_limit_do_not_collapse_the_rate(seed: int) -> None:
    run = simulate(limit=50, random_429=0.05, seed=seed, duration=60.0)
    # 0.7: seed 1 draws refusals that a short check cannot tell from the limit (73 %)
    assert run.rate >= 0.7 * 50, run
    assert run.limiter.background > 0.0  # the checks learned the random share


@pytest.mark.parametrize("seed", [0, 1])
def test_random_429s_without_a_limit_are_no_limit(seed: int) -> None:
    run = simulate(random_429=0.05, latency=0.3, seed=seed, duration=30.0)
    assert run.rate >= 0.7 * 0.95 * DEFAULT_MAX_IN_FLIGHT / 0.315, run  # 70 % of the cap


def test_a_fixed_rate_cap_and_in_flight_cap_are_never_exceeded() -> None:
    run = simulate(latency=0.3, duration=10.0, max_rate=30.0)
    assert run.limiter.rate <= 30.0 and run.rate <= 30.5
    run = simulate(latency=0.3, duration=10.0, max_in_flight=5)
    assert run.peak_in_flight == 5 and run.rate <= 5 / 0.3


def test_a_long_retry_after_pauses_everyone() -> None:
    clock = _Clock(100.0)
    lim = AdaptiveLimiter(clock=clock)
    sent = lim.acquire()
    lim.on_throttle(sent, retry_after=5.0)
    assert lim.pauses == 1 and lim.drops == 1
    assert lim._pause_until == pytest.approx(105.0)


def test_acquire_raises_cancelled_when_the_batch_is_cancelled() -> None:
    lim = AdaptiveLimiter(max_in_flight=1)
    lim.acquire()  # the one slot in flight is taken: the next waits
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        lim.acquire(stop)
    lim.release()
    assert lim.in_flight == 0


# --- the client over real sockets -------------------------------------------------------
FAST: dict[str, Any] = {"backoff": 0.01, "backoff_cap": 0.05, "timeout": 5.0}


def test_the_client_ramps_past_its_start_and_sizes_its_pool(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=300, latency=0.05)
    c = Client(SENTINEL_KEY, base_url=sim.base_url, **FAST)
    assert c.session.get_adapter(sim.base_url)._pool_maxsize == DEFAULT_MAX_IN_FLIGHT
    fetch_records(sim.task_ids(), client=c, progress=False)
    assert c.limiter.rate > 2 * START_RATE and c.limiter.drops == 0
    assert c.limiter.in_flight == 0  # every acquire was answered


def test_the_client_backs_off_at_a_server_limit(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=150, rate_limit=30, latency=0.05)
    c = Client(SENTINEL_KEY, base_url=sim.base_url, **FAST)
    df = fetch_records(sim.task_ids(), client=c, progress=False)
    assert not df["fetch_error"].str.startswith("429").any()  # every refusal was retried
    assert c.limiter.drops >= 1 and c.limiter.throttled >= 1
    assert c.limiter.rate < 60


def test_the_client_keeps_a_users_fixed_caps(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=60, latency=0.02)
    c = Client(SENTINEL_KEY, base_url=sim.base_url, max_rate=40.0, max_in_flight=3, **FAST)
    fetch_records(sim.task_ids(), client=c, progress=False)
    assert c.limiter.rate <= 40.0 and c.limiter.window <= 3


def test_the_client_rides_out_random_429s(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=300, faults={"http429": 0.05})
    c = Client(SENTINEL_KEY, base_url=sim.base_url, **FAST)
    df = fetch_records(sim.task_ids(), client=c, progress=False)
    assert not df["fetch_error"].str.startswith("429").any()  # every refusal was retried
    assert sim.stats()["by_outcome"].get("http429", 0) >= 1
    assert c.limiter.rate > START_RATE  # not collapsed


# --- the client against bench/limits.py, its own process, real sockets -----------------
RATE = 100  # requests/s: a short fetch still spends most of its time at the limit
PACED = 500  # ids per rate-limited fetch (about 5 seconds)


def _fetch_from(server: Any, n: int) -> tuple[Client, dict[str, Any]]:
    c = Client(SENTINEL_KEY, base_url=server.url, **FAST)
    df = fetch_records([f"{i:032x}" for i in range(n)], client=c, progress=False)
    assert df["fetch_error"].isna().all()  # every refusal was retried until read
    return c, server.stats()


def _steady(per_second: list[int]) -> list[int]:
    """The server's whole seconds after the first (slow start) and before the last."""
    return per_second[1:-1]


@pytest.mark.parametrize(
    ("kind", "retry_after", "n"),
    [  # a bucket's burst of 2 s of requests lets the first 200 through in the first second
        ("sliding", "one", PACED),
        ("fixed", "real", PACED + 200),
        ("fixed", "absent", PACED + 200),  # a full window's edge found by probes alone
        ("bucket", "absent", PACED + 300),
    ],
)
def test_the_client_settles_under_each_kind_of_rate_limit(
    kind: str, retry_after: str, n: int
) -> None:
    with limits.serve_process(
        kind=kind, rate=RATE, retry_after=retry_after, latency=0.05
    ) as server:
        c, st = _fetch_from(server, n)
    assert st["accepted"] == n
    # Counted by the server, and bounds that hold on a loaded machine (no timed bound: a
    # busy machine only makes the client slower, which the server sees as fewer
    # refusals). It reached the limit: the server refused some, and one of its whole
    # seconds was near the limit (a sliding window can never pass it)...
    assert st["refused"] >= 1 and c.limiter.drops >= 1, st
    assert max(_steady(st["per_second"])) >= 0.7 * RATE, st["per_second"]
    # ... it did not hammer it: a short fetch spends a second or two finding the limit
    # (slow start, a bucket's burst, the cuts), so 25 % (the model runs above hold 3 %;
    # pacing that took refusals for noise kept a third refused) ...
    assert st["refused"] <= 0.25 * st["requests"], st
    # ... and it settled near it (the limit as the server counted it)
    found = c.limiter.estimate
    assert found is not None and 0.7 * RATE <= found <= 1.3 * RATE, found


def test_the_client_reads_a_concurrency_cap_and_keeps_under_it() -> None:
    with limits.serve_process(kind="concurrent", cap=4, retry_after="absent", latency=0.02) as srv:
        c, st = _fetch_from(srv, 600)
    # 5: a probe one above it; the count read includes answers on their way back, so it
    # can only overstate the cap (6: a loaded machine, slow to read its answers)
    assert c.limiter.cap in (4, 5, 6)
    assert st["refused"] <= 0.05 * st["requests"], st  # 3 to find it, 1 or 2 a probe
    assert st["peak_in_flight"] == 4  # the cap was used, not left idle
