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
6. :func:`~veo_notebook.report` → ``DIR/report.html``, with the callback audit and the
   "Delivery" section;
7. a short summary on stdout: counts by status, latency percentiles by model, the top
   failure categories, the callbacks, the videos and the paths written.

Part of the batch (:data:`DEMO_CALLBACK_SHARE`) is created through the simulator's
``POST /generate`` with a ``callBackUrl`` pointing at a callback receiver the demo runs
on loopback, keeping deliveries in ``DIR/callbacks.sqlite`` (made afresh each run: the
simulator makes the same task ids again); the simulator drops, duplicates,
mis-signs and contradicts some (:data:`DEMO_CALLBACK_FAULTS`), and the report's
"Callbacks" section audits them against record-info. The toolkit itself never creates
tasks on the real API (that costs credits); only the demo does, on the simulator.

The simulator's key and the webhook key are random per run and never shown.

>>> summary = run_demo("demo-out", n_tasks=500, progress=False)   # doctest: +SKIP
>>> summary["parquet"]                                             # doctest: +SKIP
PosixPath('demo-out/tasks.parquet')
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import IO, Any

import pandas as pd

from .schema import UNREAD

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
#: Share of the batch created through POST /generate with a callBackUrl (at most 60 tasks).
DEMO_CALLBACK_SHARE = 0.05
DEMO_CALLBACK_MAX = 60
#: Per-task callback faults the simulator injects in the demo.
DEMO_CALLBACK_FAULTS = {
    "dropped": 0.05,
    "duplicated": 0.1,
    "wrong_signature": 0.05,
    "disagreeing": 0.05,
}
#: Real seconds the demo waits for callbacks still due once watching is over.
DEMO_CALLBACK_WAIT_S = 3.0
#: The simulator's media defects (simulator.media.DEFECTS) in words.
_DEFECT_WORDS = {
    "720p": "720p under a 1080p record",
    "no_audio": "no audio track",
    "short": "half the duration",
    "aspect": "width and height swapped",
    "corrupt": "bytes that do not decode",
    "base_clip": "an extend without its stitched video",
}
_DEMO_PROMPTS = ("a red fox in fresh snow", "city lights from a night train", "waves at dawn")


#: What the demo needs beyond the core install (extra -> the part it runs).
DEMO_EXTRAS = {"archive": "archiving the videos", "callbacks": "the callback receiver"}
#: Log lines that the injected faults cause on purpose: counted and said, not shown as warnings.
_EXPECTED_LOGS = {
    "refused": "callback refused (401): forged X-Webhook-Signature",
    "media_off": "media off (GET /media/",
}


class _Expected(logging.Filter):
    """Swallows the log records the injected faults cause on purpose, and counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = dict.fromkeys(_EXPECTED_LOGS, 0)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        for name, start in _EXPECTED_LOGS.items():
            if text.startswith(start):
                self.counts[name] += 1
                return False
        return True


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

    Without the ``callbacks`` or ``archive`` extra (:data:`DEMO_EXTRAS`) the demo runs
    the core part and says in one line what it skipped and the command that installs it.

    Returns
    -------
    dict with ``out_dir``, ``ids``, ``store``, ``callbacks_store``, ``parquet``, ``report`` (paths),
    ``n_tasks``, ``counts`` (status → tasks, ``"unread"`` for fetch errors),
    ``callbacks`` (tasks, deliveries, duplicates, received, terminal_without, disagree,
    refused; None when skipped), ``generating_first`` (still generating at the first
    fetch), ``latency`` (a :func:`~veo_notebook.latency_summary` by model), ``failures``
    (category → count), ``archive`` (:func:`~veo_notebook.archive_videos`' rows; None when
    skipped), ``problems`` (:func:`~veo_notebook.delivery_check`), ``skipped`` (extra →
    the part not run), ``seconds`` (wall time) and ``text`` (all it printed: what it
    does and the faults it injects, then the summary).

    >>> run_demo("out", n_tasks=300, progress=False)["counts"]["success"] > 0  # doctest: +SKIP
    True
    """
    from . import extras as _extras

    t0 = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "ids": out / "task_ids.txt",
        "store": out / "store.sqlite",
        "parquet": out / "tasks.parquet",
        "report": out / "report.html",
        "callbacks_store": out / "callbacks.sqlite",
        "videos": out / "videos",
    }
    for stale in out.glob("callbacks.sqlite*"):  # the simulator re-makes the same task ids:
        stale.unlink()  # an earlier run's deliveries would read as duplicates
    skipped = {x: part for x, part in DEMO_EXTRAS.items() if not _extras.available(x)}
    n_hooked = (
        0 if "callbacks" in skipped else min(DEMO_CALLBACK_MAX, int(n_tasks * DEMO_CALLBACK_SHARE))
    )
    write = (stream or sys.stdout).write
    intro = _intro_text(n_tasks, n_hooked, skipped)
    write(intro)
    expected = _Expected()
    loggers = [logging.getLogger(n) for n in ("veo_notebook.callbacks", "veo_notebook.simulator")]
    for lg in loggers:
        lg.addFilter(expected)
    try:
        got = _pipeline(
            paths, n_tasks, n_hooked, seed, clock_speed, watch_seconds, progress, skipped
        )
    finally:
        for lg in loggers:
            lg.removeFilter(expected)
    result = _finish(got, paths, n_hooked, skipped)
    if result["callbacks"] is not None:
        result["callbacks"]["refused"] = expected.counts["refused"]
    result["seconds"] = time.monotonic() - t0
    summary = _summary_text(result)
    write(summary)
    result["text"] = intro + summary
    return result


def _pipeline(
    paths: dict[str, Path],
    n_tasks: int,
    n_hooked: int,
    seed: int,
    clock_speed: float,
    watch_seconds: float,
    progress: bool,
    skipped: dict[str, str],
) -> dict[str, Any]:
    """Simulator → ids file → fetch → watch → (callbacks) → (archive): what was gathered."""
    from . import callbacks, simulator
    from .client import Client
    from .export import atomic_path
    from .fetch import fetch_records, watch
    from .store import Store

    key = secrets.token_urlsafe(24)  # this run's simulator only; never printed
    hook_key = secrets.token_urlsafe(24)  # this run's webhook key; never printed
    sim = simulator.Simulator(
        key,
        seed=seed,
        n_tasks=n_tasks - n_hooked,
        clock_speed=clock_speed,
        span_days=DEMO_SPAN_DAYS,
        pending_share=DEMO_PENDING_SHARE,
        resubmit_share=DEMO_RESUBMIT_SHARE,
        callback_key=hook_key,
        callback_faults=DEMO_CALLBACK_FAULTS,
    )
    got: dict[str, Any] = {"hooks": None, "hook_url": None, "archive": None}
    with contextlib.ExitStack() as stack:
        stack.enter_context(sim)
        client = stack.enter_context(Client(key, base_url=sim.base_url))
        store = stack.enter_context(Store(paths["store"]))
        hooked: list[str] = []
        if "callbacks" not in skipped:
            hook_store = stack.enter_context(Store(paths["callbacks_store"]))
            got["hook_url"] = stack.enter_context(
                callbacks.serve(hook_store, key=hook_key, clock=sim.now)
            )
            hooked = [_hooked_task(sim.base_url, key, got["hook_url"], i) for i in range(n_hooked)]
        ids = sim.task_ids("all")
        ids = [*ids[: len(ids) - n_hooked], *hooked]
        with atomic_path(paths["ids"]) as tmp:
            tmp.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        log.info("demo: %d tasks on %s", len(ids), sim.base_url)
        df = fetch_records(ids, client=client, store=store, progress=progress)
        pending = df.loc[df["status"] == "generating", "task_id"].tolist()
        if pending and watch_seconds > 0:
            timeout = watch_seconds * clock_speed
            watch(
                pending,
                client=client,
                store=store,
                timeout=timeout,
                progress=progress,
                speed=clock_speed,
            )
        got["df"] = fetch_records(ids, store=store, refresh="none", progress=False)
        got["generating_first"] = len(pending)
        if "callbacks" not in skipped:
            sim.callbacks.wait_idle(DEMO_CALLBACK_WAIT_S)
            got["hooks"] = callbacks.read_callbacks(hook_store)
        if "archive" not in skipped:
            from .archive import archive_videos

            videos = paths["videos"]
            got["archive"] = archive_videos(got["df"], videos, store=store, progress=progress)
    return got


def _hooked_task(base_url: str, key: str, hook_url: str, i: int) -> str:
    """A task created through POST /generate with a callBackUrl (no model: kie.ai's default)."""
    from .simulator.callbacks import create_task

    body = {"prompt": f"{_DEMO_PROMPTS[i % 3]}, take {i}", "callBackUrl": hook_url}
    return create_task(base_url, key, body)


def _finish(
    got: dict[str, Any], paths: dict[str, Path], n_hooked: int, skipped: dict[str, str]
) -> dict[str, Any]:
    """Parquet, report, audit and the figures of the summary."""
    from . import callbacks, fmt
    from .analysis import classify_errors, latency_summary
    from .export import to_parquet
    from .reporting import report

    df, hooks, archive = got["df"], got["hooks"], got["archive"]
    to_parquet(df, paths["parquet"])
    title = f"veo-notebook demo: {len(df):,} simulated tasks"
    hook_url = got["hook_url"]
    report(
        df, paths["report"], title=title, callbacks=hooks, callback_url=hook_url, archive=archive
    )
    problems = None
    if archive is not None:
        from .archive import delivery_check

        problems = delivery_check(df, archive)
    cb = None
    if hooks is not None:
        audit = callbacks.callback_audit(df, hooks, expect=got["hook_url"])
        cb = {
            "tasks": n_hooked,
            "deliveries": len(hooks),
            "duplicates": int(hooks["duplicate"].sum()),
            "received": int(audit["callback_received"].sum()),
            "terminal_without": int((audit["disagreement"] == "no callback").sum()),
            "disagree": int((audit["agrees"] == False).sum()),  # noqa: E712
            "refused": 0,
        }
    latency = latency_summary(fmt.labelled(df, "model"), by="model", percentiles=(0.5, 0.9, 0.99))
    failures = classify_errors(df).value_counts().loc[lambda s: s > 0]
    return {
        "out_dir": paths["ids"].parent,
        **paths,
        "n_tasks": len(df),
        "counts": _status_counts(df),
        "generating_first": got["generating_first"],
        "latency": latency,
        "failures": {str(k): int(v) for k, v in failures.items()},
        "callbacks": cb,
        "archive": archive,
        "problems": problems,
        "skipped": skipped,
    }


def _intro_text(n_tasks: int, n_hooked: int, skipped: dict[str, str]) -> str:
    """What the demo does and which faults it injects on purpose, said before they happen."""
    from .simulator.media import DEFECTS

    lines = [
        f"veo-notebook demo: {n_tasks:,} simulated tasks over {DEMO_SPAN_DAYS:.0f} days, "
        "fetched through the real client from a kie.ai simulator on loopback.",
        "Faults injected on purpose (the summary counts each):",
        "  - records older than 14 days: the API answers 422 (counted as unread)",
        "  - some tasks fail (content policy, language, internal errors) and some re-submit "
        "a request (duplicates)",
    ]
    if n_hooked:
        shares = ", ".join(
            f"{k.replace('_', ' ')} {v:.0%}" for k, v in DEMO_CALLBACK_FAULTS.items()
        )
        lines.append(
            f"  - callbacks of the {n_hooked} tasks created with a callBackUrl: {shares}; the "
            "receiver refuses the forged ones (401), as it should"
        )
    if "archive" not in skipped:
        defects = ", ".join(_DEFECT_WORDS.get(d, d) for d in DEFECTS)
        lines.append(f"  - video files that are not what their record says: {defects}")
    return "\n".join(lines) + "\n\n"


def _status_counts(df: pd.DataFrame) -> dict[str, int]:
    """Tasks per status in the schema's order, then ``unread`` (a fetch error, e.g. 422)."""
    counts = df["status"].value_counts(dropna=True)
    out = {str(k): int(v) for k, v in counts.items() if v}
    unread = int(df["status"].isna().sum())
    if unread:
        out[UNREAD] = unread
    return out


def _summary_text(r: dict[str, Any]) -> str:
    """The demo's printed summary (plain text, fixed-width tables, one format per column)."""
    lines = [
        f"summary: {r['n_tasks']:,} tasks over {DEMO_SPAN_DAYS:.0f} simulated days "
        f"(kie.ai simulator on loopback), {r['seconds']:.1f} s",
        "",
        "tasks by status",
    ]
    total = max(r["n_tasks"], 1)
    for status, n in r["counts"].items():
        note = "  (older than 14 days: the API answers 422)" if status == UNREAD else ""
        lines.append(f"  {status:<18} {n:>6,}  {n / total:6.1%}{note}")
    lines.append(
        f"  still generating at the first fetch: {r['generating_first']:,}; "
        f"after watching: {r['counts'].get('generating', 0):,}"
    )
    lines += [
        "",
        "latency of successful tasks by model (seconds, creation → completion, queueing "
        "included; upgrade task: a 1080p/4k upgrade, which has no model; veo3_fast includes "
        "requests that named no model, kie.ai's default)",
    ]
    lines += ["  " + s for s in _latency_table(r["latency"]).splitlines()]
    lines += ["", "top failure categories"]
    fails = r["failures"]
    n_fail = max(sum(fails.values()), 1)
    for cat, n in sorted(fails.items(), key=lambda kv: -kv[1])[:5]:
        lines.append(f"  {cat:<22} {n:>5,}  {n / n_fail:6.1%} of failures")
    cb = r["callbacks"]
    if cb is not None:
        lines += [
            "",
            f"callbacks ({cb['tasks']:,} tasks created with a callBackUrl; faults injected)",
            f"  {cb['deliveries']:,} deliveries kept ({cb['duplicates']:,} duplicates) for "
            f"{cb['received']:,} tasks; {cb['refused']:,} forged deliveries refused (401); "
            f"{cb['terminal_without']:,} finished tasks got none; {cb['disagree']:,} disagree "
            "with record-info (the report's Callbacks section)",
        ]
    if r["archive"] is not None:
        lines += _archive_lines(r["archive"], r["problems"])
    lines += ["", "wrote"]
    names = ["ids", "store", "callbacks_store", "parquet", "videos", "report"]
    if "callbacks" in r["skipped"]:
        names.remove("callbacks_store")
    if "archive" in r["skipped"]:
        names.remove("videos")
    lines += [f"  {r[name]}" for name in names]
    if r["skipped"]:
        from . import extras as _extras

        lines += [
            "",
            f"skipped: {' and '.join(r['skipped'].values())}; to run them: "
            f"{_extras.install_command(','.join(r['skipped']))}",
        ]
    lines += [
        "",
        f"next: open {r['report']} in a browser, or the notebooks in notebooks/",
        "",
    ]
    return "\n".join(lines)


def _latency_table(lat: pd.DataFrame) -> str:
    """Tasks completed (whole numbers) and percentiles (seconds, one decimal) by model."""
    from . import fmt

    shown = pd.DataFrame(
        {"completed": [f"{int(v):,}" for v in lat["completed"]]}
        | {p: [fmt.num(v, "{:,.1f}") for v in lat[p]] for p in ("p50", "p90", "p99")},
        index=pd.Index([fmt.label(k) for k in lat.index], name="model"),
    )
    return shown.to_string(justify="right")


def _archive_lines(archive: pd.DataFrame, problems: pd.DataFrame) -> list[str]:
    """The summary's "videos" block: what was archived, what failed, the delivery problems."""
    errors = archive["archive_error"]
    ok = errors.isna().to_numpy(dtype=bool)
    megabytes = float(archive.loc[ok, "bytes"].sum()) / 1e6
    failed = errors[~ok].astype(str).value_counts()
    why = ", ".join(f"{n:,} {reason}" for reason, n in failed.items())
    lines = [
        "",
        f"videos of the {len(archive):,} succeeded tasks: archived {int(ok.sum()):,} files "
        f"({megabytes:,.1f} MB); {int((~ok).sum()):,} failed" + (f": {why}" if why else ""),
        "delivery problems (files that are not what the record says):",
    ]
    for issue, n in problems["issue"].value_counts().items():
        if n:
            lines.append(f"  {issue:<28} {n:>5,} tasks")
    if not len(problems):
        lines.append("  none")
    return lines
