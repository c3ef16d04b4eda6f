"""A crash in an engine's native code costs that model, never the server.

A real `aift serve` loads the packaged SmolLM2 with llama.cpp, which runs in a process of
its own. Mid-generation that process gets a real SIGILL (what an AMX kernel on a VM that
cannot execute it does). The requests on that model fail with a 5xx naming the engine
and the signal; the server, its job, its WebSocket and its other models go on; the model
shows as failed and loads again on the next request.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

import httpx
import openai
import psutil
import pytest
from websockets.sync.client import connect

from tests.integration.conftest import LiveServer, wait_for

pytestmark = pytest.mark.packaged_models

MODEL = "SmolLM2-135M-Instruct"
LONG = "Count from 1 to 500, separated by commas: 1, 2, 3, 4, 5,"


def loaded(client: httpx.Client) -> dict[str, Any]:
    entries = client.get("/api/v1/models/loaded").json()
    return next(e for e in entries if e["name"] == MODEL)


def stream_until_failure(server: LiveServer, started: threading.Event, out: dict) -> None:
    """A streamed completion through the official client; records chunks and the error."""
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", timeout=300)
    out["chunks"] = 0
    try:
        for _chunk in client.completions.create(
            model=MODEL, prompt=LONG, max_tokens=600, temperature=0, stream=True
        ):
            out["chunks"] += 1
            if out["chunks"] >= 3:
                started.set()
        out["error"] = None
    except openai.APIError as exc:
        out["error"] = str(exc)
    finally:
        started.set()


def plain_request(server: LiveServer, out: dict) -> None:
    with server.client() as client:
        response = client.post(
            "/v1/completions",
            json={"model": MODEL, "prompt": LONG, "max_tokens": 600, "temperature": 0},
        )
    out["status"], out["body"] = response.status_code, response.json()


def test_a_crashed_engine_fails_its_requests_and_nothing_else(server: LiveServer) -> None:
    client = server.client()
    job = client.post(
        "/api/v1/jobs",
        json={"kind": "system.benchmark", "config": {"steps": 400, "seconds_per_step": 0.5}},
    ).json()
    first = client.post(f"/api/v1/models/{MODEL}/load", json={}).json()
    pid = first["pid"]
    assert pid and pid != server.process.pid and first["state"] == "ready"
    assert psutil.Process(pid).ppid() == server.process.pid, "the engine runs in a child"
    with connect(f"{server.ws_url}/ws/jobs/{job['id']}", open_timeout=60) as socket:
        json.loads(socket.recv(timeout=60))

        started, streamed, plain = threading.Event(), {}, {}
        threads = [
            threading.Thread(target=stream_until_failure, args=(server, started, streamed)),
            threading.Thread(target=plain_request, args=(server, plain)),
        ]
        for thread in threads:
            thread.start()
        assert started.wait(120) and streamed["chunks"] >= 3, streamed
        wait_for(lambda: loaded(client), lambda e: e["busy"] >= 2, timeout=60)  # both generating
        os.kill(pid, signal.SIGILL)  # the native side dies mid-generation
        for thread in threads:
            thread.join(120)

        assert (
            streamed["error"] and "llamacpp" in streamed["error"] and "SIGILL" in streamed["error"]
        )
        assert plain["status"] == 503, plain
        error = plain["body"]["error"]
        assert error["code"] == "engine_crashed"
        assert "llamacpp" in error["message"] and "SIGILL" in error["message"]
        assert client.get("/healthz").status_code == 200
        failed = loaded(client)
        assert failed["state"] == "failed" and "SIGILL" in failed["error"]
        assert 'data-state="failed"' in client.get("/partials/models").text
        assert 'data-state="failed"' in client.get("/partials/dashboard").text
        # the job, its WebSocket and the embedding model were not touched
        event = json.loads(socket.recv(timeout=60))
        assert event["status"] == "running" and event["id"] == job["id"]
    vectors = client.post("/v1/embeddings", json={"model": "multilingual-e5-small", "input": "x"})
    assert vectors.status_code == 200, vectors.text
    time.sleep(1)
    assert server.log().count("crashed (killed by SIGILL") == 1, "logged once"
    scraped = client.get("/metrics").text
    assert 'aift_engine_crashes_total{engine="llamacpp",signal="SIGILL"} 1.0' in scraped

    # the next request loads the model again, in a new process
    again = client.post(
        "/v1/completions", json={"model": MODEL, "prompt": "Hello", "max_tokens": 4}
    )
    assert again.status_code == 200, again.text
    reloaded = loaded(client)
    assert reloaded["state"] == "ready" and reloaded["pid"] not in (None, pid)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    client.post(f"/api/v1/jobs/{job['id']}/cancel")
    wait_for(
        lambda: client.get(f"/api/v1/jobs/{job['id']}").json(),
        lambda j: j["status"] in {"cancelled", "succeeded", "failed"},
        timeout=120,
    )
