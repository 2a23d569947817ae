"""Subprocess entry point for the memory-limit test (``tests/test_bounded_memory.py``).

    python tests/_memory_child.py WARM BIG MARGIN_MB OUT ACTION [ARG ...]

Runs ``ACTION`` first on the small store ``WARM`` (every import done, every thread pool
started, DuckDB loaded), reads the process's address-space size, sets a hard limit
(``RLIMIT_AS``) at that size plus ``MARGIN_MB``, prints ``limit <bytes>``, then runs
``ACTION`` on the big store ``BIG`` and prints one JSON line (its answer's size and the
address-space peak). A run that outgrows the limit dies with ``MemoryError`` (or an
engine's out-of-memory error): exit code 3 with ``out of memory`` printed.

Actions: ``cli ARGV...`` (``{store}``, ``{dataset}`` and ``{out}`` replaced),
``call NAME`` (``veo.NAME(dataset, engine="duckdb")``), ``pandas`` (the frame read whole:
``veo.read_parquet(dataset)``, the path that must not fit).
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import sys
from pathlib import Path
from typing import Any

OUT_OF_MEMORY = 3
_MB = 1 << 20
#: threads of pyarrow's and DuckDB's pools: the same on any machine
THREADS = 2
#: DuckDB's own memory limit (it spills or stops before the process limit)
DUCKDB_MEMORY = "128MB"


def _fixed_pools() -> None:
    """pyarrow's and DuckDB's pools fixed at :data:`THREADS`, DuckDB's memory capped: every
    connection the toolkit opens gets that config."""
    import duckdb
    import pyarrow

    pyarrow.set_cpu_count(THREADS)
    pyarrow.set_io_thread_count(THREADS)
    connect = duckdb.connect

    def capped(database: str = ":memory:", read_only: bool = False, config: Any = None) -> Any:
        fixed = {"threads": THREADS, "memory_limit": DUCKDB_MEMORY, **(config or {})}
        return connect(database, read_only=read_only, config=fixed)

    duckdb.connect = capped


def _status(field: str) -> int:
    """A size from /proc/self/status (``VmSize``, ``VmPeak``, ``VmRSS``...), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _run(store: Path, out: Path, action: str, args: list[str]) -> Any:
    import veo_notebook as veo
    from veo_notebook import cli
    from veo_notebook.frame import dataset

    data = str(dataset.sync(store))
    if action == "cli":
        out.mkdir(parents=True, exist_ok=True)
        sub = {"{store}": str(store), "{dataset}": data, "{out}": str(out)}
        argv = []
        for a in args:
            for key, value in sub.items():
                a = a.replace(key, value)
            argv.append(a)
        code = cli.main(argv)
        if code != 0:
            raise SystemExit(code)
        return code
    if action == "call":
        return len(getattr(veo, args[0])(data, engine="duckdb"))
    if action == "pandas":
        return len(veo.read_parquet(data))
    raise SystemExit(f"unknown action {action!r}")


def main(argv: list[str]) -> int:
    warm, big, margin, out = Path(argv[0]), Path(argv[1]), int(argv[2]), Path(argv[3])
    action, args = argv[4], argv[5:]
    import duckdb
    import pyarrow

    _fixed_pools()
    with contextlib.redirect_stdout(io.StringIO()):
        _run(warm, out / "warm", action, args)
    base = _status("VmSize")
    limit = base + margin * _MB
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    print(f"limit {limit} base {base} rss {_status('VmRSS')}", flush=True)
    try:
        answer = _run(big, out / "big", action, args)
    except (MemoryError, duckdb.OutOfMemoryException, pyarrow.ArrowMemoryError) as exc:
        print(f"out of memory: {type(exc).__name__}", flush=True)
        return OUT_OF_MEMORY
    peak = {k: _status(k) for k in ("VmPeak", "VmSize", "VmHWM")}
    print(json.dumps({"answer": answer, "limit": limit, **peak}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
