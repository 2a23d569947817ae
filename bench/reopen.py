"""Reopening a history: ``frame.from_store`` on 200,000 records, each open a fresh process.

    .venv/bin/python bench/reopen.py            # 200,000 records
    .venv/bin/python bench/reopen.py --quick    # 20,000 records

A store is filled with the simulator's records (no HTTP: the bench is about parsing).
Then, each in a new process (imports not timed): the first open (no dataset beside the
store yet: a full parse, the frame dataset written, ``frame/dataset.py``), a second open
with nothing new (the dataset read back), and a third after 1 % of the records changed
and 1 % were added, and a fourth with nothing new again. The changed records are spread
over the whole history, so the third open rewrites every day of the dataset: the worst
case for it (``bench/dataset.py`` measures the usual one, changes on the newest days).
Ratios to the first open are what the targets are about (second ≤ 0.25×, third ≤
0.35×); the third also checks that every changed record shows its new state.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

KEY = "sk-bench-reopen-key-0000"


def child(store: str) -> None:
    import pandas  # noqa: F401 - imports are not what is measured

    from veo_notebook import frame
    from veo_notebook.store import Store

    with Store(store) as st:
        t0 = time.perf_counter()
        df = frame.from_store(st)
        seconds = time.perf_counter() - t0
    changed = int((df["prompt"] == "changed by the bench").sum())
    print(json.dumps({"seconds": seconds, "rows": len(df), "changed": changed}))


def _open(store: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(store)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--child")
    args = p.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    from veo_notebook.simulator import Simulator
    from veo_notebook.store import Store

    n = 20_000 if args.quick else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "history.sqlite"
        sim = Simulator(KEY, n_tasks=n)
        ids = sim.task_ids()
        with Store(store) as st:
            for lo in range(0, n, 10_000):
                rows = [
                    (i, orjson.dumps(sim.record(i)).decode(), 1.0, None)
                    for i in ids[lo : lo + 10_000]
                ]
                st.put_many(rows)
        first = _open(store)
        second = _open(store)
        k = n // 100
        with Store(store) as st:
            changed = []
            for i in ids[::37]:  # spread over the history; only records with data change
                env = sim.record(i)
                if isinstance(env.get("data"), dict) and len(changed) < k:
                    env["data"]["paramJson"] = json.dumps({"prompt": "changed by the bench"})
                    changed.append((i, orjson.dumps(env).decode(), 2.0, None))
            added = [
                (f"bench_new_{j}", orjson.dumps(sim.record(ids[j])).decode(), 3.0, None)
                for j in range(k)
            ]
            st.put_many(changed + added)
        third = _open(store)
        fourth = _open(store)  # nothing new again: the cache and its delta
    r2, r3 = second["seconds"] / first["seconds"], third["seconds"] / first["seconds"]
    ok = r2 <= 0.25 and r3 <= 0.35 and third["changed"] == len(changed) and third["rows"] == n + k
    print("| open | seconds | vs first | target |\n|---|---|---|---|")
    print(f"| first ({first['rows']} records, full parse) | {first['seconds']:.2f} | 1.00× | |")
    print(f"| second, nothing new | {second['seconds']:.2f} | {r2:.2f}× | ≤ 0.25× |")
    print(
        f"| third, 1 % changed + 1 % added | {third['seconds']:.2f} | {r3:.2f}× | ≤ 0.35× |"
        f" ({third['changed']} of {len(changed)} changed records show their new state)"
    )
    r4 = fourth["seconds"] / first["seconds"]
    print(f"| fourth, nothing new again | {fourth['seconds']:.2f} | {r4:.2f}× | |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
