"""Requests that used to end in a 500 or in silently wrong data, against a real server.

Each case here was reproduced against a fresh server with the packaged models: seeds out
of range, empty or too many stop sequences, keep_alive durations that overflow a date,
500s without a request id, base64 embeddings that came back as floats (and corrupted
openai-node's vectors), Ollama's curl examples without a JSON content type, and
embedding inputs given as token ids.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from tests.integration.conftest import LiveServer, start_server
from tests.integration.test_openai_api import prepare_workspace

MODEL = "SmolLM2-135M-Instruct"
NODE_DIR = Path(__file__).parents[1] / "node"
U64_MAX = 18446744073709551615


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_chat_model_dir: Path, tiny_adapter_dir: Path
) -> Iterator[LiveServer]:
    workspace = tmp_path_factory.mktemp("robust") / "ws"
    prepare_workspace(workspace, tiny_chat_model_dir, tiny_adapter_dir)
    live = start_server(workspace)
    yield live
    live.stop()


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def chat(**extra: object) -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2,
        **extra,
    }


def ollama_generate(**extra: object) -> dict:
    return {"model": MODEL, "prompt": "hi", "stream": False, **extra}


def assert_no_unhandled_error(server: LiveServer) -> None:
    assert "unhandled error" not in server.log(), server.log()[-3000:]


def test_seeds_outside_64_bits_are_a_422_not_a_500(http: httpx.Client, server: LiveServer) -> None:
    openai_seed = http.post("/v1/chat/completions", json=chat(seed=U64_MAX))
    assert openai_seed.status_code == 422 and "seed" in openai_seed.text
    ollama_seed = http.post(
        "/api/generate", json=ollama_generate(options={"seed": U64_MAX, "num_predict": 2})
    )
    assert ollama_seed.status_code == 422 and "seed" in ollama_seed.json()["error"]
    random_seed = http.post(
        "/api/generate", json=ollama_generate(options={"seed": -1, "num_predict": 2})
    )
    assert random_seed.status_code == 200, "Ollama's -1 means a random seed"
    assert_no_unhandled_error(server)


def test_empty_or_too_many_stops_are_a_422(http: httpx.Client, server: LiveServer) -> None:
    empty = http.post(
        "/api/chat",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": False,
            "options": {"stop": [""]},
        },
    )
    assert empty.status_code == 422 and "stop" in empty.json()["error"]
    nine = http.post(
        "/api/generate", json=ollama_generate(options={"stop": [f"s{i}" for i in range(9)]})
    )
    assert nine.status_code == 422 and "stop" in nine.json()["error"]
    five = http.post("/v1/chat/completions", json=chat(stop=["a", "b", "c", "d", "e"]))
    assert five.status_code == 422 and "stop" in five.json()["error"]["message"]
    assert_no_unhandled_error(server)


def test_keep_alive_is_bounded_and_takes_go_durations(
    http: httpx.Client, server: LiveServer
) -> None:
    huge = http.post("/api/generate", json=ollama_generate(keep_alive=99999999999999))
    assert huge.status_code == 422 and "-1" in huge.json()["error"], "says how to keep it"
    assert http.get("/api/ps").status_code == 200
    assert http.get("/api/v1/models/loaded").status_code == 200
    load = http.post(f"/api/v1/models/{MODEL}/load", json={"keep_alive": 1e308})
    assert load.status_code == 422 and "keep_alive" in load.text
    went = http.post(
        "/api/generate", json=ollama_generate(keep_alive="1h30m", options={"num_predict": 2})
    )
    assert went.status_code == 200, went.text
    ps = {m["name"]: m for m in http.get("/api/ps").json()["models"]}
    expires = datetime.fromisoformat(ps[MODEL]["expires_at"].replace("Z", "+00:00"))
    ahead = expires - datetime.now(UTC)
    assert timedelta(minutes=80) < ahead <= timedelta(minutes=90, seconds=5)
    for bad in ("soon", "1d", True, "5 minutes"):
        refused = http.post(f"/api/v1/models/{MODEL}/load", json={"keep_alive": bad})
        assert refused.status_code == 422, bad
    assert http.post(f"/api/v1/models/{MODEL}/unload").status_code == 204
    assert_no_unhandled_error(server)


def test_base64_embeddings_are_base64(http: httpx.Client, server: LiveServer) -> None:
    body = {"model": "all-MiniLM-L6-v2", "input": ["a cat", "a kitten"]}
    floats = http.post("/v1/embeddings", json={**body, "encoding_format": "float"}).json()
    packed = http.post("/v1/embeddings", json={**body, "encoding_format": "base64"}).json()
    for as_float, as_b64 in zip(floats["data"], packed["data"], strict=True):
        assert isinstance(as_b64["embedding"], str)
        decoded = np.frombuffer(base64.b64decode(as_b64["embedding"]), dtype="<f4")
        assert decoded.shape == (384,)
        np.testing.assert_allclose(decoded, as_float["embedding"], rtol=1e-6, atol=1e-7)
    with pytest.raises(openai.UnprocessableEntityError, match="384-dimensional"):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0).embeddings.create(
            model="all-MiniLM-L6-v2", input="a cat", dimensions=128
        )


@pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_DIR / "node_modules" / "openai").is_dir(),
    reason="Node.js or the pinned openai-node client is not installed (make test-setup does it)",
)
def test_openai_node_client_gets_the_true_vectors(http: httpx.Client, server: LiveServer) -> None:
    texts = ["a cat", "서울의 날씨"]
    result = subprocess.run(
        ["node", str(NODE_DIR / "embeddings.mjs"), f"{server.url}/v1", "all-MiniLM-L6-v2", *texts],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    vectors = json.loads(result.stdout)["vectors"]
    expected = http.post(
        "/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": texts}
    ).json()["data"]
    assert [len(v) for v in vectors] == [384, 384], "not 96 dimensions of zeros"
    for got, want in zip(vectors, expected, strict=True):
        np.testing.assert_allclose(got, want["embedding"], rtol=1e-6, atol=1e-7)
        assert np.linalg.norm(got) == pytest.approx(1.0, abs=1e-3)


def test_ollama_curl_without_a_json_content_type(server: LiveServer) -> None:
    """`curl http://…/api/chat -d '{…}'` sends application/x-www-form-urlencoded."""
    body = json.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": False,
            "options": {"num_predict": 2},
        }
    )
    for headers in ({"Content-Type": "application/x-www-form-urlencoded"}, {}):
        reply = httpx.post(f"{server.url}/api/chat", content=body, headers=headers, timeout=240)
        assert reply.status_code == 200, reply.text
        assert reply.json()["message"]["role"] == "assistant"
    broken = httpx.post(
        f"{server.url}/api/chat",
        content="{not json",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    assert broken.status_code == 422 and "error" in broken.json()


def test_embedding_inputs_as_token_ids(http: httpx.Client) -> None:
    from transformers import AutoTokenizer

    from aift.models.packaged import ALL_MINILM_L6_V2

    path = ALL_MINILM_L6_V2.locate()
    assert path is not None
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    texts = ["a cat sat on the mat", "the weather in paris"]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    by_text = http.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": texts})
    by_ids = http.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": ids})
    one = http.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": ids[0]})
    assert by_ids.status_code == 200 and one.status_code == 200, by_ids.text
    for a, b in zip(by_text.json()["data"], by_ids.json()["data"], strict=True):
        np.testing.assert_allclose(a["embedding"], b["embedding"], atol=1e-5)
    assert by_ids.json()["usage"]["prompt_tokens"] == sum(len(i) for i in ids)
    assert len(one.json()["data"]) == 1
    outside = http.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": [10**9]})
    assert outside.status_code == 422 and "vocabulary" in outside.text
    nano = http.post("/v1/embeddings", json={"model": "multilingual-e5-small", "input": [1, 2]})
    assert nano.status_code == 422 and "send the text" in nano.text
    for bad in ([], "", [""], [[]], [1, "a"], [-1]):
        refused = http.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": bad})
        assert refused.status_code == 422, bad


def test_a_500_carries_its_request_id_and_ollama_routes_keep_their_shape(
    tmp_path: Path,
) -> None:
    """The app factory's own middleware stack, with routes that fail unexpectedly."""
    import asyncio

    from fastapi import APIRouter

    from aift.api.app import create_app
    from aift.api.routes.ollama import OllamaRoute
    from aift.config import load_settings
    from aift.runtime import Runtime

    runtime = Runtime.start(load_settings(workspace=tmp_path / "ws", offline=True))
    app = create_app(runtime)

    def boom() -> dict:
        raise RuntimeError("a bug")

    app.add_api_route("/api/v1/boom", boom)
    ollama_like = APIRouter(prefix="/api", route_class=OllamaRoute)
    ollama_like.add_api_route("/boom", boom, methods=["POST"])
    app.include_router(ollama_like)

    async def call() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            native = await client.get("/api/v1/boom", headers={"X-Request-ID": "trace-500"})
            ollama = await client.post("/api/boom")
            return native, ollama

    try:
        native, ollama = asyncio.run(call())
    finally:
        runtime.close()
    assert native.status_code == 500
    assert native.headers["x-request-id"] == "trace-500"
    error = native.json()["error"]
    assert error["code"] == "internal_error" and error["request_id"] == "trace-500"
    assert "trace-500" in error["message"]
    assert ollama.status_code == 500 and set(ollama.json()) == {"error"}
    rid = ollama.headers["x-request-id"]
    assert len(rid) == 16 and rid in ollama.json()["error"]


def test_a_405_lists_every_method_of_the_path(server: LiveServer) -> None:
    """Starlette named only the first route matching the path (GET of GET+POST)."""
    with server.client() as client:
        jobs = client.put("/api/v1/jobs")
        assert jobs.status_code == 405
        assert {m.strip() for m in jobs.headers["allow"].split(",")} == {"GET", "POST"}
        assert "use GET or POST" in jobs.json()["error"]["message"]
        chat = client.get("/api/chat")
        assert chat.status_code == 405 and chat.headers["allow"] == "POST"
