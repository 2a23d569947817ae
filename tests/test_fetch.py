"""Bulk fetch and watch on the simulator: one row per id, resumable, terminal never re-fetched."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from conftest import SENTINEL_KEY

from veo_notebook import (
    AuthError,
    Client,
    EndpointError,
    InputError,
    Store,
    TransientError,
    fetch_records,
    watch,
)
from veo_notebook.fetch import poll_interval, read_task_ids
from veo_notebook.frame import from_store
from veo_notebook.simulator import Simulator

NULL = "422 record is null."
FAST = {"backoff": 0.01, "backoff_cap": 0.05, "timeout": 2.0}


def _client(sim: Simulator, **kw: Any) -> Client:
    return Client(SENTINEL_KEY, base_url=sim.base_url, **{**FAST, **kw})


def _errors(df: pd.DataFrame) -> dict[str, Any]:
    return {
        t: (None if pd.isna(e) else e)
        for t, e in zip(df["task_id"], df["fetch_error"], strict=True)
    }


# --- one row per unique id, whatever happened -------------------------------------------
def test_one_row_per_unique_non_blank_id_in_first_seen_order(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=100)
    term, pend, expired = (
        sim.task_ids("terminal")[:3],
        sim.task_ids("pending")[:1],
        sim.task_ids("expired")[:1],
    )
    ids = [
        term[0],
        "",
        "unknown id",
        None,
        term[0],
        *pend,
        "  ",
        *expired,
        7,
        "7",
        term[1],
        term[2],
    ]
    df = fetch_records(ids, client=_client(sim), progress=False)
    want = [term[0], "unknown id", *pend, *expired, "7", term[1], term[2]]
    assert df["task_id"].tolist() == want
    err = _errors(df)
    assert err["unknown id"] == NULL and err["7"] == NULL
    assert err[expired[0]] == "422 Temporarily supports records within 14 days."
    assert [err[t] for t in (*term, *pend)] == [None] * 4
    assert df.set_index("task_id").loc[pend[0], "status"] == "generating"
    assert sim.stats()["by_task"] == dict.fromkeys(want, 1)  # duplicates queried once


def test_one_string_is_not_a_list_of_ids(sim) -> None:
    with pytest.raises(InputError, match="not one string"):
        fetch_records("veo_task_1", client=_client(sim), progress=False)


def test_an_empty_list_gives_an_empty_typed_frame(sim) -> None:
    df = fetch_records([], client=_client(sim), progress=False)
    assert len(df) == 0 and "task_id" in df.columns


def test_the_frame_is_the_stores_frame(fresh_sim, tmp_path) -> None:
    sim = fresh_sim(n_tasks=100)
    ids = sim.task_ids()[:60]
    df = fetch_records(ids, client=_client(sim), store=tmp_path / "s.sqlite", progress=False)
    with Store(tmp_path / "s.sqlite") as st:
        pd.testing.assert_frame_equal(df, from_store(st, ids))
        assert sorted(st.ids()) == sorted(ids)  # written in the order answered; all there


# --- the store: terminal never re-fetched, refresh modes --------------------------------
def test_a_second_run_queries_only_what_is_not_terminal(fresh_sim, tmp_path) -> None:
    sim = fresh_sim(n_tasks=300, pending_share=0.2)
    ids = sim.task_ids()
    store = tmp_path / "s.sqlite"
    fetch_records(ids, client=_client(sim), store=store, progress=False)
    with Store(store) as st:
        terminal = st.terminal_ids(ids)
    # expired records (422 "within 14 days") will never come back: terminal too
    assert terminal == set(sim.task_ids("terminal")) | set(sim.task_ids("expired"))
    sim.reset_stats()
    df = fetch_records(ids, client=_client(sim), store=store, progress=False)
    assert set(sim.stats()["by_task"]) == set(ids) - terminal  # pending: asked again
    assert len(df) == len(ids)


def test_refresh_all_never_replaces_a_record_with_a_worse_answer(fresh_sim, tmp_path) -> None:
    a = fresh_sim(n_tasks=30, seed=1)
    b = fresh_sim(n_tasks=30, seed=2)  # knows none of a's ids: "record is null."
    ids = a.task_ids("terminal")[:5]
    store = tmp_path / "s.sqlite"
    fetch_records(ids, client=_client(a), store=store, progress=False)
    df = fetch_records(ids, client=_client(b), store=store, refresh="all", progress=False)
    assert b.stats()["by_task"] == dict.fromkeys(ids, 1)  # "all": every id asked again
    assert df["fetch_error"].isna().all() and (df["status"] != "generating").all()
    with Store(store) as st:
        assert all(r["raw"] and r["fetch_error"] is None for r in st.rows(ids))


def test_refresh_none_answers_from_the_store_alone(fresh_sim, tmp_path, no_env_key) -> None:
    sim = fresh_sim(n_tasks=30)
    held = sim.task_ids("terminal")[:3]
    store = tmp_path / "s.sqlite"
    fetch_records(held, client=_client(sim), store=store, progress=False)
    sim.reset_stats()
    df = fetch_records([*held, "never fetched"], store=store, refresh="none", progress=False)
    assert sim.stats()["requests"] == 0  # no client, no key, no query
    assert _errors(df) == {**dict.fromkeys(held), "never fetched": "not in store"}


def test_refresh_must_be_one_of_three(sim) -> None:
    with pytest.raises(InputError, match="refresh"):
        fetch_records(["x"], client=_client(sim), refresh="sometimes", progress=False)  # type: ignore[arg-type]


# --- faults, 401, interruption ------------------------------------------------------------
def test_a_batch_under_random_faults_reads_every_record(fresh_sim) -> None:
    rates = {
        "http503": 0.08,
        "reset": 0.05,
        "envelope500": 0.08,
        "envelope455": 0.04,
        "truncated": 0.04,
        "nonjson": 0.04,
        "incomplete": 0.04,
        "http502": 0.04,
    }
    sim = fresh_sim(n_tasks=200, faults=rates)
    ids = sim.task_ids("queryable")
    df = fetch_records(ids, client=_client(sim, max_retries=8), progress=False)
    assert df["task_id"].tolist() == ids
    assert _errors(df) == dict.fromkeys(ids)
    st = sim.stats()
    assert sum(st["by_outcome"].get(k, 0) for k in rates) > 20  # faults did happen
    assert st["by_outcome"]["ok"] == len(ids)


def test_a_task_whose_retries_run_out_is_a_row_and_is_asked_again_next_run(
    fresh_sim, tmp_path
) -> None:
    sim = fresh_sim(n_tasks=30)
    ids = sim.task_ids("terminal")[:4]
    sim.script(ids[1], ["http503"] * 3)
    store = tmp_path / "s.sqlite"
    df = fetch_records(ids, client=_client(sim, max_retries=2), store=store, progress=False)
    err = _errors(df)
    assert err[ids[1]].startswith("503 ") and "gave up after 3 attempts" in err[ids[1]]
    assert [err[i] for i in (ids[0], *ids[2:])] == [None] * 3
    sim.reset_stats()
    df = fetch_records(ids, client=_client(sim), store=store, progress=False)
    assert sim.stats()["by_task"] == {ids[1]: 1}
    assert df["fetch_error"].isna().all()


def test_a_dead_endpoint_fails_fast_naming_the_url_and_the_cause(tmp_path) -> None:
    c = Client(SENTINEL_KEY, base_url="http://127.0.0.1:9", max_workers=4, **FAST)
    ids = [f"t{i}" for i in range(200)]
    with pytest.raises(
        EndpointError, match=r"cannot reach http://127\.0\.0\.1:9: connection refused"
    ):
        fetch_records(ids, client=c, store=tmp_path / "s.sqlite", progress=False)
    with Store(tmp_path / "s.sqlite") as st:
        assert len(st) == 0  # no row says "connection error" for a URL that never answered


def test_an_api_that_answered_then_stopped_gets_the_long_patience(fresh_sim, tmp_path) -> None:
    sim = fresh_sim(n_tasks=300, clock_speed=0)
    ids = sim.task_ids("terminal")[:250]
    answered = 0

    def stop_after_30(_o: Any) -> None:
        nonlocal answered
        answered += 1
        if answered == 30:
            sim.stop()  # the API goes away mid-batch

    c = _client(sim, max_retries=0, max_workers=2)
    with pytest.raises(TransientError, match="looks down") as exc:
        fetch_records(
            ids, client=c, store=tmp_path / "s.sqlite", progress=False, on_update=stop_after_30
        )
    assert str(tmp_path / "s.sqlite") in str(exc.value)  # it says where the answers are
    with Store(tmp_path / "s.sqlite") as st:
        rows = st.rows()
    good = [r for r in rows if r["fetch_error"] is None]
    failed = [r for r in rows if r["fetch_error"] is not None]
    assert len(good) >= 30 and 20 <= len(failed) < 250 - 30
    assert all(r["fetch_error"].startswith("connection error") for r in failed)


def test_a_wrong_base_url_stops_after_tens_of_requests_and_stores_nothing(
    fresh_sim, tmp_path
) -> None:
    sim = fresh_sim(n_tasks=300)
    c = Client(  # the path twice: 404
        SENTINEL_KEY, base_url=sim.base_url + "/api/v1", max_in_flight=16, **FAST
    )
    with pytest.raises(EndpointError, match=r"does not look like the kie\.ai API"):
        fetch_records(sim.task_ids(), client=c, store=tmp_path / "s.sqlite", progress=False)
    assert sim.stats()["requests"] <= 20 + 2 * 16  # the run, plus what was in flight
    with Store(tmp_path / "s.sqlite") as st:
        assert len(st) == 0


class _Scattered404(BaseHTTPRequestHandler):
    """kie.ai-shaped answers: a record for most ids, an envelope 404 for ids named gone-*."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        tid = parse_qs(urlsplit(self.path).query)["taskId"][0]
        if tid.startswith("gone"):
            env = {"code": 404, "msg": "Not Found", "data": None}
        else:
            env = {"code": 200, "msg": "success", "data": {"taskId": tid, "successFlag": 1}}
        body = json.dumps(env).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_scattered_404_among_records_stays_a_row() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scattered404)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ids = ["t0", *(f"gone-{i}" for i in range(30)), "t1"]
    try:
        c = Client(SENTINEL_KEY, base_url=f"http://127.0.0.1:{server.server_address[1]}", **FAST)
        df = fetch_records(ids, client=c, progress=False, max_workers=1)  # in order
    finally:
        server.shutdown()
        server.server_close()
    err = _errors(df)
    assert [err[i] for i in ids[1:-1]] == ["404 Not Found"] * 30  # 30 > the run of 20: rows
    assert err["t0"] is None and err["t1"] is None


def test_401_midway_stops_the_batch_keeps_what_was_fetched_and_resume_fetches_the_rest(
    fresh_sim, tmp_path, monkeypatch
) -> None:
    sim = fresh_sim(n_tasks=400, clock_speed=0)
    ids = sim.task_ids("terminal")[:250]
    store = tmp_path / "s.sqlite"
    answered = 0

    def revoke_after_60(_o: Any) -> None:
        nonlocal answered
        answered += 1
        if answered == 60:
            monkeypatch.setattr(sim, "_key", "revoked")  # the key is revoked mid-batch

    with pytest.raises(AuthError) as exc:
        fetch_records(
            ids,
            client=_client(sim, max_in_flight=16),  # the bound below: what was in flight
            store=store,
            progress=False,
            on_update=revoke_after_60,
        )
    assert SENTINEL_KEY not in str(exc.value)
    refused = sim.stats()["by_outcome"].get("401", 0)
    assert 1 <= refused <= 2 * 16  # at most what was in flight: no flood of failed queries
    with Store(store) as st:
        held = st.terminal_ids(ids)
        assert len(st) == len(held) >= 60  # only good records stored, none lost
    monkeypatch.undo()
    sim.reset_stats()
    df = fetch_records(ids, client=_client(sim), store=store, progress=False)
    assert set(sim.stats()["by_task"]) == set(ids) - held  # only the rest
    assert df["fetch_error"].isna().all() and len(df) == len(ids)


def test_ctrl_c_keeps_what_was_answered_and_resume_fetches_only_the_rest(
    fresh_sim, tmp_path
) -> None:
    sim = fresh_sim(n_tasks=400, clock_speed=0)
    ids = sim.task_ids("terminal")[:200]
    store = tmp_path / "s.sqlite"
    seen: list[str] = []

    def interrupt(o: Any) -> None:
        seen.append(o.task_id)
        if len(seen) == 80:
            raise KeyboardInterrupt

    in_flight = 16  # the bound below is "at most what was in flight, twice"
    with pytest.raises(KeyboardInterrupt):
        c = _client(sim, max_in_flight=in_flight)
        fetch_records(ids, client=c, store=store, progress=False, on_update=interrupt)
    first = sim.stats()["requests"]
    with Store(store) as st:
        held = st.terminal_ids(ids)
    assert set(seen) <= held and len(seen) == 80  # every answer seen was stored
    assert len(held) < len(ids)
    sim.reset_stats()
    fetch_records(ids, client=_client(sim, max_in_flight=in_flight), store=store, progress=False)
    assert set(sim.stats()["by_task"]) == set(ids) - held
    assert first + sim.stats()["requests"] <= len(ids) + 2 * in_flight


def test_progress_bar_and_logs_never_show_the_key(fresh_sim, capsys, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    sim = fresh_sim(n_tasks=50, faults={"http503": 0.2})
    df = fetch_records(sim.task_ids()[:30], client=_client(sim), progress=True)
    out = capsys.readouterr()
    assert len(df) == 30
    assert "task" in out.err  # the tqdm bar
    for text in (out.out, out.err, caplog.text):
        assert SENTINEL_KEY not in text


# --- watch ----------------------------------------------------------------------------------
def test_watch_polls_only_the_pending_until_all_are_terminal(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=300, clock_speed=100.0, pending_share=0.05)
    # due at least 150 sim-s (1.5 s here) after the first poll, even on a loaded machine
    pending = [t for t in sim.task_ids("pending") if sim.task(t).complete_ts - sim.now() > 150]
    terminal = sim.task_ids("terminal")[:20]
    assert pending
    ids = [*pending, *terminal, "unknown id"]
    updates: list[str] = []
    df = watch(
        ids,
        client=_client(sim),
        progress=False,
        speed=100.0,
        on_update=lambda o: updates.append(o.task_id),
    )
    by_task = sim.stats()["by_task"]
    assert df["task_id"].tolist() == ids
    assert (df.set_index("task_id").loc[pending, "status"] != "generating").all()
    assert all(by_task[t] == 1 for t in terminal)  # terminal: asked once, never again
    assert by_task["unknown id"] == 1  # a per-task error is not re-polled
    assert all(by_task[t] >= 2 for t in pending)
    assert len(updates) == sum(by_task.values())


def test_watch_times_out_and_returns_the_pending_as_generating(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=300, clock_speed=1.0)  # tasks take minutes: none finishes
    pending = sim.task_ids("pending")[:3]
    # 60 s of kie.ai's schedule in 0.6 s: polls at 0, 2.5, ... 30 s, then every 7.5 s
    df = watch(pending, client=_client(sim), progress=False, timeout=60, speed=100.0)
    assert (df["status"] == "generating").all() and df["fetch_error"].isna().all()
    polls = [sim.stats()["by_task"][t] for t in pending]
    assert all(2 <= n <= 18 for n in polls), polls  # polled again, on the schedule, not hammering


def test_poll_interval_follows_kie_ais_advice() -> None:
    assert 2 <= poll_interval(0) <= 3 and 2 <= poll_interval(29) <= 3
    assert 5 <= poll_interval(30) <= 10 and 5 <= poll_interval(119) <= 10
    assert 15 <= poll_interval(120) <= 30 and 15 <= poll_interval(3600) <= 30


# --- reading ids ----------------------------------------------------------------------------
def test_read_ids_from_text_csv_file_object_and_stdin(tmp_path, monkeypatch) -> None:
    txt = tmp_path / "ids.txt"
    txt.write_text("a\n\n  b  \r\nc.d\n", encoding="utf-8")
    assert read_task_ids(txt) == ["a", "b", "c.d"]
    assert read_task_ids(str(txt)) == ["a", "b", "c.d"]
    csv = tmp_path / "ids.csv"
    csv.write_text('\ufeffmodel,taskId\nveo3,"x_1"\nveo3,\nfast,y\n', encoding="utf-8")
    assert read_task_ids(csv) == ["x_1", "y"]
    assert read_task_ids(io.StringIO("task_id\tn\nt1\t1\nt1\t2\n")) == ["t1", "t1"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("s1\ns2\n"))
    assert read_task_ids("-") == ["s1", "s2"]


def test_a_task_id_is_a_token_and_published_ids_all_are(sim) -> None:
    from veo_notebook.fetch import TASK_ID_PATTERN, is_task_id

    published = [
        "4c9a31a5bb61db65d10f1210d78cc08a",  # a real one: 32 hex characters
        "veo_task_abcdef123456",  # kie.ai's docs
        *sim.task_ids("all")[:50],  # the simulator's
        "task-2026.03_01",
    ]
    assert all(is_task_id(i) for i in published)
    for bad in ["", "c d", "# notes", "`id`", "a,b", "id\t2", "ü", "https://x/y", "a/b"]:
        assert not is_task_id(bad), bad
    assert TASK_ID_PATTERN.pattern == "[A-Za-z0-9_.-]+"  # the one rule, as documented


@pytest.mark.parametrize(
    ("text", "where", "shown"),
    [
        pytest.param("t1\n\nsee the notes below\n", "line 3", "'see the notes below'", id="prose"),
        pytest.param("## Tasks\nt1\n", "line 1", "'## Tasks'", id="markdown"),
        pytest.param("task_id;x\nt1;1\nt 2;2\n", "line 3, column 'task_id'", "'t 2'", id="csv"),
        pytest.param("t1\n" + "x" * 200 + " y\n", "line 2", "'" + "x" * 60 + "…'", id="long"),
    ],
)
def test_a_file_with_a_line_that_is_not_a_task_id_is_refused_whole(
    tmp_path, text: str, where: str, shown: str
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_task_ids(path)
    assert str(info.value) == (
        f"{path}, {where}: {shown} is not a task id (letters, digits, _ - . only); nothing was sent"
    )


def test_a_parquet_or_arrow_file_is_read_through_its_task_id_column(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    table = pa.table({"model": ["veo3", "veo3", None], "TaskID": ["a1", None, "b2"]})
    pq.write_table(table, tmp_path / "t.parquet")
    feather.write_feather(table, tmp_path / "t.arrow")
    with (
        pa.OSFile(str(tmp_path / "t.arrows"), "wb") as sink,
        pa.ipc.new_stream(sink, table.schema) as writer,
    ):
        writer.write_table(table)
    for name in ("t.parquet", "t.arrow", "t.arrows"):
        assert read_task_ids(tmp_path / name) == ["a1", "b2"], name
    pq.write_table(pa.table({"id": ["a1"]}), tmp_path / "no-column.parquet")
    with pytest.raises(InputError, match=r"no-column.parquet: a table of task ids needs"):
        read_task_ids(tmp_path / "no-column.parquet")
    pq.write_table(pa.table({"task_id": ["a1", "a 2"]}), tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"bad.parquet, row 2, column 'task_id': 'a 2'"):
        read_task_ids(tmp_path / "bad.parquet")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(InputError, match="is not a text file of task ids"):
        read_task_ids(tmp_path / "image.png")


def test_a_csv_without_an_id_column_is_an_input_error(tmp_path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id,model\nveo_task_1,veo3\n", encoding="utf-8")
    with pytest.raises(InputError, match="taskId or task_id") as exc:
        read_task_ids(path)
    assert "['id', 'model']" in str(exc.value)


def test_a_422_is_not_asked_again_but_a_transient_failure_is(fresh_sim, tmp_path) -> None:
    # one rule (schema.is_pending): a 422, expired or "record is null.", is the API's answer
    # about that id; only a failure that may pass is asked again (refresh="all" asks anyway)
    sim = fresh_sim(n_tasks=100)
    expired, ids = sim.task_ids("expired")[0], [sim.task_ids("expired")[0], "unknown id"]
    flaky = sim.task_ids("terminal")[0]
    sim.script(flaky, ["http503"] * 3)  # the first run's 3 attempts fail
    with Store(tmp_path / "s.sqlite") as store:
        first = _client(sim, max_retries=2)
        fetch_records([*ids, flaky], client=first, store=store, progress=False)
        sim.reset_stats()
        df = fetch_records([*ids, flaky], client=_client(sim), store=store, progress=False)
        assert sim.stats()["by_task"] == {flaky: 1}
        sim.reset_stats()
        fetch_records(ids, client=_client(sim), store=store, refresh="all", progress=False)
        assert sim.stats()["by_task"] == dict.fromkeys(ids, 1)
    assert df.set_index("task_id").loc[flaky, "status"] == "success"
    df = df[df["task_id"] != flaky]
    assert _errors(df) == {
        expired: "422 Temporarily supports records within 14 days.",
        "unknown id": NULL,
    }


def test_watch_over_settled_ids_reads_the_store_in_batches(fresh_sim, tmp_path) -> None:
    # one terminal_ids query per batch of ids, not one per id (was quadratic in the ids)
    sim = fresh_sim(n_tasks=10)
    calls: list[str] = []

    class Counting(Store):
        def query(self, sql: str, params=()):  # type: ignore[no-untyped-def]
            calls.append(sql)
            return super().query(sql, params)

    for n in (300, 3000):
        ids = [f"done{i}" for i in range(n)]
        env = '{"code":200,"msg":"success","data":{"successFlag":1}}'
        with Counting(tmp_path / f"s{n}.sqlite") as st:
            st.put_many((i, env, 1.0, None) for i in ids)
            calls.clear()
            df = watch(ids, client=_client(sim), store=st, progress=False)
        assert len(df) == n and (df["status"] == "success").all()
        assert len(calls) <= 3 * (n // 500 + 1), (n, len(calls))  # SQL "IN" batches of 500
    assert sim.stats()["requests"] == 0


def test_the_refresh_modes_are_one_list() -> None:
    from typing import get_args

    from veo_notebook.cli import build_parser
    from veo_notebook.config import REFRESH_MODES, Refresh

    assert list(get_args(Refresh)) == list(REFRESH_MODES)
    fetch = build_parser()._subparsers._group_actions[0].choices["fetch"]  # type: ignore[union-attr,index]
    [option] = [a for a in fetch._actions if a.dest == "refresh"]
    assert list(option.choices) == list(REFRESH_MODES)
    with pytest.raises(InputError, match="pending, all, none"):
        fetch_records(["t"], refresh="some", progress=False)  # type: ignore[arg-type]


# --- the run's parts: the in-order buffer and the give-up rule ------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_in_order_releases_an_answer_once_every_earlier_one_is_in() -> None:
    from veo_notebook.fetch._run import InOrder

    clock = _Clock()
    buf: InOrder[str] = InOrder(patience=0.5, clock=clock)
    a, b, c = (buf.start() for _ in range(3))
    buf.finish(c, "c")
    buf.finish(b, "b")
    assert buf.ready() == [] and len(buf) == 2  # "a" is still out
    buf.finish(a, "a")
    assert buf.ready() == ["a", "b", "c"] and len(buf) == 0
    buf.start()  # "d"
    e = buf.start()
    buf.finish(e, "e")
    assert buf.ready() == []  # "d" still out, not held long
    buf.start()  # "f", later than "e": does not hold "e" back
    assert buf.ready() == []


def test_in_order_stops_waiting_after_its_patience_and_drains_in_order() -> None:
    from veo_notebook.fetch._run import InOrder

    clock = _Clock()
    buf: InOrder[str] = InOrder(patience=0.5, clock=clock)
    slow, b, c = (buf.start() for _ in range(3))
    buf.finish(c, "c")
    clock.now = 0.4
    buf.finish(b, "b")
    assert buf.ready() == []
    clock.now = 0.5  # patience counts from the first one held
    assert buf.ready() == ["b", "c"]  # released in order, the slow one still out
    buf.finish(slow, "slow")
    assert buf.ready() == ["slow"]
    x, y = buf.start(), buf.start()
    buf.finish(y, "y")
    buf.finish(x, "x")
    assert buf.drain() == ["x", "y"] and buf.ready() == []


def test_give_up_counts_failures_in_a_row_and_scales_with_the_workers() -> None:
    from veo_notebook.fetch._run import GIVE_UP_MIN, GIVE_UP_ROUNDS, GiveUp

    assert GiveUp(workers=1).limit == GIVE_UP_MIN
    assert GiveUp(workers=64).limit == GIVE_UP_ROUNDS * 64
    rule = GiveUp(workers=1)
    for _ in range(GIVE_UP_MIN - 1):
        rule.record(failed=True)
    rule.record(failed=False)  # one answer resets the run
    assert not rule.reached and rule.run == 0
    for _ in range(GIVE_UP_MIN):
        rule.record(failed=True)
    assert rule.reached
    assert isinstance(rule.error("s.sqlite"), TransientError)
    assert f"{GIVE_UP_MIN} tasks in a row" in str(rule.error("s.sqlite"))
