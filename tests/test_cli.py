"""The ``veo-notebook fetch`` and ``watch`` commands against the simulator."""

from __future__ import annotations

import io
import sys

import pandas as pd
import pytest
from conftest import SENTINEL_KEY

from veo_notebook import Store, read_parquet
from veo_notebook.cli import main


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
    src.write_text("\n".join([*ids, "", ids[0], "unknown id"]) + "\n", encoding="utf-8")
    store, out_csv = tmp_path / "s.sqlite", tmp_path / "out.csv"
    argv = ["fetch", str(src), "--store", str(store), "--base-url", sim.base_url, "--no-progress"]
    assert main([*argv, "--out", str(out_csv)]) == 0
    out, _ = _no_key_in(capsys)
    assert out.startswith("41 tasks (") and "could not be read" in out and "nan" not in out
    df = pd.read_csv(out_csv)
    assert df["task_id"].tolist() == [*ids, "unknown id"]
    with Store(store) as st:
        assert len(st) == 41
    sim.reset_stats()
    assert main([*argv, "--refresh", "none", "--out", str(tmp_path / "out.parquet")]) == 0
    assert sim.stats()["requests"] == 0
    back = read_parquet(tmp_path / "out.parquet")
    assert back["task_id"].tolist() == [*ids, "unknown id"]


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
        pytest.param("bad-csv", "taskId or task_id", id="csv-without-id-column"),
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
    assert main([*argv, "--store", str(tmp_path / "s.sqlite")]) == 0
    out, _ = _no_key_in(capsys)
    assert out.startswith("4 tasks (") and "generating: 2" in out
    assert all(sim.stats()["by_task"][t] == 1 for t in done)
