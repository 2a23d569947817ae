"""Bulk fetch throughput: fetch_records vs a plain sequential ``requests.get`` loop.

    .venv/bin/python bench/fetch.py            # 2,000 ids per scenario (about 2 minutes)
    .venv/bin/python bench/fetch.py --quick    # 800 ids per scenario (slow start weighs more)

The simulator runs in its own process (so the client does not share a GIL with the
server), on loopback, with 100 ms of latency per answer. Scenarios:

a. server limit 50 requests/s (sliding 1-second window, HTTP 429 + Retry-After past it)
   that the client is NOT told: throughput ≥ 85 % of 50/s, ≤ 5 % of requests answered
   429, ≥ 4× the sequential loop;
b. no server limit: ≥ 8× the sequential loop;
c. a second run over the same ids with 95 % of them terminal in the store: ≤ 6 % of the
   first run's requests.

The baseline loop runs against the same simulator in the same run, on a subset of the
ids, and is compared as a rate. Timings are noisy on a shared machine; ratios are what
the targets are about.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas  # noqa: F401 - imported before timing: fetch_records builds a frame at the end
import requests

import veo_notebook.frame  # noqa: F401 - (pyarrow too): imports are not what is measured
from veo_notebook import Client, fetch_records
from veo_notebook.store import Store

KEY = "sk-bench-key-000000000000"
LATENCY = 0.1


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
def sequential_rate(sim: SimProcess, ids: list[str]) -> float:
    """Requests/s of a plain loop of ``requests.get`` (a new connection each time)."""
    url = sim.base_url + "/api/v1/veo/record-info"
    headers = {"Authorization": f"Bearer {KEY}", "User-Agent": "bench"}
    t0 = time.perf_counter()
    for tid in ids:
        r = requests.get(url, params={"taskId": tid}, headers=headers, timeout=30)
        r.raise_for_status()
    return len(ids) / (time.perf_counter() - t0)


@dataclass
class Run:
    ids: int
    requests: int
    throttled: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.ids / self.seconds


def fetch_run(sim: SimProcess, ids: list[str], store: Any = None) -> Run:
    sim.reset()
    client = Client(KEY, base_url=sim.base_url)
    t0 = time.perf_counter()
    df = fetch_records(ids, client=client, store=store, progress=False)
    seconds = time.perf_counter() - t0
    assert len(df) == len(set(ids)), "one row per id"
    st = sim.stats()
    return Run(len(ids), st["requests"], st["by_outcome"].get("429", 0), seconds)


@dataclass
class Row:
    scenario: str
    measure: str
    value: str
    target: str
    ok: bool


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="800 ids per scenario, shorter baseline")
    args = p.parse_args(argv)
    n, n_base = (800, 30) if args.quick else (2000, 100)
    rows: list[Row] = []

    # (a) an unpublished limit of 50/s
    with sim_process(n_tasks=n, latency=LATENCY, rate_limit=50) as sim:
        ids = sim.ids["all"][:n]
        base = sequential_rate(sim, ids[:n_base])
        a = fetch_run(sim, ids)
    share = a.throttled / a.requests
    rows += [
        Row("a. limit 50/s", "sequential loop", f"{base:.1f}/s", "", True),
        Row(
            "a. limit 50/s",
            "fetch_records",
            f"{a.rate:.1f}/s ({a.ids} ids, {a.seconds:.1f} s)",
            "",
            True,
        ),
        Row(
            "a. limit 50/s",
            "share of the 50/s ceiling",
            f"{a.rate / 50:.0%}",
            "≥ 85 %",
            a.rate >= 42.5,
        ),
        Row(
            "a. limit 50/s",
            "requests answered 429",
            f"{a.throttled} / {a.requests} = {share:.1%}",
            "≤ 5 %",
            share <= 0.05,
        ),
        Row("a. limit 50/s", "vs sequential", f"{a.rate / base:.1f}×", "≥ 4×", a.rate >= 4 * base),
    ]

    # (b) no limit
    with sim_process(n_tasks=n, latency=LATENCY) as sim:
        ids = sim.ids["all"][:n]
        base = sequential_rate(sim, ids[:n_base])
        b = fetch_run(sim, ids)
    rows += [
        Row("b. no limit", "sequential loop", f"{base:.1f}/s", "", True),
        Row(
            "b. no limit",
            "fetch_records",
            f"{b.rate:.1f}/s ({b.ids} ids, {b.seconds:.1f} s)",
            "",
            True,
        ),
        Row("b. no limit", "vs sequential", f"{b.rate / base:.1f}×", "≥ 8×", b.rate >= 8 * base),
    ]

    # (c) a second run, 95 % terminal
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
        Row("c. second run", "terminal in the store", f"{terminal:.0%}", "95 %", True),
        Row("c. second run", "requests, first run", f"{first.requests}", "", True),
        Row(
            "c. second run",
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
