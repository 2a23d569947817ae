"""The main job, end to end on the embedded simulator: ``veo-notebook demo --out DIR``.

:func:`run_demo` starts a seeded kie.ai simulator on loopback whose clock runs fast
(tasks still generating finish while the demo runs), takes the task ids of a realistic
batch (a few thousand tasks over 16 simulated days: every model, generation type and
task type, some failed, a share still generating, some older than the 14 days the API
keeps, a few re-submitted by a client that timed out), and then does what a user does
with their own ids:

1. ``DIR/task_ids.txt``: the ids, one per line (what ``veo-notebook fetch`` reads);
2. :func:`~veo_notebook.fetch_records` with the real client, concurrency, rate limiter,
   retries and a progress bar, writing every answer to ``DIR/store.sqlite``;
3. :func:`~veo_notebook.watch` on the tasks still generating, for a few seconds;
4. the typed frame → ``DIR/tasks.parquet`` (:func:`~veo_notebook.to_parquet`);
5. :func:`~veo_notebook.archive_videos`: every succeeded task's video (real MP4 files
   from the simulator's media host) → ``DIR/videos/<yyyy-mm-dd>/<task_id>.mp4``, probed,
   recorded in the store, then :func:`~veo_notebook.delivery_check`;
6. :func:`~veo_notebook.report` → ``DIR/report.html`` (with its "Delivery" section);
7. a short summary on stdout: counts by status, latency percentiles by model, the top
   failure categories and the paths written.

The simulator's key is random per run and never shown. No task is created with
``POST /generate`` (that costs credits on the real API; the toolkit only reads).

>>> summary = run_demo("demo-out", n_tasks=500, progress=False)   # doctest: +SKIP
>>> summary["parquet"]                                             # doctest: +SKIP
PosixPath('demo-out/tasks.parquet')
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import IO, Any

import pandas as pd

__all__ = ["run_demo"]

log = logging.getLogger(__name__)

#: Simulated seconds per real second: a 4k upgrade (minutes) finishes in a few seconds.
DEMO_CLOCK_SPEED = 30.0
#: Simulated days the batch spreads over (the API answers 422 beyond 14).
DEMO_SPAN_DAYS = 16.0
#: Share of the batch still generating when the simulator starts.
DEMO_PENDING_SHARE = 0.08
#: Share of generate tasks that re-submit an earlier request (the report's Money section).
DEMO_RESUBMIT_SHARE = 0.02


def run_demo(
    out_dir: str | os.PathLike[str] = "demo-out",
    *,
    n_tasks: int = 3000,
    progress: bool = True,
    seed: int = 0,
    watch_seconds: float = 8.0,
    clock_speed: float = DEMO_CLOCK_SPEED,
    stream: IO[str] | None = None,
) -> dict[str, Any]:
    """Run the whole pipeline on a simulated batch; return the paths and the summary.

    Parameters
    ----------
    out_dir : folder for ``task_ids.txt``, ``store.sqlite``, ``tasks.parquet``, ``videos/``
        and ``report.html`` (created; a store left by an earlier run is reused, so the
        second run only re-polls what was still pending).
    n_tasks : tasks in the batch.
    progress : progress bars (``tqdm.auto``).
    seed : the simulator's corpus seed (same seed, same tasks).
    watch_seconds : real seconds spent watching the tasks still generating (0: skip).
    clock_speed : simulated seconds per real second.
    stream : where the summary goes (default ``sys.stdout``: it is the command's output).

    Returns
    -------
    dict with ``out_dir``, ``ids``, ``store``, ``parquet``, ``report`` (paths),
    ``n_tasks``, ``counts`` (status → tasks, ``"unread"`` for fetch errors),
    ``generating_first`` (still generating at the first fetch), ``latency`` (a
    :func:`~veo_notebook.latency_summary` by model), ``failures`` (category → count),
    ``archive`` (:func:`~veo_notebook.archive_videos`' rows), ``problems``
    (:func:`~veo_notebook.delivery_check`), ``seconds`` (wall time) and ``text`` (the
    summary printed).

    >>> run_demo("out", n_tasks=300, progress=False)["counts"]["success"] > 0  # doctest: +SKIP
    True
    """
    from . import simulator
    from .analysis import classify_errors, latency_summary
    from .archive import archive_videos, delivery_check
    from .client import Client
    from .export import atomic_path, to_parquet
    from .fetch import fetch_records, watch
    from .report import report

    t0 = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "ids": out / "task_ids.txt",
        "store": out / "store.sqlite",
        "parquet": out / "tasks.parquet",
        "report": out / "report.html",
        "videos": out / "videos",
    }
    key = secrets.token_urlsafe(24)  # this run's simulator only; never printed
    sim = simulator.Simulator(
        key,
        seed=seed,
        n_tasks=n_tasks,
        clock_speed=clock_speed,
        span_days=DEMO_SPAN_DAYS,
        pending_share=DEMO_PENDING_SHARE,
        resubmit_share=DEMO_RESUBMIT_SHARE,
    )
    with sim, Client(key, base_url=sim.base_url) as client:
        ids = sim.task_ids()
        with atomic_path(paths["ids"]) as tmp:
            tmp.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        log.info("demo: %d tasks on %s", len(ids), sim.base_url)
        df = fetch_records(ids, client=client, store=paths["store"], progress=progress)
        pending = df.loc[df["status"] == "generating", "task_id"].tolist()
        if pending and watch_seconds > 0:
            watch(
                pending,
                client=client,
                store=paths["store"],
                timeout=watch_seconds * clock_speed,
                progress=progress,
                speed=clock_speed,
            )
        df = fetch_records(ids, store=paths["store"], refresh="none", progress=False)
        archive = archive_videos(df, paths["videos"], store=paths["store"], progress=progress)
    to_parquet(df, paths["parquet"])
    title = f"veo-notebook demo: {len(df):,} simulated tasks"
    report(df, paths["report"], title=title, archive=archive)
    problems = delivery_check(df, archive)

    counts = _status_counts(df)
    latency = latency_summary(df, by="model", percentiles=(0.5, 0.9, 0.99))
    failures = classify_errors(df).value_counts().loc[lambda s: s > 0]
    result: dict[str, Any] = {
        "out_dir": out,
        **paths,
        "n_tasks": len(df),
        "counts": counts,
        "generating_first": len(pending),
        "latency": latency,
        "failures": {str(k): int(v) for k, v in failures.items()},
        "archive": archive,
        "problems": problems,
    }
    result["seconds"] = time.monotonic() - t0
    result["text"] = _summary_text(result)
    (stream or sys.stdout).write(result["text"])
    return result


def _status_counts(df: pd.DataFrame) -> dict[str, int]:
    """Tasks per status in the schema's order, then ``unread`` (a fetch error, e.g. 422)."""
    counts = df["status"].value_counts(dropna=True)
    out = {str(k): int(v) for k, v in counts.items() if v}
    unread = int(df["status"].isna().sum())
    if unread:
        out["unread"] = unread
    return out


def _summary_text(r: dict[str, Any]) -> str:
    """The demo's printed summary (plain text, fixed-width tables)."""
    lines = [
        f"veo-notebook demo: {r['n_tasks']:,} tasks over {DEMO_SPAN_DAYS:.0f} simulated days "
        f"(kie.ai simulator on loopback), {r['seconds']:.1f} s",
        "",
        "tasks by status",
    ]
    total = max(r["n_tasks"], 1)
    for status, n in r["counts"].items():
        note = "  (older than 14 days: the API answers 422)" if status == "unread" else ""
        lines.append(f"  {status:<18} {n:>6,}  {n / total:6.1%}{note}")
    lines.append(
        f"  still generating at the first fetch: {r['generating_first']:,}; "
        f"after watching: {r['counts'].get('generating', 0):,}"
    )
    lat = r["latency"]
    lines += ["", "latency of successful tasks by model (seconds; model NA: 1080p/4k upgrades)"]
    table = lat[["completed", "p50", "p90", "p99"]].copy()
    table.index = [("NA" if pd.isna(k) else str(k)) for k in table.index]
    table.index.name = "model"
    lines += ["  " + s for s in table.round(1).to_string().splitlines()]
    lines += ["", "top failure categories"]
    fails = r["failures"]
    n_fail = max(sum(fails.values()), 1)
    for cat, n in sorted(fails.items(), key=lambda kv: -kv[1])[:5]:
        lines.append(f"  {cat:<22} {n:>5,}  {n / n_fail:6.1%} of failures")
    lines += _archive_lines(r["archive"], r["problems"])
    lines += ["", "wrote"]
    for name in ("ids", "store", "parquet", "videos", "report"):
        lines.append(f"  {r[name]}")
    lines += [
        "",
        f"next: open {r['report']} in a browser, or the notebooks in notebooks/",
        "",
    ]
    return "\n".join(lines)


def _archive_lines(archive: pd.DataFrame, problems: pd.DataFrame) -> list[str]:
    """The summary's "videos" block: what was archived, and the delivery problems."""
    errors = archive["archive_error"]
    megabytes = float(archive["bytes"].sum()) / 1e6
    saved = int(archive["path"].notna().sum())
    lines = [
        "",
        f"videos of succeeded tasks: {len(archive):,}; archived {saved:,} ({megabytes:,.1f} MB),"
        f" with an error {int(errors.notna().sum()):,}; delivery problems:",
    ]
    for issue, n in problems["issue"].value_counts().items():
        if n:
            lines.append(f"  {issue:<28} {n:>5,} tasks")
    if not len(problems):
        lines.append("  no delivery problems")
    return lines
