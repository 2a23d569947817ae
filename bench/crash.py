"""Crash safety: a fetch into a store, SIGKILLed at random moments, resumes losing nothing.

Each trial starts a fresh store and runs ``tests/_crash_child.py`` (a subprocess
fetching the ids into the store; the simulator runs in this process, so its counters
see every request) and SIGKILLs it after a random number of answers plus a random
delay, several times in a row; then a last run completes the fetch. After every kill:

* the store opens cleanly (``Store(path)``; ``PRAGMA integrity_check`` = ok);
* it holds no duplicate and no id that was not asked for;
* the next run sends **no** request for an id the store already held as terminal;
* what is lost is only what was answered but not yet committed (``unsaved``: the
  fetch commits every 50 answers or 0.5 s), and the next run fetches it again;
* the last run queries **exactly** the ids the store lacked (not held as terminal).

    .venv/bin/python bench/crash.py            # 5 trials x 3 kills, 5,000 ids
    .venv/bin/python bench/crash.py --quick    # 2 trials x 2 kills, 1,000 ids

``tests/test_reliability.py`` runs :func:`trial` with 2 kills on 1,000 ids.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from veo_notebook.client import Client
from veo_notebook.fetch import fetch_records
from veo_notebook.fetch._run import FLUSH_ROWS as _FLUSH_ROWS
from veo_notebook.simulator import Simulator
from veo_notebook.store import Store

CHILD = Path(__file__).resolve().parent.parent / "tests" / "_crash_child.py"
KEY = "sk-bench-crash-key-0000"
EVERY = 20  # the child reports every EVERY answers


@dataclass
class StoreState:
    """What a store holds, read after a crash (opening it is part of the check)."""

    held: set[str]
    terminal: set[str]
    duplicates: int
    foreign: int  # ids held that were never asked for
    integrity: str


@dataclass
class Run:
    """One run of a trial: killed (``killed_after`` answers seen) or completed."""

    killed_after: int | None
    before: StoreState
    after: StoreState
    requests: int
    refetched_terminal: int  # requests for ids held as terminal before the run
    queried: set[str]
    written: int  # rows written by the run (fetched_at at or after its start)
    signal: int | None = None  # what stopped it
    exit_s: float = 0.0  # from the signal to the exit

    @property
    def unsaved(self) -> int:
        """Answers the killed run had seen but not yet committed (lost; re-fetched next run)."""
        return max(0, (self.killed_after or 0) - self.written) if self.killed_after else 0


def _written_since(path: Path, t0: float) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(
            conn.execute("SELECT count(*) FROM records WHERE fetched_at >= ?", (t0,)).fetchone()[0]
        )
    finally:
        conn.close()


def inspect_store(path: Path, ids: set[str]) -> StoreState:
    """Open the store as a user would (raises if it does not open) and read its state."""
    if not path.exists():
        return StoreState(set(), set(), 0, 0, "ok (no file yet)")
    with Store(path) as st:
        held = set(st.ids())
        terminal = st.terminal_ids(held)
    conn = sqlite3.connect(path)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        n, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT task_id) FROM records"
        ).fetchone()
    finally:
        conn.close()
    return StoreState(held, terminal, n - distinct, len(held - ids), integrity)


def run_child(
    base_url: str,
    store: Path,
    ids_file: Path,
    *,
    kill_after: int | None,
    delay: float,
    key: str,
    sig: int = signal.SIGKILL,
) -> tuple[int | None, float]:
    """Run the child; send ``sig`` after ``kill_after`` answers + ``delay`` s.

    Returns (answers seen when signalled, or None if it completed; seconds from the
    signal to the child's exit).
    """
    env = {**os.environ, "KIE_API_KEY": key}
    cmd = [sys.executable, str(CHILD), base_url, str(store), str(ids_file), str(EVERY)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: int | None = None
    sent_at: float | None = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if line.isdigit():
                seen = int(line)
                if kill_after is not None and seen >= kill_after:
                    time.sleep(delay)
                    proc.send_signal(sig)
                    sent_at = time.perf_counter()
                    break
        proc.wait(timeout=120)
        exit_s = 0.0 if sent_at is None else time.perf_counter() - sent_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err = proc.stderr.read() if proc.stderr else ""
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    interrupted = {-signal.SIGKILL} if sig == signal.SIGKILL else {-sig, 1, 130}
    if proc.returncode not in (interrupted if sent_at is not None else {0}):
        raise RuntimeError(f"crash child failed ({proc.returncode}):\n{err[-2000:]}")
    if sig == signal.SIGINT and sent_at and "KeyboardInterrupt" not in err:
        raise RuntimeError(f"the child did not stop on Ctrl-C:\n{err[-2000:]}")
    return (seen if sent_at is not None else None), exit_s


def trial(
    sim: Simulator,
    ids: list[str],
    workdir: Path,
    *,
    kills: int,
    rng: random.Random,
    key: str,
    signals: Sequence[int] = (),
) -> list[Run]:
    """Fetch ``ids`` into a fresh store, killing ``kills`` runs; the last run completes.

    Run ``k`` gets ``signals[k]`` (default SIGKILL; SIGINT is a Ctrl-C).
    """
    store = workdir / f"trial-{rng.randrange(10**9)}.sqlite"
    ids_file = workdir / "ids.txt"
    ids_file.write_text("".join(i + "\n" for i in ids), encoding="utf-8")
    wanted = set(ids)
    runs: list[Run] = []
    for k in range(kills + 1):
        before = inspect_store(store, wanted)
        lacking = len(wanted - before.terminal)
        sim.reset_stats()
        t0 = time.time()
        killed: int | None = None
        exit_s = 0.0
        sig = None
        if k < kills:
            steps = max(1, int(0.9 * lacking) // EVERY)
            at = EVERY * rng.randint(1, steps)
            sig = signals[k] if k < len(signals) else signal.SIGKILL
            killed, exit_s = run_child(
                sim.base_url,
                store,
                ids_file,
                kill_after=at,
                delay=rng.uniform(0, 0.05),
                key=key,
                sig=sig,
            )
        else:
            with Client(key, base_url=sim.base_url) as client:
                fetch_records(ids, client=client, store=store, progress=False)
        after = inspect_store(store, wanted)
        stats = sim.stats()
        by_task = stats["by_task"]
        runs.append(
            Run(
                killed_after=killed,
                signal=sig if k < kills else None,
                exit_s=exit_s if k < kills else 0.0,
                before=before,
                after=after,
                requests=int(stats["requests"]),
                refetched_terminal=sum(by_task.get(i, 0) for i in before.terminal),
                queried=set(by_task),
                written=_written_since(store, t0),
            )
        )
    return runs


def problems(runs: list[Run], ids: list[str]) -> list[str]:
    """What a trial violated (empty: nothing)."""
    bad: list[str] = []
    wanted = set(ids)
    for n, r in enumerate(runs):
        a = r.after
        if a.integrity != "ok" or a.duplicates or a.foreign:
            bad.append(f"run {n}: integrity {a.integrity!r}, dup {a.duplicates}, alien {a.foreign}")
        if r.refetched_terminal:
            bad.append(f"run {n}: {r.refetched_terminal} requests for ids already terminal")
        if r.signal == signal.SIGINT and r.unsaved:
            bad.append(f"run {n}: Ctrl-C lost {r.unsaved} answers (they must be committed)")
        if r.unsaved > _FLUSH_ROWS:
            bad.append(f"run {n}: {r.unsaved} answers lost at the kill (> {_FLUSH_ROWS})")
        if not r.before.held <= a.held:
            bad.append(f"run {n}: lost {len(r.before.held - a.held)} stored ids")
    last = runs[-1]
    if last.queried != wanted - last.before.terminal:
        bad.append("last run did not query exactly the ids the store lacked")
    if last.after.held != wanted:
        bad.append(f"store misses {len(wanted - last.after.held)} ids after the last run")
    return bad


def make_ids(sim: Simulator, n: int) -> list[str]:
    """``n`` ids: corpus ids plus 5 % unknown ones (422 rows, re-queried: not terminal)."""
    n_unknown = n // 20
    return sim.task_ids()[: n - n_unknown] + [f"veo_unknown_{i:05d}" for i in range(n_unknown)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--kills", type=int, default=3, help="SIGKILLs per trial")
    p.add_argument("--latency", type=float, default=0.004, help="simulator latency, s")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="1,000 ids, 2 trials x 2 kills")
    p.add_argument(
        "--no-ctrl-c", dest="ctrl_c", action="store_false", help="no SIGINT as first stop"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.trials, args.kills = 1000, 2, 2
    rng = random.Random(args.seed)
    failures = 0
    exits: list[float] = []
    with (
        Simulator(KEY, seed=args.seed, n_tasks=args.n, latency=args.latency, clock_speed=0) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        ids = make_ids(sim, args.n)
        print(
            f"crash safety: {len(ids):,} ids, {args.trials} trials x {args.kills} stops "
            f"({'the first a Ctrl-C (SIGINT), the rest ' if args.ctrl_c else ''}SIGKILL), "
            f"simulator latency {args.latency * 1000:.0f} ms\n"
        )
        head = (
            f"{'trial':>5} {'run':>3} {'stopped after':>13} {'held':>13} {'terminal':>13} "
            f"{'requests':>8} {'re-fetched':>10} {'unsaved':>7} {'integrity':>9} {'dup':>3}  ok"
        )
        print(head)
        t0 = time.perf_counter()
        for t in range(args.trials):
            sigs = [signal.SIGINT] if args.ctrl_c else []
            runs = trial(sim, ids, Path(tmp), kills=args.kills, rng=rng, key=KEY, signals=sigs)
            exits += [r.exit_s for r in runs if r.signal == signal.SIGINT]
            bad = problems(runs, ids)
            failures += bool(bad)
            for n, r in enumerate(runs):
                name = {signal.SIGINT: "INT", signal.SIGKILL: "KILL"}.get(r.signal or 0, "")
                killed = "completed" if r.killed_after is None else f"{name} {r.killed_after:,}"
                held = f"{len(r.before.held):,}→{len(r.after.held):,}"
                term = f"{len(r.before.terminal):,}→{len(r.after.terminal):,}"
                print(
                    f"{t:>5} {n:>3} {killed:>13} {held:>13} {term:>13} {r.requests:>8,} "
                    f"{r.refetched_terminal:>10} {r.unsaved:>7} {r.after.integrity:>9} "
                    f"{r.after.duplicates:>3}"
                    f"  {'yes' if not bad else 'NO'}"
                )
            last = runs[-1]
            lacked = set(ids) - last.before.terminal
            print(
                f"      last run queried {len(last.queried):,} ids; the store lacked "
                f"{len(lacked):,}; the same ids: {last.queried == lacked}"
            )
            for b in bad:
                print("      VIOLATION:", b)
        print(
            f"\n{args.trials} trials in {time.perf_counter() - t0:.0f} s; "
            f"{failures} with a violation"
        )
        if exits:
            print(f"Ctrl-C (SIGINT) to exit: max {max(exits):.2f} s over {len(exits)} runs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
