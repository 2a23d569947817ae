"""Checks: the rule grammar, breached vs suspect, the state in the store, the webhook, and
the real ``veo-notebook check`` run twice across a change against the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _frames import make_frame
from conftest import SENTINEL_KEY

import veo_notebook as veo
from veo_notebook import InputError, Store
from veo_notebook.checks import (
    METRICS,
    NotifyError,
    check,
    history,
    load_rules,
    mask_url,
    parse_rule,
    rules_table,
    run,
)
from veo_notebook.checks._notify import post
from veo_notebook.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the grammar
@pytest.mark.parametrize(
    ("text", "metric", "threshold", "span"),
    [
        pytest.param("failure_rate > 5%", "failure_rate", 0.05, None, id="percent"),
        pytest.param("failure_rate>0.05", "failure_rate", 0.05, None, id="fraction"),
        pytest.param("p90_latency > 300s", "latency", 300.0, None, id="seconds"),
        pytest.param("p99.5_latency >= 5min", "latency", 300.0, None, id="minutes"),
        pytest.param("stuck > 0", "stuck", 0.0, None, id="stuck"),
        pytest.param(
            "generating_longer_than(30min) > 10", "generating_longer_than", 10.0, "30min", id="span"
        ),
        pytest.param(
            "expiring_unarchived(3D) > 0", "expiring_unarchived", 0.0, "3D", id="expiring"
        ),
        pytest.param("spend(1D) > 20000 credits", "spend", 20000.0, "1D", id="credits"),
        pytest.param("duplicates_wasted(1D) > 0", "duplicates_wasted", 0.0, "1D", id="wasted"),
        pytest.param("callbacks_missing > 2%", "callbacks_missing", 0.02, None, id="callbacks"),
    ],
)
def test_rules_parse(text: str, metric: str, threshold: float, span: str | None) -> None:
    rule = parse_rule(text)
    assert (rule.metric, rule.span) == (metric, span)
    assert rule.threshold == pytest.approx(threshold)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("failure_rate 5%", "does not read as", id="no-operator"),
        pytest.param("failure_ratio > 5%", "unknown metric 'failure_ratio'", id="unknown"),
        pytest.param("failure_rate > 5s", "use '%'", id="wrong-unit"),
        pytest.param("failure_rate > 5", "write 5% or 0.05", id="share-above-1"),
        pytest.param("spend > 10", "needs a span", id="span-missing"),
        pytest.param("stuck(1h) > 0", "takes no argument", id="span-extra"),
        pytest.param("spend(soon) > 10", "not a time span", id="bad-span"),
        pytest.param("p0_latency > 1s", "percentile", id="p0"),
    ],
)
def test_a_bad_rule_is_one_line_naming_the_fix(text: str, needle: str) -> None:
    with pytest.raises(InputError, match="rule") as info:
        parse_rule(text)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_the_docs_print_the_one_rule_table() -> None:
    page = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    assert rules_table() in page, "regenerate the table in docs/checks.md from rules_table()"
    assert len(METRICS) == rules_table().count("\n") - 1


def test_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        'window = "2h"\nby = "model"\n'
        'rules = ["failure_rate > 5%", { rule = "p90_latency > 300s", window = "1D" }]\n',
        encoding="utf-8",
    )
    spec = load_rules(path)
    assert [r.text for r in spec.rules] == ["failure_rate > 5%", "p90_latency > 300s"]
    assert (spec.window, spec.by, spec.rules[1].window) == ("2h", ("model",), "1D")
    path.write_text('rule = ["failure_rate > 5%"]\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown keys"):
        load_rules(path)


# ---------------------------------------------------------------- breached and suspect
def _rates(failed: int, ok: int, *, model: str = "veo3") -> pd.DataFrame:
    n = failed + ok
    return make_frame(
        status=["failed"] * failed + ["success"] * ok,
        model=[model] * n,
        create_s=np.linspace(0, 3000, n),
        complete_s=np.linspace(0, 3000, n) + 60,
        fetched_at=pd.Timestamp("2026-03-01 01:00", tz="UTC"),
    )


def test_two_failures_in_twelve_are_suspect_not_breached() -> None:
    rows = check(_rates(2, 10), "failure_rate > 10%", window="1D")
    row = rows.iloc[0]
    assert row["value"] == pytest.approx(2 / 12) and row["n"] == 12
    assert row["ci_low"] < 0.10 < row["value"]
    assert (row["suspect"], row["breached"]) == (True, False)
    strict = check(_rates(2, 10), "failure_rate > 10%", window="1D", strict=True).iloc[0]
    assert (strict["breached"], strict["suspect"]) == (True, False)


def test_a_rate_whose_whole_interval_is_beyond_is_breached() -> None:
    row = check(_rates(40, 160), "failure_rate > 10%", window="1D").iloc[0]
    assert row["ci_low"] > 0.10
    assert (row["breached"], row["suspect"]) == (True, False)
    clear = check(_rates(1, 199), "failure_rate > 10%", window="1D").iloc[0]
    assert not clear["breached"] and not clear["suspect"]


def test_by_gives_one_row_per_group_and_the_window_bounds_the_tasks() -> None:
    df = pd.concat([_rates(40, 160, model="veo3"), _rates(0, 50, model="veo3_fast")])
    df["task_id"] = [f"t{i}" for i in range(len(df))]
    rows = check(df, "failure_rate > 10%", window="1D", by="model").set_index("group")
    assert list(rows.index) == ["veo3", "veo3_fast"]
    assert rows.loc["veo3", "breached"] and not rows.loc["veo3_fast", "breached"]
    late = check(df, "failure_rate > 10%", window="10min").iloc[0]  # the last 10 minutes only
    assert late["n"] < 60
    assert (rows["end"] == pd.Timestamp("2026-03-01 01:00", tz="UTC")).all()


def test_latency_uses_order_statistics_then_kaplan_meier() -> None:
    n = 300
    lat = np.linspace(100, 700, n)
    done = make_frame(
        status=["success"] * n,
        model="veo3",
        create_s=np.arange(n) * 10.0,
        complete_s=np.arange(n) * 10.0 + lat,
        fetched_at=pd.Timestamp("2026-03-01 02:00", tz="UTC"),
    )
    row = check(done, "p90_latency > 300s").iloc[0]
    assert row["interval"] == "order statistics"
    assert row["value"] == pytest.approx(np.quantile(lat, 0.9))
    assert row["breached"] and row["ci_low"] > 300
    waiting = pd.concat(
        [
            done,
            make_frame(
                status=["generating"] * 20,
                model="veo3",
                create_s=[3000.0] * 20,
                fetched_at=pd.Timestamp("2026-03-01 02:00", tz="UTC"),
            ),
        ]
    )
    waiting["task_id"] = [f"t{i}" for i in range(len(waiting))]
    km = check(waiting, "p90_latency > 300s").iloc[0]
    assert km["interval"] == "Kaplan–Meier" and km["n"] == n + 20


def test_counts_are_exact_breached_or_clear_never_suspect() -> None:
    df = make_frame(
        status=["generating"] * 3 + ["success"],
        model="veo3",
        create_s=[0.0, 0.0, 3590.0, 0.0],
        complete_s=[np.nan] * 3 + [60.0],
        fetched_at=pd.Timestamp("2026-03-01 01:00", tz="UTC"),
    )
    rows = check(df, ["stuck > 1", "generating_longer_than(1min) > 2"]).set_index("rule")
    assert rows.loc["stuck > 1", "value"] == 2 and rows.loc["stuck > 1", "breached"]
    assert rows.loc["generating_longer_than(1min) > 2", "value"] == 2  # not the 10 s one
    assert not rows["suspect"].any()
    assert (rows["ci_low"] == rows["value"]).all()


def test_an_empty_window_is_one_clear_row_with_n_zero() -> None:
    rows = check(
        _rates(5, 5), "failure_rate > 5%", window="1D", now=pd.Timestamp("2026-04-01", tz="UTC")
    )
    assert len(rows) == 1 and rows.iloc[0]["n"] == 0 and not rows.iloc[0]["breached"]


def test_callbacks_missing_needs_the_callbacks() -> None:
    with pytest.raises(InputError, match="needs the callbacks"):
        check(_rates(1, 1), "callbacks_missing > 2%")


def test_check_is_public() -> None:
    assert "check" in veo.__all__ and veo.check is check


# ---------------------------------------------------------------- the webhook
class Receiver:
    """A webhook on loopback: keeps every body; answers the scripted statuses, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict] = []
        self.statuses = list(statuses or [])
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = outer.statuses.pop(0) if outer.statuses else 200
                if status == 200:
                    outer.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0-SECRET-path-xyz"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_post_retries_a_503_then_delivers_once() -> None:
    r = Receiver([503])
    try:
        got = post(r.url, {"text": "hi"}, backoff=0.01)
    finally:
        r.close()
    assert got.tries == 2 and r.bodies == [{"text": "hi"}]


def test_a_webhook_that_never_answers_is_one_masked_line() -> None:
    r = Receiver([500, 500, 500])
    try:
        with pytest.raises(NotifyError) as info:
            post(r.url, {"text": "hi"}, backoff=0.01)
    finally:
        r.close()
    assert "SECRET" not in str(info.value) and "HTTP 500" in str(info.value)
    assert mask_url(r.url) in str(info.value) and mask_url(r.url).endswith("/***")


def test_run_notifies_once_per_change_and_keeps_every_run(receiver: Receiver) -> None:
    with Store(":memory:") as store:

        def go(df: pd.DataFrame) -> None:
            rows = check(df, "failure_rate > 10%", window="1D")
            from veo_notebook.checks._notify import message
            from veo_notebook.checks._table import changes, record_run, save_state

            record_run(store, rows, 0.0, False)
            found = changes(store, rows)
            if found:
                post(receiver.url, message(found, "test"))
                save_state(store, found, 0.0)

        for df in (_rates(1, 199), _rates(60, 140), _rates(60, 140), _rates(0, 200)):
            go(df)
        assert [b["rows"][0]["state"] for b in receiver.bodies] == ["breached", "clear"]
        assert "BREACHED failure_rate > 10%" in receiver.bodies[0]["text"]
        runs = history(store)
        assert len(runs) == 4 and runs["breached"].tolist().count(True) == 2
        assert history(store, last=1)["breached"].tolist() == [False]


# ---------------------------------------------------------------- the real command, twice
def _cli(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "veo_notebook", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return proc


def test_cron_twice_across_a_change_notifies_exactly_once(
    tmp_path: Path, sim: Simulator, receiver: Receiver
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIE_", "VEO_"))}
    env.update(KIE_API_KEY=SENTINEL_KEY, VEO_NOTIFY_URL=receiver.url)
    store = tmp_path / "veo.sqlite"
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'window = "30D"\nrules = ["failure_rate > 5%", "stuck > 100"]\n', encoding="utf-8"
    )
    ok_ids, failed_ids = sim.task_ids("success")[:300], sim.task_ids("failed")[:120]
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(ok_ids), encoding="utf-8")
    fetch = ["fetch", str(ids), "--store", str(store), "--base-url", sim.base_url, "--no-progress"]
    assert _cli(*fetch, env=env).returncode == 0
    check_argv = ["check", "--store", str(store), "--rules", str(rules)]

    first = _cli(*check_argv, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "" and receiver.bodies == []

    ids.write_text("\n".join(failed_ids), encoding="utf-8")  # the change: many failures
    assert _cli(*fetch, env=env).returncode == 0
    second = _cli(*check_argv, env=env)
    third = _cli(*check_argv, env=env)  # cron again: nothing new to say
    assert (second.returncode, third.returncode) == (1, 1)
    lines = second.stdout.splitlines()  # generations and upgrades apart, as the report
    assert lines and all(ln.startswith("BREACHED failure_rate > 5%  ") for ln in lines)
    with Store(store, create=False) as s:
        held = len(s)  # every record is terminal: success or failed
        last = history(s, last=1)
    rates = last[last["rule"] == "failure_rate > 5%"]
    assert set(rates["group"]) <= {"generation", "upgrade", "all"}
    assert rates["n"].sum() == held and rates["breached"].sum() == len(lines)
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["rows"][0]["rule"] == "failure_rate > 5%" and body["rows"][0]["breached"]
    for proc in (first, second, third):
        assert "SECRET" not in proc.stdout + proc.stderr and SENTINEL_KEY not in proc.stderr
    with Store(store, create=False) as s:
        assert history(s)["run_at"].nunique() == 3


def test_check_usage_errors_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIE_", "VEO_"))}
    rules = tmp_path / "rules.toml"
    rules.write_text('rules = ["failure_rate > 5 %%"]\n', encoding="utf-8")
    missing = _cli(
        "check", "--store", str(tmp_path / "nope.sqlite"), "--rules", str(rules), env=env
    )
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    with Store(tmp_path / "s.sqlite"):
        pass
    bad = _cli("check", "--store", str(tmp_path / "s.sqlite"), "--rules", str(rules), env=env)
    assert bad.returncode == 2 and "rule" in bad.stderr and bad.stderr.count("\n") == 1


def test_run_in_process_without_webhook_changes_no_state() -> None:
    with Store(":memory:") as store:
        result = run(store, "stuck > 0", window="1D")
        assert result.delivery is None and result.changes == []
        assert len(history(store)) == 1


# ---------------------------------------------------------------- the report's section
def test_the_report_shows_the_last_runs_and_what_tripped(tmp_path: Path) -> None:
    from veo_notebook.checks._table import record_run
    from veo_notebook.reporting.checks import trips

    frames = [_rates(1, 199), _rates(60, 140), _rates(60, 140), _rates(0, 200)]
    with Store(tmp_path / "s.sqlite") as store:
        for i, df in enumerate(frames):
            record_run(store, check(df, "failure_rate > 10%"), 1_000.0 + 300 * i, False)
        runs = history(store)
    changes = trips(runs)
    assert changes["change"].tolist() == ["cleared", "tripped"]
    out = veo.report(_rates(1, 199), tmp_path / "r.md", figures=False, checks=runs)
    text = out.read_text(encoding="utf-8")
    section = text[text.index("## Checks") :]
    assert "4 runs of veo-notebook check" in section
    assert "| tripped |" in section and "| cleared |" in section
    assert "1970-01-01 00:21" in section  # the run that tripped: 1,300 s after the epoch
    for placeholder in ("nan", "NaN", "<NA>", "None"):
        assert placeholder not in section
    plain = veo.report(_rates(1, 199), tmp_path / "p.md", figures=False)
    assert "## Checks" not in plain.read_text(encoding="utf-8")


def test_callbacks_missing_from_the_store(tmp_path: Path) -> None:
    from veo_notebook.callbacks import CallbackTable

    hook = "https://example.org/hook"
    df = make_frame(
        status=["success"] * 10 + ["generating"] * 2,
        model="veo3",
        create_s=[float(i) for i in range(12)],
        complete_s=[60.0 + i for i in range(10)] + [np.nan] * 2,
        callback_url=hook,
        fetched_at=pd.Timestamp("2026-03-01 01:00", tz="UTC"),
    )
    with Store(tmp_path / "s.sqlite") as store:
        table = CallbackTable(store)
        for tid in df["task_id"][:7]:  # 3 finished tasks never called back
            body = {"code": 200, "msg": "ok", "data": {"taskId": tid, "info": {}}}
            table.put(tid, json.dumps(body).encode(), {}, received_at=1.0)
        row = check(df, "callbacks_missing > 2%", callbacks=store).iloc[0]
    assert (row["value"], row["n"]) == (pytest.approx(0.3), 10)  # generating: not yet due
    assert row["ci_low"] > 0.02 and row["breached"]


def test_fetch_first_asks_again_for_the_pending_tasks(tmp_path: Path, fresh_sim) -> None:
    sim = fresh_sim(clock_speed=0)  # a frozen clock: pending stays pending
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIE_", "VEO_"))}
    env["KIE_API_KEY"] = SENTINEL_KEY
    pending = sim.task_ids("pending")[:5]
    store = tmp_path / "veo.sqlite"
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(pending), encoding="utf-8")
    fetch = ["fetch", str(ids), "--store", str(store), "--base-url", sim.base_url, "--no-progress"]
    assert _cli(*fetch, env=env).returncode == 0
    rules = tmp_path / "rules.toml"
    rules.write_text('rules = ["stuck > 100"]\n', encoding="utf-8")
    before = sim.stats()["by_task"]
    argv = ["check", "--store", str(store), "--rules", str(rules), "--fetch"]
    proc = _cli(*argv, "--base-url", sim.base_url, env=env)
    assert proc.returncode == 0, proc.stderr
    after = sim.stats()["by_task"]
    assert all(after.get(t, 0) > before.get(t, 0) for t in pending)
    no_key = {k: v for k, v in env.items() if k != "KIE_API_KEY"}
    assert _cli(*argv, "--base-url", sim.base_url, env=no_key).returncode == 2


def test_a_refused_message_keeps_the_state_for_the_next_run() -> None:
    from veo_notebook.simulator import corpus

    refusing = Receiver([404])  # not retried: the run reports it at once
    always = "failure_rate >= 0%"  # breached whenever a task finished
    try:
        with Store(":memory:") as store:
            for text in corpus.iter_raw_texts(50):
                tid = json.loads(text)["data"]["taskId"]
                store.put(tid, text, fetched_at=corpus.DEFAULT_ANCHOR)
            failing = run(store, always, window="30D", notify=refusing.url)
            assert failing.rows["breached"].all()
            assert failing.notify_error is not None and "HTTP 404" in failing.notify_error
            assert "SECRET" not in failing.notify_error and refusing.bodies == []
            again = run(store, always, window="30D", notify=refusing.url)  # 200 now
            assert again.notify_error is None and len(refusing.bodies) == 1
            assert run(store, always, window="30D", notify=refusing.url).delivery is None
            assert len(refusing.bodies) == 1
    finally:
        refusing.close()


def test_expiring_unarchived_leaves_out_what_the_store_archived(tmp_path: Path) -> None:
    from veo_notebook.archive import ArchiveTable

    now = pd.Timestamp("2026-03-20", tz="UTC")
    done = (now - pd.Timedelta("12D") - pd.Timestamp("2026-03-01", tz="UTC")).total_seconds()
    df = make_frame(  # 4 videos kie.ai deletes in 2 days, 1 already deleted
        status=["success"] * 5,
        model="veo3",
        create_s=[done - 60] * 4 + [0.0],
        complete_s=[done] * 4 + [60.0],
        fetched_at=now,
    )
    with Store(tmp_path / "s.sqlite") as store:
        ArchiveTable(store).put([{"task_id": "t0", "archived_at": 1.0, "sha256": "ab"}])
        row = check(df, "expiring_unarchived(3D) > 2", now=now, archived=store).iloc[0]
        assert (row["value"], row["n"]) == (3, 4) and row["breached"]
        later = check(df, "expiring_unarchived(1D) > 0", now=now, archived=store).iloc[0]
        assert later["value"] == 0 and not later["breached"]


def test_a_store_is_read_by_day_and_status_with_the_same_answers(tmp_path: Path) -> None:
    from veo_notebook.frame import from_store
    from veo_notebook.frame.dataset import SUFFIX
    from veo_notebook.simulator import corpus

    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        texts = list(corpus.iter_raw_texts(3000, 4, "iso", anchor=corpus.DEFAULT_ANCHOR))
        ids = [json.loads(t)["data"]["taskId"] for t in texts]
        store.put_many(
            [(i, t, corpus.DEFAULT_ANCHOR, None) for i, t in zip(ids, texts, strict=True)]
        )
        store.put("gone", None, fetched_at=corpus.DEFAULT_ANCHOR, fetch_error="422 record is null.")
        rules = [
            "failure_rate > 5%",
            "p90_latency > 300s",
            "stuck > 0",
            "expiring_unarchived(3D) > 0",
            "spend(1D) > 100 credits",
        ]
        now = pd.Timestamp(corpus.DEFAULT_ANCHOR, unit="s", tz="UTC")
        by_day = check(store, rules, window="2D", by="model", now=now)
        assert (tmp_path / f"s.sqlite{SUFFIX}").is_dir()  # read from the dataset beside it
        whole = check(from_store(store), rules, window="2D", by="model", now=now)
    pd.testing.assert_frame_equal(by_day, whole)
    assert by_day["n"].sum() > 0 and "unread" not in set(by_day["group"])


def test_a_repeat_counts_when_its_first_submission_is_before_the_span() -> None:
    fetched = pd.Timestamp("2026-03-01 00:15", tz="UTC")
    df = make_frame(  # "a cat" at 0:00 (before the span), again at 0:10 (in it): waste
        status=["success"] * 3,
        model="veo3",
        task_type="generate",
        prompt=["a cat", "a cat", "a dog"],
        create_s=[0.0, 600.0, 700.0],
        complete_s=[60.0, 660.0, 760.0],
        credits=[100.0, 100.0, 100.0],
        fetched_at=fetched,
    )
    row = check(df, "duplicates_wasted(10min) > 0").iloc[0]
    assert (row["value"], row["n"], row["breached"]) == (100.0, 2, True)
    spent = check(df, "spend(10min) > 150 credits").iloc[0]
    assert (spent["value"], spent["n"], spent["breached"]) == (200.0, 2, True)
