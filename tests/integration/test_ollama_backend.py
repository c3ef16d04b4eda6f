"""Serving a remote Ollama's models (ollama/NAME) — the remote is a second real server
that speaks the Ollama protocol (aift's own compatible API)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai

from tests.integration.conftest import free_port


def test_remote_ollama_models_are_served_like_local_ones(server_factory, tmp_path: Path) -> None:  # noqa: ANN001
    upstream = server_factory(tmp_path / "upstream")
    local = server_factory(tmp_path / "local", AIFT_OLLAMA_URL=upstream.url)
    client = openai.OpenAI(base_url=f"{local.url}/v1", api_key="x", max_retries=0)
    ids = {m.id for m in client.models.list().data}
    assert "ollama/SmolLM2-135M-Instruct" in ids and "SmolLM2-135M-Instruct" in ids
    reply = client.chat.completions.create(
        model="ollama/SmolLM2-135M-Instruct",
        temperature=0,
        max_tokens=40,
        messages=[{"role": "user", "content": "What is 2 plus 2?"}],
    )
    assert "4" in reply.choices[0].message.content
    assert reply.usage.completion_tokens > 0
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="ollama/SmolLM2-135M-Instruct",
            temperature=0,
            max_tokens=40,
            stream=True,
            messages=[{"role": "user", "content": "What is 2 plus 2?"}],
        )
        if c.choices
    )
    assert streamed == reply.choices[0].message.content
    vectors = client.embeddings.create(
        model="ollama/multilingual-e5-small", input=["hi"], encoding_format="float"
    )
    assert len(vectors.data[0].embedding) == 384
    loaded = httpx.get(f"{local.url}/api/v1/models/loaded").json()
    assert any(m["engine"] == "ollama" for m in loaded)
    # a schema travels to the remote as Ollama's `format`, which enforces it there
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}, "sure": {"type": "boolean"}},
        "required": ["answer", "sure"],
        "additionalProperties": False,
    }
    shaped = client.chat.completions.create(
        model="ollama/SmolLM2-135M-Instruct",
        temperature=0.7,
        seed=2,
        max_tokens=60,
        messages=[{"role": "user", "content": "What is 2 plus 2?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    value = json.loads(shaped.choices[0].message.content)
    assert set(value) == {"answer", "sure"} and isinstance(value["answer"], int)


def test_an_unreachable_ollama_does_not_break_listing(server_factory, tmp_path: Path) -> None:  # noqa: ANN001
    dead = f"http://127.0.0.1:{free_port()}"
    local = server_factory(tmp_path / "ws", AIFT_OLLAMA_URL=dead)
    models = httpx.get(f"{local.url}/v1/models").json()["data"]
    assert "SmolLM2-135M-Instruct" in {m["id"] for m in models}
    missing = httpx.post(
        f"{local.url}/v1/chat/completions",
        json={"model": "ollama/llama3.2:3b", "messages": [{"role": "user", "content": "x"}]},
    )
    assert missing.status_code == 404 and "ollama/llama3.2:3b" in missing.text


def test_pull_through_the_remote_ollama_and_from_the_hub(server_factory, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.integration.conftest import wait_for

    upstream = server_factory(tmp_path / "upstream")
    local = server_factory(tmp_path / "local", AIFT_OLLAMA_URL=upstream.url)

    def pull(model: str) -> dict:
        job = httpx.post(f"{local.url}/api/v1/models/pull", json={"model": model})
        assert job.status_code == 202, job.text
        return wait_for(
            lambda: httpx.get(f"{local.url}/api/v1/jobs/{job.json()['id']}").json(),
            lambda j: j["status"] in {"succeeded", "failed"},
            timeout=240,
        )

    present = pull("ollama/SmolLM2-135M-Instruct")
    assert present["status"] == "succeeded" and present["result"]["model"] == (
        "ollama/SmolLM2-135M-Instruct"
    )
    absent = pull("ollama/no-such-model:1b")
    assert absent["status"] == "failed" and "no-such-model" in absent["error"]
    offline = pull("someorg/some-model")
    assert offline["status"] == "failed" and "not available" in offline["error"]
    bad = httpx.post(f"{local.url}/api/v1/models/pull", json={"model": ""})
    assert bad.status_code == 422
