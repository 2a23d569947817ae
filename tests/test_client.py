"""The client against the simulator over a real socket: outcomes, faults, retries, the key."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from conftest import SENTINEL_KEY

from veo_notebook import ApiError, AuthError, ConfigError, EndpointError, TransientError
from veo_notebook.client import Client, Outcome
from veo_notebook.client._pacing import AdaptiveLimiter, RetryPolicy
from veo_notebook.simulator import Fault

FAST = {"backoff": 0.01, "backoff_cap": 0.05, "timeout": 2.0}


def _client(sim: Any, **kw: Any) -> Client:
    return Client(SENTINEL_KEY, base_url=sim.base_url, **{**FAST, **kw})


# --- configuration and the key ----------------------------------------------------------
def test_no_key_anywhere_is_a_config_error(no_env_key: None) -> None:
    with pytest.raises(ConfigError, match="KIE_API_KEY"):
        Client(base_url="http://127.0.0.1:9")


def test_key_comes_from_the_environment(sim, monkeypatch) -> None:
    monkeypatch.setenv("KIE_API_KEY", SENTINEL_KEY)
    o = Client(base_url=sim.base_url).get_record(sim.task_ids("terminal")[0])
    assert o.fetch_error is None and o.terminal


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://api.kie.ai", id="plain-http-remote"),
        pytest.param("http://10.0.0.5:8080", id="plain-http-lan"),
        pytest.param("ftp://127.0.0.1", id="ftp"),
        pytest.param("api.kie.ai", id="no-scheme"),
    ],
)
def test_key_is_never_sent_over_plain_http_to_a_remote_host(url: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Client(SENTINEL_KEY, base_url=url)
    assert SENTINEL_KEY not in str(exc.value)


@pytest.mark.parametrize(
    "url", ["https://api.kie.ai", "http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1"]
)
def test_https_and_loopback_are_accepted(url: str) -> None:
    assert Client(SENTINEL_KEY, base_url=url).base_url == url


def test_the_key_is_masked_in_repr_and_attributes() -> None:
    c = Client(SENTINEL_KEY, base_url="https://api.kie.ai")
    for text in (repr(c), str(c), repr(vars(c)), repr(c._key), str(c._key)):
        assert SENTINEL_KEY not in text
    assert repr(c) == "Client(base_url='https://api.kie.ai', api_key='…9c')"
    assert "***" in repr(Client("short", base_url="https://api.kie.ai"))


def test_the_key_never_leaks_into_logs_or_errors(fresh_sim, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    sim = fresh_sim(n_tasks=20)
    tid = sim.task_ids()[0]
    sim.script(tid, ["http503", "reset", "truncated"])
    errors: list[BaseException] = []
    good = _client(sim, max_retries=1)
    with pytest.raises(TransientError) as e1:
        good.get_record(tid)
    errors.append(e1.value)
    with pytest.raises(AuthError) as e2:
        Client(SENTINEL_KEY + "x", base_url=sim.base_url).get_record(tid)
    errors.append(e2.value)
    dead = Client(SENTINEL_KEY, base_url="http://127.0.0.1:9", max_retries=0, **FAST)
    with pytest.raises(EndpointError, match="connection refused") as e3:
        dead.get_record(tid)
    errors.append(e3.value)
    out = capsys.readouterr()
    texts = [caplog.text, out.out, out.err]
    for exc in errors:
        texts += [str(exc), repr(exc), repr(exc.__cause__), str(exc.__context__)]
    assert caplog.text  # the retries were logged
    for text in texts:
        assert SENTINEL_KEY not in text


# --- what one query gives ---------------------------------------------------------------
def test_a_terminal_record_is_kept_exactly_as_received(sim) -> None:
    tid = sim.task_ids("success")[0]
    o = _client(sim).get_record(tid)
    assert isinstance(o, Outcome)
    assert (o.task_id, o.fetch_error, o.terminal, o.attempts) == (tid, None, True, 1)
    assert o.envelope == sim.record(tid)
    assert o.raw is not None and o.raw.startswith("{") and tid in o.raw
    assert o.success_flag == 1


def test_a_pending_record_is_read_but_not_terminal(sim) -> None:
    o = _client(sim).get_record(sim.task_ids("pending")[0])
    assert (o.fetch_error, o.terminal, o.success_flag) == (None, False, 0)


def test_a_failed_task_is_data_not_a_query_error_and_is_not_retried(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=500)
    failed = [t for t in sim.task_ids("failed") if sim.record(t)["data"].get("errorCode") == 500]
    assert failed, "the corpus has tasks that failed with errorCode 500"
    o = _client(sim).get_record(failed[0])
    assert (o.fetch_error, o.terminal, o.attempts) == (None, True, 1)
    assert o.envelope["data"]["errorCode"] == 500
    assert sim.stats()["by_task"][failed[0]] == 1


def test_unknown_and_expired_ids_are_the_rows_fetch_error_without_retry(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=500)
    expired = sim.task_ids("expired")[0]
    c = _client(sim)
    assert c.get_record("no-such-task").fetch_error == "422 record is null."
    o = c.get_record(expired)
    assert o.fetch_error == "422 Temporarily supports records within 14 days."
    assert not o.terminal and o.raw is not None
    assert sim.stats()["by_task"] == {"no-such-task": 1, expired: 1}


# http429 (Retry-After: 1, honoured) has its own test below
@pytest.mark.parametrize("fault", [f.value for f in Fault.transient() if f is not Fault.HTTP429])
def test_each_transient_fault_is_retried_and_recovered(fresh_sim, fault: str) -> None:
    sim = fresh_sim(n_tasks=20, slow_seconds=3.0)
    tid = sim.task_ids("terminal")[0]
    sim.script(tid, [fault, fault])
    o = _client(sim, timeout=0.5).get_record(tid)
    assert (o.fetch_error, o.terminal, o.attempts) == (None, True, 3)
    assert o.envelope == sim.record(tid)
    assert sim.stats()["by_outcome"].get(fault) == 2
    assert sim.stats()["by_task"][tid] == 3


def test_a_slow_answer_times_out_and_is_retried(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=20, slow_seconds=3.0)
    tid = sim.task_ids("terminal")[0]
    sim.script(tid, ["slow"])
    o = _client(sim, timeout=0.3).get_record(tid)
    assert (o.fetch_error, o.attempts) == (None, 2)


def test_transient_faults_that_outlive_the_retries_raise_transient_error(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=20)
    tid = sim.task_ids("terminal")[0]
    sim.script(tid, ["http503"] * 5)
    with pytest.raises(TransientError) as exc:
        _client(sim, max_retries=2).get_record(tid)
    assert exc.value.http_status == 503 and exc.value.task_id == tid
    assert "3 attempts" in str(exc.value)
    assert sim.stats()["by_task"][tid] == 3


def test_429_honours_retry_after_and_a_lone_one_is_not_the_limit(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=20)
    tid = sim.task_ids("terminal")[0]
    sim.script(tid, ["http429"])
    c = _client(sim)
    rate = c.limiter.rate
    o = c.get_record(tid)
    assert o.attempts == 2 and o.fetch_error is None
    # counted, but one refusal among clean answers is no limit (see tests/test_pacing.py)
    assert c.limiter.throttled == 1 and c.limiter.drops == 0
    assert c.limiter.rate >= rate


def test_wrong_key_is_an_auth_error(sim) -> None:
    with pytest.raises(AuthError) as exc:
        Client("sk-wrong-key-123456", base_url=sim.base_url).get_record(sim.task_ids()[0])
    assert exc.value.code == 401 and "refused" in str(exc.value)


def test_odd_ids_arrive_intact(fresh_sim) -> None:
    sim = fresh_sim(n_tasks=5)
    ids = ["a b", "a&b=c", "x#y", "p/q/../r", "ünï 视频 🎬", "a+b%20c", "?taskId=z"]
    c = _client(sim)
    assert [c.get_record(i).fetch_error for i in ids] == ["422 record is null."] * len(ids)
    assert sim.stats()["by_task"] == dict.fromkeys(ids, 1)


def test_no_user_agent_gets_the_cdn_refusal_as_an_api_error(sim) -> None:
    c = Client(SENTINEL_KEY, base_url=sim.base_url, user_agent="")
    with pytest.raises(ApiError, match="403") as exc:
        c.get_record(sim.task_ids()[0])
    assert not isinstance(exc.value, (AuthError, TransientError))


# --- headers on the wire: a recording server --------------------------------------------
class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]
    redirect_to: str | None = None

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, "headers": dict(self.headers)})
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"code":200,"msg":"success","data":{"taskId":"t","successFlag":1}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _serve(host: str, redirect_to: str | None = None) -> tuple[ThreadingHTTPServer, list]:
    seen: list[dict[str, Any]] = []
    handler = type("H", (_Recorder,), {"seen": seen, "redirect_to": redirect_to})
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, seen


@pytest.fixture
def recorder() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def make(host: str = "127.0.0.1", redirect_to: str | None = None) -> tuple[str, list]:
        server, seen = _serve(host, redirect_to)
        servers.append(server)
        return f"http://{host}:{server.server_address[1]}", seen

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


def test_a_real_user_agent_and_the_bearer_key_are_sent(recorder) -> None:
    url, seen = recorder()
    o = Client(SENTINEL_KEY, base_url=url).get_record("t 1&x")
    assert o.terminal
    headers = seen[0]["headers"]
    assert headers["User-Agent"].startswith("veo-notebook/")
    assert f"python-requests/{requests.__version__}" in headers["User-Agent"]
    assert headers["Authorization"] == f"Bearer {SENTINEL_KEY}"
    assert seen[0]["path"] == "/api/v1/veo/record-info?taskId=t+1%26x"


def test_a_redirect_to_another_host_drops_the_key(recorder) -> None:
    target, target_seen = recorder("127.0.0.1")
    # same port space, other host name: "localhost" redirects to "127.0.0.1"
    origin, origin_seen = recorder("127.0.0.1", redirect_to=target)
    origin = origin.replace("127.0.0.1", "localhost")
    o = Client(SENTINEL_KEY, base_url=origin).get_record("t")
    assert o.terminal
    assert origin_seen[0]["headers"]["Authorization"] == f"Bearer {SENTINEL_KEY}"
    assert "Authorization" not in target_seen[0]["headers"]


# --- the limiter and the retry policy (pure, on a fake clock) ---------------------------
class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _send(lim: AdaptiveLimiter, clock: _Clock, n: int) -> list[float]:
    sent = []
    for _ in range(n):
        clock.t = max(clock.t, lim.next_free)
        sent.append(lim.acquire())
        lim.on_success(sent[-1])
    return sent


def test_limiter_paces_evenly_and_probes_up_in_slow_start() -> None:
    clock = _Clock()
    lim = AdaptiveLimiter(start=10.0, clock=clock)
    sent = _send(lim, clock, 40)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert gaps[0] == pytest.approx(0.1)
    assert all(g2 <= g1 + 1e-9 for g1, g2 in itertools.pairwise(gaps))  # speeding up
    assert lim.rate > 30


def test_limiter_cuts_when_refusals_cluster_and_caps_at_max_rate() -> None:
    clock = _Clock()
    lim = AdaptiveLimiter(start=50.0, clock=clock, max_rate=60.0)
    sent = _send(lim, clock, 200)
    assert lim.rate <= 60.0
    for s in sent[-4:]:  # the server's window is full: every answer is a refusal
        lim.on_throttle(s, retry_after=None)
    after_cut = lim.rate
    assert after_cut < 60.0 * 0.96 and lim.drops == 1 and lim.phase == "check"
    lim.on_throttle(sent[-5], retry_after=None)  # same event: no second cut
    assert (lim.rate, lim.drops, lim.throttled) == (after_cut, 1, 5)


def test_retry_policy_is_full_jitter_and_respects_retry_after() -> None:
    p = RetryPolicy(max_retries=3, base=0.5, cap=4.0)
    delays = [p.delay(n) for n in range(6) for _ in range(50)]
    assert min(delays) >= 0 and max(delays) <= 4.0
    assert max(p.delay(0) for _ in range(100)) <= 0.5
    assert p.delay(0, retry_after=3.0) >= 3.0


def test_the_client_reads_its_base_url_from_kie_base_url(monkeypatch) -> None:
    from veo_notebook.config import DEFAULT_BASE_URL, ENV_BASE_URL

    assert Client("k").base_url == DEFAULT_BASE_URL  # conftest unsets it
    monkeypatch.setenv(ENV_BASE_URL, "http://127.0.0.1:9/")
    assert Client("k").base_url == "http://127.0.0.1:9"
    assert Client("k", base_url="https://proxy.example").base_url == "https://proxy.example"
    monkeypatch.setenv(ENV_BASE_URL, "http://api.example")  # read, then checked like any
    with pytest.raises(ConfigError, match="plain http"):
        Client("k")


def test_max_in_flight_below_one_is_one_config_error_everywhere() -> None:
    for make in (lambda: Client("k", max_in_flight=0), lambda: AdaptiveLimiter(max_in_flight=0)):
        with pytest.raises(ConfigError, match="max_in_flight must be at least 1, got 0"):
            make()
