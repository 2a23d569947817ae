"""Fault campaign: thousands of ids against a simulator that injects every fault kind.

The simulator (seeded, clock frozen so 14-day expiry cannot move during the run) rate
limits at ``--rate-limit`` requests/s (429 bursts the client must find on its own) and
injects, per request, the faults of :data:`RATES`; on top, each fault kind is scripted
twice in a row on one id, so every kind occurs even in a short run. The ids mix corpus
records (read), expired records (422 "Temporarily supports records within 14 days."),
unknown ids (422 "record is null.") and duplicates. Invariants checked (:func:`check`):
exactly one row per unique id, in first-seen order; no duplicate in the frame or the
store; every readable id read despite the faults; every 422 flagged with its reason.

    .venv/bin/python bench/faults.py            # 10,000 ids
    .venv/bin/python bench/faults.py --quick    # 1,000 ids

``tests/test_reliability.py`` runs :func:`run_campaign` on ~300 ids.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veo_notebook.client import Client
from veo_notebook.fetch import fetch_records
from veo_notebook.simulator import Simulator

#: Per-request fault probabilities (about 9.5 % of requests in all), plus the rate limit.
RATES: dict[str, float] = {
    "envelope500": 0.015,
    "envelope455": 0.01,
    "envelope408": 0.01,
    "http502": 0.01,
    "http503": 0.01,
    "http429": 0.001,
    "reset": 0.01,
    "slow": 0.004,
    "truncated": 0.01,
    "incomplete": 0.005,
    "nonjson": 0.01,
}
SCRIPTED = tuple(RATES)  # each kind, twice in a row, on one id of its own
EXPIRED = "422 Temporarily supports records within 14 days."
UNKNOWN = "422 record is null."
KEY = "sk-bench-faults-key-0000"


@dataclass
class Campaign:
    """What one campaign gave: the ids, the frame, the simulator and client counters."""

    ids: list[str]  # as given (duplicates included)
    unique: list[str]
    readable: set[str]
    expired: set[str]
    unknown: set[str]
    frame: Any  # the typed DataFrame
    stats: dict[str, Any]  # simulator counters
    store_rows: int
    store_duplicates: int
    attempts: Counter[int] = field(default_factory=Counter)
    throttled: int = 0
    rate_cuts: int = 0
    pauses: int = 0
    wall_s: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)


def make_ids(sim: Simulator, n: int, seed: int) -> tuple[list[str], set[str], set[str], set[str]]:
    """``n`` ids: ~85 % corpus (readable or expired), 7.5 % unknown, 7.5 % repeats; shuffled."""
    rng = random.Random(seed)
    n_unknown = n_dup = round(0.075 * n)
    corpus = sim.task_ids()[: n - n_unknown - n_dup]
    unknown = [f"veo_unknown_{seed}_{i:06d}" for i in range(n_unknown)]
    ids = corpus + unknown
    rng.shuffle(ids)
    for _ in range(n_dup):  # a repeat lands after its first occurrence
        pos = rng.randrange(1, len(ids) + 1)
        ids.insert(pos, ids[rng.randrange(pos)])
    expired = set(sim.task_ids("expired")) & set(corpus)
    return ids, set(corpus) - expired, expired, set(unknown)


def run_campaign(
    n: int = 10_000,
    *,
    seed: int = 0,
    rates: dict[str, float] | None = None,
    rate_limit: float | None = 100.0,
    timeout: float = 0.5,
    slow_seconds: float = 1.0,
    backoff: float = 0.5,
    max_retries: int = 6,
    store_dir: str | Path | None = None,
) -> Campaign:
    """Fetch ``n`` ids through every fault kind into a store file; return the counters."""
    rates = RATES if rates is None else rates
    sim = Simulator(
        KEY,
        seed=seed,
        n_tasks=n,
        clock_speed=0.0,
        span_days=16.0,
        rate_limit=rate_limit,
        slow_seconds=slow_seconds,
    )
    with sim, tempfile.TemporaryDirectory(dir=store_dir) as tmp:
        ids, readable, expired, unknown = make_ids(sim, n, seed)
        for kind, tid in zip(SCRIPTED, sorted(readable), strict=False):
            sim.script(tid, [kind, kind])
        sim.set_fault_rates(rates)
        client = Client(
            KEY,
            base_url=sim.base_url,
            timeout=timeout,
            backoff=backoff,
            max_retries=max_retries,
        )
        attempts: Counter[int] = Counter()
        store = Path(tmp) / "campaign.sqlite"
        t0 = time.perf_counter()
        with client:
            df = fetch_records(
                ids,
                client=client,
                store=store,
                progress=False,
                on_update=lambda o: attempts.update([o.attempts]),
            )
        wall = time.perf_counter() - t0
        with sqlite3.connect(store) as conn:
            rows, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT task_id) FROM records"
            ).fetchone()
        conn.close()
        stats = sim.stats()
    return Campaign(
        ids=ids,
        unique=list(dict.fromkeys(ids)),
        readable=readable,
        expired=expired,
        unknown=unknown,
        frame=df,
        stats=stats,
        store_rows=rows,
        store_duplicates=rows - distinct,
        attempts=attempts,
        throttled=client.limiter.throttled,
        rate_cuts=client.limiter.drops,
        pauses=client.limiter.pauses,
        wall_s=wall,
        settings={
            "rate_limit": rate_limit,
            "timeout": timeout,
            "slow_seconds": slow_seconds,
            "backoff": backoff,
            "max_retries": max_retries,
            "fault_rate_total": round(sum(rates.values()), 4),
        },
    )


def check(c: Campaign) -> list[str]:
    """The campaign's invariants; returns what was violated (empty: all hold)."""
    bad: list[str] = []
    df = c.frame
    got = df["task_id"].tolist()
    if got != c.unique:
        bad.append(f"rows are not the unique ids in first-seen order ({len(got)}/{len(c.unique)})")
    if int(df["task_id"].duplicated().sum()) or c.store_duplicates:
        bad.append("duplicate rows in the frame or the store")
    if c.store_rows != len(c.unique):
        bad.append(f"store holds {c.store_rows} rows for {len(c.unique)} unique ids")
    errors = df["fetch_error"].astype(object).where(df["fetch_error"].notna(), None)
    err = dict(zip(got, errors, strict=True))
    unread = [i for i in c.readable if err.get(i) is not None]
    if unread:
        bad.append(f"{len(unread)} readable ids not read, e.g. {unread[0]!r}: {err[unread[0]]!r}")
    wrong = [i for i in c.expired if err.get(i) != EXPIRED]
    wrong += [i for i in c.unknown if err.get(i) != UNKNOWN]
    if wrong:
        bad.append(f"{len(wrong)} 422s without the right reason, e.g. {err.get(wrong[0])!r}")
    queried = set(c.stats["by_task"])
    if queried != set(c.unique):
        bad.append(f"ids queried != ids given ({len(queried ^ set(c.unique))} differ)")
    return bad


def table(c: Campaign) -> str:
    """The campaign as a plain-text table (the README shows it)."""
    out = c.stats["by_outcome"]
    faults = {k: v for k, v in sorted(out.items()) if k not in ("ok", "422", "429")}
    requests = int(c.stats["requests"])
    retries = requests - len(c.unique)
    df = c.frame
    reasons = df["fetch_error"].fillna("(read)").value_counts()
    lines = [
        f"fault campaign: {len(c.ids):,} ids given, {len(c.unique):,} unique "
        f"({len(c.readable):,} readable, {len(c.expired):,} expired, {len(c.unknown):,} unknown)",
        "settings: " + ", ".join(f"{k}={v}" for k, v in c.settings.items()),
        "",
        f"{'requests sent (simulator)':<44}{requests:>10,}",
        f"{'  answered ok':<44}{out.get('ok', 0):>10,}",
        f"{'  answered 422':<44}{out.get('422', 0):>10,}",
        f"{'  HTTP 429 from the rate limit':<44}{out.get('429', 0):>10,}",
    ]
    lines += [f"{'  fault ' + k:<44}{v:>10,}" for k, v in faults.items()]
    lines += [
        f"{'faults injected, all kinds':<44}{sum(faults.values()):>10,}",
        f"{'retries (requests - unique ids)':<44}{retries:>10,}",
        f"{'client: 429s seen / rate cuts / pauses':<44}"
        f"{f'{c.throttled} / {c.rate_cuts} / {c.pauses}':>10}",
        f"{'ids read in 1 / 2 / 3+ attempts':<44}"
        f"{c.attempts[1]} / {c.attempts[2]} / {sum(v for k, v in c.attempts.items() if k >= 3)}",
        f"{'rows returned (= unique ids given)':<44}{len(df):>10,}",
        "  of which:",
    ]
    lines += [f"{v:>10,}  fetch_error {k}" for k, v in reasons.items()]
    lines += [
        f"{'duplicate rows (frame + store)':<44}"
        f"{int(df['task_id'].duplicated().sum()) + c.store_duplicates:>10}",
        f"{'wall time (s)':<44}{c.wall_s:>10.1f}",
        f"{'throughput (requests/s)':<44}{requests / c.wall_s:>10.1f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="ids to fetch (default 10,000)")
    p.add_argument("--quick", action="store_true", help="1,000 ids")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate-limit", type=float, default=100.0, help="server limit, requests/s")
    args = p.parse_args(argv)
    n = 1000 if args.quick else args.n
    c = run_campaign(n, seed=args.seed, rate_limit=args.rate_limit)
    print(table(c))
    bad = check(c)
    print("\ninvariants: " + ("all hold" if not bad else "VIOLATED:\n  " + "\n  ".join(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
