"""The one loopback rule (``veo_notebook.net``), and the four places that use it agree."""

from __future__ import annotations

import pytest

from veo_notebook.client import Client
from veo_notebook.errors import ConfigError
from veo_notebook.net import is_loopback
from veo_notebook.simulator.callbacks import check_url

HOSTS = [
    pytest.param("127.0.0.1", True, id="ipv4-loopback"),
    pytest.param("127.5.5.5", True, id="ipv4-loopback-net"),
    pytest.param("127.255.255.254", True, id="ipv4-loopback-top"),
    pytest.param("::1", True, id="ipv6-loopback"),
    pytest.param("[::1]", True, id="ipv6-bracketed"),
    pytest.param("::1%lo", True, id="ipv6-zone"),
    pytest.param("::ffff:127.0.0.1", True, id="ipv4-mapped"),
    pytest.param("localhost", True, id="localhost"),
    pytest.param("LOCALHOST.", True, id="localhost-upper-fqdn"),
    pytest.param("a.localhost", True, id="sub-localhost"),
    pytest.param("api.sim.localhost.", True, id="deep-sub-localhost-fqdn"),
    pytest.param("0.0.0.0", False, id="unspecified-v4"),
    pytest.param("::", False, id="unspecified-v6"),
    pytest.param("[::]", False, id="unspecified-v6-bracketed"),
    pytest.param("10.0.0.1", False, id="private"),
    pytest.param("192.168.1.10", False, id="private-192"),
    pytest.param("128.0.0.1", False, id="next-to-127"),
    pytest.param("::2", False, id="ipv6-not-loopback"),
    pytest.param("::ffff:10.0.0.1", False, id="ipv4-mapped-private"),
    pytest.param("example.com", False, id="public-name"),
    pytest.param("localhost.example.com", False, id="localhost-prefix"),
    pytest.param("notlocalhost", False, id="localhost-suffix-no-dot"),
    pytest.param(".localhost", False, id="empty-label"),
    pytest.param("a..localhost", False, id="empty-inner-label"),
    pytest.param("127.0.0.1.nip.io", False, id="ip-looking-name"),
    pytest.param("", False, id="empty"),
    pytest.param(None, False, id="none"),
]


@pytest.mark.parametrize(("host", "loopback"), HOSTS)
def test_the_loopback_rule(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _url_host(host: str) -> str:
    bare = host.strip("[]")
    return f"[{bare}]" if ":" in bare else host


URL_HOSTS = [p for p in HOSTS if p.values[0] and "%" not in str(p.values[0])]


@pytest.mark.parametrize(("host", "loopback"), URL_HOSTS)
def test_the_client_and_the_simulator_agree_with_the_rule(host: str, loopback: bool) -> None:
    url = f"http://{_url_host(host)}:9"
    assert (check_url(url + "/cb") is None) is loopback
    if loopback:
        assert Client("k", base_url=url).base_url == url
    else:
        with pytest.raises(ConfigError):
            Client("k", base_url=url)
