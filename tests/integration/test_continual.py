"""A continual-learning chain of two tasks as real training jobs on a tiny Llama: EWC and
replay in stage 2, the forgetting matrix in the run's metrics, API and CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aift.errors import InvalidInput, NotFound
from aift.runtime import Runtime
from aift.training.schemas import DatasetOptions, TrainingConfig
from tests.integration.conftest import aift_env, runtime_with_worker, wait_for

CODES = [
    {"instruction": f"What is the code of item {i}?", "output": f"X{i * 7}"} for i in range(20)
]
COLOURS = [
    {"instruction": f"What colour is box {i}?", "output": ["red", "blue", "green"][i % 3]}
    for i in range(20)
]


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, tiny_chat_model_dir: Path
) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("continual")
    with runtime_with_worker(root / "ws", {"tiny-chat": tiny_chat_model_dir}) as runtime:
        yield runtime


def add(runtime: Runtime, tmp_path: Path, name: str, rows: list[dict], val: float = 0.2) -> str:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return runtime.datasets.add(path, name, DatasetOptions(val_ratio=val)).dataset.id


def stage(dataset: str, method: str = "lora", **continual: object) -> TrainingConfig:
    return TrainingConfig(
        base_model="tiny-chat",
        dataset=dataset,
        method=method,
        max_steps=10,
        batch_size=4,
        learning_rate=2e-2,
        warmup_ratio=0.0,
        save_steps=10,
        continual={"chain": "facts", "fisher_samples": 8, "exact_match": True, **continual},
    )


def run(runtime: Runtime, config: TrainingConfig) -> dict:
    job = runtime.training.submit(config)
    done = wait_for(
        lambda: runtime.jobs.get(job.id).model_dump(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled", "interrupted"},
        timeout=600,
    )
    assert done["status"] == "succeeded", (done["error"], runtime.jobs.log_tail(job.id)[-20:])
    return done


def test_a_two_task_chain_with_ewc_and_replay(runtime: Runtime, tmp_path: Path) -> None:
    codes = add(runtime, tmp_path, "codes.jsonl", CODES)
    colours = add(runtime, tmp_path, "colours.jsonl", COLOURS)

    first = run(runtime, stage(codes, start="new", task="codes"))["result"]
    out1 = Path(first["output_dir"])
    assert out1.name == "continual_task_1_facts" and first["model"] == out1.name
    assert (out1 / "ewc.safetensors").is_file() and (out1 / "continual.json").is_file()
    assert first["continual"]["fisher_samples"] == 8 and not first["continual"]["ewc"]
    assert [s["task"] for s in first["continual"]["scores"]] == ["codes"]

    second_job = run(
        runtime, stage(colours, start="continue", task="colours", ewc_lambda=50.0, replay_ratio=0.5)
    )
    second = second_job["result"]
    out2 = Path(second["output_dir"])
    assert out2.name == "continual_task_2_facts"
    assert second["continual"]["ewc"] and second["continual"]["replayed_rows"] == 8  # 16 × 0.5
    assert second["last_penalty"] > 0, "the EWC penalty entered the loss"
    assert second_job["metrics"]["continual_stages"] == 2

    from safetensors.torch import load_file

    state = load_file(out2 / "ewc.safetensors")
    assert int(state["meta.tasks"]) == 2, "online EWC: one state for both tasks"
    assert any(k.startswith("fisher.") and "lora_A" in k for k in state)

    chain = runtime.training.chain("facts")
    assert [s.task for s in chain.stages] == ["codes", "colours"]
    assert [len(s.scores) for s in chain.stages] == [1, 2], "stage × task matrix"
    assert all(0.0 <= s.exact_match <= 1.0 for st in chain.stages for s in st.scores)  # type: ignore[operator]
    assert all(s.loss is not None and s.loss > 0 for st in chain.stages for s in st.scores)
    summary = chain.summary
    assert summary.stages == 2 and summary.backward_transfer is not None
    assert summary.forgetting_loss == pytest.approx(
        chain.stages[1].scores[0].loss - chain.stages[0].scores[0].loss  # type: ignore[operator]
    )
    assert runtime.models.get(out2.name).kind == "adapter"
    assert [c.name for c in runtime.training.chains()] == ["facts"]

    cli = subprocess.run(
        [sys.executable, "-m", "aift.cli", "chains", "show", "facts"],
        env=aift_env(runtime.settings.workspace),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    assert (
        "colours" in cli.stdout and "EWC λ=50" in cli.stdout and "backward transfer" in cli.stdout
    )

    # chains that do not fit are refused before any job starts
    before = runtime.jobs.list().total
    with pytest.raises(InvalidInput, match="exists already"):
        runtime.training.submit(stage(codes, start="new"))
    with pytest.raises(InvalidInput, match="no chain 'other'"):
        runtime.training.submit(stage(codes, start="continue", chain="other"))
    with pytest.raises(InvalidInput, match="task named 'codes'"):
        runtime.training.submit(stage(codes, start="continue", task="codes"))
    with pytest.raises(InvalidInput, match="trains lora"):
        runtime.training.submit(stage(codes, "dora", start="continue", task="again"))
    text = add(runtime, tmp_path, "text.jsonl", [{"text": f"line {i}"} for i in range(10)])
    with pytest.raises(InvalidInput, match="no answers to match"):
        runtime.training.submit(stage(text, start="continue", task="text"))
    no_val = add(runtime, tmp_path, "noval.jsonl", CODES[:5], val=0.0)
    with pytest.raises(InvalidInput, match="validation rows"):
        runtime.training.submit(stage(no_val, start="continue", task="noval"))
    with pytest.raises(NotFound, match="chains: facts"):
        runtime.training.chain("nope")
    assert runtime.jobs.list().total == before

    # a third stage learns preferences (DPO) on the same adapter, under the same EWC
    pairs = [
        {"prompt": r["instruction"], "chosen": r["output"], "rejected": f"I think {r['output']}?"}
        for r in COLOURS
    ]
    pairs_id = add(runtime, tmp_path, "pairs.jsonl", pairs)
    settings = {"start": "continue", "task": "manners", "ewc_lambda": 50.0, "replay_ratio": 0.5}
    dpo = TrainingConfig.model_validate(
        {**stage(pairs_id, **settings).model_dump(), "objective": "dpo", "max_steps": 4}
    )
    third_job = run(runtime, dpo)
    third = third_job["result"]["continual"]
    assert third["stage"] == 3 and third["ewc"] and third_job["result"]["last_penalty"] > 0
    assert third["replayed_rows"] == 0, "earlier demonstrations are not DPO rows"
    assert [s["task"] for s in third["scores"]] == ["codes", "colours", "manners"]
    assert all(s["loss"] > 0 for s in third["scores"]), "scored on the chosen replies"
    manners = third["scores"][-1]
    assert 0.0 <= manners["preference_rate"] <= 1.0, "the DPO task's own property, per stage"
    assert all(s["preference_rate"] is None for s in third["scores"][:2]), "no pairs there"
    curve = runtime.training.curve(third_job["id"]).points
    assert "rewards/margins" in curve[-1].extra
    state = load_file(Path(third_job["result"]["output_dir"]) / "ewc.safetensors")
    assert int(state["meta.tasks"]) == 3
    assert runtime.models.get(third_job["result"]["model"]).kind == "adapter"
    with pytest.raises(ValueError, match="reward model is not a stage"):
        TrainingConfig.model_validate({**dpo.model_dump(), "objective": "reward"})
