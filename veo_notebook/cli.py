"""The ``veo-notebook`` command: thin sub-commands over the library's functions.

::

    veo-notebook demo     [--out DIR]                      the main job, on the simulator
    veo-notebook fetch    IDS [--store PATH] [--base-url URL] [--out FILE.parquet|.csv]
    veo-notebook watch    IDS [--store PATH] [--base-url URL] [--timeout S]
    veo-notebook export   --store PATH --out PATH [--partition-by COL]
    veo-notebook report   (--store PATH | --parquet PATH) --out report.html|.md
    veo-notebook simulate [--port N] [--api-key KEY] [...]

The API key is read from ``KIE_API_KEY`` only (never a flag: flags end up in shell
history and process lists). The base URL defaults to ``https://api.kie.ai``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import VeoError

log = logging.getLogger("veo_notebook")

DEFAULT_BASE_URL = "https://api.kie.ai"


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "ids", help="file of ids (one per line), a CSV with a taskId/task_id column, or - for stdin"
    )
    p.add_argument(
        "--store", type=Path, default=None, help="SQLite store to read and write (default: none)"
    )
    p.add_argument(
        "--base-url",
        default=os.environ.get("KIE_BASE_URL", DEFAULT_BASE_URL),
        help="API base URL (default: $KIE_BASE_URL or %(default)s)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``veo-notebook`` (every sub-command)."""
    parser = argparse.ArgumentParser(prog="veo-notebook", description=__doc__.split("\n")[0])
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="the main job: simulator → fetch → store → Parquet → report")
    p.add_argument(
        "--out", type=Path, default=Path("demo-out"), help="output folder (default: %(default)s)"
    )
    p.add_argument(
        "--n-tasks", type=int, default=3000, help="tasks in the demo batch (default: %(default)s)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("fetch", help="fetch the records of a list of task ids")
    _add_source(p)
    p.add_argument(
        "--out", type=Path, default=None, help="write the frame to FILE.parquet or FILE.csv"
    )
    p.add_argument("--refresh", choices=["pending", "all", "none"], default="pending")

    p = sub.add_parser("watch", help="poll until every task is terminal")
    _add_source(p)
    p.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="give up after S seconds (default: %(default)s)",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="write the final frame to FILE.parquet or FILE.csv"
    )

    p = sub.add_parser("export", help="write the store as Parquet (one file or a hive dataset)")
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--partition-by", default=None, help="e.g. create_date: a hive dataset partitioned by day"
    )

    p = sub.add_parser("report", help="a self-contained HTML (or Markdown) report")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--store", type=Path)
    src.add_argument("--parquet", type=Path)
    p.add_argument("--out", type=Path, required=True, help="report.html or report.md")
    p.add_argument("--title", default="Veo task report", help="title of the report")
    p.add_argument("--no-figures", action="store_true", help="tables only (quicker)")

    p = sub.add_parser("simulate", help="run the kie.ai-compatible simulator in the foreground")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument(
        "--api-key", default=None, help="the one key accepted (default: simulator.DEFAULT_API_KEY)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-tasks", type=int, default=5000)
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    p.add_argument("--rate-limit", type=float, default=None, help="requests/s before HTTP 429")
    p.add_argument(
        "--clock-speed", type=float, default=1.0, help="simulated seconds per real second"
    )
    p.add_argument("--time-format", choices=["iso", "plain", "epoch_ms", "mixed"], default="plain")
    p.add_argument(
        "--fault-rate", type=float, default=0.0, help="probability of a random fault per request"
    )
    return parser


def _write_frame(df, out: Path) -> None:  # type: ignore[no-untyped-def]
    from .export import to_csv, to_parquet

    if out.suffix == ".csv":
        to_csv(df, out)
    else:
        to_parquet(df, out)
    log.info("wrote %d rows to %s", len(df), out)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, n_tasks=args.n_tasks, progress=not args.no_progress)
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from .client import Client
    from .fetch import fetch_records, read_task_ids

    ids = read_task_ids(sys.stdin if args.ids == "-" else Path(args.ids))
    client = Client(base_url=args.base_url)
    df = fetch_records(
        ids, client=client, store=args.store, refresh=args.refresh, progress=not args.no_progress
    )
    if args.out:
        _write_frame(df, args.out)
    _summarise(df)
    return 0


def _cmd_watch(args: argparse.Namespace) -> int:
    from .client import Client
    from .fetch import read_task_ids, watch

    ids = read_task_ids(sys.stdin if args.ids == "-" else Path(args.ids))
    client = Client(base_url=args.base_url)
    df = watch(
        ids, client=client, store=args.store, timeout=args.timeout, progress=not args.no_progress
    )
    if args.out:
        _write_frame(df, args.out)
    _summarise(df)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import to_parquet
    from .frame import from_store
    from .store import Store

    with Store(args.store) as store:
        df = from_store(store)
    to_parquet(df, args.out, partition_by=args.partition_by)
    sys.stdout.write(f"wrote {len(df)} rows to {args.out}\n")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import report

    if args.store is not None:
        from .frame import from_store
        from .store import Store

        with Store(args.store) as store:
            df = from_store(store)
    else:
        from .export import read_parquet

        df = read_parquet(args.parquet)
    path = report(df, args.out, title=args.title, figures=not args.no_figures)
    sys.stdout.write(f"wrote {path}\n")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from . import simulator

    simulator.serve_forever(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        seed=args.seed,
        n_tasks=args.n_tasks,
        latency=args.latency,
        rate_limit=args.rate_limit,
        clock_speed=args.clock_speed,
        time_format=args.time_format,
        fault_rate=args.fault_rate,
    )
    return 0


def _summarise(df) -> None:  # type: ignore[no-untyped-def]
    counts = df["status"].value_counts(dropna=False).to_dict() if "status" in df else {}
    errors = int(df["fetch_error"].notna().sum()) if "fetch_error" in df else 0
    names = {k: k if isinstance(k, str) else "unread" for k in counts}  # NA status: not read
    parts = ", ".join(f"{names[k]}: {v}" for k, v in counts.items() if v)
    sys.stdout.write(f"{len(df)} tasks ({parts}); {errors} could not be read\n")


_COMMANDS = {
    "demo": _cmd_demo,
    "fetch": _cmd_fetch,
    "watch": _cmd_watch,
    "export": _cmd_export,
    "report": _cmd_report,
    "simulate": _cmd_simulate,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``veo-notebook`` with ``argv``; return the exit status."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _COMMANDS[args.command](args)
    except VeoError as exc:
        sys.stderr.write(f"veo-notebook: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("veo-notebook: interrupted; everything fetched so far is in the store\n")
        return 130
