"""Secrets: the sentinel key never shows, whole or in part, on any surface the toolkit has.

The whole suite runs with ``SENTINEL_KEY``; ``conftest.key_never_logged`` watches every
log record of the session at DEBUG. Here each surface is exercised after faults and
refusals: reprs and pickles, exception texts and tracebacks, logs, stdout/stderr and the
progress bar, the store file and its WAL, Parquet, the HTML report, the CLI in a
subprocess, and the notebooks' committed outputs. A "piece" is any 8 characters of the
key, or its last 6 (the mask shows the last 2).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SENTINEL_KEY, KeyWatch, exception_chain_text

from veo_notebook import (
    ApiError,
    AuthError,
    Client,
    ConfigError,
    EndpointError,
    Store,
    TransientError,
    VeoError,
    fetch_records,
)
from veo_notebook.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
PIECES = sorted(
    {SENTINEL_KEY[i : i + 8] for i in range(len(SENTINEL_KEY) - 7)} | {SENTINEL_KEY[-6:]}
)
FAULTS = ["http503", "reset", "truncated", "incomplete", "nonjson", "envelope455", "envelope500"]


def leaks(text: str | bytes) -> list[str]:
    """The pieces of the key found in ``text``."""
    if isinstance(text, bytes):
        return [p for p in PIECES if p.encode() in text]
    return [p for p in PIECES if p in text]


def _fast(sim: Simulator, key: str = SENTINEL_KEY, **kw) -> Client:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 2.0)
    return Client(key, base_url=sim.base_url, **kw)


def _texts_of(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), repr(exc.args), exception_chain_text(exc)]
    texts.append(str(pickle.loads(pickle.dumps(exc))))
    for link in (exc.__cause__, exc.__context__):
        if link is not None:
            texts += [str(link), repr(link)]
    return texts


def test_the_leak_detector_and_the_log_watch_do_find_the_key():
    assert (
        leaks(f"Bearer {SENTINEL_KEY}")
        and leaks(SENTINEL_KEY[-6:])
        and leaks(b"x" + SENTINEL_KEY[3:12].encode())
    )
    assert leaks("api_key='…9c'") == []  # what the mask shows is fine
    watch = KeyWatch()
    record = logging.LogRecord(
        "veo_notebook.x", logging.DEBUG, __file__, 1, "key %s", (SENTINEL_KEY,), None
    )
    watch.handle(record)
    assert watch.hits


def test_client_repr_str_vars_and_pickle_hide_the_key():
    c = Client(SENTINEL_KEY, base_url="https://api.kie.ai")
    texts = [
        repr(c),
        str(c),
        f"{c!r}",
        repr(vars(c)),
        repr(c.session.headers),
        repr(c.session.__dict__),
    ]
    for text in texts:
        assert leaks(text) == [], text
    with pytest.raises(TypeError) as info:
        pickle.dumps(c)
    assert leaks(str(info.value)) == []


def test_exception_texts_after_faults_and_refusals(fresh_sim, tmp_path):
    sim = fresh_sim(n_tasks=30)
    tid = sim.task_ids("terminal")[0]
    errors: list[BaseException] = []
    sim.script(tid, ["http429", *FAULTS])
    with pytest.raises(TransientError) as e:
        _fast(sim, max_retries=3).get_record(tid)
    errors.append(e.value)
    other = Simulator("sk-some-other-key-000000", n_tasks=5).start()
    try:
        with pytest.raises(AuthError) as e:
            fetch_records(
                [tid, "x"], client=_fast(other), store=tmp_path / "s.sqlite", progress=False
            )
        errors.append(e.value)
    finally:
        other.stop()
    with pytest.raises(EndpointError) as e:  # nothing listens there: connection refused
        Client(SENTINEL_KEY, base_url="http://127.0.0.1:9", max_retries=1, backoff=0.01).get_record(
            tid
        )
    errors.append(e.value)
    with pytest.raises(ConfigError) as e:
        Client(SENTINEL_KEY, base_url=f"http://{SENTINEL_KEY[:3]}.example.com")
    errors.append(e.value)
    with pytest.raises(ApiError) as e:  # no User-Agent: the CDN's 403 "error code: 1010"
        _fast(sim, user_agent="").get_record(tid)
    errors.append(e.value)
    assert all(isinstance(x, VeoError) for x in errors)
    for exc in errors:
        for text in _texts_of(exc):
            assert leaks(text) == [], text


def test_logs_stdout_stderr_and_the_progress_bar(fresh_sim, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    sim = fresh_sim(n_tasks=100)
    ids = [*sim.task_ids()[:60], "veo_unknown_1"]
    for tid, fault in zip(ids, FAULTS * 2, strict=False):
        sim.script(tid, [fault, fault])
    df = fetch_records(ids, client=_fast(sim), progress=True)
    assert df["task_id"].tolist() == ids
    out = capfd.readouterr()
    assert "it/s" in out.err or "task" in out.err  # the bar was drawn
    assert any("retry" in r.getMessage() for r in caplog.records)  # faults were logged
    for text in (caplog.text, out.out, out.err):
        assert leaks(text) == []
    for r in caplog.records:
        assert leaks(repr(r.args)) == [] and leaks(str(r.msg)) == []


def test_store_wal_parquet_and_report_files(fresh_sim, tmp_path):
    from veo_notebook import report, to_parquet

    sim = fresh_sim(n_tasks=200)
    ids = [*sim.task_ids()[:120], "veo_unknown_1", "veo_unknown_2"]
    sim.script(ids[0], FAULTS)
    path = tmp_path / "store.sqlite"
    with Store(path) as st:  # held open: the -wal and -shm files exist and are read too
        df = fetch_records(ids, client=_fast(sim), store=st, progress=False)
        sidecars = [p for p in tmp_path.iterdir() if p.name.startswith("store.sqlite")]
        assert any(p.name.endswith("-wal") for p in sidecars)
        for p in sidecars:
            assert leaks(p.read_bytes()) == [], p.name
    parquet = to_parquet(df, tmp_path / "frame.parquet")
    assert leaks(parquet.read_bytes()) == []
    table = pq.read_table(parquet)
    assert leaks(json.dumps(table.to_pylist(), default=str)) == []
    assert leaks(repr(table.schema.metadata)) == []
    html = report(df, tmp_path / "report.html", figures=False)
    assert leaks(html.read_bytes()) == []


def test_the_cli_in_a_subprocess_with_the_key_in_the_environment(fresh_sim, tmp_path):
    sim = fresh_sim(n_tasks=100)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join([*sim.task_ids()[:40], "veo_unknown_1"]) + "\n", encoding="utf-8")
    sim.script(sim.task_ids()[0], ["http503", "reset", "nonjson"])
    env = {**os.environ, "KIE_API_KEY": SENTINEL_KEY, "PYTHONWARNINGS": "ignore"}
    base = [
        sys.executable,
        "-m",
        "veo_notebook",
        "-vv",
        "fetch",
        str(ids),
        "--base-url",
        sim.base_url,
    ]
    ok = subprocess.run(
        [*base, "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "o.parquet")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "retry" in ok.stderr  # -vv: the debug log of the retries is on stderr
    refused = subprocess.run(
        base,
        capture_output=True,
        text=True,
        env={**env, "KIE_API_KEY": SENTINEL_KEY + "-old"},
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0 and "401" in refused.stderr
    for text in (ok.stdout, ok.stderr, refused.stdout, refused.stderr):
        assert leaks(text) == []


def test_the_notebooks_committed_outputs_hold_no_key():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 5  # the five committed notebooks, not an empty glob
    for nb in notebooks:
        text = nb.read_text(encoding="utf-8")
        assert leaks(text) == [], nb.name
        outputs = [o for c in json.loads(text).get("cells", []) for o in c.get("outputs", [])]
        assert "Bearer " not in json.dumps(outputs), nb.name
