"""API key, CORS, request ids and refusing unsafe binds, on a real server."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.integration.conftest import LiveServer, aift_env, free_port, wait_for

KEY = "test-key-123"


def test_api_key_is_required_when_set(server_factory) -> None:  # noqa: ANN001
    server: LiveServer = server_factory(AIFT_API_KEY=KEY)
    with server.client() as client:
        assert client.get("/healthz").status_code == 200
        missing = client.get("/api/v1/jobs")
        assert missing.status_code == 401
        assert client.get("/api/v1/system/doctor").status_code == 401
        assert client.get("/api/v1/evaluations").status_code == 401
        page = client.get("/evaluations", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        scored = {"messages": [{"role": "user", "content": "q"}], "replies": ["a"]}
        assert client.post("/api/v1/models/x/score", json=scored).status_code == 401
        assert client.get("/api/v1/arena/leaderboard").status_code == 401
        battle = {"prompt": "q", "models": ["a", "b"]}
        assert client.post("/api/v1/arena/battles", json=battle).status_code == 401
        assert client.post("/api/v1/arena/battles/x/answers/a").status_code == 401
        arena = client.get("/arena", headers={"Accept": "text/html"}, follow_redirects=False)
        assert arena.status_code == 303 and arena.headers["location"] == "/login"
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "AIFT_API_KEY" in missing.json()["error"]["message"]
        wrong = client.get("/api/v1/jobs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        system = client.get("/api/v1/system", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert system["settings"]["api_key"] == "set" and KEY not in json.dumps(system)


def test_browser_sign_in_is_a_server_side_session(server_factory) -> None:  # noqa: ANN001
    """Issue 31: the cookie held the raw API key, never expired, had no logout. Now it
    holds a random session token (HttpOnly, SameSite=Strict, expiring); changes from
    the browser need the page's CSRF token; signing out ends the session on the server;
    a cookie holding the key itself opens nothing."""
    server: LiveServer = server_factory(AIFT_API_KEY=KEY, AIFT_SESSION_HOURS="2")
    with server.client(follow_redirects=False) as client:
        page = client.get("/jobs", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login"
        bad = client.post("/login", data={"api_key": "wrong"})
        assert bad.status_code == 401 and "not right" in bad.text
        good = client.post("/login", data={"api_key": KEY})
        assert good.status_code == 303
        cookie = good.headers["set-cookie"]
        assert cookie.startswith("aift_session=") and KEY not in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=7200" in cookie
        jobs_page = client.get("/jobs", headers={"Accept": "text/html"})
        assert jobs_page.status_code == 200 and "Sign out" in jobs_page.text
        token = re.search(r'name="csrf-token" content="([^"]+)"', jobs_page.text)
        assert token and token.group(1)
        assert client.get("/api/v1/jobs").status_code == 200
        blocked = client.post("/api/v1/models/scan")
        assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "csrf_failed"
        forged = client.post("/api/v1/models/scan", headers={"X-CSRF-Token": "guess"})
        assert forged.status_code == 403
        allowed = client.post("/api/v1/models/scan", headers={"X-CSRF-Token": token.group(1)})
        assert allowed.status_code == 200
        session = client.cookies["aift_session"]
        out = client.post("/logout")
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert client.get("/api/v1/jobs").status_code == 401
    with server.client() as stale:  # the old cookie, kept by a thief: ended on the server
        assert (
            stale.get("/api/v1/jobs", headers={"Cookie": f"aift_session={session}"}).status_code
            == 401
        )
        raw_key = stale.get("/api/v1/jobs", headers={"Cookie": f"aift_api_key={KEY}"})
        assert raw_key.status_code == 401, "a cookie holding the key is no longer a login"
    assert KEY not in server.log() and session not in server.log()


def test_sign_in_attempts_are_limited(server_factory) -> None:  # noqa: ANN001
    server: LiveServer = server_factory(AIFT_API_KEY=KEY, AIFT_LOGIN_ATTEMPTS_PER_MINUTE="3")
    with server.client(follow_redirects=False) as client:
        for _ in range(3):
            assert client.post("/login", data={"api_key": "guess"}).status_code == 401
        limited = client.post("/login", data={"api_key": "guess"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        right = client.post("/login", data={"api_key": KEY})
        assert right.status_code == 429, "while limited, even the right key waits"
        assert "aift_session" not in client.cookies
        api = client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {KEY}"})
        assert api.status_code == 200, "API clients with the key are not locked out"


def test_tensorboard_is_served_behind_the_key(server_factory, tmp_path) -> None:  # noqa: ANN001
    """TensorBoard has no sign-in: it listens on loopback and aift serves it at
    /tensorboard to whoever holds the key (the containers do exactly this)."""
    from torch.utils.tensorboard import SummaryWriter

    workspace = tmp_path / "ws"
    writer = SummaryWriter(str(workspace / "outputs" / "run-1" / "tensorboard"))
    writer.add_scalar("train/loss", 1.0, 0)
    writer.close()
    port = free_port()
    board = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aift.cli",
            "tensorboard",
            "--port",
            str(port),
            "--path-prefix",
            "/tensorboard",
        ],
        env=aift_env(workspace),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server: LiveServer = server_factory(
            workspace, AIFT_API_KEY=KEY, AIFT_TENSORBOARD_URL=f"http://127.0.0.1:{port}"
        )
        with server.client() as client:
            assert client.get("/tensorboard/data/runs").status_code == 401
            keyed = {"Authorization": f"Bearer {KEY}"}

            def runs() -> dict:
                answer = client.get("/tensorboard/data/runs", headers=keyed)
                return {"runs": answer.json()} if answer.status_code == 200 else {}

            assert "run-1/tensorboard" in wait_for(runs, bool, timeout=120)["runs"]
            index = client.get("/tensorboard/", headers=keyed)
            assert index.status_code == 200 and "<html" in index.text.lower()
    finally:
        board.terminate()
        board.wait(timeout=30)


def test_websocket_needs_the_key_too(server_factory) -> None:  # noqa: ANN001
    server: LiveServer = server_factory(AIFT_API_KEY=KEY)
    with pytest.raises(InvalidStatus) as refused:
        with connect(f"{server.ws_url}/ws/jobs/abc", open_timeout=60) as socket:
            socket.recv(timeout=5)
    assert refused.value.response.status_code == 403
    with connect(f"{server.ws_url}/ws/jobs/abc?token={KEY}", open_timeout=60) as socket:
        assert json.loads(socket.recv(timeout=60))["code"] == "not_found"


def test_cors_allows_localhost_origins_only(server: LiveServer) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    with server.client() as client:
        allowed = client.options(
            "/api/v1/jobs", headers={"Origin": "http://localhost:8050", **preflight}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://localhost:8050"
        denied = client.options(
            "/api/v1/jobs", headers={"Origin": "http://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in denied.headers
        simple = client.get("/api/v1/jobs", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in simple.headers


def test_request_ids_are_returned_and_logged(server: LiveServer) -> None:
    with server.client() as client:
        given = client.get("/api/v1/jobs/nope", headers={"X-Request-ID": "trace-42"})
        assert given.headers["x-request-id"] == "trace-42"
        assert given.json()["error"]["request_id"] == "trace-42"
        generated = client.get("/healthz")
        assert len(generated.headers["x-request-id"]) == 16
        hostile = client.get("/healthz", headers={"X-Request-ID": "x" * 500 + "; rm -rf"})
        assert len(hostile.headers["x-request-id"]) == 16
    assert "[trace-42] GET /api/v1/jobs/nope 404" in server.log()


def test_non_loopback_bind_without_a_key_is_refused(tmp_path) -> None:  # noqa: ANN001
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aift.cli",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
        ],
        env=aift_env(tmp_path / "ws"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "AIFT_API_KEY" in result.stderr and "0.0.0.0" in result.stderr


@pytest.mark.parametrize("key", ["", "   ", "too-short"])
def test_blank_or_short_key_does_not_open_a_public_bind(tmp_path, key: str) -> None:  # noqa: ANN001
    """An empty AIFT_API_KEY line (.env, compose) used to start an open public server."""
    result = subprocess.run(
        [sys.executable, "-m", "aift.cli", "serve", "--port", str(free_port())],
        env=aift_env(tmp_path / "ws", AIFT_API_KEY=key, AIFT_HOST="0.0.0.0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "AIFT_API_KEY" in result.stderr and "token_urlsafe" in result.stderr


def test_invalid_settings_stop_the_start_naming_the_variable(tmp_path) -> None:  # noqa: ANN001
    result = subprocess.run(
        [sys.executable, "-m", "aift.cli", "serve"],
        env=aift_env(tmp_path / "ws", AIFT_PORT="eighty"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "AIFT_PORT" in result.stderr
    with pytest.raises(httpx.HTTPError):
        httpx.get("http://127.0.0.1:8050/healthz", timeout=1).raise_for_status()
