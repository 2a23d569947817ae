"""Bulk fetch throughput: fetch_records vs a 16-thread pool with urllib3 Retry, side by side.

    .venv/bin/python bench/fetch.py            # 2,000 ids per limit scenario (a few minutes)
    .venv/bin/python bench/fetch.py --quick    # 600 ids per scenario (slow start weighs more)

The simulator runs in its own process (so the client does not share a GIL with the
server), on loopback. The baseline is what a competent user writes instead: a
16-thread ``ThreadPoolExecutor`` over one ``requests.Session`` whose adapter has
urllib3 ``Retry`` (429 and 5xx, ``Retry-After`` honoured, pool of 16). Both run in the
same run, on a fresh simulator each, over the same ids; each scenario prints both
rates and the ratio. Scenarios:

a. no server limit, 300 ms per answer (a real API across the internet): ≥ 2× the pool;
b. no server limit, 100 ms per answer: ≥ 1.3× the pool;
c. an unpublished limit of 50/s (sliding 1-second window, HTTP 429 + Retry-After past
   it), 100 ms: ≥ 95 % of the ceiling, ≤ 2 % of requests answered 429;
d. the same limit and 5 % random 429s on top (the simulator's ``http429`` fault):
   ≥ 80 % of the ceiling;
e. a second run over the same ids with 95 % of them terminal in the store: ≤ 6 % of
   the first run's requests.

CPU per request (this process: client, store, frame) is printed for fetch_records.
Timings are noisy on a shared machine; ratios are what the targets are about.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas  # noqa: F401 - imported before timing: fetch_records builds a frame at the end
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

import veo_notebook.frame  # noqa: F401 - (pyarrow too): imports are not what is measured
from veo_notebook import Client, fetch_records
from veo_notebook.store import Store

KEY = "sk-bench-key-000000000000"
LIMIT = 50
POOL_THREADS = 16


# --- the simulator, in a child process -------------------------------------------------
def _serve(conn: Any, kwargs: dict[str, Any]) -> None:
    from veo_notebook.simulator import Simulator

    with Simulator(KEY, **kwargs) as sim:
        conn.send(
            {
                "base_url": sim.base_url,
                "all": sim.task_ids(),
                "terminal": sim.task_ids("terminal"),
                "pending": sim.task_ids("pending"),
            }
        )
        while True:
            cmd = conn.recv()
            if cmd == "stats":
                conn.send(sim.stats())
            elif cmd == "reset":
                sim.reset_stats()
                conn.send(None)
            else:
                return


class SimProcess:
    """A simulator in a child process: ``.base_url``, ``.ids``, ``.stats()``, ``.reset()``."""

    def __init__(self, conn: Any, info: dict[str, Any]) -> None:
        self._conn = conn
        self.base_url: str = info["base_url"]
        self.ids: dict[str, list[str]] = {k: v for k, v in info.items() if k != "base_url"}

    def stats(self) -> dict[str, Any]:
        self._conn.send("stats")
        return self._conn.recv()

    def reset(self) -> None:
        self._conn.send("reset")
        self._conn.recv()


@contextmanager
def sim_process(**kwargs: Any) -> Iterator[SimProcess]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, kwargs), daemon=True)
    proc.start()
    try:
        yield SimProcess(parent, parent.recv())
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.kill()


# --- measurements ----------------------------------------------------------------------
@dataclass
class Run:
    ids: int
    requests: int
    throttled: int
    seconds: float
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.ids / self.seconds

    @property
    def share_429(self) -> float:
        return self.throttled / max(1, self.requests)


def _throttled(st: dict[str, Any]) -> int:
    return sum(st["by_outcome"].get(k, 0) for k in ("429", "http429"))


def pool_run(sim: SimProcess, ids: list[str]) -> Run:
    """The baseline: 16 threads, one Session, urllib3 Retry on 429/5xx with Retry-After."""
    sim.reset()
    retry = Retry(
        total=10,
        backoff_factor=0.5,
        status_forcelist=(429, 500, 502, 503, 504),
        respect_retry_after_header=True,
        allowed_methods=frozenset({"GET"}),
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=POOL_THREADS)
    session.mount("http://", adapter)
    session.trust_env = False
    url = sim.base_url + "/api/v1/veo/record-info"
    headers = {"Authorization": f"Bearer {KEY}", "User-Agent": "bench-pool"}

    def one(tid: str) -> bytes:
        r = session.get(url, params={"taskId": tid}, headers=headers, timeout=30)
        return r.content

    t0 = time.perf_counter()
    with ThreadPoolExecutor(POOL_THREADS) as ex:
        answers = list(ex.map(one, ids))
    seconds = time.perf_counter() - t0
    session.close()
    assert len(answers) == len(ids)
    st = sim.stats()
    return Run(len(ids), st["requests"], _throttled(st), seconds)


def fetch_run(sim: SimProcess, ids: list[str], store: Any = None) -> Run:
    sim.reset()
    client = Client(KEY, base_url=sim.base_url)
    t0, c0 = time.perf_counter(), os.times()
    df = fetch_records(ids, client=client, store=store, progress=False)
    seconds = time.perf_counter() - t0
    c1 = os.times()
    client.close()
    assert len(df) == len(set(ids)), "one row per id"
    st = sim.stats()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return Run(len(ids), st["requests"], _throttled(st), seconds, cpu)


@dataclass
class Row:
    scenario: str
    measure: str
    value: str
    target: str
    ok: bool


def _fmt(r: Run) -> str:
    return (
        f"{r.rate:.1f}/s ({r.ids} ids, {r.seconds:.1f} s, {r.requests} requests, "
        f"{r.share_429:.1%} 429)"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="600 ids per scenario")
    args = p.parse_args(argv)
    n_limit = 600 if args.quick else 2000
    rows: list[Row] = []

    def side_by_side(name: str, ids_n: int, target: float | None, **sim_kw: Any) -> Run:
        with sim_process(n_tasks=ids_n, **sim_kw) as sim:
            ids = sim.ids["all"][:ids_n]
            base = pool_run(sim, ids)
        with sim_process(n_tasks=ids_n, **sim_kw) as sim:
            ids = sim.ids["all"][:ids_n]
            run = fetch_run(sim, ids)
        ratio = run.rate / base.rate
        rows.extend(
            [
                Row(name, "16-thread pool + Retry", _fmt(base), "", True),
                Row(name, "fetch_records", _fmt(run), "", True),
                Row(
                    name,
                    "CPU per request (client process)",
                    f"{1000 * run.cpu / max(1, run.requests):.2f} ms",
                    "",
                    True,
                ),
                Row(
                    name,
                    "fetch_records / pool",
                    f"{ratio:.2f}×",
                    f"≥ {target:g}×" if target else "",
                    target is None or ratio >= target,
                ),
            ]
        )
        return run

    # (a, b) no limit: 300 ms and 100 ms per answer
    side_by_side("a. no limit, 300 ms", 1500 if args.quick else 4000, 2.0, latency=0.3)
    side_by_side("b. no limit, 100 ms", 1500 if args.quick else 4000, 1.3, latency=0.1)

    # (c) an unpublished limit of 50/s; (d) the same, with 5 % random 429s
    c = side_by_side("c. limit 50/s", n_limit, None, latency=0.1, rate_limit=LIMIT)
    rows += [
        Row(
            "c. limit 50/s",
            "share of the 50/s ceiling",
            f"{c.rate / LIMIT:.0%}",
            "≥ 95 %",
            c.rate >= 0.95 * LIMIT,
        ),
        Row(
            "c. limit 50/s",
            "requests answered 429",
            f"{c.throttled} / {c.requests} = {c.share_429:.1%}",
            "≤ 2 %",
            c.share_429 <= 0.02,
        ),
    ]
    d = side_by_side(
        "d. 50/s + 5 % random 429",
        n_limit,
        None,
        latency=0.1,
        rate_limit=LIMIT,
        faults={"http429": 0.05},
    )
    rows += [
        Row(
            "d. 50/s + 5 % random 429",
            "share of the 50/s ceiling",
            f"{d.rate / LIMIT:.0%}",
            "≥ 80 %",
            d.rate >= 0.8 * LIMIT,
        ),
        Row(
            "d. 50/s + 5 % random 429",
            "requests answered 429",
            f"{d.throttled} / {d.requests} = {d.share_429:.1%}",
            "",
            True,
        ),
    ]

    # (e) a second run, 95 % terminal
    n = n_limit
    with (
        sim_process(n_tasks=3 * n, latency=0.01, clock_speed=0.0) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        k = n // 20
        pending = sim.ids["pending"][:k]
        ids = sim.ids["terminal"][: n - len(pending)] + pending
        store = Path(tmp) / "s.sqlite"
        first = fetch_run(sim, ids, store)
        second = fetch_run(sim, ids, store)
        with Store(store) as st:
            terminal = len(st.terminal_ids(ids)) / len(ids)
    ratio = second.requests / first.requests
    rows += [
        Row("e. second run", "terminal in the store", f"{terminal:.0%}", "95 %", True),
        Row("e. second run", "requests, first run", f"{first.requests}", "", True),
        Row(
            "e. second run",
            "requests, second run",
            f"{second.requests} = {ratio:.1%}",
            "≤ 6 %",
            ratio <= 0.06,
        ),
    ]

    fields = ("scenario", "measure", "value", "target")
    w = [max(len(f), *(len(getattr(r, f)) for r in rows)) for f in fields]

    def fmt(cells: list[str], mark: str) -> str:
        return (
            "| " + " | ".join(c.ljust(x) for c, x in zip(cells, w, strict=True)) + f" | {mark:<3} |"
        )

    out = [fmt(list(fields), "ok"), "|" + "|".join("-" * (x + 2) for x in w) + "|-----|"]
    for r in rows:
        mark = ("yes" if r.ok else "NO") if r.target else ""
        out.append(fmt([r.scenario, r.measure, r.value, r.target], mark))
    sys.stdout.write("\n".join(out) + "\n")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
