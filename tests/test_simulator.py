"""The simulator, over a real socket: auth, 422s, counters, rate limit, faults, clock, corpus."""

from __future__ import annotations

import http.client
import logging
import re
import statistics
import threading
import time
from collections import Counter

import orjson
import pytest
import requests
from conftest import SENTINEL_KEY

from veo_notebook import simulator
from veo_notebook.simulator import RECORD_PATH, Simulator, corpus, serve, serve_forever
from veo_notebook.simulator._state import SimClock
from veo_notebook.simulator.faults import FAULT_NAMES, Fault, FaultPlan

AUTH = {"Authorization": f"Bearer {SENTINEL_KEY}"}


def get(
    sim: Simulator, task_id: str | None, headers: dict | None = None, **kw
) -> requests.Response:
    params = {} if task_id is None else {"taskId": task_id}
    return requests.get(
        sim.base_url + RECORD_PATH,
        params=params,
        headers=AUTH if headers is None else headers,
        **kw,
    )


# --- the record, auth, 422s ---------------------------------------------------------------
def test_terminal_record_has_the_documented_shape(sim):
    tid = sim.task_ids("terminal")[0]
    r = get(sim, tid)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    env = r.json()
    assert env["code"] == 200 and env["msg"] == "success"
    data = env["data"]
    assert data["taskId"] == tid and data["successFlag"] in (1, 2, 3)
    assert {
        "paramJson",
        "completeTime",
        "createTime",
        "response",
        "errorCode",
        "errorMessage",
    } <= set(data)
    assert isinstance(orjson.loads(data["paramJson"]), dict)
    assert env == sim.record(tid)


def test_pending_record_is_generating_without_result(fresh_sim):
    sim = fresh_sim(clock_speed=0)  # frozen: session-sim tasks finish as the suite runs
    data = get(sim, sim.task_ids("pending")[0]).json()["data"]
    assert data["successFlag"] == 0
    assert data["completeTime"] is None and data["response"] is None and data["errorCode"] is None


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer sk-wrong"}, id="wrong"),
        pytest.param({"Authorization": SENTINEL_KEY}, id="no-bearer"),
    ],
)
def test_bad_key_is_http_200_envelope_401(sim, headers):
    r = get(sim, sim.task_ids()[0], headers=headers)
    assert r.status_code == 200
    assert r.json() == {"code": 401, "msg": "You do not have access permissions", "data": None}


@pytest.mark.parametrize(
    ("which", "msg"),
    [
        pytest.param("unknown", "record is null.", id="unknown"),
        pytest.param("expired", "Temporarily supports records within 14 days.", id="expired"),
        pytest.param(None, "taskId is required.", id="missing-param"),
        pytest.param("   ", "taskId is required.", id="blank"),
    ],
)
def test_422_envelopes(sim, which, msg):
    tid = {"unknown": "veo_does_not_exist", "expired": sim.task_ids("expired")[0]}.get(which, which)
    r = get(sim, tid)
    assert r.status_code == 200
    assert r.json() == {"code": 422, "msg": msg, "data": None}


def test_odd_ids_round_trip_url_encoded(sim):
    sim.reset_stats()
    odd = "a b&c#d/é"
    assert get(sim, odd).json()["msg"] == "record is null."
    assert sim.stats()["by_task"] == {odd: 1}


def test_no_user_agent_is_refused_like_the_cdn(sim):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)  # sends no User-Agent
    conn.request("GET", f"{RECORD_PATH}?taskId={sim.task_ids()[0]}", headers=AUTH)
    resp = conn.getresponse()
    assert resp.status == 403 and resp.read() == b"error code: 1010"
    conn.close()


def test_keep_alive_serves_several_requests_on_one_connection(sim):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    ids = sim.task_ids("terminal")[:3]
    for tid in ids:
        conn.request("GET", f"{RECORD_PATH}?taskId={tid}", headers={**AUTH, "User-Agent": "t"})
        resp = conn.getresponse()
        body = resp.read()
        assert int(resp.headers["Content-Length"]) == len(body)
        assert orjson.loads(body)["data"]["taskId"] == tid
    assert conn.sock is not None  # still the same, open connection
    conn.close()


def test_repr_and_logs_never_show_the_key(sim, caplog):
    assert SENTINEL_KEY not in repr(sim)
    with caplog.at_level(logging.DEBUG, logger="veo_notebook.simulator"):
        get(sim, sim.task_ids()[0])
    assert caplog.records and SENTINEL_KEY not in caplog.text


# --- counters and admin -------------------------------------------------------------------
def test_stats_count_by_task_and_outcome(fresh_sim):
    s = fresh_sim()
    a, b = s.task_ids("terminal")[:2]
    for tid in (a, a, b, "nope"):
        get(s, tid)
    get(s, a, headers={})
    st = s.stats()
    assert st["requests"] == 5
    assert st["by_outcome"] == {"ok": 3, "422": 1, "401": 1}
    assert st["by_task"] == {a: 3, b: 1, "nope": 1}
    assert requests.get(s.base_url + "/_sim/stats").json() == st
    assert requests.post(s.base_url + "/_sim/reset").json() == {"ok": True}
    assert s.stats() == {"requests": 0, "by_outcome": {}, "by_task": {}}


def test_counters_are_exact_under_concurrency(fresh_sim):
    s = fresh_sim()
    ids = s.task_ids()[:20]

    def worker() -> None:
        with requests.Session() as session:
            for tid in ids:
                session.get(s.base_url + RECORD_PATH, params={"taskId": tid}, headers=AUTH)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    st = s.stats()
    assert st["requests"] == 320 and st["by_task"] == dict.fromkeys(ids, 16)


def test_admin_ids_faults_and_script_over_http(fresh_sim):
    s = fresh_sim()
    assert requests.get(s.base_url + "/_sim/ids?kind=pending").json() == s.task_ids("pending")
    tid = s.task_ids("terminal")[0]
    requests.post(s.base_url + "/_sim/script", json={"taskId": tid, "faults": ["envelope455"]})
    assert get(s, tid).json()["code"] == 455
    requests.post(s.base_url + "/_sim/faults", json={"rates": {"envelope500": 1.0}})
    assert get(s, tid).json()["code"] == 500
    bad = requests.post(s.base_url + "/_sim/faults", json={"rates": {"nope": 1.0}})
    assert bad.status_code == 400 and "unknown fault" in bad.json()["error"]


# --- rate limit ---------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(fresh_sim):
    s = fresh_sim(rate_limit=3)
    tid = s.task_ids()[0]
    with requests.Session() as session:
        answers = [
            session.get(s.base_url + RECORD_PATH, params={"taskId": tid}, headers=AUTH)
            for _ in range(20)
        ]
    limited = [r for r in answers if r.status_code == 429]
    assert limited and len(limited) < 20
    for r in limited:
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["code"] == 429
    assert s.stats()["by_outcome"]["429"] == len(limited)


# --- faults -------------------------------------------------------------------------------
def _symptom(sim: Simulator, tid: str, timeout: float = 5.0) -> str:
    """What a plain requests client sees: a short label."""
    try:
        r = get(sim, tid, timeout=timeout)
    except requests.Timeout:
        return "timeout"
    except requests.exceptions.ChunkedEncodingError:
        return "incomplete-read"
    except requests.ConnectionError:
        return "connection-error"
    try:
        body = r.json()
    except ValueError:
        return f"http{r.status_code}-not-json"
    return f"http{r.status_code}-code{body['code']}"


EXPECTED = {
    "ok": "http200-code200",
    "envelope500": "http200-code500",
    "envelope455": "http200-code455",
    "envelope408": "http200-code408",
    "http502": "http502-not-json",
    "http503": "http503-not-json",
    "http429": "http429-code429",
    "reset": "connection-error",
    "slow": "timeout",
    "truncated": "http200-not-json",
    "incomplete": "incomplete-read",
    "nonjson": "http200-not-json",
}


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_each_fault_then_recovery(fresh_sim, fault):
    s = fresh_sim(slow_seconds=3.0)
    tid = s.task_ids("terminal")[0]
    s.script(tid, [fault])
    assert _symptom(s, tid, timeout=0.5 if fault == "slow" else 5.0) == EXPECTED[fault]
    assert _symptom(s, tid) == "http200-code200"  # the script is consumed; the next is fine
    assert s.stats()["by_outcome"].get(fault, 0) >= 1


def test_fault_bodies_look_real(fresh_sim):
    s = fresh_sim()
    tid = s.task_ids("terminal")[0]
    s.script(tid, ["http502", "http429", "truncated"])
    r502, r429, cut = get(s, tid), get(s, tid), get(s, tid)
    assert "<html>" in r502.text and r502.headers["Content-Type"].startswith("text/html")
    assert r429.headers["Retry-After"] == "1"
    full = get(s, tid).content
    assert full.startswith(cut.content) and len(cut.content) == len(full) // 2


def test_scripted_sequence_is_consumed_in_order_for_that_id_only(fresh_sim):
    s = fresh_sim()
    a, b = s.task_ids("terminal")[:2]
    s.script(a, ["http502", "envelope455", "ok", "envelope500"])
    assert _symptom(s, b) == "http200-code200"
    seen = [_symptom(s, a) for _ in range(5)]
    assert seen == [
        "http502-not-json",
        "http200-code455",
        "http200-code200",
        "http200-code500",
        "http200-code200",
    ]
    assert s.faults.pending_script(a) == []


def test_slow_answers_do_not_block_other_requests(fresh_sim):
    s = fresh_sim(slow_seconds=5.0)
    slow_id, other = s.task_ids("terminal")[:2]
    s.script(slow_id, ["slow"])
    t = threading.Thread(target=_symptom, args=(s, slow_id, 10.0))
    t.start()
    deadline = time.monotonic() + 30
    while s.stats()["by_outcome"].get("slow", 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # real time: the request thread has to arrive
    assert s.stats()["by_outcome"].get("slow", 0) == 1
    assert _symptom(s, other) == "http200-code200"
    assert t.is_alive()  # the slow answer is still held while the other was served
    s.stop()  # wakes the held answer
    t.join(timeout=5)
    assert not t.is_alive()


def test_fault_rates_are_drawn_per_request(fresh_sim):
    s = fresh_sim(faults={"envelope500": 0.5, "http503": 0.25})
    tid = s.task_ids("terminal")[0]
    seen = Counter(_symptom(s, tid) for _ in range(60))
    assert set(seen) == {"http200-code500", "http503-not-json", "http200-code200"}
    s.set_fault_rates({})
    assert _symptom(s, tid) == "http200-code200"


def test_fault_plan_rejects_unknown_names_and_rates_above_one():
    with pytest.raises(ValueError, match="unknown fault"):
        FaultPlan({"boom": 0.1})
    with pytest.raises(ValueError, match="at most 1"):
        FaultPlan({"reset": 0.7, "slow": 0.7})
    assert Fault.SLOW not in Fault.transient() and Fault.RESET in Fault.transient()


# --- time formats, clock, generate ----------------------------------------------------------
PATTERNS = {
    "iso": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
    "plain": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$",
}


@pytest.mark.parametrize("fmt", ["iso", "plain", "epoch_ms"])
def test_time_formats(fresh_sim, fmt):
    s = fresh_sim(time_format=fmt, n_tasks=50)
    task = s.task(s.task_ids("terminal")[0])
    data = get(s, task.task_id).json()["data"]
    for key in ("createTime", "completeTime"):
        if fmt == "epoch_ms":
            assert isinstance(data[key], int) and data[key] > 1e12
        else:
            assert re.match(PATTERNS[fmt], data[key])
    if fmt == "epoch_ms":
        assert data["createTime"] == round(task.create_ts * 1000)
    if fmt == "plain":  # wall time in UTC+8
        assert data["createTime"] == time.strftime(
            "%Y-%m-%d %H:%M:%S", time.gmtime(task.create_ts + 8 * 3600)
        )


def test_mixed_time_format_uses_all_three_shapes_per_task(fresh_sim):
    s = fresh_sim(time_format="mixed", n_tasks=60)
    shapes = Counter()
    for tid in s.task_ids("terminal")[:30]:
        data = s.record(tid)["data"]
        kinds = {
            "int" if isinstance(data[k], int) else ("iso" if "T" in data[k] else "plain")
            for k in ("createTime", "completeTime")
        }
        assert len(kinds) == 1  # one task, one shape
        shapes.update(kinds)
    assert set(shapes) == {"int", "iso", "plain"}


def test_generate_then_poll_until_complete_on_a_stepped_clock(fresh_sim):
    s = fresh_sim(clock_speed=0)
    r = requests.post(
        s.base_url + simulator.GENERATE_PATH,
        json={
            "prompt": "A cat surfing a wave at sunset",
            "model": "veo3_fast",
            "aspect_ratio": "9:16",
        },
        headers=AUTH,
    )
    env = r.json()
    assert env["code"] == 200 and env["data"]["taskId"].startswith("veo_")
    tid = env["data"]["taskId"]
    latency = s.task(tid).latency_s
    assert latency > 30  # deterministic for seed 0
    flags = [get(s, tid).json()["data"]["successFlag"]]
    s.advance(latency - 1.0)
    flags.append(get(s, tid).json()["data"]["successFlag"])
    s.advance(2.0)
    flags.append(get(s, tid).json()["data"]["successFlag"])
    assert flags == [0, 0, 1]  # generating until it completes, then done
    data = get(s, tid).json()["data"]
    assert orjson.loads(data["paramJson"])["prompt"] == "A cat surfing a wave at sunset"
    assert data["response"]["originUrls"] and data["response"]["resultUrls"][0].startswith(
        f"{s.base_url}/media/"  # the simulator's own media host
    )
    assert tid in s.task_ids("generated") and tid in s.task_ids("success")


def test_a_frozen_clock_keeps_pending_tasks_pending(fresh_sim):
    s = fresh_sim(clock_speed=0.0, start_time=1.8e9, n_tasks=200)
    pending = s.task_ids("pending")
    before = [s.record(t) for t in pending]
    assert s.now() == 1.8e9 and [s.record(t) for t in pending] == before
    assert pending and all(e["data"]["successFlag"] == 0 for e in before)


def test_the_sim_clock_runs_at_its_speed_and_steps_forward_only() -> None:
    real = [100.0]
    clock = SimClock(1.8e9, speed=60.0, real=lambda: real[0])
    woken: list[float] = []
    clock.on_advance(lambda: woken.append(clock.now()))
    real[0] += 2.0  # two real seconds: two sim minutes
    assert clock.now() == 1.8e9 + 120.0
    clock.advance(30.0)
    assert clock.now() == 1.8e9 + 150.0 and woken == [1.8e9 + 150.0]
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1.0)
    frozen = SimClock(1.8e9, speed=0.0, real=lambda: real[0])
    real[0] += 1e6
    assert frozen.now() == 1.8e9


def test_a_stepped_clock_finishes_pending_tasks_and_expires_old_ones(fresh_sim):
    s = fresh_sim(clock_speed=0, n_tasks=300, pending_share=0.1)
    pending = s.task_ids("pending")
    assert pending
    s.advance(max(s.task(t).complete_ts for t in pending) - s.now())
    assert not set(pending) & set(s.task_ids("pending"))
    assert all(s.record(t)["data"]["successFlag"] != 0 for t in pending[:20])
    young = [t for t in s.task_ids("queryable") if s.now() - s.task(t).create_ts < 86400]
    s.advance(14 * 86400.0)
    assert set(young) <= set(s.task_ids("expired"))
    assert s.record(young[0])["msg"] == "Temporarily supports records within 14 days."


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        pytest.param({"model": "veo3"}, "prompt is required.", id="no-prompt"),
        pytest.param({"prompt": "x", "model": "sora"}, "model must be one of", id="bad-model"),
        pytest.param(
            {"prompt": "x", "generationType": "REFERENCE_2_VIDEO"},
            "imageUrls is required",
            id="no-images",
        ),
        pytest.param(
            {"prompt": "x", "aspectRatio": "4:3"}, "aspect_ratio must be one of", id="bad-aspect"
        ),
        pytest.param(
            {"prompt": "x", "callBackUrl": "https://example.com/cb"},
            "callBackUrl must point at a loopback address",
            id="remote-callback-url",
        ),
        pytest.param(
            {"prompt": "x", "callBackUrl": "not a url"},
            "callBackUrl must be an http(s) URL",
            id="bad-callback-url",
        ),
    ],
)
def test_generate_validates_the_body(sim, body, msg):
    env = requests.post(sim.base_url + simulator.GENERATE_PATH, json=body, headers=AUTH).json()
    assert env["code"] == 422 and env["msg"].startswith(msg)


# --- corpus: determinism and shape ----------------------------------------------------------
def test_same_seed_same_records_other_seed_other_ids():
    a = Simulator(seed=3, n_tasks=300, start_time=1.8e9)
    b = Simulator(seed=3, n_tasks=300, start_time=1.8e9)
    c = Simulator(seed=4, n_tasks=300, start_time=1.8e9)
    assert a.task_ids() == b.task_ids() and not set(a.task_ids()) & set(c.task_ids())
    assert [a.record(t) for t in a.task_ids()[:50]] == [b.record(t) for t in b.task_ids()[:50]]
    assert all(re.fullmatch(r"veo_[0-9a-f]{24}", t) for t in a.task_ids())
    assert list(corpus.iter_raw_texts(50, seed=3)) == list(corpus.iter_raw_texts(50, seed=3))


@pytest.fixture(scope="module")
def tasks() -> list[corpus.Task]:
    return [t for block in range(6) for t in corpus.make_block(0, block)]


def test_corpus_latencies_differ_by_model_and_type(tasks):
    def median(**where: str) -> float:
        sel = [
            t.latency_s
            for t in tasks
            if t.final_flag == 1 and all(getattr(t, k) == v for k, v in where.items())
        ]
        return statistics.median(sel)

    assert median(model="veo3") > 1.5 * median(model="veo3_fast") > median(model="veo3_lite")
    assert 60 <= median(task_type="generate", model="veo3_fast") <= 180
    assert 60 <= median(task_type="1080p") <= 180
    assert 300 <= median(task_type="4k") <= 600


def test_corpus_failures_are_realistic(tasks):
    failed = [t for t in tasks if t.final_flag in (2, 3)]
    assert 0.02 < len(failed) / len(tasks) < 0.12
    assert any(t.final_flag == 3 for t in tasks)
    assert {t.error_code for t in failed} >= {400, 500, 501}
    assert all(t.response is None and t.error_message for t in failed)
    for t in failed:
        if not orjson.loads(t.param_json).get("prompt", "").isascii():
            assert t.error_message == "Only English prompts are supported at this time."

    def rate(sel: list[corpus.Task]) -> float:
        return sum(t.final_flag != 1 for t in sel) / len(sel)

    day = corpus.BAD_DAY * 86400
    bad = [t for t in tasks if day <= corpus.DEFAULT_ANCHOR - t.create_ts < day + 86400]
    assert rate(bad) > 1.8 * rate(tasks)
    by_model = {
        m: rate([t for t in tasks if t.model == m]) for m in ("veo3", "veo3_fast", "veo3_lite")
    }
    assert by_model["veo3"] < by_model["veo3_lite"]


def test_corpus_has_every_kind_of_record(tasks):
    assert Counter(t.task_type for t in tasks).keys() == {"generate", "extend", "1080p", "4k"}
    assert (
        Counter(t.model for t in tasks if t.task_type == "generate").most_common(1)[0][0]
        == "veo3_fast"
    )
    ok = [t for t in tasks if t.final_flag == 1]
    for t in ok:
        resp = t.response
        assert "hasAudioList" in resp and "seeds" in resp
        if t.task_type == "generate":
            assert (resp["originUrls"] is None) == (t.aspect_ratio == "16:9")
        if t.task_type == "extend":
            assert resp["fullResultUrls"] and orjson.loads(t.param_json)["model"] in (
                "fast",
                "quality",
            )
        if t.task_type == "4k":
            assert ("mediaIds" in resp or "media_ids" in resp) and resp["imageUrls"]
            assert t.fallback is None
        if t.task_type != "generate":
            assert orjson.loads(t.param_json)["taskId"] == t.parent_id
    assert any(isinstance(t.response["resultUrls"], str) for t in ok)  # the very old format
    assert any("media_ids" in t.response for t in ok) and any("mediaIds" in t.response for t in ok)
    params = [t.param_json for t in tasks]
    for key in ('"aspectRatio"', '"aspect_ratio"', '"waterMark"', '"watermark"'):
        assert any(key in p for p in params)
    young = [t for t in tasks if corpus.DEFAULT_ANCHOR - t.create_ts < 5 * 86400]
    assert all(t.fallback is None for t in young) and any(t.fallback is not None for t in tasks)


def _depth(task: corpus.Task, by_id: dict[str, corpus.Task]) -> int:
    depth = 0
    while task.parent_id is not None:
        task, depth = by_id[task.parent_id], depth + 1
    return depth


def test_families_hang_under_finished_successful_videos(tasks):
    by_id = {t.task_id: t for t in tasks}
    children = [t for t in tasks if t.parent_id is not None]
    assert {t.task_type for t in children} == {"extend", "1080p", "4k"}
    assert all(t.task_type != "generate" for t in children)
    for t in children:
        parent = by_id[t.parent_id]
        assert parent.position < t.position and parent.task_type in ("generate", "extend")
        assert parent.final_flag == 1 and parent.complete_ts < t.create_ts
        assert orjson.loads(t.param_json)["taskId"] == parent.task_id
    pairs = {(t.task_type, by_id[t.parent_id].task_type) for t in children}
    assert {("extend", "extend"), ("1080p", "extend"), ("4k", "extend")} <= pairs
    depths = Counter(_depth(t, by_id) for t in tasks)
    assert max(depths) == 4 and all(depths[d] for d in range(5))
    in_family = {t.task_id for t in children} | {t.parent_id for t in children}
    assert 0.2 < len(in_family) / len(tasks) < 0.4  # documented: about 30 %


def test_failed_upgrades_are_sometimes_retried_and_sometimes_not(tasks):
    upgrades = [t for t in tasks if t.task_type in ("1080p", "4k")]
    failed = [t for t in upgrades if t.final_flag != 1]

    def retries(f: corpus.Task) -> list[corpus.Task]:
        return [
            u
            for u in upgrades
            if (u.parent_id, u.task_type) == (f.parent_id, f.task_type)
            and u.create_ts > f.complete_ts
        ]

    retried = [f for f in failed if retries(f)]
    assert retried and len(retried) < len(failed)  # some are never retried
    assert any(r.final_flag == 1 for f in retried for r in retries(f))  # replaced
    once = Counter((t.parent_id, t.task_type) for t in upgrades if t.final_flag == 1)
    assert sum(n > 1 for n in once.values()) <= 0.02 * len(once)  # a video is upgraded once


def test_a_child_can_outlive_its_expired_parent(fresh_sim):
    sim = fresh_sim(clock_speed=0, start_time=corpus.DEFAULT_ANCHOR, n_tasks=3000)
    expired = set(sim.task_ids("expired"))
    orphans = [
        t
        for t in sim.task_ids("queryable")
        if (parent := sim.task(t).parent_id) is not None and parent in expired
    ]
    assert orphans
    child = get(sim, orphans[0]).json()
    assert child["code"] == 200 and child["data"]["successFlag"] in (1, 2, 3)
    parent_id = orjson.loads(child["data"]["paramJson"])["taskId"]
    gone = get(sim, parent_id).json()
    assert (gone["code"], gone["msg"]) == (422, "Temporarily supports records within 14 days.")


def test_iter_envelopes_streams_any_count_in_each_format():
    envs = list(corpus.iter_envelopes(BLOCK_PLUS := corpus.BLOCK + 7, time_format="mixed"))
    assert len(envs) == BLOCK_PLUS and len({e["data"]["taskId"] for e in envs}) == BLOCK_PLUS
    assert any(e["data"]["successFlag"] == 0 for e in envs)
    with pytest.raises(ValueError, match="time format"):
        next(corpus.iter_envelopes(1, time_format="rfc"))


# --- entry points ---------------------------------------------------------------------------
def test_serve_yields_a_working_base_url_and_stops():
    with serve(SENTINEL_KEY, n_tasks=20) as url:
        assert requests.get(url + "/_sim/stats").json()["requests"] == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/_sim/stats", timeout=2)


def test_serve_forever_logs_url_but_not_a_custom_key(caplog):
    ev = threading.Event()
    t = threading.Thread(
        target=serve_forever,
        kwargs={"port": 0, "api_key": SENTINEL_KEY, "n_tasks": 10, "stop_event": ev},
    )
    with caplog.at_level(logging.INFO, logger="veo_notebook.simulator"):
        t.start()
        deadline = time.monotonic() + 30
        while "listening on" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)  # real time: the server thread has to start
        ev.set()
        t.join(timeout=5)
    assert "http://127.0.0.1:" in caplog.text and SENTINEL_KEY not in caplog.text
    assert simulator.DEFAULT_API_KEY not in caplog.text


def test_cli_simulate_serves_until_ctrl_c():
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "veo_notebook", "simulate", "--port", "0", "--n-tasks", "20"]
    proc = subprocess.Popen([*cmd, "--api-key", SENTINEL_KEY], stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first).group(0)
        ids = requests.get(url + "/_sim/ids?kind=queryable").json()
        r = requests.get(url + RECORD_PATH, params={"taskId": ids[0]}, headers=AUTH, timeout=5)
        assert r.json()["data"]["taskId"] == ids[0]
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and "stopping the simulator" in rest
    assert SENTINEL_KEY not in first + rest


def test_task_id_is_taken_exactly_as_sent(sim):
    tid = sim.task_ids("terminal")[0]
    assert get(sim, tid).json()["code"] == 200
    padded = get(sim, f" {tid} ").json()
    assert (padded["code"], padded["msg"]) == (422, "record is null.")
    assert sim.stats()["by_task"][f" {tid} "] >= 1


def test_every_fault_and_wire_trick_has_one_behaviour() -> None:
    # the dispatch is a table: a fault without an entry fails at import, not in a fallback
    from veo_notebook.simulator import _http
    from veo_notebook.simulator.faults import BEHAVIOUR, Fault, Wire

    assert set(BEHAVIOUR) == set(Fault)
    assert set(_http._WIRE) | {Wire.ANSWER} == set(Wire)


def test_resubmissions_repeat_a_request_minutes_later_and_nothing_else_changes():
    from veo_notebook.simulator import _resubmit

    tasks = corpus.make_block(0, 0, anchor=corpus.DEFAULT_ANCHOR)
    again = _resubmit.resubmit(tasks, seed=0, block=0, share=0.05, now=corpus.DEFAULT_ANCHOR)
    assert _resubmit.resubmit(tasks, seed=0, block=0, share=0.0, now=0.0) is tasks
    assert [t.task_id for t in again] == [t.task_id for t in tasks]  # ids and order kept
    changed = [(a, t) for a, t in zip(again, tasks, strict=True) if a != t]
    assert 10 <= len(changed) <= 120
    by_params = {t.param_json: t for t in tasks}
    for new, _old in changed:
        first = by_params[new.param_json]  # the same request as another task
        assert first.task_id != new.task_id and new.task_type == "generate"
        delay = new.create_ts - first.create_ts
        assert _resubmit.MIN_DELAY_S - 0.01 <= delay <= _resubmit.MAX_DELAY_S + 0.01
        assert new.create_ts <= corpus.DEFAULT_ANCHOR
        if new.response is not None:
            text = orjson.dumps(new.response).decode()
            assert first.task_id not in text and new.task_id[4:] in text
    parents = {t.parent_id for t in tasks}
    assert not any(old.task_id in parents for _new, old in changed)  # no child loses its parent


def test_the_simulator_modules_import_no_circle_not_even_lazily() -> None:
    """Every import counts here, type-checking and function-level ones included."""
    import ast
    from pathlib import Path

    folder = Path(simulator.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        deps = graph.setdefault(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names)
    graph["__init__"] = set()  # the package imports its modules; none imports it back
    assert graph["_constants"] == set()  # the constants import nothing of ours

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        for dep in graph.get(name, ()):
            visit(dep, (*path, name))

    for name in graph:
        visit(name, ())
    assert not any("server" in deps for name, deps in graph.items() if name != "__init__")
