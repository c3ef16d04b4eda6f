"""The OpenAI-compatible API with the official `openai` client against a real server."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.conftest import LiveServer, start_server, wait_for

MODEL = "SmolLM2-135M-Instruct"
COUNTING = {
    "1, 2, 3, 4, 5,": "6",
    "a, b, c, d, e,": "f",
    "Monday, Tuesday, Wednesday,": "Thursday",
    "January, February, March,": "April",
}


def prepare_workspace(
    workspace: Path, base: Path, adapter: Path, tools_model: Path | None = None
) -> None:
    """A tiny base model in models/ and a LoRA adapter for it in outputs/ (and the tiny
    model with a tool-calling template)."""
    shutil.copytree(base, workspace / "models" / "tiny-chat")
    if tools_model is not None:
        shutil.copytree(tools_model, workspace / "models" / "tiny-tools")
    target = workspace / "outputs" / "tiny-lora"
    shutil.copytree(adapter, target)
    config = json.loads((target / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "tiny-chat"
    (target / "adapter_config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_chat_model_dir: Path,
    tiny_adapter_dir: Path,
    tiny_tools_model_dir: Path,
) -> Iterator[LiveServer]:
    workspace = tmp_path_factory.mktemp("openai") / "ws"
    prepare_workspace(workspace, tiny_chat_model_dir, tiny_adapter_dir, tiny_tools_model_dir)
    live = start_server(workspace, AIFT_MAX_BATCH="8")
    yield live
    live.stop()


@pytest.fixture
def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_models_are_listed(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list().data}
    assert {MODEL, "tiny-chat", "tiny-lora", "all-MiniLM-L6-v2", "multilingual-e5-small"} <= ids


def test_chat_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is 2 plus 2?"}],
        temperature=0,
        max_tokens=40,
    )
    assert "4" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 10 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    follow_up = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "What is 2 plus 2?"},
            {"role": "assistant", "content": reply.choices[0].message.content},
            {"role": "user", "content": "And 3 plus 3?"},
        ],
        temperature=0,
        max_tokens=40,
    )  # the first turn's KV cache is reused, and reported as OpenAI reports caching
    assert follow_up.usage.prompt_tokens_details.cached_tokens >= reply.usage.prompt_tokens


def test_chat_streaming_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "What is 2 plus 2?"}],
            temperature=0,
            max_tokens=40,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    whole = (
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "What is 2 plus 2?"}],
            temperature=0,
            max_tokens=40,
        )
        .choices[0]
        .message.content
    )
    assert text == whole
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_completion_with_stop_and_length(client: openai.OpenAI) -> None:
    stopped = client.completions.create(
        model=MODEL, prompt="1, 2, 3, 4, 5,", temperature=0, max_tokens=20, stop=[", 8"]
    )
    assert stopped.choices[0].text.strip().startswith("6") and "8" not in stopped.choices[0].text
    assert stopped.choices[0].finish_reason == "stop"
    cut = client.completions.create(
        model=MODEL, prompt="1, 2, 3, 4, 5,", temperature=0, max_tokens=3
    )
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 3
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model=MODEL, prompt="1, 2, 3, 4, 5,", temperature=0, max_tokens=3, stream=True
        )
    )
    assert streamed == cut.choices[0].text


def test_seed_reproduces_sampling(client: openai.OpenAI) -> None:
    def sample(seed: int) -> str:
        return (
            client.completions.create(
                model=MODEL, prompt="Once upon a time", max_tokens=12, temperature=1.0, seed=seed
            )
            .choices[0]
            .text
        )

    assert sample(11) == sample(11)


def test_embeddings_float_and_base64(client: openai.OpenAI, server: LiveServer) -> None:
    default = client.embeddings.create(model="all-MiniLM-L6-v2", input=["a cat", "a kitten"])
    assert len(default.data) == 2 and len(default.data[0].embedding) == 384  # base64 on the wire
    raw = httpx.post(
        f"{server.url}/v1/embeddings",
        json={"model": "multilingual-e5-small", "input": "서울", "encoding_format": "float"},
    ).json()
    assert len(raw["data"][0]["embedding"]) == 384 and raw["usage"]["prompt_tokens"] > 0


def test_eight_parallel_streams_complete_independently(client: openai.OpenAI) -> None:
    prompts = list(COUNTING) * 2
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            stream = client.completions.create(
                model=MODEL, prompt=prompts[i], temperature=0, max_tokens=8, stream=True
            )
            results[i] = "".join(chunk.choices[0].text for chunk in stream)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    for i, prompt in enumerate(prompts):
        assert COUNTING[prompt] in results[i], (prompt, results[i])
        assert results[i] == results[i % 4], "the same prompt gives the same text in the batch"


def test_adapter_is_chosen_by_name(client: openai.OpenAI) -> None:
    def run(model: str) -> str:
        return (
            client.completions.create(
                model=model, prompt="Hello there", temperature=0, max_tokens=12
            )
            .choices[0]
            .text
        )

    base, adapted = run("tiny-chat"), run("tiny-lora")
    assert base != adapted
    assert run("tiny-lora") == adapted and run("tiny-chat") == base


def test_client_disconnect_frees_the_slot(server: LiveServer) -> None:
    body = {
        "model": MODEL,
        "prompt": "Count forever:",
        "max_tokens": 1500,
        "stream": True,
        "temperature": 0,
    }
    with httpx.Client(base_url=server.url, timeout=240) as http:
        with http.stream("POST", "/v1/completions", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    break  # one chunk, then hang up
        loaded = wait_for(
            lambda: {m["name"]: m for m in http.get("/api/v1/models/loaded").json()},
            lambda m: MODEL in m and m[MODEL]["busy"] == 0,
            timeout=120,
        )
        assert loaded[MODEL]["busy"] == 0


def test_bad_requests(client: openai.OpenAI, server: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-17", messages=[{"role": "user", "content": "x"}])
    assert "gpt-17" in str(missing.value)
    with pytest.raises(openai.NotFoundError) as close:
        client.chat.completions.create(
            model="SmolLM2-135M-Instruc", messages=[{"role": "user", "content": "x"}]
        )
    assert MODEL in str(close.value)
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "word " * 3000}]
        )
    assert "context of 2048" in str(too_long.value)
    for bad in ({"temperature": 3}, {"top_p": 0}, {"max_tokens": 0}, {"n": 2}, {"stop": [""]}):
        with pytest.raises(openai.UnprocessableEntityError):
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], **bad
            )
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model=MODEL, messages=[])
    with pytest.raises(openai.UnprocessableEntityError, match="not an embedding model"):
        client.embeddings.create(model=MODEL, input="x")
    # the manager is still consistent after all that
    assert (
        client.completions.create(model=MODEL, prompt="1, 2,", max_tokens=2, temperature=0)
        .choices[0]
        .text
    )


def test_load_unload_and_keep_alive(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        loaded = http.post("/api/v1/models/tiny-chat/load", json={"keep_alive": "2s"}).json()
        assert loaded["engine"] == "transformers" and loaded["expires_at"]
        wait_for(
            lambda: {m["name"] for m in http.get("/api/v1/models/loaded").json()},
            lambda names: "tiny-chat" not in names,
            timeout=120,
        )
        http.post(f"/api/v1/models/{MODEL}/load", json={"keep_alive": -1}).raise_for_status()
        assert http.post(f"/api/v1/models/{MODEL}/unload").status_code == 204
        assert http.post(f"/api/v1/models/{MODEL}/unload").status_code == 404
        bad = http.post(f"/api/v1/models/{MODEL}/load", json={"engine": "warp-drive"})
        assert bad.status_code == 422 and "warp-drive" in bad.text
        wrong = http.post("/api/v1/models/tiny-chat/load", json={"engine": "llamacpp"})
        assert wrong.status_code == 422 and "GGUF" in wrong.text
        assert http.post("/api/v1/models/nothing/load").status_code == 404
        time.sleep(0.1)


def test_cli_chat_and_model_commands(server: LiveServer, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.integration.conftest import aift_env

    env = aift_env(tmp_path / "cli-ws", AIFT_SERVER_URL=server.url)

    def aift(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "aift.cli", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )

    chat = aift(
        "chat", MODEL, "--temperature", "0", "--max-tokens", "40", stdin="What is 2 plus 2?\n/bye\n"
    )
    assert chat.returncode == 0, chat.stderr
    assert "4" in chat.stdout
    loaded = aift("models", "load", "tiny-chat", "--keep-alive", "10m")
    assert loaded.returncode == 0 and "transformers" in loaded.stdout
    ps = json.loads(aift("models", "ps", "--json").stdout)
    assert "tiny-chat" in {m["name"] for m in ps}
    assert aift("models", "unload", "tiny-chat").returncode == 0
    missing = aift("models", "load", "no-such-model")
    assert missing.returncode == 2 and "not available" in missing.stderr
    down = subprocess.run(
        [sys.executable, "-m", "aift.cli", "models", "ps"],
        env={**env, "AIFT_SERVER_URL": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert down.returncode == 2 and "aift serve" in down.stderr


# Structured outputs, message shapes, models.retrieve (what clients send every day) ------
SCHEMAS = {
    "person": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 24},
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
            "city": {"type": "string", "maxLength": 24},
        },
        "required": ["name", "age", "city"],
        "additionalProperties": False,
    },
    "verdict": {
        "type": "object",
        "properties": {
            "sentiment": {"enum": ["positive", "negative", "neutral"]},
            "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
        },
        "required": ["sentiment", "confidence"],
        "additionalProperties": False,
    },
    "shopping": {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "item": {"type": "string", "maxLength": 20},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 99},
                    },
                    "required": ["item", "quantity"],
                    "additionalProperties": False,
                },
            },
            "urgent": {"type": "boolean"},
        },
        "required": ["items", "urgent"],
        "additionalProperties": False,
    },
}
PROMPTS = [
    "Describe a character from a novel.",
    "Tell me about your best friend.",
    "I loved the film yesterday, it was wonderful.",
    "The service at the restaurant was slow and rude.",
    "We need milk, eggs and bread for the weekend.",
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "List what a hiker should pack.",
    "Summarise the news of the day.",
    "Who won the match last night?",
    "My phone battery died again, so annoying.",
    "Plan a birthday party for ten children.",
    "Explain photosynthesis in one line.",
    "The weather is fine today.",
    "Give me a recipe for pancakes.",
    "Introduce yourself.",
    "Rate this product: it broke after two days.",
    "What should I buy for a camping trip?",
    "Describe the town you grew up in.",
    "Answer with anything you like.",
]


def test_structured_output_always_matches_the_schema(client: openai.OpenAI) -> None:
    """8 prompts × 3 schemas, sampled (temperature 0.8), through llama.cpp: every
    answer parses and is valid against its schema (benchmarks/structured_output.py
    samples many more, against asking without enforcement)."""
    import concurrent.futures

    import jsonschema_rs

    def ask(prompt: str, name: str) -> tuple[str, str, str]:
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": prompt}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": name, "schema": SCHEMAS[name], "strict": True},
            },
            temperature=0.8,
            seed=len(prompt),
            max_tokens=250,
        )
        return name, reply.choices[0].message.content, reply.choices[0].finish_reason

    jobs = [(prompt, name) for prompt in PROMPTS[:8] for name in SCHEMAS]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda job: ask(*job), jobs))
    assert len(answers) == 24
    for name, content, finish in answers:
        assert finish == "stop", content
        assert jsonschema_rs.validator_for(SCHEMAS[name]).is_valid(json.loads(content)), content


def test_json_modes_vllm_extras_and_a_random_model(client: openai.OpenAI) -> None:
    """json_object gives JSON; vLLM's extra fields (guided_choice, structured_outputs
    regex) are enforced; a random tiny transformers model still writes valid JSON, which
    only the constraint can explain."""
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give me a JSON object describing a cat."}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=200,
    )
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(reply.choices[0].message.content), dict)
    else:  # an open object may run to max_tokens; what came is still a JSON prefix
        assert reply.choices[0].message.content.startswith("{")
    choice = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Is the sky green?"}],
        extra_body={"guided_choice": ["yes", "no"]},
        max_tokens=5,
    )
    assert choice.choices[0].message.content in {"yes", "no"}
    code = client.completions.create(
        model=MODEL,
        prompt="The order code is",
        extra_body={"structured_outputs": {"regex": r" [A-Z]{3}-\d{4}"}},
        max_tokens=20,
    )
    assert re.fullmatch(r" [A-Z]{3}-\d{4}", code.choices[0].text), code.choices[0].text
    from typing import Literal

    from pydantic import BaseModel

    class Verdict(BaseModel):  # what LangChain's with_structured_output sends, in effect
        sentiment: Literal["positive", "negative", "neutral"]
        confidence: float

    parsed = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "I loved the film."}],
        response_format=Verdict,
        temperature=0,
        max_tokens=100,
    )
    assert isinstance(parsed.choices[0].message.parsed, Verdict)
    schema = SCHEMAS["verdict"]
    random_model = client.chat.completions.create(
        model="tiny-chat",
        messages=[{"role": "user", "content": "hello"}],
        response_format={"type": "json_schema", "json_schema": {"name": "v", "schema": schema}},
        max_tokens=60,
        seed=3,
    )
    import jsonschema_rs

    assert jsonschema_rs.validator_for(schema).is_valid(
        json.loads(random_model.choices[0].message.content)
    )


def test_message_shapes_clients_send(client: openai.OpenAI) -> None:
    """Content as a list of text parts, the developer role, and a tool round trip
    (assistant tool_calls with null content, then a tool message) are accepted."""
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "Answer in one word."},
            {"role": "user", "content": [{"type": "text", "text": "What is 2 plus 2?"}]},
        ],
        temperature=0,
        max_tokens=20,
    )
    assert reply.choices[0].message.content
    round_trip = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "What is the weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "4 degrees, rain"},
        ],
        temperature=0,
        max_tokens=30,
    )
    assert round_trip.choices[0].finish_reason in {"stop", "length"}


def test_unsupported_requests_are_refused_not_ignored(client: openai.OpenAI) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    with pytest.raises(openai.UnprocessableEntityError, match="text only"):
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": [{"type": "text", "text": "What?"}, image]}],
        )
    tool = {
        "type": "function",
        "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
    }
    with pytest.raises(openai.UnprocessableEntityError, match="cannot call tools"):
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=[tool]
        )
    none = client.chat.completions.create(  # tool_choice none: tools are not used, fine
        model=MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        tools=[tool],
        tool_choice="none",
        max_tokens=5,
    )
    assert none.choices[0].message.tool_calls is None
    bad_schema = {"type": "object", "properties": {"x": {"type": "strin"}}}
    with pytest.raises(openai.UnprocessableEntityError, match="cannot be enforced|not valid"):
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "x"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "b", "schema": bad_schema},
            },
        )
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError, match="Available"):
        client.models.retrieve("gpt-17")


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 20},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
CLOCK_TOOL = {
    "type": "function",
    "function": {"name": "clock", "parameters": {"type": "object", "properties": {}}},
}


def test_tool_calls_through_a_template_that_supports_tools(client: openai.OpenAI) -> None:
    """A required call comes back as tool_calls with arguments valid for the tool (the
    random tiny model can only do that through the constraint), streamed too; the
    round trip with the tool's answer is accepted; auto mode answers either way."""
    import jsonschema_rs

    messages = [{"role": "user", "content": "What is the weather in Oslo?"}]
    tools = [WEATHER_TOOL, CLOCK_TOOL]
    reply = client.chat.completions.create(
        model="tiny-tools",
        messages=messages,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "weather"}},
        max_tokens=80,
        seed=1,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message.content
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    arguments = json.loads(call.function.arguments)
    assert call.function.name == "weather" and call.id
    assert jsonschema_rs.validator_for(WEATHER_TOOL["function"]["parameters"]).is_valid(arguments)

    streamed = client.chat.completions.create(
        model="tiny-tools",
        messages=messages,
        tools=tools,
        tool_choice="required",
        max_tokens=80,
        seed=2,
        stream=True,
    )
    deltas = [c.choices[0] for c in streamed if c.choices]
    calls = [t for d in deltas if d.delta.tool_calls for t in d.delta.tool_calls]
    assert deltas[-1].finish_reason == "tool_calls"
    assert len(calls) == 1 and calls[0].function.name in {"weather", "clock"}
    assert not any(d.delta.content and "<tool_call>" in d.delta.content for d in deltas)

    answered = client.chat.completions.create(
        model="tiny-tools",
        messages=[
            *messages,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "4 degrees and rain"},
        ],
        tools=tools,
        max_tokens=10,
    )
    assert answered.choices[0].finish_reason in {"stop", "length", "tool_calls"}


def test_ollama_client_tools_and_format(server: LiveServer) -> None:
    """Ollama's chat with tools reaches the template (and is refused for a model that
    cannot show them); `format` as "json" and as a schema is enforced."""
    import ollama

    client = ollama.Client(host=server.url)
    assert "tools" in client.show("tiny-tools").capabilities
    assert "tools" not in client.show(MODEL).capabilities
    reply = client.chat(
        model="tiny-tools",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER_TOOL],
        options={"num_predict": 20, "seed": 1},
    )
    assert reply.message.content is not None or reply.message.tool_calls
    with pytest.raises(ollama.ResponseError, match="cannot call tools"):
        client.chat(
            model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER_TOOL]
        )
    schema = SCHEMAS["person"]
    structured = client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "Describe a person."}],
        format=schema,
        options={"temperature": 0.5, "seed": 4, "num_predict": 200},
    )
    import jsonschema_rs

    assert jsonschema_rs.validator_for(schema).is_valid(json.loads(structured.message.content))
    as_json = client.generate(
        model="tiny-chat", prompt="anything", format="json", options={"num_predict": 30, "seed": 5}
    )
    assert as_json.response.startswith("{")
    with pytest.raises(ollama.ResponseError, match="text only"):
        client.chat(
            model=MODEL, messages=[{"role": "user", "content": "What is this?", "images": ["AAAA"]}]
        )


def test_logprobs_of_chat_and_completions(client: openai.OpenAI, server: LiveServer) -> None:
    """Greedy tokens are the most likely ones, their texts make up the answer, and the
    alternatives come sorted — through llama.cpp (chat, streamed too) and transformers
    (legacy completions), and in Ollama's shape."""
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Name a colour."}],
        temperature=0,
        max_tokens=12,
        logprobs=True,
        top_logprobs=3,
    )
    content = reply.choices[0].logprobs.content
    assert "".join(t.token for t in content).startswith(reply.choices[0].message.content)
    for token in content:
        alternatives = [t.logprob for t in token.top_logprobs]
        assert len(alternatives) == 3 and alternatives == sorted(alternatives, reverse=True)
        assert token.token == token.top_logprobs[0].token and token.logprob <= 0
        assert bytes(token.bytes).decode("utf-8", "replace") == token.token
    streamed = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Name a colour."}],
        temperature=0,
        max_tokens=12,
        logprobs=True,
        stream=True,
    )
    tokens = [
        t.token
        for c in streamed
        if c.choices and c.choices[0].logprobs
        for t in c.choices[0].logprobs.content
    ]
    assert tokens == [t.token for t in content]
    completion = client.completions.create(
        model="tiny-chat", prompt="one two", max_tokens=5, temperature=0, logprobs=2
    )
    found = completion.choices[0].logprobs
    assert len(found.tokens) == len(found.token_logprobs) == len(found.top_logprobs) == 5
    assert all(len(top) == 2 for top in found.top_logprobs)
    assert found.text_offset[0] == 0 and found.text_offset == sorted(found.text_offset)
    import ollama

    answer = ollama.Client(host=server.url).chat(
        model=MODEL,
        messages=[{"role": "user", "content": "Name a colour."}],
        logprobs=True,
        top_logprobs=2,
        options={"temperature": 0, "num_predict": 12},
    )
    assert [t.token for t in answer.logprobs] == [t.token for t in content]


def test_langchain_structured_output_both_ways(server: LiveServer) -> None:
    """LangChain's ChatOpenAI.with_structured_output: as a JSON schema (response_format)
    and as a forced function call (tools + a named tool_choice)."""
    from typing import Literal

    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    class Verdict(BaseModel):
        sentiment: Literal["positive", "negative", "neutral"]
        confidence: float

    def chat(model: str) -> ChatOpenAI:
        return ChatOpenAI(
            base_url=f"{server.url}/v1",
            api_key="unused",
            model=model,
            temperature=0,
            max_tokens=120,
            max_retries=0,
        )

    by_schema = chat(MODEL).with_structured_output(Verdict, method="json_schema")
    assert isinstance(by_schema.invoke("I loved the film."), Verdict)
    by_tool = chat("tiny-tools").with_structured_output(Verdict, method="function_calling")
    assert isinstance(by_tool.invoke("I loved the film."), Verdict)
