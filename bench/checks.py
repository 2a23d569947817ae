"""Checks: false alarms and detection delay against the naive point-estimate rule, and a 1M store.

    .venv/bin/python bench/checks.py            # the issue's sizes (a few minutes)
    .venv/bin/python bench/checks.py --quick    # fewer windows and trials, a 100k store

Histories are made from the simulator's corpus (its latencies, by model, of generate
tasks created over three days: no "bad day"); the outcome of each task is drawn at the
failure rate the experiment sets, so the truth is known. Each window is a typed frame
given to ``veo.check`` as it is (the interval rule), and the same rows' point estimates
decide the naive rule (``strict=True``'s verdict): one call, both verdicts, same windows.

1. **Stationary**: true failure rate 4 %, rule ``failure_rate > 5%``; windows of 20–500
   tasks created over an hour, checked at its end (tasks younger than their latency are
   still generating). False alarms = windows breached. Also ``p90_latency`` against
   1.25 × the true p90.
2. **Step change** 4 % → 12 % and p90 × 2: tasks arrive at 100 an hour; cron every
   5 minutes checks the last 2 hours. Detected in time = breached no later than the first
   check whose window lies wholly after the change and holds ≥ 200 tasks. Delay = tasks
   created after the change before the first breach.
3. **1M store**: ``veo-notebook check`` (a fresh process, as cron runs it) on a store
   of simulator records, the first run (the frame cache is built) and the next; beside it
   the same rules' point estimates in plain pandas on the loaded frame.
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

import numpy as np
import pandas as pd

from veo_notebook import check, schema, to_frame
from veo_notebook.simulator import corpus

RATE_BEFORE, RATE_AFTER, THRESHOLD = 0.04, 0.12, 0.05
P90_MARGIN = 1.25  # the p90 rule's threshold, x the true p90
ARRIVALS_PER_H = 100
WINDOW, WINDOW_S, CRON_S = "2h", 7200.0, 300.0
TARGET_N = 200
HORIZON_S = 5 * 3600.0
NOW = pd.Timestamp("2026-03-20 12:00", tz="UTC")
_STATUS = pd.CategoricalDtype(schema.STATUS_CATEGORIES)


def latency_pool(n: int = 20_000, seed: int = 7) -> np.ndarray:
    """Success latencies (s) of the simulator's generate tasks over three days."""
    envs = list(corpus.iter_envelopes(n, seed, "iso", span_days=3.0, pending_share=0.0))
    df = to_frame(envs)
    ok = (df["status"] == "success") & (df["task_type"] == "generate")
    return df.loc[ok, "latency_s"].dropna().to_numpy(dtype=float)


def frame(create_s: np.ndarray, latency_s: np.ndarray, failed: np.ndarray, now_s: float):
    """A typed window: tasks created at ``create_s`` (s before NOW's reference), done when
    ``create + latency <= now``; a failed task fails at that time."""
    done = create_s + latency_s <= now_s
    status = np.where(done, np.where(failed, "failed", "success"), "generating")
    base = NOW.value
    created = pd.to_datetime(base + (create_s * 1e9).astype(np.int64), utc=True)
    complete = pd.to_datetime(base + ((create_s + latency_s) * 1e9).astype(np.int64), utc=True)
    n = len(create_s)
    return pd.DataFrame(
        {
            "task_id": [f"t{i}" for i in range(n)],
            "status": pd.Categorical(status, dtype=_STATUS),
            "create_time": created,
            "complete_time": complete.where(done),
            "latency_s": np.where(done, latency_s, np.nan),
            "model": "veo3_fast",
            "fetched_at": pd.Timestamp(base + int(now_s * 1e9), tz="UTC"),
        }
    )


def verdicts(df: pd.DataFrame, rules: list[str], now_s: float) -> dict[str, tuple[bool, bool]]:
    """{rule: (interval breached, naive breached)} of one check call."""
    now = pd.Timestamp(NOW.value + int(now_s * 1e9), tz="UTC")
    rows = check(df, rules, window=WINDOW, now=now)
    return {
        r.rule: (bool(r.breached), bool(r.value > r.threshold))
        for r in rows.itertuples(index=False)
    }


def stationary(pool: np.ndarray, windows: int, p90_windows: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    p90_rule = f"p90_latency > {P90_MARGIN * np.quantile(pool, 0.9):.0f}s"
    alarms = {"failure": [0, 0], "p90": [0, 0]}
    for i in range(windows):
        n = int(rng.integers(20, 501))
        create = np.sort(rng.uniform(-3600.0, 0.0, n))
        lat = rng.choice(pool, n)
        failed = rng.random(n) < RATE_BEFORE
        rules = ["failure_rate > 5%"] + ([p90_rule] if i < p90_windows else [])
        got = verdicts(frame(create, lat, failed, 0.0), rules, 0.0)
        for key, rule in (("failure", rules[0]), ("p90", p90_rule)):
            if rule in got:
                alarms[key][0] += got[rule][0]
                alarms[key][1] += got[rule][1]
    return {"windows": windows, "p90_windows": p90_windows, "p90_rule": p90_rule, **alarms}


def _stream(rng: np.random.Generator, pool: np.ndarray):
    """Arrival times (0 = the change), latencies and failures of one trial."""
    start = -WINDOW_S
    n = rng.poisson(ARRIVALS_PER_H * (HORIZON_S - start) / 3600.0)
    t = np.sort(rng.uniform(start, HORIZON_S, n))
    after = t >= 0
    lat = rng.choice(pool, n) * np.where(after, 2.0, 1.0)
    failed = rng.random(n) < np.where(after, RATE_AFTER, RATE_BEFORE)
    return t, lat, failed


def _deadline(t: np.ndarray) -> float:
    """The first check whose window lies wholly after the change and holds ≥ 200 tasks."""
    for k in range(1, int(HORIZON_S / CRON_S) + 1):
        now = k * CRON_S
        if now - WINDOW_S >= 0 and int(((t > now - WINDOW_S) & (t <= now)).sum()) >= TARGET_N:
            return now
    return float("inf")


def trial(pool: np.ndarray, p90_rule: str, rng: np.random.Generator) -> dict:
    t, lat, failed = _stream(rng, pool)
    deadline = _deadline(t)
    rules = ["failure_rate > 5%", p90_rule]
    first: dict[str, float] = {}
    names = [f"{side}:{r}" for side in ("interval", "naive") for r in ("failure", "p90", "any")]
    for k in range(1, int(HORIZON_S / CRON_S) + 1):
        now = k * CRON_S
        inside = (t > now - WINDOW_S) & (t <= now)
        got = verdicts(frame(t[inside], lat[inside], failed[inside], now), rules, now)
        for side, i in (("interval", 0), ("naive", 1)):
            f, p = got[rules[0]][i], got[rules[1]][i]
            for name, hit in (("failure", f), ("p90", p), ("any", f or p)):
                if hit:
                    first.setdefault(f"{side}:{name}", now)
        if all(n in first for n in names):
            break
    out = {"deadline": deadline}
    for name in names:
        when = first.get(name, float("inf"))
        out[name] = (when <= deadline, int(((t >= 0) & (t <= when)).sum()))
    return out


def detection(pool: np.ndarray, trials: int, seed: int = 2) -> dict:
    rng = np.random.default_rng(seed)
    p90_rule = f"p90_latency > {P90_MARGIN * np.quantile(pool, 0.9):.0f}s"
    results = [trial(pool, p90_rule, rng) for _ in range(trials)]
    summary = {}
    for name in [k for k in results[0] if k != "deadline"]:
        in_time = sum(r[name][0] for r in results)
        delays = [r[name][1] for r in results]
        summary[name] = {"in_time": in_time / trials, "median_delay": float(np.median(delays))}
    return {"trials": trials, "p90_rule": p90_rule, **summary}


# ---------------------------------------------------------------- a big store
RULES_TOML = 'window = "1D"\nrules = ["failure_rate > 5%", "p90_latency > 300s", "stuck > 0"]\n'


def fill_store(path: Path, n: int) -> None:
    import orjson

    from veo_notebook.store import Store

    anchor = time.time()
    with Store(path) as st:
        batch = []
        for env in corpus.iter_envelopes(n, 11, "iso", anchor=anchor, span_days=60.0):
            batch.append((env["data"]["taskId"], orjson.dumps(env).decode(), anchor, None))
            if len(batch) == 20_000:
                st.put_many(batch)
                batch = []
        st.put_many(batch)


def cli_run(store: Path, rules: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one ``veo-notebook check`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "veo_notebook",
            "check",
            "--store",
            str(store),
            "--rules",
            str(rules),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr)
    return seconds, cpu, after.ru_maxrss / 1024


def naive_pandas(df: pd.DataFrame, now: pd.Timestamp) -> object:
    """The same rules' point estimates in plain pandas (no intervals): the baseline."""
    day = df[df["create_time"] > now - pd.Timedelta("1D")]
    term = day[day["status"].isin(["success", "failed", "generation_failed"])]
    rate = term["status"].isin(["failed", "generation_failed"]).mean()
    p90 = day.loc[day["status"] == "success", "latency_s"].quantile(0.9)
    gen = df[df["status"] == "generating"]
    stuck = int(((now - gen["create_time"]).dt.total_seconds() > 1800).sum())
    return rate, p90, stuck


def big_store(n: int) -> dict:
    from veo_notebook.frame import from_store as load_frame
    from veo_notebook.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store, rules = Path(tmp) / "big.sqlite", Path(tmp) / "rules.toml"
        rules.write_text(RULES_TOML, encoding="utf-8")
        t0 = time.perf_counter()
        fill_store(store, n)
        filled = time.perf_counter() - t0
        cold = cli_run(store, rules)
        warm = [cli_run(store, rules) for _ in range(3)]
        rules_list = ["failure_rate > 5%", "p90_latency > 300s", "stuck > 0"]
        check(frame(np.zeros(3), np.ones(3), np.zeros(3, bool), 9.0), rules_list)  # imports
        with Store(store, create=False) as st:
            t0 = time.perf_counter()
            check(st, rules_list, window="1D")  # the frame (from its cache) and the check
            in_process = time.perf_counter() - t0
            df = load_frame(st)
        now = df["fetched_at"].max()
        t0 = time.perf_counter()
        naive_pandas(df, now)
        naive = time.perf_counter() - t0
    best = min(warm)
    return {
        "n": n,
        "fill_s": filled,
        "cold_wall_s": cold[0],
        "cold_cpu_s": cold[1],
        "warm_wall_s": best[0],
        "warm_cpu_s": best[1],
        "rss_mb": max(w[2] for w in warm),
        "check_s": in_process,
        "naive_s": naive,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--part", choices=["stationary", "detection", "store", "all"], default="all")
    args = p.parse_args(argv)
    pool = latency_pool()
    out: dict = {"pool": len(pool), "true_p90_s": float(np.quantile(pool, 0.9))}
    if args.part in ("stationary", "all"):
        out["stationary"] = stationary(
            pool, 400 if args.quick else 2000, 100 if args.quick else 500
        )
        s = out["stationary"]
        w, pw = s["windows"], s["p90_windows"]
        print(
            f"stationary 4 % vs 5 %, {w} windows of 20–500 tasks: false alarms "
            f"interval {s['failure'][0] / w:.1%}, naive {s['failure'][1] / w:.1%}; "
            f"{s['p90_rule']} over {pw}: interval {s['p90'][0] / pw:.1%}, "
            f"naive {s['p90'][1] / pw:.1%}"
        )
    if args.part in ("detection", "all"):
        out["detection"] = d = detection(pool, 60 if args.quick else 200)
        for side in ("interval", "naive"):
            for r in ("failure", "p90", "any"):
                v = d[f"{side}:{r}"]
                print(
                    f"step change, {d['trials']} trials, {side} rule, {r}: in time "
                    f"{v['in_time']:.1%}, median delay {v['median_delay']:.0f} tasks"
                )
    if args.part in ("store", "all"):
        out["store"] = b = big_store(100_000 if args.quick else 1_000_000)
        print(
            f"store of {b['n']:,} tasks: veo-notebook check first run {b['cold_wall_s']:.2f} s "
            f"({b['cold_cpu_s']:.2f} CPU-s), next {b['warm_wall_s']:.2f} s "
            f"({b['warm_cpu_s']:.2f} CPU-s, peak RSS {b['rss_mb']:.0f} MB); in process, "
            f"imports done: check(store) {b['check_s']:.2f} s, the naive point estimates in "
            f"plain pandas on the loaded frame {b['naive_s']:.2f} s"
        )
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
