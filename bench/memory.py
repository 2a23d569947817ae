"""Memory: peak RSS of fetching and framing 100,000 ids, against the size of the answers.

The simulator runs in this process (zero latency, no faults, clock frozen); a child
process fetches every id into a store file with ``fetch_records`` and so builds the
typed frame. The child reads its own peak RSS (``VmHWM``) at three moments: after the
imports (the baseline), when the last answer is in (the fetch phase: answers stream
into the store, so this should grow far less than the answers weigh), and after the
frame is built. It also reports the raw answers' total size (bytes of envelope JSON in
the store) and the frame's memory (``DataFrame.memory_usage(deep=True)``).

    .venv/bin/python bench/memory.py            # 100,000 ids
    .venv/bin/python bench/memory.py --quick    # 10,000 ids

The stated bound (printed, checked): peak RSS - baseline <= BOUND_RAW x raw answer
bytes, and the fetch phase alone grows by <= FETCH_RAW x raw answer bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = "sk-bench-memory-key-0000"
BOUND_RAW = 3.0  # whole run (fetch + frame) over the baseline, x raw bytes
FETCH_RAW = 0.5  # fetch phase over the baseline, x raw bytes
FRAME_RAW = 3.0  # from_store on a finished store, growth over its baseline, x raw bytes


def _hwm_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(base_url: str, store: str, ids_file: str) -> None:
    """The measured process: fetch + frame; prints one JSON line of figures."""
    import sqlite3

    import pandas as pd  # noqa: F401 - part of the baseline, as in any notebook

    from veo_notebook import schema  # noqa: F401
    from veo_notebook.client import Client
    from veo_notebook.fetch import fetch_records
    from veo_notebook.frame import to_frame  # noqa: F401

    ids = Path(ids_file).read_text(encoding="utf-8").split()
    base = _hwm_mb()
    fetch_peak = [base]
    n = len(set(ids))
    seen = 0

    def tick(_o: object) -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            fetch_peak[0] = _hwm_mb()

    t0 = time.perf_counter()
    with Client(KEY, base_url=base_url) as client:
        df = fetch_records(ids, client=client, store=store, progress=False, on_update=tick)
    wall = time.perf_counter() - t0
    total = _hwm_mb()
    conn = sqlite3.connect(store)
    raw = conn.execute("SELECT sum(length(CAST(raw AS BLOB))) FROM records").fetchone()[0]
    conn.close()
    out = {
        "rows": len(df),
        "baseline_mb": base,
        "fetch_peak_mb": fetch_peak[0],
        "peak_mb": total,
        "raw_mb": raw / 2**20,
        "frame_mb": int(df.memory_usage(deep=True).sum()) / 2**20,
        "store_mb": os.path.getsize(store) / 2**20,
        "wall_s": wall,
    }
    print(json.dumps(out))


def frame_child(store: str, how: str) -> None:
    """Frame a finished store, the toolkit's way or the plain pandas way; print the growth."""
    import orjson
    import pandas as pd

    from veo_notebook.frame import from_store, to_frame
    from veo_notebook.store import Store

    base = _hwm_mb()
    with Store(store) as st:
        if how == "from_store":  # the store's bytes straight to the reader, no cache
            df = from_store(st, cache=False)
            print(json.dumps({"growth_mb": _hwm_mb() - base, "rows": len(df)}))
            return
        rows = st.rows()
        if how == "toolkit":
            df = to_frame(rows)
        else:  # json.loads per record, json_normalize of the data objects
            df = pd.json_normalize([orjson.loads(r["raw"])["data"] for r in rows])
    print(json.dumps({"growth_mb": _hwm_mb() - base, "rows": len(df)}))


def _run(*args: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(n: int, *, seed: int = 0) -> dict[str, float]:
    """Run the child against a simulator of ``n`` tasks; return its figures."""
    from veo_notebook.simulator import Simulator

    with (
        Simulator(KEY, seed=seed, n_tasks=n, clock_speed=0, span_days=13.0) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        ids_file = Path(tmp) / "ids.txt"
        ids_file.write_text("\n".join(sim.task_ids()) + "\n", encoding="utf-8")
        store = str(Path(tmp) / "s.sqlite")
        r = _run("--child", sim.base_url, store, str(ids_file))
        r["frame_toolkit_mb"] = _run("--frame-child", store, "toolkit")["growth_mb"]
        r["frame_store_mb"] = _run("--frame-child", store, "from_store")["growth_mb"]
        r["frame_naive_mb"] = _run("--frame-child", store, "naive")["growth_mb"]
        return r


def table(r: dict[str, float]) -> str:
    grow = r["peak_mb"] - r["baseline_mb"]
    fetch = r["fetch_peak_mb"] - r["baseline_mb"]
    rows = [
        ("ids fetched and framed", f"{int(r['rows']):,}"),
        ("wall time (s)", f"{r['wall_s']:.1f}"),
        ("raw answers (envelope JSON bytes, MB)", f"{r['raw_mb']:.1f}"),
        ("store file (MB)", f"{r['store_mb']:.1f}"),
        ("typed frame, deep memory_usage (MB)", f"{r['frame_mb']:.1f}"),
        ("peak RSS after imports: baseline (MB)", f"{r['baseline_mb']:.1f}"),
        ("peak RSS when the last answer is in (MB)", f"{r['fetch_peak_mb']:.1f}"),
        ("peak RSS after the frame is built (MB)", f"{r['peak_mb']:.1f}"),
        ("fetch phase growth / raw bytes", f"{fetch / r['raw_mb']:.2f}x (bound {FETCH_RAW}x)"),
        ("whole run growth / raw bytes", f"{grow / r['raw_mb']:.2f}x (bound {BOUND_RAW}x)"),
        ("whole run growth / frame memory", f"{grow / r['frame_mb']:.2f}x"),
        ("store -> frame growth: from_store (MB)", f"{r['frame_store_mb']:.1f}"),
        (
            "from_store growth / raw bytes",
            f"{r['frame_store_mb'] / r['raw_mb']:.2f}x (target {FRAME_RAW}x)",
        ),
        ("store -> frame growth: to_frame(rows) (MB)", f"{r['frame_toolkit_mb']:.1f}"),
        ("store -> frame: json.loads+json_normalize", f"{r['frame_naive_mb']:.1f}"),
        ("toolkit / plain pandas", f"{r['frame_toolkit_mb'] / r['frame_naive_mb']:.2f}x"),
    ]
    return "\n".join(f"{k:<44}{v:>24}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--quick", action="store_true", help="10,000 ids")
    p.add_argument("--child", nargs=3, metavar=("BASE_URL", "STORE", "IDS"), help=argparse.SUPPRESS)
    p.add_argument("--frame-child", nargs=2, metavar=("STORE", "HOW"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    if args.frame_child:
        frame_child(*args.frame_child)
        return 0
    r = measure(10_000 if args.quick else args.n)
    print(table(r))
    grow = r["peak_mb"] - r["baseline_mb"]
    fetch = r["fetch_peak_mb"] - r["baseline_mb"]
    ok = grow <= BOUND_RAW * r["raw_mb"] and fetch <= FETCH_RAW * r["raw_mb"]
    print("\nbound: " + ("holds" if ok else "EXCEEDED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
