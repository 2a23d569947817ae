"""The ``veo-notebook`` command: thin sub-commands over the library's functions.

Every mistake is one line on stderr and a documented exit code (:data:`EXIT_CODES`);
``-v`` adds the traceback. ``fetch`` and ``watch`` keep every answer in a persistent
store (:func:`~veo_notebook.store.default_store_path`) unless ``--store`` names
another; whatever only reads a store refuses a path that does not exist. Outputs are
checked before the first request and written under a temporary name, then renamed.

A sub-command is one function registered with :func:`command`: its arguments are
declared by the function given as ``arguments``, and it returns an exit code::

    def _greet_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", default="you", help="whom to greet")

    @command("greet", "say hello", "Say hello (an example).",
             examples=["veo-notebook greet --name Ada"], arguments=_greet_args)
    def _greet(args: argparse.Namespace) -> int:
        print(f"hello {args.name}")
        return EXIT_OK

The API key is read from ``KIE_API_KEY`` only (never a flag: flags end up in shell
history and process lists), the webhook HMAC key of ``callbacks`` from
``KIE_WEBHOOK_HMAC_KEY`` only.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import sys
import tempfile
import textwrap
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .config import (
    DEFAULT_BASE_URL,
    ENV_BASE_URL,
    ENV_KEY,
    ENV_NOTIFY,
    ENV_STORE,
    ENV_WEBHOOK_KEY,
    REFRESH_MODES,
)
from .errors import AuthError, ConfigError, InputError, VeoError

if TYPE_CHECKING:
    import pandas as pd

    from .client import Client

__all__ = ["EXIT_CODES", "build_parser", "command", "main"]

log = logging.getLogger("veo_notebook")

PROG = "veo-notebook"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130
#: What each exit status means (printed by ``--help``; docs/cli.md has the same table).
EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_FAILED: "failed (one line on stderr; -v shows the traceback); archive: some videos "
    "could not be archived (each is listed); check: a rule breached (one line each)",
    EXIT_USAGE: "usage, input or configuration error: a bad option, a missing file or store, "
    "an output with an unknown extension, no key, a refused key, a base URL that is not kie.ai",
    EXIT_TIMEOUT: "watch timed out with tasks still generating (it says how many)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); every answer received is in the store",
}
#: What a user fixes in the command (exit 2) rather than what failed while it ran (exit 1).
_USAGE_ERRORS = (InputError, ConfigError, AuthError)

_FRAME_SUFFIXES = (".parquet", ".csv")
#: the partition of a store's own frame dataset (one folder a UTC creation day)
_BY_DAY = "create_date"
_CLOSE_ENOUGH = 0.6  # difflib ratio of an unknown option's name to a known one (output ~ out)
_REPORT_SUFFIXES = (".html", ".md")


# ---------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class _Command:
    name: str
    summary: str
    description: str
    examples: tuple[str, ...]
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


_COMMANDS: dict[str, _Command] = {}


def command(
    name: str,
    summary: str,
    description: str,
    *,
    examples: Sequence[str],
    arguments: Callable[[argparse.ArgumentParser], None],
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register ``veo-notebook NAME``: the decorated function runs it and returns the exit code.

    ``summary`` is its line in the top help, ``description`` and ``examples`` its own
    ``--help``; ``arguments(parser)`` declares its options (each with ``help=``).
    """

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        _COMMANDS[name] = _Command(name, summary, description, tuple(examples), arguments, run)
        return run

    return register


class _Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line (and exit 2)."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _TopParser(_Parser):
    """The top parser: its description names the default store, found only when asked; an
    unknown option gets the nearest of its sub-command's ("did you mean --out?")."""

    commands: dict[str, argparse.ArgumentParser]

    def format_help(self) -> str:
        self.description = _top_description()
        return super().format_help()

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            sub = getattr(self, "commands", {}).get(getattr(ns, "command", None), self)
            self.error(f"unrecognized arguments: {' '.join(extras)}{_did_you_mean(extras, sub)}")
        return ns


def _did_you_mean(extras: Sequence[str], parser: argparse.ArgumentParser) -> str:
    """``"; did you mean --out?"`` for the first unknown option close to a known one."""
    import difflib

    known = [o[2:] for o in parser._option_string_actions if o.startswith("--")]
    for word in extras:
        if word.startswith("--"):
            name = word[2:].split("=", 1)[0]
            close = difflib.get_close_matches(name, known, n=1, cutoff=_CLOSE_ENOUGH)
            if close:
                return f"; did you mean --{close[0]}?"
    return ""


class _Help(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


def _verbose(p: argparse.ArgumentParser, dest: str, default: Any) -> None:
    p.add_argument(
        "-v",
        "--verbose",
        dest=dest,
        action="count",
        default=default,
        help="more logging, and the traceback of an error (-vv: debug); before or after "
        "the sub-command",
    )


def _examples(examples: Sequence[str]) -> str:
    return "examples:\n" + "".join(f"  {e}\n" for e in examples)


def _top_description() -> str:
    from .store import default_store_path

    codes = "".join(
        textwrap.fill(v, 88, initial_indent=f"  {k:<5}", subsequent_indent=" " * 7) + "\n"
        for k, v in EXIT_CODES.items()
    )
    return (
        "kie.ai Veo 3.1 task records: fetched into a local store, read as a typed pandas\n"
        "frame, written as Parquet/CSV and an HTML report; a kie.ai simulator for trying it.\n"
        "\n"
        "environment:\n"
        f"  {ENV_KEY}   the API key (fetch, watch); never a flag, never printed\n"
        f"  {ENV_BASE_URL}  the API base URL (default {DEFAULT_BASE_URL})\n"
        f"  {ENV_STORE}     the default store instead of the one below\n"
        f"  {ENV_WEBHOOK_KEY}  the webhook key callbacks verifies signatures with\n"
        f"  {ENV_NOTIFY}  the webhook check tells of a change (a secret: shown masked)\n"
        "\n"
        f"default store: {default_store_path()}\n"
        "  fetch and watch keep every answer there unless --store PATH is given, so the\n"
        "  history outlives the 14 days the API keeps records; export, report and\n"
        "  store info read it. Reading never creates a store.\n"
        "\n"
        f"exit codes:\n{codes}\n"
        + _examples(
            [
                f"{PROG} demo --out demo-out",
                f"{ENV_KEY}=... {PROG} fetch task_ids.txt --out tasks.parquet",
            ]
        )
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``veo-notebook`` (every registered sub-command)."""
    parser = _TopParser(prog=PROG, formatter_class=_Help)
    parser.add_argument(
        "--version", action="version", version=f"{PROG} {__version__}", help="print the version"
    )
    _verbose(parser, "verbose", 0)
    # sub-commands are plain _Parser: a _TopParser's help would replace their description
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    parser.commands = {}
    for c in _COMMANDS.values():
        p = sub.add_parser(
            c.name,
            help=c.summary,
            description=c.description,
            epilog=_examples(c.examples),
            formatter_class=_Help,
        )
        c.arguments(p)
        _verbose(p, "verbose_sub", argparse.SUPPRESS)
        parser.commands[c.name] = p
    return parser


# ---------------------------------------------------------------------------- arguments
class _Imported(Sequence[str]):
    """Choices defined by a heavier module, imported only when argparse looks at them (the
    option given, or its command's help): the parser itself loads no numpy or pandas."""

    def __init__(self, module: str, name: str) -> None:
        self._where = module, name

    @functools.cached_property
    def _values(self) -> tuple[str, ...]:
        module, name = self._where
        return tuple(getattr(importlib.import_module(f".{module}", __package__), name))

    def __getitem__(self, i: Any) -> Any:
        return self._values[i]

    def __len__(self) -> int:
        return len(self._values)


def _number(kind: type, low: float, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}, got {text!r}") from None
        if not value >= low:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


_count = _number(int, 1, "must be a whole number of at least 1")
_whole = _number(int, 0, "must be a whole number of at least 0")
_seconds = _number(float, 0.0, "must be a number of seconds, at least 0")


def _bounded(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (the message says both)."""
    what = f"must be a whole number from {low} to {high}"
    whole = _number(int, low, what)

    def parse(text: str) -> int:
        value = int(whole(text))
        if value > high:
            raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


def _positive(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return float(value)


def _port(text: str) -> int:
    value = _whole(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, got {text!r}")
    return int(value)


def _probability(text: str) -> float:
    value = _seconds(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a probability from 0 to 1, got {text!r}")
    return float(value)


def _store_option(p: argparse._ActionsContainer, verb: str) -> None:
    p.add_argument(
        "--store",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"the SQLite store to {verb} (default: the default store, see {PROG} store path)",
    )


def _source_args(p: argparse.ArgumentParser, *, optional: bool = False) -> None:
    p.add_argument(
        "ids",
        metavar="IDS",
        nargs="?" if optional else None,
        help="a file of task ids (one per line; letters, digits, _ - . only), a CSV, Parquet or "
        "Arrow file with a taskId/task_id/TaskID column (any case), or - for stdin",
    )
    _store_option(p, "read and write")
    p.add_argument(
        "--base-url",
        default=None,  # the client reads $KIE_BASE_URL
        metavar="URL",
        help=f"the API base URL (default: ${ENV_BASE_URL} or {DEFAULT_BASE_URL}; "
        "plain http only on loopback)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# ---------------------------------------------------------------------------- checks
def _check_out(out: Path, suffixes: Sequence[str], *, folder: bool = False) -> Path:
    """Refuse an output that cannot be written, before any work (InputError: exit 2)."""
    if folder and out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; this writes a folder there")
    if not folder and out.is_dir():
        raise InputError(f"--out {out} is a folder; give a file name ending in {suffixes[0]}")
    if not folder and out.suffix.lower() not in suffixes:
        raise InputError(
            f"--out {out}: unknown extension {out.suffix or '(none)'!r}; "
            f"use {' or '.join(suffixes)}"
        )
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"--out {out}: {parent} is a file, not a folder")
    try:  # a real probe: permissions, read-only mounts, /proc ... (removed on close)
        with tempfile.TemporaryFile(dir=parent, prefix=".veo-notebook-probe-"):
            pass
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write in {parent} ({exc.strerror or exc})") from exc
    return out


def _store_to_write(args: argparse.Namespace) -> Path:
    """The store a fetch writes: ``--store`` (its folder must exist) or the default one."""
    from .store import default_store_path

    if args.store is not None:
        path = Path(args.store)
        if not path.absolute().parent.is_dir():
            raise InputError(f"--store {path}: the folder {path.absolute().parent} does not exist")
    else:
        path = default_store_path()
        path.parent.mkdir(parents=True, exist_ok=True)
    args.store_used = path  # where an interrupt says the answers are
    return path


def _store_to_read(args: argparse.Namespace) -> Path:
    from .store import default_store_path

    return Path(args.store) if args.store is not None else default_store_path()


def _ids(args: argparse.Namespace) -> list[str]:
    from .fetch import read_ids

    if args.ids is None:  # fetch --from-callbacks alone
        return []
    got = read_ids("-" if args.ids == "-" else Path(args.ids))
    if got.column is not None:  # said with the result, so that an error stays one line
        args.ids_note = f"task ids from column {got.column!r} of {got.source}"
    return got.ids


def _client(args: argparse.Namespace) -> Client:
    from .client import Client, base_url_problem
    from .config import base_url

    url = args.base_url if args.base_url is not None else base_url()
    problem = base_url_problem(url)
    if problem is not None:  # named as the user gave it: the flag, or the variable
        raise ConfigError(
            f"{'--base-url' if args.base_url is not None else ENV_BASE_URL} {problem}"
        )
    if not os.environ.get(ENV_KEY, "").strip():
        raise ConfigError(
            f"no API key: set {ENV_KEY} (fetch and watch need it; fetch --refresh none does not)"
        )
    return Client(base_url=args.base_url)


def _note(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")


def _write_frame(df: pd.DataFrame, out: Path) -> None:
    from .export import to_csv, to_parquet

    (to_csv if out.suffix.lower() == ".csv" else to_parquet)(df, out)


def _summarise(df: pd.DataFrame, args: argparse.Namespace, store: Path | None = None) -> None:
    from .schema import UNREAD

    if getattr(args, "ids_note", None):
        _note(args.ids_note)
    counts = df["status"].value_counts(dropna=False).to_dict() if "status" in df else {}
    errors = int(df["fetch_error"].notna().sum()) if "fetch_error" in df else 0
    names = {k: k if isinstance(k, str) else UNREAD for k in counts}  # NA status: not read
    parts = ", ".join(f"{names[k]}: {v}" for k, v in counts.items() if v)
    sys.stdout.write(f"{len(df)} tasks ({parts}); {errors} could not be read\n")
    if store is not None:
        sys.stdout.write(f"store: {store}\n")
    if getattr(args, "out", None) is not None:
        sys.stdout.write(f"wrote {len(df)} rows to {args.out}\n")


# ---------------------------------------------------------------------------- commands
def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        type=Path,
        default=Path("demo-out"),
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    p.add_argument(
        "--n-tasks",
        type=_count,
        default=3000,
        metavar="N",
        help="tasks in the demo batch (default: %(default)s)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


@command(
    "demo",
    "the main job on the embedded simulator: fetch → store → Parquet → report",
    "Start a seeded kie.ai simulator on loopback, fetch a realistic batch through the real\n"
    "client into DIR/store.sqlite, watch the tasks still generating, write DIR/tasks.parquet\n"
    "and DIR/report.html, and print a summary. Needs no key and no network.",
    examples=[f"{PROG} demo --out demo-out", f"{PROG} demo --n-tasks 500 --no-progress"],
    arguments=_demo_args,
)
def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    _check_out(args.out, (), folder=True)
    args.store_used = args.out / "store.sqlite"
    run_demo(args.out, n_tasks=args.n_tasks, progress=not args.no_progress)
    return EXIT_OK


def _fetch_args(p: argparse.ArgumentParser) -> None:
    _source_args(p, optional=True)
    p.add_argument(
        "--from-callbacks",
        nargs="?",
        const="",
        default=None,
        metavar="SOURCE",
        help="also fetch every task id the callback receiver has seen: its store (default: "
        "--store, or the default store) or a JSONL file of callback bodies",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the frame to FILE.parquet or FILE.csv",
    )
    p.add_argument(
        "--refresh",
        choices=list(REFRESH_MODES),
        default="pending",
        help="; ".join(f"{k}: {v}" for k, v in REFRESH_MODES.items()) + " (default: pending)",
    )
    p.add_argument(
        "--with-parents",
        action="store_true",
        help="also fetch the parents the records name (an extend's, an upgrade's), each "
        "once: whole task families (see veo.families)",
    )


@command(
    "fetch",
    "fetch the records of a list of task ids into the store",
    "Query GET /api/v1/veo/record-info for every id (concurrently, paced, retried), keep\n"
    "each answer in the store as it arrives, and print counts by status. A second run asks\n"
    f"only for the tasks that were not terminal. Needs {ENV_KEY} (not with --refresh none).",
    examples=[
        f"{ENV_KEY}=... {PROG} fetch task_ids.txt --out tasks.parquet",
        f"{PROG} fetch tasks.csv --store march.sqlite --refresh none --out march.csv",
        f"{ENV_KEY}=... {PROG} fetch --from-callbacks --out tasks.parquet",
    ],
    arguments=_fetch_args,
)
def _fetch(args: argparse.Namespace) -> int:
    if args.ids is None and args.from_callbacks is None:
        raise InputError("give a file of task ids (IDS), or --from-callbacks")
    if args.out is not None:
        _check_out(args.out, _FRAME_SUFFIXES)
    from .fetch import fetch_records

    hooks = args.from_callbacks
    if hooks == "":  # the receiver's store is the one fetched into
        hooks = _store_to_read(args)
    if args.refresh == "none":  # reading only: no key, and the store must exist
        ids = _ids(args)
        store = _store_to_read(args)
        df = fetch_records(
            ids,
            store=store,
            refresh="none",
            progress=False,
            from_callbacks=hooks,
            with_parents=args.with_parents,
        )
    else:
        client = _client(args)
        ids = _ids(args)
        store = _store_to_write(args)
        with client:
            df = fetch_records(
                ids,
                client=client,
                store=store,
                refresh=args.refresh,
                progress=not args.no_progress,
                from_callbacks=hooks,
                with_parents=args.with_parents,
            )
    if args.out is not None:
        _write_frame(df, args.out)
    _summarise(df, args, store)
    return EXIT_OK


def _watch_args(p: argparse.ArgumentParser) -> None:
    _source_args(p)
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=900.0,
        metavar="S",
        help="give up after S seconds (default: %(default)s; kie.ai advises 10-15 minutes); "
        "exit 3 if tasks are still generating then",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the final frame to FILE.parquet or FILE.csv",
    )


@command(
    "watch",
    "poll until every task is terminal (or the timeout)",
    "Re-query only the tasks still generating, on kie.ai's advised schedule (every 2-3 s,\n"
    "then 5-10 s, then 15-30 s), keeping every answer in the store, until all are terminal.\n"
    "At the timeout it says how many are still generating and exits 3.",
    examples=[
        f"{ENV_KEY}=... {PROG} watch task_ids.txt --timeout 600",
        f"{ENV_KEY}=... {PROG} watch - --out done.parquet < task_ids.txt",
    ],
    arguments=_watch_args,
)
def _watch(args: argparse.Namespace) -> int:
    if args.out is not None:
        _check_out(args.out, _FRAME_SUFFIXES)
    from .fetch import watch
    from .schema import Status

    client = _client(args)
    ids = _ids(args)
    store = _store_to_write(args)
    with client:
        df = watch(
            ids, client=client, store=store, timeout=args.timeout, progress=not args.no_progress
        )
    if args.out is not None:
        _write_frame(df, args.out)
    _summarise(df, args, store)
    generating = int((df["status"] == Status.GENERATING.value).sum())
    if generating:
        _note(
            f"timed out after {args.timeout:g} s with {generating} of {len(df)} tasks still "
            f"generating; run watch again to keep watching (the answers are in {store})"
        )
        return EXIT_TIMEOUT
    return EXIT_OK


def _engine_option(p: argparse.ArgumentParser, *choices: str) -> None:
    from .engine import PANDAS_MAX_ROWS

    p.add_argument(
        "--engine",
        choices=choices,
        default=None,
        help=f"who reads the history (default: pandas up to {PANDAS_MAX_ROWS:,} tasks, "
        "DuckDB above: never loaded whole); spark uses the active SparkSession "
        "(spark-submit, Databricks, SPARK_REMOTE)",
    )


def _store_engine(store: Any, engine: str | None) -> Any:
    """The engine over a store's frame dataset (brought up to date first)."""
    from .engine import resolve

    return resolve(store, engine)


def _export_args(p: argparse.ArgumentParser) -> None:
    _store_option(p, "read")
    p.add_argument(
        "--engine",
        choices=["pandas", "duckdb"],
        default=None,
        help="pandas: build the whole frame in memory first; otherwise the file is streamed "
        "from the store's frame dataset a row group at a time (never loaded whole)",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="FILE.parquet or FILE.csv; with --partition-by, a dataset folder or a URL "
        "(s3://bucket/prefix; credentials from the usual AWS_* variables)",
    )
    p.add_argument(
        "--partition-by",
        default=None,
        metavar="COL",
        help="a hive dataset partitioned by COL (e.g. create_date: one folder a day)",
    )


@command(
    "export",
    "write the store as Parquet (one file or a hive dataset) or CSV",
    "Write the store's typed frame as one Parquet or CSV file, or as a hive-partitioned\n"
    "Parquet dataset (pandas, Dask, Spark, DuckDB, Polars read it), streamed from the\n"
    "store's frame dataset a row group at a time: never loaded whole. The store must\n"
    "exist; each file appears only when complete.",
    examples=[
        f"{PROG} export --out tasks.parquet",
        f"{PROG} export --store march.sqlite --out tasks/ --partition-by create_date",
        f"{PROG} export --store march.sqlite --out s3://bucket/veo --partition-by create_date",
    ],
    arguments=_export_args,
)
def _export(args: argparse.Namespace) -> int:
    if "://" in args.out and not args.out.startswith("file://"):
        return _export_url(args)
    args.out = Path(args.out)
    if args.partition_by is not None:
        if args.out.suffix.lower() == ".csv":
            raise InputError(f"--out {args.out}: a partitioned dataset is Parquet, not CSV")
        _check_out(args.out, (), folder=True)
    else:
        _check_out(args.out, _FRAME_SUFFIXES)
    from .export import to_csv, to_parquet
    from .frame import from_store
    from .store import Store

    csv = args.out.suffix.lower() == ".csv"
    streamed = args.engine != "pandas"
    with Store(_store_to_read(args), create=False) as store:
        if streamed:  # from the store's frame dataset, a row group at a time
            from .export import export_store

            rows = export_store(store, args.out, partition_by=args.partition_by)
            sys.stdout.write(f"wrote {rows} rows to {args.out}\n")
            return EXIT_OK
        df = from_store(store)
    if csv:
        to_csv(df, args.out)
    else:
        to_parquet(df, args.out, partition_by=args.partition_by)
    sys.stdout.write(f"wrote {len(df)} rows to {args.out}\n")
    return EXIT_OK


def _export_url(args: argparse.Namespace) -> int:
    """``export --out s3://...``: a dataset by creation day or one Parquet file, streamed
    from the store's own dataset."""
    from .export import export_store
    from .store import Store

    one_file = args.partition_by is None and args.out.lower().endswith(".parquet")
    if args.partition_by is None and not one_file:
        raise InputError(
            f"--out {args.out}: a URL takes a .parquet file or a dataset (--partition-by {_BY_DAY})"
        )
    with Store(_store_to_read(args), create=False) as store:
        rows = export_store(store, args.out, partition_by=args.partition_by)
    sys.stdout.write(f"wrote {rows} rows to {args.out}\n")
    return EXIT_OK


def _report_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    _store_option(src, "read")
    src.add_argument(
        "--parquet", type=Path, metavar="PATH", help="a Parquet file or dataset instead of a store"
    )
    p.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="report.html or report.md"
    )
    p.add_argument("--title", default="Veo task report", help="title of the report")
    p.add_argument("--no-figures", action="store_true", help="tables only (quicker)")
    _engine_option(p, "pandas", "duckdb", "spark")
    p.add_argument(
        "--callbacks",
        default=None,
        metavar="SOURCE",
        help="add the callback audit: the receiver's store or a JSONL file of callback bodies",
    )
    p.add_argument(
        "--callback-url",
        action="append",
        default=None,
        metavar="URL",
        help="the receiver's callBackUrl (repeatable): only tasks that named it are expected "
        "to call back (default: any callBackUrl)",
    )


@command(
    "report",
    "a self-contained HTML (or Markdown) report",
    "Headline counts, latency by model with confidence intervals, failure categories and\n"
    "figures, from a store (default: the default store) or a Parquet file or dataset. HTML\n"
    "is one file; Markdown puts its figures in a <name>_figures folder beside it. Above\n"
    "the size (--engine) the history is never loaded whole: DuckDB (or Spark) computes\n"
    "every table and figure from aggregates.",
    examples=[
        f"{PROG} report --out report.html",
        f"{PROG} report --parquet tasks.parquet --out report.md --title 'March batch'",
        f"{PROG} report --callbacks hooks.sqlite --out report.html",
        f"{PROG} report --store big.sqlite --engine duckdb --out report.html",
        f"{PROG} report --parquet history/ --out report.html",
    ],
    arguments=_report_args,
)
def _report(args: argparse.Namespace) -> int:
    _check_out(args.out, _REPORT_SUFFIXES)
    hooks = None
    if args.callbacks is not None:
        from .callbacks import read_callbacks

        hooks = read_callbacks(args.callbacks)
    options = {
        "title": args.title,
        "figures": not args.no_figures,
        "callbacks": hooks,
        "callback_url": args.callback_url,
        "engine": args.engine,
    }
    if args.parquet is not None:  # read whole below the size, by DuckDB above (engine.resolve)
        path = _write_report(str(args.parquet), args.out, options)
    else:
        from .checks import history
        from .engine import PANDAS_MAX_ROWS
        from .frame import from_store
        from .store import Store

        with Store(_store_to_read(args), create=False) as store:
            runs = history(store)  # veo-notebook check's runs: the Checks section
            small = store.counts()["records"] <= PANDAS_MAX_ROWS
            if args.engine == "pandas" or (args.engine is None and small):
                source: Any = from_store(store)
                options["engine"] = None
            else:  # the store's frame dataset, brought up to date, read by the engine
                source = store
                options["engine"] = args.engine or "duckdb"
            path = _write_report(source, args.out, {**options, "checks": runs})
    sys.stdout.write(f"wrote {path}\n")
    return EXIT_OK


def _write_report(source: Any, out: Path, options: dict[str, Any]) -> Path:
    from .reporting import report

    return report(source, out, **options)


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=["path", "info"],
        help="path: print where the default store is; info: its path, size and counts",
    )
    _store_option(p, "describe")
    _engine_option(p, "pandas", "duckdb", "spark")


@command(
    "store",
    "where the default store is, and what a store holds",
    "path prints the default store's path ($VEO_STORE, else the user data folder).\n"
    "info prints a store's path, size and its records by status (it must exist).",
    examples=[f"{PROG} store path", f"{PROG} store info --store march.sqlite"],
    arguments=_store_args,
)
def _store(args: argparse.Namespace) -> int:
    path = _store_to_read(args)
    if args.action == "path":
        sys.stdout.write(f"{path}\n")
        return EXIT_OK
    from .schema import status_of
    from .store import Store

    with Store(path, create=False) as store:
        c = store.counts()
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.is_file())
    lines = [
        f"path      {path}",
        f"size      {size / 1e6:.1f} MB",
        f"records   {c['records']:,} ({c['terminal']:,} terminal: not asked again)",
    ]
    for flag, n in c["by_flag"].items():
        if flag is None:
            continue
        lines.append(f"  {status_of(flag):<20} {n:>10,}  (successFlag {flag})")
    if c["fetch_errors"]:
        n = c["fetch_errors"]
        lines.append(f"  {'no record read':<20} {n:>10,}  (a fetch error, e.g. 422)")
    if args.engine is not None:
        lines += _frame_lines(path, args.engine)
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


def _frame_lines(path: Path, engine: str) -> list[str]:
    """The frame dataset beside the store, read by ``engine``: where, and tasks by model."""
    from . import analysis
    from .frame import dataset
    from .store import Store

    with Store(path, create=False) as store:
        folder = dataset.path_for(store)
    eng = _store_engine(path, engine)
    rates = analysis.failure_rates(eng, by="model")
    lines = [f"frame     {folder} ({eng.count():,} tasks, read by {eng.name})"]
    for model, row in rates.iterrows():
        lines.append(f"  {model!s:<20} {int(row['n']):>10,}  finished, {row['rate']:.1%} failed")
    return lines


def _archive_args(p: argparse.ArgumentParser) -> None:
    _store_option(p, "read (and record the archive in)")
    p.add_argument(
        "--dest",
        required=True,
        metavar="DIR_OR_URL",
        help="a folder or an fsspec URL (s3://bucket/prefix; credentials as boto3 finds them)",
    )
    from .archive import MAX_WORKERS  # the archive package's constants load without pandas

    p.add_argument(
        "--workers",
        type=_bounded(1, MAX_WORKERS),
        default=8,
        metavar="N",
        help=f"parallel downloads, 1 to {MAX_WORKERS} (default: %(default)s)",
    )
    p.add_argument("--verify", action="store_true", help="re-hash the files already archived first")
    p.add_argument(
        "--origin", action="store_true", help="also save originUrls[0] as <task_id>.origin.mp4"
    )
    p.add_argument("--no-probe", action="store_true", help="do not read the files with PyAV")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


@command(
    "archive",
    "save every succeeded task's video before kie.ai deletes it (14 days)",
    "Downloads the final video of each succeeded task in the store (fullResultUrls of an\n"
    "extend, else resultUrls) to DEST/<yyyy-mm-dd>/<task_id>.mp4: in parallel, resumed\n"
    "after a broken connection, SHA-256 hashed, probed with PyAV; only whole files reach\n"
    "their final name. The store remembers each file: a second run fetches only what is\n"
    "missing or failed. Each video that could not be archived (deleted: HTTP 404, or a\n"
    "file that does not decode) is listed, and the exit code is then 1.",
    examples=[
        f"{PROG} archive --dest videos/",
        f"{PROG} archive --store march.sqlite --dest s3://my-bucket/veo --verify",
    ],
    arguments=_archive_args,
)
def _archive(args: argparse.Namespace) -> int:
    from .archive import archive_videos
    from .frame import from_store
    from .store import Store

    with Store(_store_to_read(args), create=False) as store:
        rows = archive_videos(
            from_store(store),
            args.dest,
            store=store,
            workers=args.workers,
            progress=not args.no_progress,
            probe=not args.no_probe,
            verify=args.verify,
            origin=args.origin,
        )
    failed = rows["archive_error"].notna()
    for task_id, error in zip(rows["task_id"][failed], rows["archive_error"][failed], strict=True):
        sys.stdout.write(f"{task_id}: {error}\n")
    if args.origin:
        bad = rows["origin_error"].notna()
        for task_id, error in zip(rows["task_id"][bad], rows["origin_error"][bad], strict=True):
            sys.stdout.write(f"{task_id} (origin): {error}\n")
        failed |= bad
    n_failed = int(failed.sum())
    sys.stdout.write(
        f"{len(rows) - n_failed} of {len(rows)} videos archived and readable in {args.dest}"
        + (f"; {n_failed} with an error (listed above)\n" if n_failed else "\n")
    )
    return EXIT_FAILED if n_failed else EXIT_OK


def _simulate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument(
        "--port", type=_port, default=8765, help="port (default: %(default)s; 0: any free port)"
    )
    p.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="the one key accepted (default: sim-local-key); a test key, not your kie.ai key",
    )
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default: %(default)s)")
    p.add_argument(
        "--n-tasks",
        type=_count,
        default=5000,
        metavar="N",
        help="tasks in the corpus (default: %(default)s)",
    )
    p.add_argument(
        "--latency", type=_seconds, default=0.0, metavar="S", help="seconds added to every answer"
    )
    p.add_argument(
        "--rate-limit",
        type=_positive,
        default=None,
        metavar="R",
        help="requests/s before HTTP 429 (default: no limit)",
    )
    p.add_argument(
        "--clock-speed",
        type=_seconds,
        default=1.0,
        metavar="X",
        help="simulated seconds per real second (default: %(default)s; 0 stops the clock)",
    )
    p.add_argument(
        "--time-format",
        choices=_Imported("simulator.corpus", "TIME_FORMATS"),
        metavar="FORMAT",  # a metavar: argparse reads the choices only when they are needed
        default="plain",
        help="how times are written: %(choices)s (default: %(default)s, UTC+8 wall time "
        "like kie.ai)",
    )
    p.add_argument(
        "--fault-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="probability of a random transient fault per request (default: %(default)s)",
    )


@command(
    "simulate",
    "run the kie.ai-compatible simulator in the foreground",
    "Serve GET /api/v1/veo/record-info like kie.ai on loopback (seeded corpus, 422 for\n"
    "unknown and expired ids, optional rate limit and faults) until Ctrl-C.",
    examples=[
        f"{PROG} simulate --port 8765 --n-tasks 3000",
        f"{ENV_KEY}=sim-local-key {PROG} fetch ids.txt --base-url http://127.0.0.1:8765",
    ],
    arguments=_simulate_args,
)
def _simulate(args: argparse.Namespace) -> int:
    from . import simulator

    try:
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
    except OSError as exc:  # the bind: a busy port, an address not on this machine
        raise InputError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; pick another "
            "--port (0: any free port) or --host"
        ) from exc
    return EXIT_OK


def _callbacks_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=_port, required=True, help="port to listen on (0: any free port)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s; put a TLS reverse proxy in front)",
    )
    p.add_argument(
        "--path", default="/callback", help="the callBackUrl's path (default: %(default)s)"
    )
    _store_option(p, "keep the deliveries in")
    p.add_argument(
        "--no-signature",
        action="store_true",
        help=f"accept unsigned callbacks (no {ENV_WEBHOOK_KEY}): anyone can write; testing only",
    )


@command(
    "callbacks",
    "receive kie.ai callbacks: verify them, keep every delivery in the store",
    "Serve POST --path for kie.ai's callbacks (uvicorn) and GET /health. Each delivery's\n"
    f"X-Webhook-Signature is checked with {ENV_WEBHOOK_KEY} (never a flag; exit 2 when it\n"
    "is unset, unless --no-signature); stale, forged, oversized and non-JSON deliveries are\n"
    "refused and not stored; every genuine one is kept raw in the store. Ctrl-C stops.",
    examples=[
        f"{ENV_WEBHOOK_KEY}=... {PROG} callbacks --port 8787",
        f"{ENV_KEY}=... {PROG} fetch --from-callbacks --out tasks.parquet",
    ],
    arguments=_callbacks_args,
)
def _callbacks(args: argparse.Namespace) -> int:
    import contextlib

    from .callbacks import run

    store = _store_to_write(args)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the receiver stops
        run(store, host=args.host, port=args.port, path=args.path, verify=not args.no_signature)
    _note(f"callbacks: stopped; every delivery kept is in {store}")
    return EXIT_OK


# ---------------------------------------------------------------------------- check
def _check_args(p: argparse.ArgumentParser) -> None:
    from functools import partial

    _store_option(p, "check (it keeps each run, and the state it announced)")
    p.add_argument(
        "--rules",
        type=Path,
        required=True,
        metavar="FILE",
        help='a TOML file: rules = ["failure_rate > 5%%", ...], optionally window and by',
    )
    p.add_argument(
        "--window",
        default=None,
        metavar="SPAN",
        help="check the tasks created in the last SPAN before the latest fetch "
        "(default: the file's window, else 1D)",
    )
    p.add_argument(
        "--by",
        action="append",
        default=None,
        metavar="COLUMN",
        help="check each group apart: model, task_type, ... (repeatable)",
    )
    p.add_argument(
        "--notify",
        default=None,
        metavar="URL",
        help="POST one JSON message (Slack-compatible) when a rule's state changes "
        f"(default: ${ENV_NOTIFY}; a secret, shown masked)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="compare point estimates, not intervals (noisy on small windows)",
    )
    p.add_argument(
        "--fetch",
        action="store_true",
        help="first re-fetch the tasks still pending (needs KIE_API_KEY)",
    )
    p.add_argument(
        "--base-url",
        default=None,  # the client reads $KIE_BASE_URL
        metavar="URL",
        help=f"the API base URL for --fetch (default: ${ENV_BASE_URL} or {DEFAULT_BASE_URL})",
    )
    p.format_help = partial(_check_help, p)  # type: ignore[method-assign]


def _check_help(p: argparse.ArgumentParser) -> str:
    """The help with the rule table (built when shown: pandas loads only then)."""
    from .checks import rules_help

    p.epilog = (
        f"rules (a breach: the 95 % interval lies wholly beyond the threshold):\n"
        f"{rules_help()}\n\n" + _examples(_CHECK_EXAMPLES)
    )
    return argparse.ArgumentParser.format_help(p)


_CHECK_EXAMPLES = [
    f"{PROG} check --store veo.sqlite --rules rules.toml",
    f"{ENV_NOTIFY}=https://hooks.slack.com/... {PROG} check --rules rules.toml --fetch",
    f"{PROG} check --rules rules.toml --window 1h --by model",
]


@command(
    "check",
    "check rules (failure rate, p90 latency, stuck, spend ...) and notify on a change",
    "Evaluate each rule of --rules on the store's tasks: a rule is breached when its whole\n"
    "95 % interval lies beyond the threshold, suspect when only the point estimate does.\n"
    "Prints one line per breach and exits 1 if any (0 all clear). Each run is kept in the\n"
    "store; --notify posts one message only when a rule's state changes, so cron can run\n"
    "it every few minutes without repeating itself.",
    examples=_CHECK_EXAMPLES,
    arguments=_check_args,
)
def _check(args: argparse.Namespace) -> int:
    from .checks import load_rules, run
    from .checks._notify import mask_url, notify_url
    from .checks._run import breach_lines
    from .store import Store

    url = notify_url(args.notify)
    spec = load_rules(args.rules)
    path = _store_to_read(args)
    Store(path, create=False).close()  # a missing store is one line, before any fetch
    if args.fetch:
        from .fetch import fetch_records

        client = _client(args)
        with Store(path, create=False) as store, client:
            fetch_records(store.ids(), client=client, store=store, progress=False)
    by = args.by or list(spec.by) or None
    with Store(path, create=False) as store:
        result = run(
            store,
            spec.rules,
            window=args.window or spec.window or "1D",
            by=by,
            notify=url,
            strict=args.strict,
        )
    for line in breach_lines(result.rows):
        sys.stdout.write(f"BREACHED {line}\n")
    rows = result.rows
    _note(
        f"check: {len(spec.rules)} rules, {len(rows)} rows: {int(rows['breached'].sum())} "
        f"breached, {int(rows['suspect'].sum())} suspect"
    )
    if result.delivery is not None and url is not None:
        _note(f"check: told {mask_url(url)} of {len(result.changes)} changes")
    if result.notify_error is not None:
        _note(f"error: {result.notify_error}")
    return EXIT_FAILED if rows["breached"].any() or result.notify_error else EXIT_OK


# ---------------------------------------------------------------------------- main
def _interrupted(args: argparse.Namespace) -> str:
    """The truth after Ctrl-C: how many answers the store holds, and where."""
    path = getattr(args, "store_used", None)
    if path is None:
        return "interrupted; nothing was written"
    from .store import Store

    try:
        with Store(path, create=False) as store:
            n = len(store)
    except VeoError:
        return f"interrupted before any answer was stored (store: {path})"
    return (
        f"interrupted; {n:,} answers are in {path}: run the same command again to fetch "
        "only the rest"
    )


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, VeoError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``veo-notebook`` with ``argv``; return the exit status."""
    args = build_parser().parse_args(argv)
    verbose = args.verbose + getattr(args, "verbose_sub", 0)
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _COMMANDS[args.command].run(args)
    except KeyboardInterrupt:
        _note(_interrupted(args))
        return EXIT_INTERRUPTED
    except (VeoError, OSError) as exc:
        if verbose:
            traceback.print_exc()
        _note(f"error: {_error_line(exc)}")
        return EXIT_USAGE if isinstance(exc, _USAGE_ERRORS) else EXIT_FAILED
