"""Benchmark of the cost functions at 100k and 1M rows, and of the price lookup against a
row-by-row reading of the same rule.

Run ``.venv/bin/python bench/cost.py`` (``--quick`` for 20k / 200k rows). Prints, for
each size, the best-of-3 time of ``with_credits`` (the default table, 16 rows),
``cost_summary(by="model")``, ``cost_summary(by=None, freq="1D")``,
``duplicate_submissions`` and ``expiring``; then the time of a plain-Python loop that
finds each task's most specific matching row (the obvious implementation) on 20k rows,
scaled to the large size, beside the vectorised lookup.

Frames are the synthetic typed frames of ``tests/_frames.py`` (three models, four task
types, 2,000 prompts, 14 days).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _frames import T0, synthetic_frame  # noqa: E402

import veo_notebook as veo  # noqa: E402
from veo_notebook.pricing import KEYS, default_prices  # noqa: E402


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def loop_lookup(df: pd.DataFrame) -> list[float]:
    """The rule read row by row: for each task, the most specific matching table row."""
    rows = default_prices().rows.to_dict("records")
    out = []
    for model, ttype, res in zip(df["model"], df["task_type"], df["resolution"], strict=True):
        task = {"model": model, "task_type": ttype, "resolution": res}
        found, spec = float("nan"), -1
        for r in rows:
            keys = [k for k in KEYS[:3] if not pd.isna(r[k])]
            if not pd.isna(r["duration_s"]):
                continue
            ok = all(not pd.isna(task[k]) and str(task[k]).lower() == r[k] for k in keys)
            if ok and len(keys) >= spec:
                found, spec = r["credits"], len(keys)
        out.append(found)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20k / 200k rows instead of 100k / 1M")
    args = ap.parse_args()
    sizes = (20_000, 200_000) if args.quick else (100_000, 1_000_000)
    now = T0 + pd.Timedelta("14D")
    results: dict[int, dict[str, float]] = {}
    frames = {}
    for n in sizes:
        df = synthetic_frame(n, seed=3)
        df["resolution"] = np.where(np.arange(n) % 3 == 0, "1080p", "720p")
        frames[n] = df
        calls = {
            "with_credits": lambda df=df: veo.with_credits(df),
            "cost_summary(by=model)": lambda df=df: veo.cost_summary(df),
            "cost_summary(freq=1D)": lambda df=df: veo.cost_summary(df, by=None, freq="1D"),
            "duplicate_submissions": lambda df=df: veo.duplicate_submissions(df),
            "expiring": lambda df=df: veo.expiring(df, now=now),
        }
        results[n] = {name: best(fn) for name, fn in calls.items()}
    small, large = sizes
    print(f"{'function':<26}{small:>12,}{large:>12,}  ratio")
    for name in results[small]:
        a, b = results[small][name], results[large][name]
        print(f"{name:<26}{a:>11.3f}s{b:>11.3f}s  {b / a:5.1f}x")
    sample = frames[large].iloc[:20_000]
    slow = best(lambda: loop_lookup(sample), repeat=1)
    fast = best(lambda: default_prices().lookup(frames[large]))
    scaled = slow * large / len(sample)
    want = np.asarray(loop_lookup(sample.iloc[:2000]), dtype=float)
    got = default_prices().lookup(sample.iloc[:2000])
    assert np.array_equal(np.nan_to_num(want, nan=-1), np.nan_to_num(got, nan=-1))
    print(
        f"price lookup, {large:,} rows: row-by-row loop {scaled:.1f}s (20k measured, scaled), "
        f"vectorised {fast:.3f}s: {scaled / fast:.0f}x"
    )


if __name__ == "__main__":
    main()
