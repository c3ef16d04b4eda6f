"""The Ollama-compatible API with the official `ollama` client against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from tests.integration.conftest import LiveServer, start_server, wait_for
from tests.integration.test_openai_api import prepare_workspace

MODEL = "SmolLM2-135M-Instruct"
GREEDY = {"temperature": 0, "num_predict": 40}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_chat_model_dir: Path, tiny_adapter_dir: Path
) -> Iterator[LiveServer]:
    workspace = tmp_path_factory.mktemp("ollama") / "ws"
    prepare_workspace(workspace, tiny_chat_model_dir, tiny_adapter_dir)
    live = start_server(workspace)
    yield live
    live.stop()


@pytest.fixture
def client(server: LiveServer) -> ollama.Client:
    return ollama.Client(host=server.url)


def test_list_show_and_version(client: ollama.Client, server: LiveServer) -> None:
    models = {m.model: m for m in client.list().models}
    assert {MODEL, "tiny-chat", "tiny-lora", "multilingual-e5-small"} <= set(models)
    smol = models[MODEL]
    assert smol.details.format == "gguf" and smol.details.quantization_level == "Q4_1"
    assert smol.details.parameter_size == "135M" and smol.size > 90_000_000
    shown = client.show(MODEL)
    assert "<|im_start|>" in shown.template and shown.capabilities == ["completion"]
    assert shown.modelinfo["general.architecture"] == "llama"
    assert client.show("multilingual-e5-small").capabilities == ["embedding"]
    assert httpx.get(f"{server.url}/api/version").json()["version"]


def test_chat_and_its_timings(client: ollama.Client) -> None:
    reply = client.chat(
        model=MODEL, messages=[{"role": "user", "content": "What is 2 plus 2?"}], options=GREEDY
    )
    assert "4" in reply.message.content and reply.message.role == "assistant"
    assert reply.done and reply.done_reason == "stop"
    assert reply.prompt_eval_count > 10 and reply.eval_count > 0
    assert reply.total_duration >= reply.eval_duration > 0


def test_streaming_chat_matches_the_whole_reply(client: ollama.Client) -> None:
    messages = [{"role": "user", "content": "Name three colors."}]
    whole = client.chat(model=MODEL, messages=messages, options=GREEDY).message.content
    parts = list(client.chat(model=MODEL, messages=messages, options=GREEDY, stream=True))
    assert "".join(p.message.content for p in parts) == whole
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    assert parts[-1].eval_count > 0


def test_generate_raw_and_templated(client: ollama.Client) -> None:
    raw = client.generate(
        model=MODEL,
        prompt="1, 2, 3, 4, 5,",
        raw=True,
        options={"temperature": 0, "num_predict": 4, "stop": [", 8"]},
    )
    assert raw.response.strip().startswith("6") and raw.done_reason in ("stop", "length")
    templated = client.generate(
        model=MODEL, prompt="What is the capital of France?", options=GREEDY
    )
    assert templated.response and templated.done
    seeded = [
        client.generate(
            model=MODEL, prompt="Tell me a word.", options={"seed": 5, "num_predict": 8}
        ).response
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]


def test_embed(client: ollama.Client) -> None:
    result = client.embed(model="multilingual-e5-small", input=["서울은 수도이다", "cats sleep"])
    assert len(result.embeddings) == 2 and len(result.embeddings[0]) == 384
    assert result.prompt_eval_count > 0
    legacy = client.embeddings(model="all-MiniLM-L6-v2", prompt="hello")
    assert len(legacy.embedding) == 384


def test_keep_alive_load_ps_and_unload(client: ollama.Client) -> None:
    loaded = client.generate(model="tiny-chat", keep_alive="10m")
    assert loaded.done_reason == "load"
    running = {m.model: m for m in client.ps().models}
    assert "tiny-chat" in running and running["tiny-chat"].expires_at is not None
    assert client.generate(model="tiny-chat", keep_alive=0).done_reason == "unload"
    assert "tiny-chat" not in {m.model for m in client.ps().models}
    client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        options={"num_predict": 2},
        keep_alive=0,
    )
    wait_for(
        lambda: {"names": {m.model for m in client.ps().models}},
        lambda v: MODEL not in v["names"],
        timeout=120,
    )


def test_adapter_by_name(client: ollama.Client) -> None:
    opts = {"temperature": 0, "num_predict": 10}
    base = client.generate(model="tiny-chat", prompt="Hello there", raw=True, options=opts)
    adapted = client.generate(model="tiny-lora", prompt="Hello there", raw=True, options=opts)
    assert base.response != adapted.response


def test_errors_in_ollama_shape(client: ollama.Client, server: LiveServer) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat(model="llama9:70b", messages=[{"role": "user", "content": "x"}])
    assert missing.value.status_code == 404 and "llama9:70b" in missing.value.error
    with pytest.raises(ollama.ResponseError) as too_long:
        client.generate(model=MODEL, prompt="word " * 3000)
    assert too_long.value.status_code == 400 and "context" in too_long.value.error
    bad = httpx.post(
        f"{server.url}/api/chat",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": "x"}],
            "options": {"temperature": -1},
        },
    )
    assert bad.status_code == 422 and "temperature" in bad.json()["error"]
    wrong_role = httpx.post(
        f"{server.url}/api/chat",
        json={"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]},
    )
    assert wrong_role.status_code == 422 and "role" in wrong_role.json()["error"]
