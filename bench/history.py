"""Benchmark of the analysis on a big history: pandas, DuckDB and Spark side by side.

Run ``.venv/bin/python bench/history.py`` (``--sizes 1e6 2e7`` for the 20M run,
``--spark`` to add Spark ``local[2]`` at the smallest size, ``--layer`` for the
SQL-vs-narwhals measurement). For each size it writes a synthetic history straight to a
hive dataset (``create_date=YYYY-MM-DD``, one file a day as a store's dataset, block by
block: never whole in memory), then
times, each in a fresh subprocess that reports its own peak RSS:

* ``latency_summary(by="model")``, ``failure_rates(by="model", freq="1D")`` and
  ``cost_summary(by="model")`` on DuckDB over the dataset;
* at the smallest size, the same three calls on pandas (the frame read whole, then the
  call) beside DuckDB, and checks that the tables are identical, cell for cell;
* with ``--spark``, the three calls on Spark ``local[2]`` over the same dataset;
* with ``--report``, the whole ``report(path, "r.html", engine="duckdb")`` (figures
  included, drawn from aggregates) at every size, its time and peak RSS, and the ratio
  of the peaks (largest / smallest size).

``--keep DIR`` reuses the histories already in DIR (``history-<n>``), read only in
``--report`` mode.

Rows are ``tests/_frames.synthetic_frame``'s (three models, four task types, log-normal
latencies at millisecond resolution, ~10 % failures with kie.ai's messages, a batch still
running at the end), spread over :data:`DAYS` days, with unique task ids.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

DAYS = 60  # the history's span: one partition a day
BLOCK = 1_000_000  # rows generated and written at a time
CALLS = {
    "latency_summary": "analysis.latency_summary(src, by='model', engine=eng)",
    "failure_rates": "analysis.failure_rates(src, by='model', freq='1D', engine=eng)",
    "cost_summary": "analysis.cost_summary(src, by='model', engine=eng)",
}


def write_history(path: Path, n: int, seed: int = 0) -> float:
    """Write ``n`` synthetic rows to a hive dataset at ``path``, a block at a time, laid
    out as a store's dataset is (:mod:`veo_notebook.frame.dataset`): one file a day,
    row groups of ``ROW_GROUP_ROWS``, rows written as they come (a writer per day)."""
    import numpy as np
    import pandas as pd
    from _frames import synthetic_frame

    from veo_notebook import schema
    from veo_notebook.frame import _parquet, dataset

    t0 = time.perf_counter()
    writers: dict[str, dataset._Writer] = {}
    for b in range(math.ceil(n / BLOCK)):
        m = min(BLOCK, n - b * BLOCK)
        df = synthetic_frame(m, seed=seed + b, days=DAYS)
        ids = np.char.add("veo_", np.char.zfill(np.arange(b * BLOCK, b * BLOCK + m).astype(str), 9))
        df["task_id"] = pd.array(ids, dtype=schema.dtypes()["task_id"])
        for col in ("create_time", "complete_time", "fetched_at"):
            df[col] = df[col].dt.floor("us")
        table = _parquet.to_table(df)
        days = _parquet.day_of(df["create_time"]).to_numpy(dtype=str)
        del df
        for day in np.unique(days):
            if day not in writers:
                where = dataset.day_dir(path, day) / dataset.FILE_NAME
                writers[day] = dataset._Writer(where, table.schema, day)
            writers[day].add(table.filter(days == day))
            if writers[day].rows >= dataset.ROW_GROUP_ROWS:
                writers[day].flush()
        del table
    for w in writers.values():
        w.flush()
        w.writer.close()
    write_gaps(path)
    return time.perf_counter() - t0


def write_gaps(path: Path) -> None:
    """Each day file's request gaps beside it, as a store's dataset keeps them
    (:mod:`veo_notebook.frame._request_gaps`)."""
    import pyarrow.parquet as pq

    from veo_notebook.frame import _request_gaps, dataset

    for file in sorted(path.glob(f"*/{dataset.FILE_NAME}")):
        part_id = (pq.read_schema(file).metadata or {})[dataset.PART_ID].decode()
        _request_gaps.write_gaps_of(file, part_id)


_CHILD = """
import json, sys, time
sys.path.insert(0, {tests!r})
from veo_notebook import analysis, export
path, eng, call = {path!r}, {engine!r}, {call!r}
t0 = time.perf_counter()
if eng == "pandas":
    src = export.read_parquet(path)
elif eng == "spark":
    from pyspark.sql import SparkSession
    conf = {{"spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1", "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "4", "spark.driver.memory": "3g"}}
    builder = SparkSession.builder.master("local[2]")
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    src = spark.read.parquet(path)
else:
    src = path
t1 = time.perf_counter()
c1 = time.process_time()
out = eval(call)
t2 = time.perf_counter()
cpu = time.process_time() - c1  # every thread's, DuckDB's included
if {keep!r}:
    out.to_pickle({keep!r})
# VmHWM: this process's own peak (ru_maxrss keeps the forking parent's across exec)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
rss = int(hwm.split()[1]) / 1024
print(json.dumps({{"read_s": t1 - t0, "call_s": t2 - t1, "cpu_s": cpu, "rss_mb": rss}}))
"""


_REPORT_CHILD = """
import json, sys, tempfile, time
from pathlib import Path
from veo_notebook import report
t0 = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    report({path!r}, Path(tmp) / "r.html", engine={engine!r})
took = time.perf_counter() - t0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({{"call_s": took, "rss_mb": int(hwm.split()[1]) / 1024}}))
"""


def measure_report(path: Path, engine: str = "duckdb") -> dict:
    """``report()`` on the dataset in a fresh process: its time and peak RSS."""
    code = _REPORT_CHILD.format(path=str(path), engine=engine)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def reports(root: Path, sizes: list[int]) -> None:
    """``report()`` over DuckDB at each size; the peak's growth from the smallest."""
    peaks = []
    for n in sizes:
        got = measure_report(root / f"history-{n}")
        peaks.append(got["rss_mb"])
        print(f"{n:>11,} report()         duckdb {got['call_s']:6.1f} s {got['rss_mb']:6.0f} MB")
    if len(peaks) > 1:
        print(f"peak RSS {sizes[-1]:,} / {sizes[0]:,}: {peaks[-1] / peaks[0]:.2f}x")


def measure(path: Path, engine: str, name: str, keep: Path | None = None) -> dict:
    """Time one call in a fresh process; its peak RSS too."""
    code = _CHILD.format(
        tests=str(ROOT / "tests"),
        path=str(path),
        engine=engine,
        call=CALLS[name],
        keep=str(keep) if keep else "",
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def layer(path: Path, repeat: int = 3) -> None:
    """The same grouped counts (terminal tasks by model and status) through the engine's
    SQL and through narwhals, on one warm DuckDB relation; best of ``repeat``."""
    import duckdb
    import narwhals as nw

    from veo_notebook.engine import _plan as p
    from veo_notebook.engine._duckdb import DuckDBEngine

    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning=true)")
    eng = DuckDBEngine(rel)
    statuses = ("success", "failed", "generation_failed")
    measures = {s: p.Count(p.In("status", (s,))) for s in statuses}

    def sql() -> object:
        return eng.grouped(
            (p.Key("model"),), {"n": p.Count(), **measures}, p.In("status", statuses)
        )

    def narwhals() -> object:
        lf = nw.from_native(rel).filter(nw.col("status").is_in(list(statuses)))
        agg = lf.group_by("model").agg(
            nw.len().alias("n"), *((nw.col("status") == s).sum().alias(s) for s in statuses)
        )
        return agg.collect().to_native()

    for name, fn in (("engine SQL", sql), ("narwhals", narwhals)):
        fn()  # warm: file footers read once
        best = min(_timed(fn) for _ in range(repeat))
        print(f"layer  grouped counts by model, {name}: {best:.3f} s", flush=True)


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6])
    ap.add_argument("--spark", action="store_true")
    ap.add_argument("--layer", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="write the histories here")
    ap.add_argument("--report", action="store_true", help="time report() over DuckDB")
    args = ap.parse_args()
    import pandas as pd

    root = args.keep or Path(tempfile.mkdtemp(prefix="veo-history-"))
    sizes = sorted(int(s) for s in args.sizes)
    if args.report:
        for n in sizes:
            if not (root / f"history-{n}").exists():
                print(f"{n:>11,} rows written in {write_history(root / f'history-{n}', n):.1f} s")
        try:
            reports(root, sizes)
        finally:
            if args.keep is None:
                shutil.rmtree(root, ignore_errors=True)
        return
    try:
        for i, n in enumerate(sizes):
            path = root / f"history-{n}"
            if not path.exists():
                took = write_history(path, n)
                print(f"{n:>11,} rows written in {took:.1f} s", flush=True)
            if args.layer and i == 0:
                layer(path)
            for name in CALLS:
                duck = measure(path, "duckdb", name, keep=root / "duck.pkl")
                line = f"{n:>11,} {name:<16} duckdb {duck['call_s']:6.2f} s "
                line += f"(CPU {duck['cpu_s']:5.1f} s) {duck['rss_mb']:6.0f} MB"
                if i == 0:
                    pand = measure(path, "pandas", name, keep=root / "pandas.pkl")
                    duck_t = pd.read_pickle(root / "duck.pkl")
                    same = duck_t.equals(pd.read_pickle(root / "pandas.pkl"))
                    line += (
                        f" | pandas read {pand['read_s']:5.1f} s + call {pand['call_s']:5.2f} s "
                        f"{pand['rss_mb']:6.0f} MB | identical: {same}"
                    )
                    if args.spark:
                        sp = measure(path, "spark", name)
                        line += f" | spark local[2] {sp['call_s']:6.2f} s"
                print(line, flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this driver (writing the histories): {peak:.0f} MB")


if __name__ == "__main__":
    main()
