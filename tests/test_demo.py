"""The main job: ``run_demo`` / ``veo-notebook demo`` on the embedded simulator."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import veo_notebook as veo
from veo_notebook import demo
from veo_notebook.archive import ArchiveTable


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, str]:
    out = tmp_path_factory.mktemp("demo") / "out"
    stream = io.StringIO()
    key = "sk-SENTINEL-demo-key-never-shown-1234"
    mp = pytest.MonkeyPatch()
    mp.setattr(demo.secrets, "token_urlsafe", lambda _n=None: key)
    try:
        result = demo.run_demo(out, n_tasks=400, progress=False, watch_seconds=2, stream=stream)
    finally:
        mp.undo()
    return result, stream.getvalue(), key


def test_writes_every_file(demo_run: tuple[dict, str, str]) -> None:
    r, _text, _key = demo_run
    for name in ("ids", "store", "parquet", "report"):
        assert Path(r[name]).is_file(), name
        assert Path(r[name]).parent == Path(r["out_dir"])
    assert veo.read_task_ids(r["ids"]) == veo.read_parquet(r["parquet"])["task_id"].tolist()
    html = Path(r["report"]).read_text(encoding="utf-8")
    assert "<html" in html and "data:image/png;base64," in html
    from test_report import PLACEHOLDERS, visible_text

    assert sorted(set(PLACEHOLDERS.findall(visible_text(html)))) == []


def test_summary_says_no_placeholder(demo_run: tuple[dict, str, str]) -> None:
    _r, text, _key = demo_run
    assert "upgrade task" in text and " NA " not in text and "NaN" not in text


def test_every_task_is_in_store_and_parquet(demo_run: tuple[dict, str, str]) -> None:
    r, _text, _key = demo_run
    df = veo.read_parquet(r["parquet"])
    assert len(df) == r["n_tasks"] == 400
    assert df["task_id"].is_unique
    with veo.Store(r["store"]) as store:
        assert len(store) == 400
    assert set(df["task_type"].dropna()) >= {"generate", "extend", "1080p", "4k"}
    assert set(df["model"].dropna()) >= {"veo3", "veo3_fast", "veo3_lite"}


def test_summary_counts_and_tables(demo_run: tuple[dict, str, str]) -> None:
    r, text, _key = demo_run
    counts = r["counts"]
    assert sum(counts.values()) == 400
    assert counts["success"] > 200
    assert counts.get("unread", 0) > 0  # 16 simulated days: the oldest are past the API's 14
    assert r["generating_first"] > 0  # a share of the batch was still generating
    assert counts.get("generating", 0) < r["generating_first"]  # ... and watching finished some
    assert {"veo3", "veo3_fast"} <= set(r["latency"].index.dropna())
    assert sum(r["failures"].values()) == counts.get("failed", 0) + counts.get(
        "generation_failed", 0
    )
    assert text == r["text"]
    for part in ("tasks by status", "latency of successful tasks", "top failure categories"):
        assert part in text
    for name in ("ids", "store", "parquet", "report"):
        assert str(r[name]) in text
    top = max(r["failures"], key=r["failures"].get)
    assert top in text


def test_the_key_is_never_shown(demo_run: tuple[dict, str, str]) -> None:
    r, text, key = demo_run
    assert key not in text
    for name in ("ids", "store", "parquet", "report"):
        assert key.encode() not in Path(r[name]).read_bytes(), name


def test_cli_demo_in_a_subprocess(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KIE_BASE_URL", "KIE_API_KEY")}
    out = tmp_path / "demo-out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "veo_notebook",
            "demo",
            "--out",
            str(out),
            "--n-tasks",
            "300",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tasks by status" in proc.stdout
    assert str(out / "report.html") in proc.stdout
    assert (out / "tasks.parquet").is_file() and (out / "store.sqlite").is_file()
    assert len(veo.read_parquet(out / "tasks.parquet")) == 300


def test_part_of_the_batch_came_with_callbacks_and_the_report_audits_them(
    demo_run: tuple[dict, str, str],
) -> None:
    r, text, key = demo_run
    cb = r["callbacks"]
    assert cb["tasks"] == 20 and cb["deliveries"] >= cb["received"] > 0
    assert "callbacks (20 tasks created with a callBackUrl" in text
    hooks = veo.read_callbacks(r["callbacks_store"])
    assert hooks["signature_ok"].all() and set(hooks["task_id"]) <= set(veo.read_task_ids(r["ids"]))
    html = Path(r["report"]).read_text(encoding="utf-8")
    assert "<h2>Callbacks</h2>" in html and 'alt="callback_delay"' in html
    assert key not in Path(r["callbacks_store"]).read_bytes().decode("latin-1")


def test_the_videos_are_archived_and_checked(demo_run: tuple[dict, str, str]) -> None:
    r, text, _key = demo_run
    archive, df = r["archive"], veo.read_parquet(r["parquet"])
    assert len(archive) == r["counts"]["success"] == (df["status"] == "success").sum()
    saved = archive.dropna(subset=["path"])
    assert len(saved) > 0.9 * len(archive)
    assert all(Path(p).is_file() and Path(p).parent.parent == r["videos"] for p in saved["path"])
    with veo.Store(r["store"]) as store:
        assert len(ArchiveTable(store).rows()) == len(archive)
    assert "succeeded tasks: archived" in text
    assert "<h2>Delivery</h2>" in Path(r["report"]).read_text(encoding="utf-8")


def test_the_faults_are_said_before_they_happen_and_refusals_are_expected(
    demo_run: tuple[dict, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    r, text, _key = demo_run
    intro, _, summary = text.partition("\nsummary: ")
    assert "Faults injected on purpose" in intro
    for said in ("older than 14 days", "wrong signature 5%", "refuses the forged ones (401)"):
        assert said in intro, said
    assert "no audio track" in intro and "bytes that do not decode" in intro
    assert f"{r['callbacks']['refused']:,} forged deliveries refused (401)" in summary
    assert "WARNING" not in text


def test_counts_read_unambiguously_one_format_per_column(demo_run: tuple[dict, str, str]) -> None:
    import re

    r, text, _key = demo_run
    archive = r["archive"]
    ok = int(archive["archive_error"].isna().sum())
    failed = len(archive) - ok
    line = next(ln for ln in text.splitlines() if ln.startswith("videos of the "))
    assert f"archived {ok:,} files (" in line and f"; {failed:,} failed" in line
    assert "with an error" not in text
    head = text.splitlines().index(next(ln for ln in text.splitlines() if "completed" in ln))
    rows = []
    for ln in text.splitlines()[head + 2 :]:
        if not ln.strip():
            break
        rows.append(ln.split()[-4:])
    assert len(rows) == len(r["latency"])
    for completed, *seconds in rows:
        assert re.fullmatch(r"[\d,]+", completed), completed
        assert all(re.fullmatch(r"[\d,]+\.\d", s) for s in seconds), seconds  # one decimal
    assert "n/a " not in text.split("latency of successful tasks")[1].split("top failure")[0]
