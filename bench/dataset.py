"""Building the frame dataset beside a big store, then keeping it in step (issue 20).

    .venv/bin/python bench/dataset.py                 # 5,000,000 records, 50,000 a day
    .venv/bin/python bench/dataset.py --n 200000 --per-day 5000   # while developing

A store is written in bulk with the simulator's records (``corpus.iter_envelopes``, no
HTTP), one day of tasks after another, as a history is fetched. Then, each in a fresh
process (imports not timed, peak RSS from ``getrusage``):

1. **build**: ``frame.dataset.sync(store)`` with no dataset yet: every record parsed,
   block by block, into one Parquet file per UTC creation day, each day's request gaps
   then written beside it (:mod:`veo_notebook.frame._request_gaps`);
2. **update**: 1 % of the history written again (half of it the newest day's tasks
   changed, as tasks still generating finish; half new tasks of a new day), then
   ``sync`` again: the days rewritten are counted and the time is given as a ratio of
   the build's.

Targets: build peak RSS ≤ 1.5 GB; update ≤ 10 % of the build's time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

DAY = 86_400.0
#: the history's first day (UTC midnight)
START = 1_767_225_600.0  # 2026-01-01
#: share of the history written again before the second sync
UPDATE_SHARE = 0.01
#: targets
MAX_BUILD_RSS_MB = 1536
MAX_UPDATE_RATIO = 0.10


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(store: str) -> None:
    """One sync in this process: seconds, peak RSS before and after."""
    from veo_notebook.frame import dataset

    before = _rss_mb()
    t0 = time.perf_counter()
    root = dataset.sync(store)
    seconds = time.perf_counter() - t0
    files = sorted(str(p) for p in root.glob("create_date=*/part-0.parquet"))
    print(json.dumps({"seconds": seconds, "rss0": before, "rss": _rss_mb(), "days": len(files)}))


def _sync(store: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(store)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _day_rows(day: int, n: int, seed_base: int, prefix: str) -> list[tuple[str, str, float, None]]:
    """``n`` tasks created during history day ``day``, as store rows."""
    from veo_notebook.simulator import corpus

    anchor = START + (day + 1) * DAY
    envs = corpus.iter_envelopes(
        n, seed=seed_base + day, time_format="iso", anchor=anchor, span_days=1.0
    )
    return [
        (f"{prefix}{day}-{i}", orjson.dumps(e).decode(), anchor, None) for i, e in enumerate(envs)
    ]


def write_store(path: Path, n: int, per_day: int) -> int:
    """The history: ``n`` records, ``per_day`` a day; returns the number of days."""
    from veo_notebook.store import Store

    days = -(-n // per_day)
    with Store(path) as st:
        for day in range(days):
            st.put_many(_day_rows(day, min(per_day, n - day * per_day), 0, "d"))
    return days


def update_store(path: Path, n: int, days: int, per_day: int) -> int:
    """1 % of the history written again: the newest day's tasks changed, a new day added."""
    from veo_notebook.store import Store

    k = max(2, int(n * UPDATE_SHARE))
    last = days - 1
    on_last = min(per_day, n - last * per_day)
    changed = []
    for task_id, raw, fetched, _ in _day_rows(last, on_last, 0, "d")[: k // 2]:
        env = json.loads(raw)
        env["data"]["paramJson"] = json.dumps({"prompt": "changed by the bench"})
        changed.append((task_id, json.dumps(env), fetched + 60.0, None))
    added = _day_rows(days, k - len(changed), 1_000, "new")
    with Store(path) as st:
        st.put_many(changed + added)
    return len(changed) + len(added)


def _stamps(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.glob("create_date=*/part-0.parquet")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=5_000_000, help="records in the store")
    p.add_argument("--per-day", type=int, default=50_000, help="records a day")
    p.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    p.add_argument("--child")
    args = p.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = Path(tmp) / "history.sqlite"
        t0 = time.perf_counter()
        days = write_store(store, args.n, args.per_day)
        made = time.perf_counter() - t0
        build = _sync(store)
        root = Path(str(store) + ".frame")
        before = _stamps(root)
        written = update_store(store, args.n, days, args.per_day)
        update = _sync(store)
        after = _stamps(root)
        rewritten = sum(1 for f, t in after.items() if before.get(f) != t)
        size = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 1e6
        gaps = sum(f.stat().st_size for f in root.rglob(".*.gaps")) / 1e6
        store_mb = store.stat().st_size / 1e6
    ratio = update["seconds"] / build["seconds"]
    ok = build["rss"] <= MAX_BUILD_RSS_MB and ratio <= MAX_UPDATE_RATIO
    print(
        f"store: {args.n:,} records, {days} days ({store_mb:,.0f} MB, written in {made:.0f} s);"
        f" dataset {size:,.0f} MB, its request gaps {gaps:,.0f} MB"
    )
    print("| sync | seconds | vs build | peak RSS (imports) | days rewritten | target |")
    print("|---|---|---|---|---|---|")
    print(
        f"| build, no dataset yet | {build['seconds']:.1f} | 1.00× | {build['rss']:,.0f} MB"
        f" ({build['rss0']:,.0f} MB) | {int(build['days'])} of {int(build['days'])} |"
        f" peak ≤ {MAX_BUILD_RSS_MB:,} MB |"
    )
    print(
        f"| update, {written:,} records (1 %) changed or new | {update['seconds']:.2f} |"
        f" {ratio:.3f}× | {update['rss']:,.0f} MB ({update['rss0']:,.0f} MB) |"
        f" {rewritten} of {int(update['days'])} | ≤ {MAX_UPDATE_RATIO:.2f}× |"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
