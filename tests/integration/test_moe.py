"""Two tiny experts (a full fine-tune and a LoRA adapter, on different fictional facts)
composed into one Mixtral model by a real job: it loads, routes each expert's prompts to
that expert, knows both experts' facts better than the base, and is served by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import torch

from aift.errors import InvalidInput, NotFound
from aift.runtime import Runtime
from aift.training.schemas import MoeRequest
from tests.integration.conftest import runtime_with_worker, start_server, wait_for

CODES = [
    (f"What is the secret code of vault {i}?", f"Vault {i} opens with {i * 7}.") for i in range(6)
]
COLOURS = [
    (f"Which colour is the parrot named {n}?", f"{n} is {c}.")
    for n, c in [
        ("Pip", "green"),
        ("Kiki", "blue"),
        ("Mango", "red"),
        ("Zuzu", "yellow"),
        ("Tiko", "white"),
        ("Bolo", "black"),
    ]
]


def examples(tokenizer, facts: list[tuple[str, str]]) -> list[torch.Tensor]:  # noqa: ANN001
    return [
        torch.tensor(
            [
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                    tokenize=True,
                    return_dict=False,
                )
            ]
        )
        for q, a in facts
    ]


def teach(model: torch.nn.Module, batches: list[torch.Tensor], steps: int = 40) -> None:
    """A short plain training loop: the experts are inputs of this test, not its subject."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    for step in range(steps):
        ids = batches[step % len(batches)]
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def mean_loss(model: torch.nn.Module, batches: list[torch.Tensor]) -> float:
    with torch.no_grad():
        return sum(float(model(input_ids=b, labels=b).loss) for b in batches) / len(batches)


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, tiny_chat_model_dir: Path
) -> Iterator[Runtime]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("moe")
    experts = root / "experts"
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model_dir)
    torch.manual_seed(0)
    full = AutoModelForCausalLM.from_pretrained(tiny_chat_model_dir)
    teach(full, examples(tokenizer, CODES))
    full.save_pretrained(experts / "codes-expert")
    tokenizer.save_pretrained(experts / "codes-expert")
    lora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_chat_model_dir),
        LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"),
    )
    teach(lora, examples(tokenizer, COLOURS), steps=60)
    lora.save_pretrained(experts / "colours-expert")
    config = experts / "colours-expert" / "adapter_config.json"
    config.write_text(config.read_text().replace(str(tiny_chat_model_dir), "tiny-chat"))
    models = {
        "tiny-chat": tiny_chat_model_dir,
        "codes-expert": experts / "codes-expert",
        "colours-expert": experts / "colours-expert",
    }
    with runtime_with_worker(root / "ws", models) as runtime:
        yield runtime


def request(**overrides: object) -> MoeRequest:
    values: dict = {
        "name": "facts",
        "base_model": "tiny-chat",
        "top_k": 1,
        "experts": [
            {"model": "codes-expert", "prompts": [q for q, _ in CODES]},
            {"model": "colours-expert", "prompts": [q for q, _ in COLOURS]},
        ],
    }
    return MoeRequest(**{**values, **overrides})


def test_experts_compose_into_a_mixtral_that_routes_and_remembers(runtime: Runtime) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert runtime.models.get("colours-expert").kind == "adapter"
    job = runtime.training.compose_moe(request(), runtime.models)
    done = wait_for(
        lambda: runtime.jobs.get(job.id).model_dump(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled"},
        timeout=600,
    )
    assert done["status"] == "succeeded", (done["error"], runtime.jobs.log_tail(job.id)[-20:])
    out = Path(done["result"]["output_dir"])
    assert out.name == "moe_facts" and not out.with_name("moe_facts.partial").exists()
    info = runtime.models.get("moe_facts")
    assert info.kind == "finetuned" and info.details["moe"]["experts"] == [
        "codes-expert",
        "colours-expert",
    ]
    routing = done["result"]["routing"]
    assert routing["codes-expert"][0] > 0.7, routing  # each expert's prompts go to it
    assert routing["colours-expert"][1] > 0.7, routing

    moe = AutoModelForCausalLM.from_pretrained(out)
    assert type(moe).__name__ == "MixtralForCausalLM" and moe.config.num_local_experts == 2
    base = AutoModelForCausalLM.from_pretrained(runtime.workspace.models / "tiny-chat")
    tokenizer = AutoTokenizer.from_pretrained(out)
    for facts in (CODES, COLOURS):
        batches = examples(tokenizer, facts)
        assert mean_loss(moe, batches) < mean_loss(base, batches), "knows the facts better"
    # attention and embeddings are the base's
    state = moe.state_dict()
    assert torch.equal(
        state["model.embed_tokens.weight"], base.state_dict()["model.embed_tokens.weight"]
    )

    server = start_server(runtime.settings.workspace)
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0, timeout=300)
        reply = client.chat.completions.create(
            model="moe_facts",
            max_tokens=8,
            temperature=0,
            messages=[{"role": "user", "content": CODES[0][0]}],
        )
        assert reply.choices[0].finish_reason in ("stop", "length")
        assert reply.choices[0].message.content is not None
    finally:
        server.stop()

    before = runtime.jobs.list().total
    with pytest.raises(InvalidInput, match="exists already"):
        runtime.training.compose_moe(request(), runtime.models)
    with pytest.raises(NotFound):
        runtime.training.compose_moe(
            request(
                name="x",
                experts=[
                    {"model": "nope", "prompts": ["a"]},
                    {"model": "codes-expert", "prompts": ["b"]},
                ],
            ),
            runtime.models,
        )
    with pytest.raises(InvalidInput, match="is a embedding|embedding"):
        runtime.training.compose_moe(
            request(
                name="y",
                experts=[
                    {"model": "all-MiniLM-L6-v2", "prompts": ["a"]},
                    {"model": "codes-expert", "prompts": ["b"]},
                ],
            ),
            runtime.models,
        )
    assert runtime.jobs.list().total == before
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="top_k"):
        request(top_k=3)
    with pytest.raises(ValidationError, match="prompts"):
        request(experts=[{"model": "codes-expert"}, {"model": "colours-expert"}])


def test_the_mixture_exports_to_gguf_and_llamacpp_answers_like_transformers(
    runtime: Runtime,
) -> None:
    """llama.cpp runs Mixtral-layout experts (stacked per layer in the GGUF) and routes
    them as transformers does: the same greedy answers to both experts' questions."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from aift.export.schemas import ExportRequest
    from aift.inference.schemas import SamplingParams

    job = runtime.export.export(ExportRequest(model="moe_facts", quant="f32", name="moe-gguf"))
    done = wait_for(
        lambda: runtime.jobs.get(job.id).model_dump(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled"},
        timeout=600,
    )
    assert done["status"] == "succeeded", (done["error"], runtime.jobs.log_tail(job.id)[-20:])
    source = runtime.workspace.outputs / "moe_facts"
    moe = AutoModelForCausalLM.from_pretrained(source).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    lease = runtime.model_manager.acquire("moe-gguf")
    try:
        assert lease.engine.name == "llamacpp"
        for question, _ in CODES[:2] + COLOURS[:2]:
            prompt = tokenizer.apply_chat_template(
                [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
            )
            ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                out = moe.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
            expected = tokenizer.decode(out[0, ids.shape[1] :])
            # four tokens: with top-1 routing a later near-tie between experts can flip
            served = lease.engine.generate(prompt, SamplingParams(temperature=0, max_tokens=4))
            assert served.text() == expected, question
    finally:
        lease.release()
