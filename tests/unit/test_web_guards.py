"""The pure rules behind issue 31's guards: Host allow-list, origins, sign-in limits,
URLs made fit to show."""

from __future__ import annotations

import pytest

from aift.auth.hosts import HostPolicy, split_host
from aift.auth.limits import AttemptLimiter
from aift.config import mask_url, redact_url


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("LocalHost:8050", ("localhost", 8050)),
        ("[::1]:8050", ("::1", 8050)),
        ("[::1]", ("::1", None)),
        ("example.com.", ("example.com", None)),
        ("a:b:c", ("a:b:c", None)),
    ],
)
def test_host_headers_split_into_name_and_port(header: str, expected: tuple) -> None:
    assert split_host(header) == expected


def test_loopback_servers_answer_loopback_names_and_ip_literals_only() -> None:
    policy = HostPolicy.build("127.0.0.1", ["aift.test", ".corp.test"], [])
    for host in ("localhost:8050", "127.0.0.1", "[::1]:1", "x.localhost", "10.0.0.5:8050"):
        assert policy.host_allowed(host), host
    for host in ("aift.test", "gpu.corp.test", "corp.test"):
        assert policy.host_allowed(host), host
    for host in ("evil.example", "localhost.evil.example", "aift.test.evil", "", "xcorp.test"):
        assert not policy.host_allowed(host), host
    assert policy.host_allowed(None), "no Host: not a browser"
    assert HostPolicy.build("127.0.0.1", ["*"], []).host_allowed("anything.example")


def test_a_wide_bind_also_answers_the_machines_own_name() -> None:
    import socket

    name = socket.gethostname()
    assert HostPolicy.build("0.0.0.0", [], []).host_allowed(f"{name}:8050")
    assert not HostPolicy.build("127.0.0.1", [], []).host_allowed(f"{name}.invalid")
    assert HostPolicy.build("aift.lan", [], []).host_allowed("aift.lan:8050")


def test_origins_are_ours_when_they_name_the_host_and_port_asked() -> None:
    policy = HostPolicy.build("127.0.0.1", [], ["https://app.example.com/"])
    assert policy.origin_allowed("http://127.0.0.1:8050", "127.0.0.1:8050")
    assert policy.origin_allowed("http://localhost", "localhost:80")
    assert policy.origin_allowed("https://aift.test", "aift.test")
    assert not policy.origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8050")
    assert not policy.origin_allowed("http://localhost:8050", "127.0.0.1:8050")
    assert not policy.origin_allowed("null", "127.0.0.1:8050")
    assert not policy.origin_allowed("http://127.0.0.1:8050", None)
    assert policy.origin_allowed("https://app.example.com", "127.0.0.1:8050"), "trusted"


def test_only_state_changing_browser_requests_are_checked() -> None:
    policy = HostPolicy.build("127.0.0.1", [], [])
    host = "127.0.0.1:8050"
    assert policy.cross_site_reason("GET", "http://evil.example", None, host) is None
    assert policy.cross_site_reason("POST", None, None, host) is None, "curl, SDKs"
    assert policy.cross_site_reason("POST", None, "same-origin", host) is None
    assert policy.cross_site_reason("POST", None, "none", host) is None
    assert policy.cross_site_reason("POST", None, "same-site", host)
    assert policy.cross_site_reason("DELETE", "http://evil.example", None, host)
    assert policy.cross_site_reason("WEBSOCKET", "http://evil.example", None, host)
    assert policy.cross_site_reason("POST", f"http://{host}", "same-origin", host) is None


def test_failed_sign_ins_are_limited_per_client_for_a_minute() -> None:
    now = [0.0]
    limiter = AttemptLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("a") is None
        limiter.failed("a")
    wait = limiter.retry_after("a")
    assert wait is not None and 59 <= wait <= 60
    assert limiter.retry_after("b") is None, "another client is not affected"
    now[0] = 61.0
    assert limiter.retry_after("a") is None, "the window slides"
    limiter.failed("a")
    limiter.succeeded("a")
    assert limiter.retry_after("a") is None


def test_urls_shown_lose_their_credentials() -> None:
    assert mask_url("http://user:pw@host:11434/x?key=abc") == "http://user:***@host:11434/x?key=***"
    assert mask_url("https://tok3n@ollama.example/") == "https://***@ollama.example/"
    assert mask_url("redis://localhost:6379/0") == "redis://localhost:6379/0"
    url = "http://aift:hunter22@10.0.0.2:11434"
    message = redact_url(f"cannot reach {url}: connection refused for hunter22", url)
    assert "hunter22" not in message and "aift:***@10.0.0.2:11434" in message
