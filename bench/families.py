"""Benchmark of ``veo.families`` (and the frame's ``root_task_id``) on 1M tasks.

Run ``.venv/bin/python bench/families.py`` (``--quick`` for 200k tasks). The frame is
synthetic, built with numpy: 250k generate tasks and 750k children over four more
levels (extends, 1080p and 4K upgrades; depth up to 4), 32-hex task ids, 85 % success.

Prints the best-of-3 time of ``families(df)`` and of ``_roots.root_ids`` (the frame
column), beside the obvious implementation run on the same frame: each row's root found
by walking a dict of parents in Python, then a pandas ``groupby`` for the counts and the
final member. Memory: the peak resident size a child process adds while running
``families`` on the frame read from a file (the peak reset after the read, Linux
``clear_refs``), against the bytes of the columns it reads.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import veo_notebook as veo
from veo_notebook import schema
from veo_notebook.analysis.family import READ_COLUMNS
from veo_notebook.frame import _roots

T0 = pd.Timestamp("2026-03-01", tz="UTC")
#: tasks per level: generates, then children of the level above
LEVEL_SHARES = (0.25, 0.40, 0.25, 0.075, 0.025)


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)
    return np.array([f"{a:016x}{b:016x}" for a, b in raw.tolist()], dtype=object)


def family_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` tasks in families (a generate and its descendants, depth up to 4)."""
    rng = np.random.default_rng(seed)
    sizes = [int(n * s) for s in LEVEL_SHARES]
    sizes[0] += n - sum(sizes)
    ids = _ids(rng, n)
    parent = np.full(n, -1, dtype=np.int64)
    level = np.repeat(np.arange(len(sizes)), sizes)
    starts = np.r_[0, np.cumsum(sizes)]
    for k in range(1, len(sizes)):
        parent[starts[k] : starts[k + 1]] = rng.integers(starts[k - 1], starts[k], sizes[k])
    ttype = np.where(
        level == 0, "generate", rng.choice(["extend", "1080p", "4k"], n, p=[0.4, 0.35, 0.25])
    )
    status = rng.choice(["success", "failed", "generating"], n, p=[0.85, 0.10, 0.05])
    create = T0 + pd.to_timedelta(rng.uniform(0, 14 * 86400, n) + level * 3600, unit="s")
    latency = pd.to_timedelta(rng.lognormal(5, 0.5, n), unit="s")
    done = pd.Series(create + latency).where(status != "generating")
    model = np.where(level == 0, rng.choice(["veo3", "veo3_fast", "veo3_lite"], n), None)
    model = np.where(ttype == "extend", "fast", model)
    res = np.select([ttype == "4k", ttype == "1080p"], ["4k", "1080p"], "720p")
    df = pd.DataFrame(
        {
            "task_id": ids,
            "parent_task_id": np.where(parent >= 0, ids[np.maximum(parent, 0)], None),
            "status": status,
            "task_type": ttype,
            "create_time": create,
            "complete_time": done,
            "model": model,
            "resolution": np.where(status == "success", res, None),
            "video_url": np.where(status == "success", "https://v.test/" + ids + ".mp4", None),
        }
    )
    return schema.enforce(df)[list(READ_COLUMNS)]


def naive(df: pd.DataFrame) -> pd.DataFrame:
    """Roots by walking a dict per row, then pandas groupby: the obvious implementation."""
    parent = dict(zip(df["task_id"], df["parent_task_id"], strict=True))
    roots = []
    for t in df["task_id"]:
        seen = set()
        while isinstance(parent.get(t), str) and t not in seen:
            seen.add(t)
            t = parent[t]
        roots.append(t)
    rank = df["task_type"].map({"4k": 0, "1080p": 1, "extend": 2, "generate": 3}).astype(float)
    rank = rank.where(df["status"] == "success", 9)
    work = df.assign(root=roots, rank=rank)
    counts = work.groupby("root")["task_type"].value_counts().unstack(fill_value=0)
    final = work.sort_values(["root", "rank"]).groupby("root").head(1).set_index("root")
    return counts.join(final[["task_id", "rank"]])


def best(fn: Callable[[], object], repeat: int = 3) -> tuple[float, float]:
    """Best wall time and best CPU time of this process (the CPU time tells a loaded
    machine's figures apart: on a shared machine the wall time waits for the cores)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _reset_peak() -> None:
    """Start the peak resident size (VmHWM) again from now (Linux: clear_refs 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def child(path: str) -> None:
    """In a fresh process: read the frame, then the peak resident size ``families`` adds."""
    df = pd.read_parquet(path)
    df = schema.enforce(df)[list(READ_COLUMNS)]
    cols = int(df.memory_usage(deep=True, index=False).sum())
    veo.families(df.head(1000))  # imports and first-call setup are not the measure
    _reset_peak()  # reading the file peaked higher: that is not the measure either
    base = _status_kib("VmRSS") * 1024
    veo.families(df)
    peak = _status_kib("VmHWM") * 1024
    print(f"{cols} {max(peak - base, 0)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200k tasks instead of 1M")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    n = 200_000 if args.quick else 1_000_000
    df = family_frame(n)
    fam = veo.families(df)
    print(f"{n:,} tasks, {len(fam):,} families, depth up to {fam['depth'].max()}")
    t_fam = best(lambda: veo.families(df))
    t_roots = best(lambda: _roots.root_ids(df["task_id"], df["parent_task_id"]))
    t_naive = best(lambda: naive(df), repeat=1)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("                               wall      CPU")
    for name, (wall, cpu) in (("families(df)", t_fam), ("root_task_id column", t_roots),
                              ("naive (dict walk + groupby)", t_naive)):  # fmt: skip
        print(f"{name:28} {wall:6.2f} s {cpu:6.2f} s")
    print(f"naive / families: {t_naive[0] / t_fam[0]:.1f}x wall, {t_naive[1] / t_fam[1]:.1f}x CPU")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "families.parquet")
        df.to_parquet(path)
        out = subprocess.run(
            [sys.executable, __file__, "--child", path], capture_output=True, text=True, check=True
        ).stdout.split()
    cols, added = int(out[0]), int(out[1])
    print(f"columns read {cols / 2**20:,.0f} MiB; families adds a peak of "
          f"{added / 2**20:,.0f} MiB ({added / cols:.2f}x the columns)")  # fmt: skip


if __name__ == "__main__":
    main()
