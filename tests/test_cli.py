"""The ``veo-notebook`` command against the simulator: in-process, then as a real subprocess.

The subprocess tests run ``python -m veo_notebook`` exactly as a user would, against a
simulator started in this process (a real HTTP server on loopback) or a dead port, and
check the exit code, the one-line message, what is on disk, and that no traceback (and
never the key) is printed.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from conftest import SENTINEL_KEY

from veo_notebook import Store, read_parquet
from veo_notebook.cli import EXIT_CODES, build_parser, main
from veo_notebook.simulator import Simulator


@pytest.fixture(autouse=True)
def own_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own user data folder: the default store never lands in ~."""
    monkeypatch.delenv("VEO_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "veo-notebook" / "store.sqlite"


@pytest.fixture
def env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIE_API_KEY", SENTINEL_KEY)


def _no_key_in(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    out = capsys.readouterr()
    assert SENTINEL_KEY not in out.out and SENTINEL_KEY not in out.err
    return out.out, out.err


def test_fetch_a_file_of_ids_into_a_store_and_a_csv(fresh_sim, tmp_path, env_key, capsys) -> None:
    sim = fresh_sim(n_tasks=60)
    ids = sim.task_ids()[:40]
    src = tmp_path / "ids.txt"
    src.write_text("\n".join([*ids, "", ids[0], "unknown_id"]) + "\n", encoding="utf-8")
    store, out_csv = tmp_path / "s.sqlite", tmp_path / "out.csv"
    argv = ["fetch", str(src), "--store", str(store), "--base-url", sim.base_url, "--no-progress"]
    assert main([*argv, "--out", str(out_csv)]) == 0
    out, _ = _no_key_in(capsys)
    assert out.startswith("41 tasks (") and "could not be read" in out and "nan" not in out
    df = pd.read_csv(out_csv)
    assert df["task_id"].tolist() == [*ids, "unknown_id"]
    with Store(store) as st:
        assert len(st) == 41
    sim.reset_stats()
    assert main([*argv, "--refresh", "none", "--out", str(tmp_path / "out.parquet")]) == 0
    assert sim.stats()["requests"] == 0
    back = read_parquet(tmp_path / "out.parquet")
    assert back["task_id"].tolist() == [*ids, "unknown_id"]


def test_fetch_ids_from_stdin_as_a_csv(fresh_sim, env_key, monkeypatch, capsys) -> None:
    sim = fresh_sim(n_tasks=20)
    ids = sim.task_ids("terminal")[:3]
    monkeypatch.setattr(
        sys, "stdin", io.StringIO("taskId,note\n" + "".join(f"{i},x\n" for i in ids))
    )
    assert main(["fetch", "-", "--base-url", sim.base_url, "--no-progress"]) == 0
    out, _ = _no_key_in(capsys)
    assert out.startswith("3 tasks (") and "0 could not be read" in out
    assert set(sim.stats()["by_task"]) == set(ids)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param("no-key", "KIE_API_KEY", id="no-key"),
        pytest.param("wrong-key", "401", id="wrong-key"),
        pytest.param("bad-csv", "taskId or task_id, in any case", id="csv-without-id-column"),
        pytest.param("remote-http", "plain http", id="remote-plain-http"),
    ],
)
def test_fetch_errors_are_one_clear_line_and_exit_2(
    fresh_sim, tmp_path, monkeypatch, capsys, setup, message
) -> None:
    sim = fresh_sim(n_tasks=10)
    src = tmp_path / "ids.csv"
    src.write_text("task_id\n" + "\n".join(sim.task_ids()) + "\n", encoding="utf-8")
    base = sim.base_url
    monkeypatch.setenv("KIE_API_KEY", SENTINEL_KEY)
    if setup == "no-key":
        monkeypatch.delenv("KIE_API_KEY")
    elif setup == "wrong-key":
        monkeypatch.setenv("KIE_API_KEY", "sk-wrong-key-000000")
    elif setup == "bad-csv":
        src.write_text("id,model\nx,veo3\n", encoding="utf-8")
    else:
        base = "http://api.kie.ai"
    assert main(["fetch", str(src), "--base-url", base, "--no-progress"]) == 2
    out, err = _no_key_in(capsys)
    assert err.startswith("veo-notebook: error:") and message in err
    assert len(err.strip().splitlines()) == 1 and out == ""
    if setup in ("wrong-key",):
        assert sim.stats()["by_outcome"].get("401", 0) <= 2 * 16  # stopped at once


def test_watch_returns_at_the_timeout_with_the_pending_still_generating(
    fresh_sim, tmp_path, env_key, capsys
) -> None:
    sim = fresh_sim(n_tasks=200)
    pending = sim.task_ids("pending")[:2]
    done = sim.task_ids("terminal")[:2]
    src = tmp_path / "ids.txt"
    src.write_text("\n".join([*pending, *done]), encoding="utf-8")
    argv = ["watch", str(src), "--base-url", sim.base_url, "--timeout", "0.5", "--no-progress"]
    assert main([*argv, "--store", str(tmp_path / "s.sqlite")]) == 3
    out, err = _no_key_in(capsys)
    assert out.startswith("4 tasks (") and "generating: 2" in out
    assert "2 of 4 tasks still generating" in err
    assert all(sim.stats()["by_task"][t] == 1 for t in done)


# ============================================================================ subprocess
def _free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cli:
    """``python -m veo_notebook`` in a subprocess, with its own user data folder and cwd."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.data_home = tmp / "xdg"
        self.default_store = self.data_home / "veo-notebook" / "store.sqlite"

    def env(self, key: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIE_", "VEO_"))}
        env.update(XDG_DATA_HOME=str(self.data_home), COLUMNS="100", MPLBACKEND="Agg")
        if key is not None:
            env["KIE_API_KEY"] = key
        env.update(extra or {})
        return env

    def __call__(
        self,
        *argv: str,
        key: str | None = SENTINEL_KEY,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        traceback_ok: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "veo_notebook", *argv],
            cwd=self.tmp,
            env=self.env(key, env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        both = proc.stdout + proc.stderr
        assert SENTINEL_KEY not in both
        assert traceback_ok or "Traceback" not in both, both[-2000:]
        return proc

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "veo_notebook", *argv],
            cwd=self.tmp,
            env=self.env(SENTINEL_KEY, None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture(scope="module")
def msim() -> Simulator:
    """One simulator for this module's subprocess tests (each reads only its own counters)."""
    with Simulator(SENTINEL_KEY, seed=3, n_tasks=300, clock_speed=0) as s:
        yield s


def _error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The exit code is ``code`` and stderr is one line naming every needle."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_the_default_store_keeps_the_history_and_readers_use_it(cli: Cli, msim: Simulator) -> None:
    ids = msim.task_ids()[:50]
    (cli.tmp / "ids.txt").write_text("\n".join(ids) + "\n")
    path = cli("store", "path")
    assert path.returncode == 0 and path.stdout.strip() == str(cli.default_store)
    assert not cli.default_store.exists()  # printing the path creates nothing
    other = cli.tmp / "elsewhere.sqlite"
    assert cli("store", "path", env={"VEO_STORE": str(other)}).stdout.strip() == str(other)

    msim.reset_stats()
    fetched = cli("fetch", "ids.txt", "--base-url", msim.base_url, "--no-progress")
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.startswith("50 tasks (") and str(cli.default_store) in fetched.stdout
    with Store(cli.default_store, create=False) as st:
        assert len(st) == 50
    info = cli("store", "info")
    assert info.returncode == 0 and str(cli.default_store) in info.stdout
    assert "records   50 " in info.stdout and "successFlag 1" in info.stdout

    # readers: no key, no request, the default store
    msim.reset_stats()
    again = cli("fetch", "ids.txt", "--refresh", "none", "--out", "back.csv", key=None)
    assert again.returncode == 0, again.stderr
    assert msim.stats()["requests"] == 0
    assert pd.read_csv(cli.tmp / "back.csv")["task_id"].tolist() == ids
    exported = cli("export", "--out", "all.parquet")
    assert exported.returncode == 0 and "wrote 50 rows" in exported.stdout
    back = read_parquet(cli.tmp / "all.parquet")  # day by day, then in the order stored
    assert sorted(back["task_id"]) == sorted(ids)
    assert back["create_time"].dropna().dt.floor("D").is_monotonic_increasing
    rep = cli("report", "--out", "r.html", "--no-figures")
    assert rep.returncode == 0 and (cli.tmp / "r.html").read_text().startswith("<!DOCTYPE")
    assert not [p.name for p in cli.tmp.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["report", "--store", "veo_stroe.sqlite", "--out", "r.html"], id="report"),
        pytest.param(["export", "--store", "veo_stroe.sqlite", "--out", "t.parquet"], id="export"),
        pytest.param(
            ["fetch", "ids.txt", "--store", "veo_stroe.sqlite", "--refresh", "none"],
            id="fetch-refresh-none",
        ),
        pytest.param(["store", "info", "--store", "veo_stroe.sqlite"], id="store-info"),
        pytest.param(["export", "--out", "t.parquet"], id="export-default-store"),
    ],
)
def test_reading_never_creates_a_store(cli: Cli, argv: list[str]) -> None:
    (cli.tmp / "ids.txt").write_text("t1\n")
    before = {p.name for p in cli.tmp.iterdir()}
    proc = cli(*argv, key=None)
    named = "veo_stroe.sqlite" if "--store" in argv else str(cli.default_store)
    _error(proc, 2, "no store at", named)
    assert {p.name for p in cli.tmp.iterdir()} == before  # nothing created, no output either
    assert not cli.default_store.exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        pytest.param(
            ["fetch", "ids.txt", "--out", "x.json"], "unknown extension '.json'", id="fetch-json"
        ),
        pytest.param(
            ["watch", "ids.txt", "--out", "x"],
            "unknown extension '(none)'",
            id="watch-no-extension",
        ),
        pytest.param(
            ["fetch", "ids.txt", "--out", "ids.txt/x.parquet"],
            "is a file, not a folder",
            id="folder-is-a-file",
        ),
        pytest.param(
            ["fetch", "ids.txt", "--out", "/proc/x.parquet"],
            "cannot write in /proc",
            id="unwritable-folder",
        ),
        pytest.param(["fetch", "ids.txt", "--out", "."], "is a folder", id="out-is-a-folder"),
    ],
)
def test_outputs_are_checked_before_any_request(
    cli: Cli, msim: Simulator, argv: list[str], needle: str
) -> None:
    (cli.tmp / "ids.txt").write_text("\n".join(msim.task_ids()[:5]) + "\n")
    before = {p.name for p in cli.tmp.iterdir()}
    msim.reset_stats()
    proc = cli(*argv, "--base-url", msim.base_url, "--no-progress")
    _error(proc, 2, "--out", needle)
    assert msim.stats()["requests"] == 0
    assert {p.name for p in cli.tmp.iterdir()} == before
    assert not cli.default_store.exists()


def test_report_and_export_check_their_outputs_too(cli: Cli) -> None:
    _error(cli("report", "--out", "r.pdf"), 2, "unknown extension '.pdf'", ".html or .md")
    _error(cli("export", "--out", "t.json"), 2, "unknown extension '.json'", ".parquet or .csv")


def test_a_dead_endpoint_fails_fast_with_one_line(cli: Cli) -> None:
    (cli.tmp / "ids.txt").write_text("".join(f"t{i}\n" for i in range(500)))
    url = f"http://127.0.0.1:{_free_port()}"
    proc = cli("fetch", "ids.txt", "--store", "s.sqlite", "--base-url", url, "--no-progress")
    _error(proc, 2, f"cannot reach {url}", "connection refused")
    with Store(cli.tmp / "s.sqlite", create=False) as st:
        assert len(st) == 0  # no "connection error" rows for a URL that never answered


def test_a_wrong_base_url_stops_the_batch_and_stores_nothing(cli: Cli, msim: Simulator) -> None:
    (cli.tmp / "ids.txt").write_text("\n".join(msim.task_ids()) + "\n")
    msim.reset_stats()
    url = msim.base_url + "/api/v1"  # the path twice: every answer is 404 Not Found
    proc = cli("fetch", "ids.txt", "--store", "s.sqlite", "--base-url", url, "--no-progress")
    _error(proc, 2, url, "'404 Not Found'", "does not look like the kie.ai API")
    assert msim.stats()["requests"] <= 20 + 2 * 16  # tens, not 300
    with Store(cli.tmp / "s.sqlite", create=False) as st:
        assert len(st) == 0


def test_a_server_that_is_not_kie_ai_stops_at_its_first_answer(cli: Cli) -> None:
    (cli.tmp / "ids.txt").write_text("".join(f"t{i}\n" for i in range(300)))
    web = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)  # HTML 404s
    threading.Thread(target=web.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{web.server_address[1]}"
    try:
        proc = cli("fetch", "ids.txt", "--store", "s.sqlite", "--base-url", url, "--no-progress")
    finally:
        web.shutdown()
        web.server_close()
    _error(proc, 2, f"HTTP 404 from {url} without an API envelope", "check the base URL")
    with Store(cli.tmp / "s.sqlite", create=False) as st:
        assert len(st) == 0


def test_ctrl_c_says_where_the_answers_are_and_they_are_there(cli: Cli) -> None:
    with Simulator(SENTINEL_KEY, seed=4, n_tasks=400, latency=0.05) as sim:
        (cli.tmp / "ids.txt").write_text("\n".join(sim.task_ids()) + "\n")
        proc = cli.popen("fetch", "ids.txt", "--base-url", sim.base_url, "--no-progress")
        deadline = time.monotonic() + 60
        while sim.stats()["requests"] < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err and SENTINEL_KEY not in out + err
    line = err.strip().splitlines()[-1]
    assert str(cli.default_store) in line and "answers are in" in line
    n = int(line.split("interrupted; ")[1].split(" answers")[0].replace(",", ""))
    with Store(cli.default_store, create=False) as st:
        # the simulator counts a request when it arrives: those still in flight at the
        # Ctrl-C were never answered, so the store holds what was answered, not 40
        assert len(st) == n and 1 <= n < 400


def test_watch_that_times_out_exits_3_and_says_how_many(cli: Cli, msim: Simulator) -> None:
    ids = msim.task_ids("pending")[:3] + msim.task_ids("terminal")[:2]
    (cli.tmp / "ids.txt").write_text("\n".join(ids) + "\n")
    proc = cli(
        "watch",
        "ids.txt",
        "--base-url",
        msim.base_url,
        "--timeout",
        "0.2",
        "--no-progress",
        "--out",
        "w.parquet",
    )
    _error(proc, 3, "3 of 5 tasks still generating", str(cli.default_store))
    assert len(read_parquet(cli.tmp / "w.parquet")) == 5


@pytest.mark.parametrize(
    ("header", "column"),
    [
        pytest.param("TaskID,model", "TaskID", id="TaskID"),
        pytest.param("model;taskid", "taskid", id="taskid-semicolon"),
    ],
)
def test_the_ids_column_is_found_in_any_case_and_named(
    cli: Cli, msim: Simulator, header: str, column: str
) -> None:
    ids = msim.task_ids("terminal")[:3]
    sep = ";" if ";" in header else ","
    rows = "".join(
        (f"{i}{sep}veo3\n" if header.startswith("Task") else f"veo3{sep}{i}\n") for i in ids
    )
    proc = cli(
        "fetch", "-", "--base-url", msim.base_url, "--no-progress", stdin=f"{header}\n{rows}"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"task ids from column '{column}' of <stdin>" in proc.stderr
    assert proc.stdout.startswith("3 tasks (")


# --- input refused before any request --------------------------------------------------
NOTES = "veo_task_1\n\nveo_task_2\nthe second one failed, ask support\n"


@pytest.mark.parametrize(
    ("name", "text", "needles"),
    [
        pytest.param(
            "notes.txt", NOTES, ["notes.txt, line 4", "'the second one failed"], id="notes"
        ),
        pytest.param(
            "README.md",
            "```bash\nveo-notebook demo\n```\n",
            ["README.md, line 1", "'```bash'"],
            id="markdown",
        ),
        pytest.param(
            "ids.csv",
            "taskId,model\nt1,veo3\nt 2,veo3\n",
            ["ids.csv, line 3, column 'taskId'", "'t 2'"],
            id="csv-cell",
        ),
    ],
)
def test_an_ids_file_that_is_not_ids_is_refused_and_nothing_is_sent(
    cli: Cli, msim: Simulator, name: str, text: str, needles: list[str]
) -> None:
    (cli.tmp / name).write_text(text, encoding="utf-8")
    msim.reset_stats()
    proc = cli("fetch", name, "--store", "s.sqlite", "--base-url", msim.base_url, "--no-progress")
    _error(proc, 2, *needles, "is not a task id", "nothing was sent")
    assert msim.stats()["requests"] == 0
    assert not (cli.tmp / "s.sqlite").exists()


@pytest.mark.parametrize("kind", ["parquet", "arrow"])
def test_a_parquet_or_arrow_file_of_tasks_is_read_through_its_task_id_column(
    cli: Cli, msim: Simulator, kind: str
) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather

    ids = msim.task_ids("terminal")[:4]
    table = pa.table({"model": ["veo3"] * 4, "task_id": ids})
    path = cli.tmp / f"tasks.{kind}"
    if kind == "parquet":
        pd.DataFrame({"model": ["veo3"] * 4, "task_id": ids}).to_parquet(path)
    else:
        feather.write_feather(table, path)  # the Arrow IPC file format
    msim.reset_stats()
    proc = cli("fetch", path.name, "--base-url", msim.base_url, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("4 tasks (")
    assert f"task ids from column 'task_id' of {path.name}" in proc.stderr
    assert set(msim.stats()["by_task"]) == set(ids)


def test_a_frame_written_by_fetch_feeds_the_next_fetch(cli: Cli, msim: Simulator) -> None:
    (cli.tmp / "ids.txt").write_text("\n".join(msim.task_ids("terminal")[:3]) + "\n")
    base = ["--base-url", msim.base_url, "--no-progress"]
    assert cli("fetch", "ids.txt", "--out", "tasks.parquet", *base).returncode == 0
    again = cli("fetch", "tasks.parquet", "--refresh", "all", *base)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("3 tasks (")


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        pytest.param(
            ["fetch", "ids.txt", "--output", "x.parquet"],
            ["unrecognized arguments: --output x.parquet", "did you mean --out?"],
            id="output",
        ),
        pytest.param(
            ["fetch", "ids.txt", "--base_url", "http://127.0.0.1:1"],
            ["did you mean --base-url?"],
            id="base_url-spelling",
        ),
        pytest.param(
            ["fetch", "ids.txt", "--base-url", "127.0.0.1:8765"],
            ["--base-url must be an http(s) URL", "'127.0.0.1:8765'"],
            id="scheme-less-base-url",
        ),
        pytest.param(
            ["fetch", "ids.txt", "--base-url", "http://api.kie.ai"],
            ["--base-url refuses to send the API key over plain http"],
            id="remote-plain-http",
        ),
        pytest.param(
            ["archive", "--dest", "v", "--workers", "100000"],
            ["argument --workers", "from 1 to 64", "'100000'"],
            id="huge-workers",
        ),
    ],
)
def test_a_mistyped_option_is_named_as_typed_and_nothing_is_sent(
    cli: Cli, msim: Simulator, argv: list[str], needles: list[str]
) -> None:
    (cli.tmp / "ids.txt").write_text("\n".join(msim.task_ids()[:5]) + "\n")
    msim.reset_stats()
    line = _error(cli(*argv), 2, *needles)
    assert not any(f"{p} must" in line for p in ("base_url", "workers"))  # no Python parameter
    assert msim.stats()["requests"] == 0
    assert not cli.default_store.exists()


def test_the_workers_maximum_is_documented() -> None:
    from veo_notebook.archive import MAX_WORKERS

    parser = build_parser()
    text = parser.commands["archive"].format_help()
    assert f"1 to {MAX_WORKERS}" in " ".join(text.split())


def test_every_mistake_is_one_line_with_exit_2(cli: Cli, msim: Simulator) -> None:
    (cli.tmp / "empty.txt").write_text("\n  \n")
    (cli.tmp / "header-only.csv").write_text("taskId,model\n")
    (cli.tmp / "ids.csv").write_text("id,model\nt1,veo3\n")
    base = ["--base-url", msim.base_url, "--no-progress"]
    _error(cli("demo", "--n-tasks", "-5"), 2, "--n-tasks", "at least 1", "'-5'")
    _error(cli("fetch", "empty.txt", *base), 2, "empty.txt holds no task id")
    _error(cli("fetch", "header-only.csv", *base), 2, "holds no task id", "'taskId'")
    _error(cli("fetch", "ids.csv", *base), 2, "taskId or task_id", "['id', 'model']")
    _error(cli("fetch", "missing.txt", *base), 2, "no file of task ids at missing.txt")
    _error(cli("fetch", "empty.txt", *base, key=None), 2, "no API key: set KIE_API_KEY")
    _error(cli("watch", "empty.txt", "--timeout", "soon"), 2, "--timeout", "'soon'")
    _error(cli("simulate", "--fault-rate", "2"), 2, "probability")
    _error(cli("fetch", "x", "--bogus"), 2, "unrecognized arguments: --bogus")
    (cli.tmp / "one.txt").write_text("t1\n")
    _error(cli("fetch", "one.txt", "--store", "no/s.sqlite"), 2, "--store", "does not exist")
    _error(cli("report", "--parquet", "no.parquet", "--out", "r.md"), 2, "no.parquet")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        _error(
            cli("simulate", "--port", port),
            2,
            f"cannot listen on 127.0.0.1:{port}",
            "in use",
            "--port",
        )
    assert not cli.default_store.exists()


def test_a_failure_is_one_line_with_exit_1_and_v_shows_the_traceback(cli: Cli) -> None:
    (cli.tmp / "notes.sqlite").write_text("not a database\n" * 20)
    _error(
        cli("report", "--store", "notes.sqlite", "--out", "r.html"),
        1,
        "notes.sqlite",
        "not a veo-notebook store",
    )
    for argv in (["-v", "export"], ["export", "-v"]):  # -v before or after the sub-command
        proc = cli(*argv, "--store", "notes.sqlite", "--out", "t.parquet", traceback_ok=True)
        assert proc.returncode == 1 and "Traceback" in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("veo-notebook: error: ")
    assert (cli.tmp / "notes.sqlite").read_text().startswith("not a database")  # untouched


def test_help_teaches_and_version_prints(cli: Cli) -> None:
    top = cli("--help")
    assert top.returncode == 0
    for needle in (
        "KIE_API_KEY",
        "KIE_BASE_URL",
        "VEO_STORE",
        str(cli.default_store),
        "exit codes",
        "130",
        "examples:",
        "veo-notebook demo --out demo-out",
    ):
        assert needle in top.stdout, needle
    assert "``" not in top.stdout and "::" not in top.stdout  # no raw RST
    sub = cli("fetch", "--help")
    assert sub.returncode == 0 and "examples:" in sub.stdout and "--refresh" in sub.stdout
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("veo-notebook ")


# ============================================================================ in-process
def _walk(parser: argparse.ArgumentParser, prog: str = "veo-notebook"):
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{prog} {name}")


def test_every_option_and_subcommand_has_help() -> None:
    missing = []
    for prog, parser in _walk(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{prog} {'/'.join(action.option_strings) or action.dest}")
        if prog != "veo-notebook":
            assert parser.description, f"{prog} has no description"
            assert parser.epilog and "examples:" in parser.epilog, f"{prog} has no example"
    assert not missing, f"options without help: {missing}"


def test_the_exit_codes_are_in_the_docs_cli_section() -> None:
    cli_page = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    cli_section = cli_page.read_text(encoding="utf-8")
    for code in EXIT_CODES:
        assert f"| {code} |" in cli_section, code
    for name in ("KIE_API_KEY", "KIE_BASE_URL", "VEO_STORE", "XDG_DATA_HOME"):
        assert name in cli_section, name
