"""Distributed training on this machine for real: two CPU processes (gloo) launched by
torchrun as a job, with live metrics from rank 0, a cancel that stops every rank, resume
from the checkpoint, and a loss curve that matches one process with the same global batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from aift.runtime import Runtime
from aift.training.schemas import DatasetOptions, TrainingConfig
from tests.integration.conftest import runtime_with_worker, wait_for

FACTS = [
    {
        "instruction": f"What is the code of item {i}?",
        "output": f"The code of item {i} is X{i * 7}.",
    }
    for i in range(48)
]
STEPS = 50  # long enough to cancel mid-run (at step 20 or later); each step is quick
COMPARED = 25  # steps of the one-process run (a constant learning rate: the same schedule)


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, tiny_chat_model_dir: Path
) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("distributed")
    # two rank processes share the two cores: a thread each
    models = {"tiny-chat": tiny_chat_model_dir}
    with runtime_with_worker(root / "ws", models, AIFT_THREADS="2") as runtime:
        yield runtime


@pytest.fixture(scope="module")
def dataset(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("data") / "facts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in FACTS))
    return runtime.datasets.add(path, "facts.jsonl", DatasetOptions(val_ratio=0)).dataset.id


def config(dataset: str, **overrides: object) -> TrainingConfig:
    values: dict = {
        "base_model": "tiny-chat",
        "dataset": dataset,
        "max_steps": STEPS,
        "batch_size": 4,
        "learning_rate": 1e-2,
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
        "save_steps": 10,
        "max_length": 64,
        "packing": False,
    }
    return TrainingConfig(**{**values, **overrides})


def finished(runtime: Runtime, job_id: str) -> dict:
    return wait_for(
        lambda: runtime.jobs.get(job_id).model_dump(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled", "interrupted"},
        timeout=900,
    )


def losses(output_dir: str) -> dict[int, float]:
    entries = [
        json.loads(line) for line in (Path(output_dir) / "metrics.jsonl").read_text().splitlines()
    ]
    return {e["step"]: e["loss"] for e in entries if "loss" in e}  # a redone step: its last value


def ranks_running(output_dir: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "aift.training.rank" in cmdline and any(output_dir in part for part in cmdline):
            found.append(proc)
    return found


def test_two_ddp_processes_match_one_and_stop_and_resume_together(
    runtime: Runtime, dataset: str
) -> None:
    single_run = config(dataset, name="single", max_steps=COMPARED, save_steps=None)
    single = finished(runtime, runtime.training.submit(single_run).id)
    assert single["status"] == "succeeded", single["error"]

    job = runtime.training.submit(
        config(
            dataset,
            name="ddp",
            batch_size=2,
            distributed={"strategy": "ddp", "processes_per_node": 2},
        )
    )
    running = wait_for(
        lambda: runtime.jobs.get(job.id).model_dump(),
        lambda j: (
            (j["metrics"] or {}).get("step", 0) >= 20
            or j["status"] != "running"
            and j["status"] != "queued"
        ),
        timeout=600,
    )
    assert running["status"] == "running", (running["error"], runtime.jobs.log_tail(job.id)[-20:])
    assert running["metrics"]["max_steps"] == STEPS and "loss" in running["metrics"], (
        "rank 0 reports"
    )
    runtime.jobs.cancel(job.id)
    stopped = finished(runtime, job.id)
    assert stopped["status"] == "cancelled", (stopped["error"], runtime.jobs.log_tail(job.id)[-20:])
    output = stopped["config"]["output_dir"]
    assert list((Path(output) / "checkpoints").glob("checkpoint-*")), (
        "a checkpoint was saved on cancel"
    )
    wait_for(
        lambda: ranks_running(output), lambda found: not found, timeout=60
    )  # every rank stopped

    runtime.jobs.resume(job.id)
    done = finished(runtime, job.id)
    assert done["status"] == "succeeded", (done["error"], runtime.jobs.log_tail(job.id)[-30:])
    result = done["result"]
    assert result["steps"] == STEPS and result["resumed_from"].startswith("checkpoint-")
    assert result["world_size"] == 2 and result["strategy"] == "ddp"
    assert runtime.models.get(Path(output).name).kind == "adapter"

    one, two = losses(single["result"]["output_dir"]), losses(output)
    assert sorted(two) == list(range(1, STEPS + 1)) and sorted(one) == list(range(1, COMPARED + 1))
    gaps = [abs(one[step] - two[step]) for step in one]
    assert max(gaps) < 0.02 * max(one.values()), f"largest gap {max(gaps):.4f}"
    assert two[STEPS] < two[1] - 0.5, "the run learned something"


def test_fsdp_shards_a_full_fine_tune_over_two_processes(runtime: Runtime, dataset: str) -> None:
    from transformers import AutoModelForCausalLM

    job = runtime.training.submit(
        config(
            dataset,
            name="fsdp",
            method="full",
            max_steps=8,
            batch_size=2,
            learning_rate=2e-3,
            save_steps=None,
            distributed={"strategy": "fsdp", "processes_per_node": 2},
        )
    )
    done = finished(runtime, job.id)
    assert done["status"] == "succeeded", (done["error"], runtime.jobs.log_tail(job.id)[-30:])
    result = done["result"]
    assert result["strategy"] == "fsdp" and result["steps"] == 8
    assert result["last_loss"] < result["first_loss"]
    model = AutoModelForCausalLM.from_pretrained(result["output_dir"])  # the gathered weights
    assert model.config.num_hidden_layers == 2
    assert runtime.models.get(Path(result["output_dir"]).name).kind == "finetuned"
