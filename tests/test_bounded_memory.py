"""A history that does not fit is never loaded whole: each big-history path under a hard limit.

A store of :data:`ROWS` tasks (its frame dataset built once, here) is given to a child
process (``tests/_memory_child.py``) that first runs the same path on a small store, so
every import, thread pool and engine is loaded, then caps its own address space
(``RLIMIT_AS``) at what it holds plus :data:`MARGIN_MB`, and runs the path on the big
store. The margin is far below what the pandas frame of the big store takes, and the same
child reading that frame whole (``veo.read_parquet`` of the dataset, or ``export
--engine pandas``, which builds the frame) must fail under the same limit: the limit
bites, so a path that loaded the history whole would fail it too.

The child's allocators are made to map what they use (``ARROW_DEFAULT_MEMORY_POOL=system``,
``MALLOC_ARENA_MAX=2``: jemalloc and glibc's per-thread arenas would otherwise reserve
address space up front) and its thread pools are fixed in size (pyarrow and DuckDB two
threads each, DuckDB's own limit below the margin), so the limit means the same on any
machine. Only Linux has ``/proc/self/status``, which the child reads.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from veo_notebook import Store, schema
from veo_notebook.frame import dataset
from veo_notebook.simulator import corpus
from veo_notebook.store import Answer

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").is_file(), reason="the child reads /proc (Linux)"
)

#: tasks in the big store: its pandas frame needs several times :data:`MARGIN_MB`
ROWS = 300_000
#: tasks in the small store each child warms up on
WARM_ROWS = 2_000
#: distinct records generated; the store repeats them under new task ids
DISTINCT = 20_000
#: what a child may map above what it held after the warm-up
MARGIN_MB = 256
_CHILD = Path(__file__).with_name("_memory_child.py")
_DAY = "create_date"
_ID = re.compile(r"veo_[0-9a-f]{4}")
_PROMPT = '\\"prompt\\":\\"'  # inside paramJson, a JSON string in the JSON


def _copy(text: str, new: str) -> str:
    """A record with every task id's first characters and its prompt's start set to ``new``."""
    return _ID.sub(new, text).replace(_PROMPT, f"{_PROMPT}{new} ", 1)


def _store(path: Path, n: int) -> Path:
    """A store of ``n`` corpus records, its frame dataset built. The corpus is repeated
    under new task ids (families kept: every id of a copy is renamed alike), each copy's
    prompts marked so that no copy is a duplicate submission of another."""
    texts = list(corpus.iter_raw_texts(min(n, DISTINCT)))
    envelopes = [json.loads(t) for t in texts]
    ids = [e["data"]["taskId"] for e in envelopes]
    facts = [schema.envelope_facts(e) for e in envelopes]  # the same for every copy
    with Store(path) as store:
        for k in range(math.ceil(n / len(texts))):
            new = f"veo_{k:04x}"
            m = min(len(texts), n - k * len(texts))
            store.put_many(
                Answer(new + ids[j][8:], _copy(texts[j], new), 1.77e9, None, facts[j])
                for j in range(m)
            )
    dataset.sync(path)
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("bounded")
    return _store(base / "warm.sqlite", WARM_ROWS), _store(base / "big.sqlite", ROWS)


def _child(stores: tuple[Path, Path], out: Path, *action: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2"}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    argv = [sys.executable, str(_CHILD), *map(str, stores), str(MARGIN_MB), str(out), *action]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


def _peak(done: subprocess.CompletedProcess) -> dict[str, int]:
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("limit ")  # the limit was set before the big run
    result: dict[str, int] = json.loads(lines[-1])
    assert result["VmPeak"] <= result["limit"]
    return result


def _export(out: str, *more: str) -> list[str]:
    return ["cli", "export", "--store", "{store}", "--out", out, *more]


BOUNDED = [
    pytest.param(["cli", "store", "info", "--store", "{store}", "--engine", "duckdb"], id="info"),
    pytest.param(_export("{out}/t.parquet"), id="file"),
    pytest.param(_export("{out}/t.csv"), id="csv"),
    pytest.param(_export("{out}/ds", "--partition-by", _DAY), id="dataset"),
    pytest.param(_export("{out}/ds", "--partition-by", "model"), id="dataset-by-model"),
    pytest.param(["call", "latency_summary"], id="latency_summary"),
    pytest.param(["call", "failure_rates"], id="failure_rates"),
    pytest.param(["call", "cost_summary"], id="cost_summary"),
    pytest.param(
        ["cli", "report", "--store", "{store}", "--engine", "duckdb", "--out", "{out}/r.html"],
        id="report",
    ),
]


@pytest.mark.parametrize("action", BOUNDED)
def test_a_big_history_path_runs_under_the_limit(
    stores: tuple[Path, Path], tmp_path: Path, action: list[str]
) -> None:
    _peak(_child(stores, tmp_path, *action))
    if "export" in action and "{out}/t.csv" in action:
        with (tmp_path / "big" / "t.csv").open() as fh:
            assert sum(1 for _ in fh) > ROWS  # a header and a line a task (or more)
    elif "export" in action:
        import pyarrow.dataset as pds

        written = tmp_path / "big" / ("t.parquet" if "{out}/t.parquet" in action else "ds")
        assert pds.dataset(written, partitioning="hive").count_rows() == ROWS


WHOLE = [
    pytest.param(["pandas"], id="read_parquet"),
    pytest.param(_export("{out}/t.parquet", "--engine", "pandas"), id="export-pandas"),
]


@pytest.mark.parametrize("action", WHOLE)
def test_reading_the_history_whole_fails_under_the_same_limit(
    stores: tuple[Path, Path], tmp_path: Path, action: list[str]
) -> None:
    done = _child(stores, tmp_path, *action)
    assert done.stdout.startswith("limit "), done.stderr  # the warm-up read fits
    assert done.returncode != 0, done.stdout
    assert "out of memory" in done.stdout or "MemoryError" in done.stderr, done.stderr[-2000:]
