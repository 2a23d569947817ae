"""Raw record texts → typed frame: ``frame.from_raw`` against the plain pandas approach.

Input: N envelope texts as the store holds them (the simulator's corpus, written once to an
NDJSON cache file; not timed). Each approach runs in its own subprocess, which loads the
texts into a list of UTF-8 ``bytes`` (as ``frame.from_store`` reads them from SQLite;
``--input str`` for a list of str, as ``Store.rows()`` hands them over), then parses them
``--repeat`` times (timeit's rule: the best run is the measure; the first, which also pays
for growing the process's memory, is reported too) and reports wall and CPU time and its
peak RSS (``resource.getrusage``), so memory is compared honestly, input list included.
``--rounds`` processes of each alternate. The fast worker also times Parquet write/read of
the frame (zstd, one file).

Baseline ("the plain pandas approach"): ``json.loads`` per record, ``pd.json_normalize`` of
the ``data`` objects, ``apply(json.loads)`` on paramJson and ``json_normalize`` again,
``pd.to_datetime`` on the two time columns.

    .venv/bin/python bench/parse.py            # 1,000,000 records
    .venv/bin/python bench/parse.py --quick    # 100,000 records
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(tempfile.gettempdir()) / "veo-notebook-bench"


def _texts_file(n: int, time_format: str, seed: int) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"raw-{n}-{time_format}-{seed}.ndjson"
    if not path.exists():
        from veo_notebook.simulator import corpus

        t = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for text in corpus.iter_raw_texts(n, seed=seed, time_format=time_format):
                f.write(text)
                f.write("\n")
        tmp.replace(path)
        print(f"  (generated {n:,} texts in {time.perf_counter() - t:.0f} s: {path})", flush=True)
    return path


def _load(path: Path, kind: str) -> list[str] | list[bytes]:
    if kind == "bytes":
        return path.read_bytes().splitlines()
    with path.open(encoding="utf-8") as f:
        return f.read().splitlines()


def _rss_mb() -> float:
    """Resident set size now (Linux), in MB; the peak when /proc is not there."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _baseline(texts: list[str] | list[bytes]) -> int:
    import pandas as pd

    records = [json.loads(t) for t in texts]
    df = pd.json_normalize([r["data"] for r in records])
    params = pd.json_normalize(df["paramJson"].apply(json.loads).tolist())
    df = pd.concat([df, params.add_prefix("param.")], axis=1)
    for col in ("createTime", "completeTime"):
        df[col] = pd.to_datetime(df[col], errors="coerce")
    return len(df)


def _worker(
    kind: str, path: Path, out: Path | None, input_kind: str, repeat: int
) -> dict[str, float]:
    import pandas as pd  # imports are not timed (both sides need pandas anyway)

    from veo_notebook.frame import from_raw

    del pd
    texts = _load(path, input_kind)
    # first-call set-up (lazy imports, kernel registries, the tz database) is not timed,
    # on either side: each parses the first 2,000 texts once before the clock starts
    if kind == "baseline":
        _baseline(texts[:2000])
    else:
        from_raw(texts[:2000])
    rss_loaded = _rss_mb()
    result: dict[str, float] = {}
    for i in range(repeat):  # the first parse also pays for the process's memory growth
        df = None
        gc.collect()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        cpu0 = ru.ru_utime + ru.ru_stime
        t = time.perf_counter()
        if kind == "baseline":
            rows = _baseline(texts)
        else:
            df = from_raw(texts)
            rows = len(df)
        secs = time.perf_counter() - t
        ru = resource.getrusage(resource.RUSAGE_SELF)
        cpu = ru.ru_utime + ru.ru_stime - cpu0
        if i == 0:
            result["first_seconds"], result["first_cpu_seconds"] = secs, cpu
        if secs < result.get("seconds", float("inf")):
            result["seconds"], result["cpu_seconds"] = secs, cpu
    result["rows"] = rows
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["loaded_rss_mb"] = rss_loaded
    if kind == "fast" and out is not None:
        from veo_notebook.export import read_parquet, to_parquet

        del texts
        t = time.perf_counter()
        to_parquet(df, out)
        result["parquet_write_s"] = time.perf_counter() - t
        result["parquet_mb"] = out.stat().st_size / 1e6
        t = time.perf_counter()
        back = read_parquet(out)
        result["parquet_read_s"] = time.perf_counter() - t
        assert len(back) == rows
    return result


def _run(kind: str, path: Path, out: Path | None, input_kind: str, repeat: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", kind, "--texts", str(path), "--input", input_kind]
    cmd += ["--repeat", str(repeat)]
    if out is not None:
        cmd += ["--parquet-out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="records (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="100,000 records")
    ap.add_argument("--time-format", default="plain", choices=["plain", "iso", "epoch_ms", "mixed"])
    ap.add_argument(
        "--repeat", type=int, default=2, help="parses per process, best kept (default 2)"
    )
    ap.add_argument("--rounds", type=int, default=1, help="processes of each (default 1)")
    ap.add_argument("--worker", choices=["baseline", "fast"], help=argparse.SUPPRESS)
    ap.add_argument(
        "--input", choices=["bytes", "str"], default="bytes", help="texts as (default: bytes)"
    )
    ap.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--parquet-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        result = _worker(args.worker, args.texts, args.parquet_out, args.input, args.repeat)
        print(json.dumps(result))
        return 0
    n = 100_000 if args.quick else args.n
    repeat, rounds = max(1, args.repeat), max(1, args.rounds)
    print(
        f"parse benchmark: {n:,} records, time format {args.time_format}, "
        f"texts as {args.input}, {os.cpu_count()} cpus"
    )
    path = _texts_file(n, args.time_format, 0)
    print(f"  input: {path.stat().st_size / 1e6:,.0f} MB of NDJSON")
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "fast": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            for kind in ("baseline", "fast"):
                out = Path(tmp) / f"frame-{i}.parquet" if kind == "fast" else None
                r = _run(kind, path, out, args.input, repeat)
                runs[kind].append(r)
                first, secs, rss = r["first_seconds"], r["seconds"], r["peak_rss_mb"]
                print(
                    f"  process {i + 1} {kind:8s} first {first:7.2f} s  best of {repeat} "
                    f"{secs:7.2f} s  peak RSS {rss:7.0f} MB",
                    flush=True,
                )
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
    peak = {k: min(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
    b, f = best["baseline"], best["fast"]
    first = {k: min(v, key=lambda r: r["first_seconds"]) for k, v in runs.items()}
    bf, ff = first["baseline"], first["fast"]
    rows = [
        ("records", f"{n:,}", f"{n:,}", ""),
        (
            f"parse time, best of {repeat} (s)",
            f"{b['seconds']:.2f}",
            f"{f['seconds']:.2f}",
            f"{b['seconds'] / f['seconds']:.1f}x faster",
        ),
        (
            "first parse in a process (s)",
            f"{bf['first_seconds']:.2f}",
            f"{ff['first_seconds']:.2f}",
            f"{bf['first_seconds'] / ff['first_seconds']:.1f}x faster",
        ),
        (
            "CPU time, all threads (s)",
            f"{b['cpu_seconds']:.2f}",
            f"{f['cpu_seconds']:.2f}",
            f"{b['cpu_seconds'] / f['cpu_seconds']:.1f}x less",
        ),
        ("throughput (records/s)", f"{n / b['seconds']:,.0f}", f"{n / f['seconds']:,.0f}", ""),
        (
            "peak RSS (MB)",
            f"{peak['baseline']:,.0f}",
            f"{peak['fast']:,.0f}",
            f"{peak['fast'] / peak['baseline']:.2f}x",
        ),
        (
            "peak RSS above input (MB)",
            f"{peak['baseline'] - b['loaded_rss_mb']:,.0f}",
            f"{peak['fast'] - f['loaded_rss_mb']:,.0f}",
            f"{(peak['fast'] - f['loaded_rss_mb']) / (peak['baseline'] - b['loaded_rss_mb']):.2f}x",
        ),
    ]
    print()
    print(f"| {'':28s} | {'pandas baseline':>16s} | {'frame.from_raw':>16s} | {'ratio':>14s} |")
    print(f"|{'-' * 30}|{'-' * 18}|{'-' * 18}|{'-' * 16}|")
    for name, x, y, z in rows:
        print(f"| {name:28s} | {x:>16s} | {y:>16s} | {z:>14s} |")
    print()
    print(
        f"Parquet (zstd, one file): write {f['parquet_write_s']:.2f} s, "
        f"read {f['parquet_read_s']:.2f} s, {f['parquet_mb']:.1f} MB for {n:,} rows"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
