"""Transport: the key never travels over plain http off loopback, nor follows a redirect.

* a plain-``http://`` base URL that is not loopback is a :class:`ConfigError` raised
  before any socket is opened or any name resolved (the socket layer is booby-trapped);
* a redirect to another host (127.0.0.1 → localhost) or port drops ``Authorization``,
  proved with recording servers on loopback (and a same-origin redirect keeps it, so
  the recorder would see a leak);
* an ``HTTP_PROXY`` in the environment never sees a loopback request (it would read the
  key in clear).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import SENTINEL_KEY

from veo_notebook import Client, ConfigError, fetch_records
from veo_notebook.cli import main as cli_main

RECORD = "/api/v1/veo/record-info"
BODY = b'{"code":200,"msg":"success","data":{"taskId":"t1","successFlag":1}}'


# --- no socket before the refusal -------------------------------------------------------
@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Booby-trap connect/resolve: any attempt is recorded and fails the call."""
    attempts: list[str] = []

    def trap(name: str) -> Callable[..., Any]:
        def boom(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{name}{args[1:] if name.startswith('socket.') else args}")
            raise AssertionError(f"network touched: {name}")

        return boom

    monkeypatch.setattr(socket.socket, "connect", trap("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", trap("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", trap("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", trap("getaddrinfo"))
    monkeypatch.setattr(socket, "gethostbyname", trap("gethostbyname"))
    return attempts


REMOTE_HTTP = [
    "http://api.kie.ai",
    "http://example.com/",
    "HTTP://EXAMPLE.COM",
    "http://10.0.0.1:8080",
    "http://192.168.1.10",
    "http://0.0.0.0:8765",
    "http://[2001:db8::1]:8080",
    "http://127.0.0.1@evil.example",
    "http://localhost.evil.example",
    "http://127.0.0.1.nip.io",
    "http://evil.example#@127.0.0.1",
    "http://evil.example?@127.0.0.1",
]


@pytest.mark.parametrize("url", REMOTE_HTTP)
def test_plain_http_off_loopback_is_refused_before_any_socket(no_network, url):
    with pytest.raises(ConfigError) as info:
        Client(SENTINEL_KEY, base_url=url)
    assert "http" in str(info.value) and SENTINEL_KEY not in str(info.value)
    assert no_network == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "127.0.0.1:8765", "file:///etc/passwd", ""])
def test_a_base_url_that_is_not_http_is_refused(no_network, url):
    with pytest.raises(ConfigError):
        Client(SENTINEL_KEY, base_url=url)
    assert no_network == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1",
        "http://127.8.9.10:1",
        "http://localhost:1",
        "http://[::1]:1",
        "https://api.kie.ai",
        "https://10.0.0.1",
    ],
)
def test_loopback_http_and_any_https_are_accepted_without_connecting(no_network, url):
    assert Client(SENTINEL_KEY, base_url=url).base_url == url.rstrip("/")
    assert no_network == []


def test_fetch_and_cli_refuse_remote_http_before_any_socket(
    no_network, monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("KIE_API_KEY", SENTINEL_KEY)
    with pytest.raises(ConfigError):
        fetch_records(["veo_task_1"], client=Client(base_url="http://api.kie.ai"), progress=False)
    ids = tmp_path / "ids.txt"
    ids.write_text("veo_task_1\n", encoding="utf-8")
    code = cli_main(["fetch", str(ids), "--base-url", "http://api.kie.ai", "--no-progress"])
    err = capsys.readouterr().err
    assert code != 0 and "http" in err
    assert SENTINEL_KEY not in err
    assert no_network == []


# --- redirects --------------------------------------------------------------------------
class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.redirect_to: str | None = None  # Location for record-info requests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Recorder

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers)))
        if self.path.startswith(RECORD) and self.server.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _recorder() -> Iterator[_Recorder]:
    server = _Recorder()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _auth(headers: dict[str, str]) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == "authorization"), None)


def _leaks(server: _Recorder) -> list[str]:
    return [path for path, h in server.seen if SENTINEL_KEY in repr(h) or SENTINEL_KEY in path]


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("http://localhost:{port}/landing", id="other-host-name"),
        pytest.param("http://127.0.0.1:{port}/landing", id="other-port"),
    ],
)
def test_a_redirect_elsewhere_drops_the_authorization_header(target):
    with _recorder() as origin, _recorder() as other:
        origin.redirect_to = target.format(port=other.server_address[1])
        base = f"http://127.0.0.1:{origin.server_address[1]}"
        outcome = Client(SENTINEL_KEY, base_url=base, max_retries=0).get_record("t1")
        assert outcome.fetch_error is None  # the redirect was followed and answered
        assert _auth(origin.seen[0][1]) == f"Bearer {SENTINEL_KEY}"  # sent to the origin
        assert other.seen, "the redirect was not followed"
        assert [_auth(h) for _, h in other.seen] == [None] * len(other.seen)
        assert _leaks(other) == []


def test_a_same_origin_redirect_keeps_the_header_so_the_recorder_would_see_a_leak():
    with _recorder() as origin:
        origin.redirect_to = f"http://127.0.0.1:{origin.server_address[1]}/landing"
        base = f"http://127.0.0.1:{origin.server_address[1]}"
        Client(SENTINEL_KEY, base_url=base, max_retries=0).get_record("t1")
        landing = [h for path, h in origin.seen if path == "/landing"]
        assert landing and _auth(landing[0]) == f"Bearer {SENTINEL_KEY}"


# --- proxies ----------------------------------------------------------------------------
def test_an_http_proxy_from_the_environment_never_sees_a_loopback_request(monkeypatch):
    with _recorder() as proxy, _recorder() as api:
        proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy_url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        base = f"http://127.0.0.1:{api.server_address[1]}"
        outcome = Client(SENTINEL_KEY, base_url=base, max_retries=0).get_record("t1")
        assert outcome.fetch_error is None
        assert proxy.seen == []  # the key never went to the proxy in clear
        assert len(api.seen) == 1
