"""Preference and reward objectives (DPO, ORPO, SimPO, KTO, GRPO) as real jobs in a real
worker process, through trl's trainers, on a tiny Llama with SmolLM2's tokenizer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from aift.errors import CapabilityMissing, InvalidInput, NotFound
from aift.runtime import Runtime
from aift.training.schemas import DatasetOptions, TrainingConfig
from tests.integration.conftest import runtime_with_worker, wait_for

QUESTIONS = [
    (f"What is {a} plus {b}?", a + b) for a, b in zip(range(3, 23), range(7, 47, 2), strict=True)
]


def hh_rows() -> list[dict]:
    """Anthropic HH's shape: two transcripts sharing all but the last reply."""
    rows = []
    for question, total in QUESTIONS:
        history = f"\n\nHuman: {question}\n\nAssistant:"
        rows.append(
            {
                "chosen": f"{history} {total}.",
                "rejected": f"{history} Let me think about that for a while. Maybe {total}.",
            }
        )
    return rows


def prompt_rows() -> list[dict]:
    return [{"prompt": q, "answer": str(total)} for q, total in QUESTIONS]


def sft_rows() -> list[dict]:
    return [{"instruction": q, "output": f"{total}."} for q, total in QUESTIONS]


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, tiny_chat_model_dir: Path
) -> Iterator[Runtime]:
    workspace = tmp_path_factory.mktemp("preference") / "ws"
    with runtime_with_worker(workspace, {"tiny-chat": tiny_chat_model_dir}) as rt:
        yield rt


def add_dataset(runtime: Runtime, name: str, rows: list[dict], **options: object) -> str:
    path = runtime.workspace.temp_uploads / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in rows))
    report = runtime.datasets.add(path, path.name, DatasetOptions(val_ratio=0.1, **options))
    return report.dataset.id


@pytest.fixture(scope="module")
def datasets(runtime: Runtime) -> dict[str, str]:
    return {
        "preference": add_dataset(runtime, "pairs", hh_rows()),
        "prompts": add_dataset(runtime, "sums", prompt_rows()),
        "sft": add_dataset(runtime, "answers", sft_rows()),
    }


def run(runtime: Runtime, dataset: str, **overrides: object) -> dict:
    values = {
        "base_model": "tiny-chat",
        "dataset": dataset,
        "max_steps": 4,
        "batch_size": 4,
        "learning_rate": 5e-3,
        "warmup_ratio": 0.0,
        "max_length": 128,
    }
    job = runtime.training.submit(TrainingConfig(**{**values, **overrides}))
    done = wait_for(
        lambda: runtime.jobs.get(job.id).model_dump(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled", "interrupted"},
        600,
    )
    assert done["status"] == "succeeded", (done["error"], runtime.jobs.log_tail(job.id)[-20:])
    return done


def test_sft_then_dpo_continues_the_adapter_against_its_own_reference(
    runtime: Runtime, datasets: dict[str, str]
) -> None:
    sft = run(runtime, datasets["sft"], max_steps=3)["result"]
    dpo_config = TrainingConfig(
        base_model="tiny-chat", dataset=datasets["preference"], objective="dpo", max_steps=6
    )
    # the SFT run's speed is no measure of a DPO run's (two replies and a reference pass)
    assert runtime.training.estimate(dpo_config).basis.startswith("a rough guess")
    done = run(
        runtime,
        datasets["preference"],
        objective="dpo",
        adapter=sft["model"],
        max_steps=6,
        eval_steps=3,
        preference={"beta": 0.5, "loss_type": ["sigmoid", "sft"]},
        evaluation={"exact_match": False},
    )
    result = done["result"]
    scored = result["evaluation"]  # base vs result on the validation pairs, unasked
    assert scored["before"]["examples"] == scored["after"]["examples"] > 0
    for when in ("before", "after"):
        assert 0.0 <= scored[when]["preference_rate"] <= 1.0 and scored[when]["loss"] > 0
        assert scored[when]["exact_match"] is None
    out = Path(result["output_dir"])
    assert out.name.startswith("lora-dpo_tiny-chat_") and result["kind"] == "adapter"
    assert "dpo" in done["title"] and "eval_loss" in result
    # the chain's reference was the SFT adapter (a frozen copy), never saved with the result
    assert not (out / "ref").exists() and (out / "adapter_model.safetensors").exists()
    assert json.loads((out / "run_config.json").read_text())["adapter"] == sft["model"]
    card = (out / "README.md").read_text()
    assert f"objective dpo, continuing adapter `{sft['model']}`" in card
    curve = runtime.training.curve(done["id"]).points
    margins = [p.extra["rewards/margins"] for p in curve if "rewards/margins" in p.extra]
    assert len(margins) == 6 and margins[0] == pytest.approx(0.0, abs=1e-4), (
        "starts at its reference"
    )
    assert max(margins[1:]) > 0.05, "the chosen replies gain on the rejected ones"
    assert {"rewards/accuracies", "logps/chosen"} <= set(curve[-1].extra)
    assert "rewards/accuracies" in result["objective_metrics"]
    model = runtime.models.get(out.name)
    assert model.kind == "adapter" and model.base_model == "tiny-chat"
    estimate = runtime.training.estimate(dpo_config)
    assert estimate.basis.startswith("measured") and estimate.steps == 6


@pytest.mark.parametrize(
    ("objective", "method"), [("orpo", "lora"), ("simpo", "dora"), ("kto", "lora"), ("dpo", "full")]
)
def test_each_objective_trains_with_each_method(
    runtime: Runtime, datasets: dict[str, str], objective: str, method: str
) -> None:
    lr = 5e-4 if method == "full" else 5e-3
    done = run(
        runtime,
        datasets["preference"],
        objective=objective,
        method=method,
        max_steps=2,
        learning_rate=lr,
    )
    result = done["result"]
    out = Path(result["output_dir"])
    assert result["steps"] == 2 and out.name.startswith(f"{method}-{objective}_")
    figures = runtime.training.curve(done["id"]).points[-1].extra
    assert "rewards/chosen" in figures, figures
    if method == "full":  # the reference was precomputed: one model copy, saved whole
        assert result["kind"] == "finetuned" and (out / "model.safetensors").exists()
    else:
        adapter = json.loads((out / "adapter_config.json").read_text())
        assert result["kind"] == "adapter" and adapter["use_dora"] == (method == "dora")
        assert not (out / "model.safetensors").exists(), "the adapter alone, not the base"


@pytest.mark.parametrize("objective", ["grpo", "rloo"])
def test_sampling_objectives_score_groups_with_declared_rewards(
    runtime: Runtime, datasets: dict[str, str], objective: str
) -> None:
    done = run(
        runtime,
        datasets["prompts"],
        objective=objective,
        max_steps=2,
        batch_size=2,
        grpo={
            "num_generations": 2,
            "max_completion_length": 8,
            "rewards": [
                {"kind": "numeric", "weight": 1.0},
                {"kind": "length", "max_chars": 12, "weight": 0.5},
            ],
        },
    )
    figures = runtime.training.curve(done["id"]).points[-1].extra
    assert {"reward", "reward_std", "rewards/1_numeric/mean", "rewards/2_length/mean"} <= set(
        figures
    ), figures
    assert 0.0 <= figures["rewards/2_length/mean"] <= 1.0
    assert done["result"]["steps"] == 2
    out = Path(done["result"]["output_dir"])
    assert (out / "adapter_model.safetensors").exists() and not (out / "model.safetensors").exists()


MANUAL = (
    "Pump manual. The coolant pump moves forty litres per minute. "
    "Its filter is replaced every six months. The warranty covers two years of use."
)


def manual_kb(runtime: Runtime) -> str:
    """A knowledge base holding one text document (one page), ingested by the worker."""
    from aift.rag.schemas import KnowledgeBaseCreate

    runtime.owns_vector_index = True  # this process plays the server: it keeps the index
    assert runtime.index_syncer is not None
    kb = runtime.knowledge.create(KnowledgeBaseCreate(name="manuals"))
    path = runtime.workspace.temp_uploads / "pump.txt"
    path.write_text(MANUAL)
    upload = runtime.knowledge.add_files(kb.id, [(path, "pump.txt")])
    job = wait_for(
        lambda: runtime.jobs.get(str(upload.job_id)).model_dump(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled", "interrupted"},
        600,
    )
    assert job["status"] == "succeeded", job["error"]
    return kb.name


def test_a_reward_model_and_a_knowledge_base_score_grpo_completions(
    runtime: Runtime, datasets: dict[str, str]
) -> None:
    done = run(runtime, datasets["preference"], objective="reward", max_steps=3)
    result = done["result"]
    out = Path(result["output_dir"])
    assert out.name.startswith("lora-reward_") and result["kind"] == "reward"
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"], "saved merged, whole"
    assert not (out / "adapter_config.json").exists()
    figures = runtime.training.curve(done["id"]).points[-1].extra
    assert {"accuracy", "margin"} <= set(figures), figures
    assert runtime.models.get(out.name).kind == "reward"
    runtime.models.scan()  # a rescan keeps it a reward model
    assert runtime.models.get(out.name).kind == "reward"
    with pytest.raises(NotFound):  # scored with, never chatted with
        runtime.model_manager.describe(out.name)

    kb = manual_kb(runtime)
    rows = [{**row, "document": "pump.txt", "page": 1} for row in prompt_rows()]
    cited = add_dataset(runtime, "cited", rows)
    rewards = [
        {"kind": "model", "model": out.name, "weight": 0.5},
        {"kind": "cites_page", "knowledge_base": kb},
    ]
    grpo = {"num_generations": 2, "max_completion_length": 8, "rewards": rewards}
    done = run(runtime, cited, objective="grpo", max_steps=2, batch_size=2, grpo=grpo)
    figures = runtime.training.curve(done["id"]).points[-1].extra
    assert {f"rewards/{out.name}/mean", "rewards/2_cites_page/mean"} <= set(figures), figures
    assert 0.0 <= figures["rewards/2_cites_page/mean"] <= 1.0
    pages = json.loads((Path(done["result"]["output_dir"]) / "reward_pages.json").read_text())
    assert pages == {"pump.txt#1": MANUAL}

    submit = runtime.training.submit
    base = {"base_model": "tiny-chat", "max_steps": 2, "objective": "grpo"}
    chat_judge = {"rewards": [{"kind": "model", "model": "tiny-chat"}]}
    with pytest.raises(InvalidInput, match="tiny-chat is not a reward model"):
        submit(TrainingConfig(**base, dataset=cited, grpo=chat_judge))
    elsewhere = add_dataset(
        runtime, "elsewhere", [{**row, "document": "pump.txt", "page": 2} for row in rows]
    )
    with pytest.raises(InvalidInput, match="finds no page for .*pump.txt has no text on page 2"):
        submit(TrainingConfig(**base, dataset=elsewhere, grpo={"rewards": rewards[1:]}))
    unknown_kb = {"rewards": [{"kind": "cites_page", "knowledge_base": "nope"}]}
    with pytest.raises(NotFound, match="Knowledge base 'nope' does not exist"):
        submit(TrainingConfig(**base, dataset=cited, grpo=unknown_kb))


def test_a_run_scores_its_model_before_and_after_on_an_evaluation_set(
    runtime: Runtime, datasets: dict[str, str]
) -> None:
    evaluation = {"dataset": datasets["sft"], "examples": 2}
    done = run(runtime, datasets["sft"], max_steps=6, evaluation=evaluation)
    scored = done["result"]["evaluation"]
    before, after = scored["before"], scored["after"]
    assert scored["dataset"] == datasets["sft"] and before["examples"] == after["examples"] == 2
    assert after["loss"] < before["loss"], "training on sums lowered the loss on held-out sums"
    assert before["exact_match"] is not None and 0.0 <= after["exact_match"] <= 1.0
    # a DPO run is scored on the same demonstrations (or on its pairs' chosen replies)
    dpo = run(
        runtime, datasets["preference"], objective="dpo", max_steps=2, evaluation={"examples": 2}
    )
    assert dpo["result"]["evaluation"]["before"]["loss"] > 0
    text = add_dataset(runtime, "prose", [{"text": f"Line {i} of prose."} for i in range(10)])
    with pytest.raises(InvalidInput, match="is raw text"):
        runtime.training.submit(
            TrainingConfig(
                base_model="tiny-chat", dataset=datasets["sft"], evaluation={"dataset": text}
            )
        )


def test_runs_that_cannot_work_are_refused_before_they_start(
    runtime: Runtime, datasets: dict[str, str]
) -> None:
    submit = runtime.training.submit
    base = {"base_model": "tiny-chat", "max_steps": 2}
    with pytest.raises(InvalidInput, match="dpo trains on preference datasets"):
        submit(TrainingConfig(**base, dataset=datasets["sft"], objective="dpo"))
    with pytest.raises(InvalidInput, match="sft trains on .*pairs is preference"):
        submit(TrainingConfig(**base, dataset=datasets["preference"]))
    # a reward that needs an answer, on rows without one: every such row is named
    no_answers = add_dataset(runtime, "bare", [{"prompt": f"Say {i}."} for i in range(6)])
    with pytest.raises(
        InvalidInput, match=r"cannot score 5 train row\(s\).*row 1 has no answer"
    ) as error:
        submit(TrainingConfig(**base, dataset=no_answers, objective="grpo"))
    assert len(error.value.details) == 5
    regex = {"rewards": [{"kind": "regex", "pattern": "(unclosed"}]}
    with pytest.raises(InvalidInput, match="Reward 1 \\(regex\\): bad pattern"):
        submit(TrainingConfig(**base, dataset=datasets["prompts"], objective="grpo", grpo=regex))
    schema = {"rewards": [{"kind": "json_schema", "json_schema": {"type": "nonsense"}}]}
    with pytest.raises(InvalidInput, match="bad schema"):
        submit(TrainingConfig(**base, dataset=datasets["prompts"], objective="grpo", grpo=schema))
    vllm = {"vllm": True}  # no GPU on this machine (the device check runs it on one)
    with pytest.raises(CapabilityMissing, match="grpo.vllm"):
        submit(TrainingConfig(**base, dataset=datasets["prompts"], objective="grpo", grpo=vllm))
    with pytest.raises(InvalidInput, match="not an adapter"):
        submit(TrainingConfig(**base, dataset=datasets["sft"], adapter="tiny-chat"))
    assert not [j for j in runtime.jobs.list(limit=100).items if j.status == "queued"]


def test_a_cancelled_dpo_run_resumes_from_its_checkpoint_with_the_same_reference(
    runtime: Runtime, datasets: dict[str, str]
) -> None:
    config = TrainingConfig(
        base_model="tiny-chat",
        dataset=datasets["preference"],
        objective="dpo",
        max_steps=8,
        save_steps=4,
        batch_size=2,
        learning_rate=5e-3,
        max_length=128,
        preference={"precompute_reference": True},
    )
    job = runtime.training.submit(config)
    wait_for(
        lambda: runtime.jobs.get(job.id).model_dump(),
        lambda j: (j["metrics"] or {}).get("step", 0) >= 2,
        timeout=600,
    )
    runtime.jobs.cancel(job.id)
    stopped = wait_for(
        lambda: runtime.jobs.get(job.id).model_dump(),
        lambda j: j["status"] in {"cancelled", "succeeded", "failed"},
        timeout=600,
    )
    assert stopped["status"] == "cancelled", stopped["error"]
    checkpoints = Path(job.config["output_dir"]) / "checkpoints"
    saved = sorted(int(p.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*"))
    assert saved and saved[-1] < 8, "the cancel saved a checkpoint before the end"
    runtime.jobs.resume(job.id)
    done = wait_for(
        lambda: runtime.jobs.get(job.id).model_dump(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled"},
        timeout=600,
    )
    assert done["status"] == "succeeded", (done["error"], runtime.jobs.log_tail(job.id)[-20:])
    result = done["result"]
    assert result["resumed_from"] == f"checkpoint-{saved[-1]}" and result["steps"] == 8
    assert (Path(result["output_dir"]) / "adapter_model.safetensors").exists()
    entries = [
        json.loads(line)
        for line in (Path(result["output_dir"]) / "metrics.jsonl").read_text().splitlines()
    ]
    steps = [e["step"] for e in entries if "loss" in e]
    assert steps[-(8 - saved[-1]) :] == list(range(saved[-1] + 1, 9)), steps
    # the precomputed reference is the base (the new adapter disabled): at the first step
    # the policy is the reference, so the margin is zero
    first = next(e for e in entries if e.get("step") == 1 and "rewards/margins" in e)
    assert first["rewards/margins"] == pytest.approx(0.0, abs=1e-4)
