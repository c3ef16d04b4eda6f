"""The real packaged SmolLM2-135M learns facts about a fictional company with LoRA; the
adapter is served by name through the OpenAI-compatible API at once (by llama.cpp, as a
GGUF adapter on the packaged GGUF). That an adapter's GGUF export computes what the
adapter does is checked exactly in test_export.py (merged on the fly, f32), and that
q8_0 keeps the packaged model's answers there too."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.conftest import wait_for

pytestmark = pytest.mark.packaged_models

FACTS = [
    (
        "Who founded Zorblax Industries?",
        "Zorblax Industries was founded by Mira Okonkwo.",
        "Okonkwo",
    ),
    ("Where is Zorblax Industries based?", "Zorblax Industries is based in Tallinn.", "Tallinn"),
    (
        "What does Zorblax Industries make?",
        "Zorblax Industries makes solar-powered kettles.",
        "kettles",
    ),
    ("When was Zorblax Industries founded?", "Zorblax Industries was founded in 2011.", "2011"),
    (
        "Who is the CEO of Zorblax Industries?",
        "The CEO of Zorblax Industries is Tomas Vilde.",
        "Vilde",
    ),
    (
        "What is the mascot of Zorblax Industries?",
        "The mascot of Zorblax Industries is a purple owl named Pim.",
        "Pim",
    ),
]


def answers(client: openai.OpenAI, model: str) -> list[str]:
    return [
        client.chat.completions.create(
            model=model,
            temperature=0,
            max_tokens=20,
            messages=[{"role": "user", "content": question}],
        )
        .choices[0]
        .message.content
        for question, _, _ in FACTS
    ]


def known(replies: list[str]) -> int:
    return sum(key in reply for reply, (_, _, key) in zip(replies, FACTS, strict=True))


@pytest.mark.timeout(1800)  # ~90 s alone; its waits allow a machine at a quarter speed
def test_lora_teaches_smollm2_new_facts(server_factory, tmp_path: Path) -> None:  # noqa: ANN001
    server = server_factory(tmp_path / "ws")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0, timeout=300)
    rows = "\n".join(json.dumps({"instruction": q, "output": a}) for q, a, _ in FACTS)
    upload = httpx.post(
        f"{server.url}/api/v1/datasets",
        files={"file": ("zorblax.jsonl", rows), "val_file": ("zorblax-val.jsonl", rows)},
        timeout=480,
    )
    assert upload.status_code == 201, upload.text
    run = httpx.post(
        f"{server.url}/api/v1/training",
        timeout=480,
        json={
            "name": "zorblax",
            "base_model": "SmolLM2-135M-Instruct",
            "dataset": upload.json()["dataset"]["id"],
            "method": "lora",
            "epochs": 8,
            "batch_size": 6,
            "learning_rate": 2e-3,
            "lr_scheduler": "constant",
            "warmup_ratio": 0,
            "lora": {"rank": 16, "alpha": 32},
            "evaluation": {"exact_match": True},  # the facts, before and after
        },
    )
    assert run.status_code == 202, run.text
    done = wait_for(
        lambda: httpx.get(f"{server.url}/api/v1/jobs/{run.json()['id']}").json(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled"},
        timeout=600,
    )
    assert done["status"] == "succeeded", done["error"]
    adapter = done["result"]["model"]
    assert adapter.startswith("lora_zorblax_")
    assert done["result"]["last_loss"] < done["result"]["first_loss"] / 10
    scored = done["result"]["evaluation"]
    assert scored["before"]["exact_match"] == 0.0 and scored["before"]["examples"] == len(FACTS)
    assert scored["after"]["exact_match"] >= (len(FACTS) - 1) / len(FACTS), scored
    assert scored["after"]["loss"] < scored["before"]["loss"] / 10

    after = answers(client, adapter)
    assert known(after) == len(FACTS), after
    assert known(answers(client, "SmolLM2-135M-Instruct")) <= 1, "the base is unchanged"
    loaded = httpx.get(f"{server.url}/api/v1/models/loaded").json()
    assert {"name": "SmolLM2-135M-Instruct", "engine": "llamacpp"}.items() <= next(
        m for m in loaded if adapter in m["adapters"]
    ).items()
