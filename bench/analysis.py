"""Benchmark of the analysis functions and the report at 100k and 1M rows.

Run ``.venv/bin/python bench/analysis.py`` (``--quick`` for 20k / 200k rows). Prints,
for each size, the best-of-N time of ``latency_summary(by=["model", "task_type"])``
and ``failure_rates(freq="1D")`` beside a plain-pandas baseline doing less work
(``groupby().quantile()`` without intervals; ``groupby().value_counts()`` without
intervals), the large/small ratio (linear would be 10×), then the time of ``report()``
on the large frame and on a frame parsed from the simulator's corpus.

Frames are synthetic typed frames built with numpy (``tests/_frames.py``): three
models, four task types, log-normal latencies, ~10 % failures with kie.ai's messages,
14 days, a batch still running at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import pandas as pd  # noqa: E402
from _frames import synthetic_frame  # noqa: E402

from veo_notebook import analysis, report  # noqa: E402


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def baseline_latency(df: pd.DataFrame) -> object:
    ok = df[(df["status"] == "success") & df["latency_s"].notna()]
    return ok.groupby(["model", "task_type"], observed=True)["latency_s"].quantile(
        [0.5, 0.9, 0.95, 0.99]
    )


def baseline_rates(df: pd.DataFrame) -> object:
    term = df[df["status"].isin(["success", "failed", "generation_failed"])]
    day = term["create_time"].dt.floor("1D")
    return term.groupby(day)["status"].value_counts().unstack(fill_value=0)


CALLS: list[
    tuple[str, Callable[[pd.DataFrame], object], Callable[[pd.DataFrame], object] | None]
] = [
    (
        "latency_summary(by=[model, task_type])",
        lambda d: analysis.latency_summary(d, by=["model", "task_type"]),
        baseline_latency,
    ),
    ('failure_rates(freq="1D")', lambda d: analysis.failure_rates(d, freq="1D"), baseline_rates),
    ("km_latency(by=model)", lambda d: analysis.km_latency(d, by="model"), None),
    ("classify_errors", analysis.classify_errors, None),
    ("failure_breakdown", analysis.failure_breakdown, None),
    ('stuck_tasks("30min")', analysis.stuck_tasks, None),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20k and 200k rows, fewer repeats")
    ap.add_argument(
        "--corpus-rows",
        type=int,
        default=100_000,
        help="rows parsed from the simulator corpus for the example report (0: skip)",
    )
    ap.add_argument("--out", type=Path, default=None, help="folder for the reports (default: temp)")
    args = ap.parse_args(argv)
    small, large = (20_000, 200_000) if args.quick else (100_000, 1_000_000)
    repeat = 3 if args.quick else 5
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="veo-bench-"))
    out_dir.mkdir(parents=True, exist_ok=True)

    frames = {n: synthetic_frame(n, seed=1) for n in (small, large)}
    analysis.latency_summary(frames[small])  # warm-up: imports, numpy kernels
    analysis.failure_rates(frames[small], freq="1D")

    print(f"analysis on synthetic typed frames: best of {repeat}, seconds\n")
    head = f"| call | {small:,} rows | {large:,} rows | ratio | baseline {large:,} | vs baseline |"
    print(head)
    print("|---|---:|---:|---:|---:|---:|")
    for name, fn, base in CALLS:
        t_small = best(lambda fn=fn: fn(frames[small]), repeat)
        t_large = best(lambda fn=fn: fn(frames[large]), repeat)
        if base is not None:
            t_base = best(lambda base=base: base(frames[large]), repeat)
            extra = f"{t_base:.3f} | {t_large / t_base:.2f}×"
        else:
            extra = "— | —"
        print(f"| {name} | {t_small:.3f} | {t_large:.3f} | {t_large / t_small:.1f}× | {extra} |")

    print(f"\nreport() on {large:,} synthetic rows")
    t0 = time.perf_counter()
    path = report(frames[large], out_dir / "report-synthetic.html")
    t_rep = time.perf_counter() - t0
    t0 = time.perf_counter()
    report(frames[large], out_dir / "report-synthetic-tables.html", figures=False)
    t_tab = time.perf_counter() - t0
    print("| report | seconds | size |\n|---|---:|---:|")
    print(f"| HTML with 6 figures | {t_rep:.1f} | {path.stat().st_size / 1e6:.2f} MB |")
    print(f"| HTML, tables only | {t_tab:.1f} | — |")

    if args.corpus_rows:
        from veo_notebook import frame
        from veo_notebook.simulator import corpus

        n = min(args.corpus_rows, 20_000) if args.quick else args.corpus_rows
        texts = list(corpus.iter_raw_texts(n, seed=0))
        t0 = time.perf_counter()
        df = frame.from_raw(texts, fetched_at=[corpus.DEFAULT_ANCHOR] * n)
        t_parse = time.perf_counter() - t0
        t0 = time.perf_counter()
        path = report(df, out_dir / "report-corpus.html", title=f"Simulator corpus, {n:,} tasks")
        t_rep = time.perf_counter() - t0
        print(f"\nsimulator corpus, {n:,} records: from_raw {t_parse:.1f} s, report {t_rep:.1f} s")
    print(f"\nreports in {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
