"""Fine-tuning runs as real jobs in a real worker process, on a tiny Llama."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aift.allocator import jemalloc_library
from aift.config import load_settings
from aift.errors import CapabilityMissing, InvalidInput, NotFound
from aift.monitoring.metrics import sample_value
from aift.runtime import Runtime
from aift.training.schemas import DatasetOptions, TrainingConfig
from tests.integration.conftest import aift_env, wait_for

FACTS = [
    {
        "instruction": f"What is the code of item {i}?",
        "output": f"The code of item {i} is X{i * 7}.",
    }
    for i in range(20)
]


@pytest.fixture
def runtime(tmp_path: Path, tiny_chat_model_dir: Path) -> Iterator[Runtime]:
    rt = Runtime.start(load_settings(workspace=tmp_path / "ws", offline=True))
    shutil.copytree(tiny_chat_model_dir, rt.workspace.models / "tiny-chat")
    rt.models.scan()
    yield rt
    rt.close()


def start_worker(runtime: Runtime, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "aift.cli", "worker"],
        env=aift_env(runtime.settings.workspace, **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def worker(runtime: Runtime) -> Iterator[subprocess.Popen]:
    process = start_worker(runtime)
    yield process
    process.terminate()
    process.wait(timeout=60)


@pytest.fixture
def dataset_id(runtime: Runtime, tmp_path: Path) -> str:
    path = tmp_path / "facts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in FACTS))
    return runtime.datasets.add(path, "facts.jsonl", DatasetOptions(val_ratio=0.1)).dataset.id


def finished(runtime: Runtime, job_id: str, timeout: float = 600) -> dict:
    return wait_for(
        lambda: runtime.jobs.get(job_id).model_dump(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled", "interrupted"},
        timeout,
    )


def config(dataset_id: str, **overrides: object) -> TrainingConfig:
    values = {
        "base_model": "tiny-chat",
        "dataset": dataset_id,
        "max_steps": 20,
        "batch_size": 4,
        "learning_rate": 2e-3,
        "eval_steps": 10,
        "save_steps": 10,
        "warmup_ratio": 0.0,
    }
    return TrainingConfig(**{**values, **overrides})


@pytest.mark.parametrize("method", ["lora", "dora", "full"])
def test_a_run_trains_saves_and_registers(
    runtime: Runtime,
    worker,
    dataset_id: str,  # noqa: ANN001
    method: str,
) -> None:
    lr = 2e-3 if method == "full" else 2e-2  # a random tiny model needs a push
    job = runtime.training.submit(config(dataset_id, method=method, learning_rate=lr))
    done = finished(runtime, job.id)
    assert done["status"] == "succeeded", (done["error"], runtime.jobs.log_tail(job.id)[-20:])
    result = done["result"]
    assert result["last_loss"] < result["first_loss"] - 0.5, "the loss falls"
    assert result["steps"] == 20 and "eval_loss" in result
    out = Path(result["output_dir"])
    assert out.name.startswith(f"{method}_tiny-chat_")
    for name in ("run_config.json", "metrics.json", "README.md", "tokenizer_config.json"):
        assert (out / name).exists(), name
    assert list((out / "tensorboard").rglob("events.out.tfevents*"))
    assert done["metrics"] and "tokens_per_second" in done["metrics"]
    assert result["attention"] == "packed", "packed rows train with per-example attention"
    installed = jemalloc_library() is not None
    assert result["allocator"] == ("jemalloc" if installed else "system"), "the job's allocator"
    assert 50e6 < result["peak_memory_bytes"] < 8e9, "the job process's high-water mark"
    curve = runtime.training.curve(job.id).points
    assert [p.step for p in curve if p.loss is not None] == list(range(1, 21))
    assert [p.step for p in curve if p.eval_loss is not None][:2] == [10, 20]
    assert all(p.learning_rate is not None for p in curve if p.loss is not None)
    assert [p.step for p in runtime.training.curve(job.id, after=18).points] == [19, 20]
    estimate = runtime.training.estimate(config(dataset_id, method=method))
    assert estimate.steps == 20 and estimate.fits
    assert estimate.basis.startswith("measured") and estimate.tokens_per_second
    model = runtime.models.get(out.name)
    if method == "full":
        assert model.kind == "finetuned" and (out / "model.safetensors").exists()
        from transformers import AutoModelForCausalLM

        saved = json.loads((out / "config.json").read_text())
        assert saved.get("use_cache", True) and saved.get("attn_implementation") in (None, "sdpa")
        assert AutoModelForCausalLM.from_pretrained(out).config.num_hidden_layers == 2
    else:
        assert model.kind == "adapter" and model.base_model == "tiny-chat"
        adapter = json.loads((out / "adapter_config.json").read_text())
        assert adapter["use_dora"] == (method == "dora")
        merged_gives_the_adapters_outputs(runtime, done, method)


def merged_gives_the_adapters_outputs(runtime: Runtime, trained: dict, method: str) -> None:
    """Merging the run's adapter gives a full model with the adapter's outputs."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from aift.training.schemas import MergeRequest

    adapter = trained["result"]["model"]
    merged = finished(
        runtime, runtime.training.merge(MergeRequest(adapter=adapter), runtime.models).id
    )
    assert merged["status"] == "succeeded", merged["error"]
    assert merged["result"]["method"] == ("peft" if method == "dora" else "streaming")
    info = runtime.models.get(merged["result"]["model"])
    assert info.kind == "finetuned" and info.details["merged_from"] == adapter
    base_dir = runtime.workspace.models / "tiny-chat"
    ids = torch.tensor([[1, 520, 9531, 198, 2683, 359]])
    with torch.no_grad():
        expected = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base_dir), trained["result"]["output_dir"]
        )(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(base_dir)(ids).logits
        got = AutoModelForCausalLM.from_pretrained(info.path)(ids).logits
    assert torch.allclose(got, expected, atol=1e-4)
    assert not torch.allclose(got, plain, atol=1e-3), "the merge changed the weights"


def kill_between_checkpoints(runtime: Runtime, job_id: str, after_step: int, every: int) -> None:
    """Return as soon as the job has logged a step past `after_step` that is not a
    checkpoint's (checkpoints every `every` steps), polling briskly: a kill then lands
    after one checkpoint and before the next has steps of its own done twice."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        step = (runtime.jobs.get(job_id).metrics or {}).get("step", 0)
        if step > after_step and step % every != 0:
            return
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not pass step {after_step}")


def test_a_killed_run_resumes_from_its_checkpoint(runtime: Runtime, dataset_id: str) -> None:
    first = start_worker(runtime)
    job = runtime.training.submit(
        config(dataset_id, max_steps=30, save_steps=5, eval_steps=None, learning_rate=1e-3)
    )
    wait_for(
        lambda: runtime.jobs.get(job.id).model_dump(),
        lambda j: (j["metrics"] or {}).get("step", 0) >= 6,
        timeout=600,
    )
    # a running training job's figures are in the metrics (read from its job row)
    collected = runtime.metrics.collect()
    assert sample_value(collected, "aift_training_tokens_per_second", job_id=job.id) > 0
    assert sample_value(collected, "aift_training_loss", job_id=job.id) > 0
    kill_between_checkpoints(runtime, job.id, after_step=11, every=5)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = start_worker(runtime)
    try:
        interrupted = wait_for(
            lambda: runtime.jobs.get(job.id).model_dump(),
            lambda j: j["status"] == "interrupted",
            timeout=240,
        )
        assert interrupted["resumable"]
        runtime.jobs.resume(job.id)
        done = finished(runtime, job.id)
    finally:
        second.terminate()
        second.wait(timeout=60)
    assert done["status"] == "succeeded", done["error"]
    result = done["result"]
    resumed_at = int(result["resumed_from"].split("-")[1])
    assert resumed_at >= 10 and result["steps"] == 30
    entries = [
        json.loads(line)
        for line in (Path(result["output_dir"]) / "metrics.jsonl").read_text().splitlines()
    ]
    entries = [e for e in entries if "loss" in e]
    logged = [e["step"] for e in entries]
    restart = len(logged) - 1 - logged[::-1].index(resumed_at + 1)  # the second attempt
    assert logged[restart:] == list(range(resumed_at + 1, 31)), "continues the same steps"
    assert logged[:restart] == list(range(1, restart + 1)), "the first attempt's steps"
    # Steps done twice (after the checkpoint, before the kill) saw the same batches at the
    # same learning rate: same schedule, same data order.
    redone = [
        (entries[k - 1], entries[restart + k - resumed_at - 1])
        for k in range(resumed_at + 1, restart + 1)
    ]
    assert redone, "the kill came after the checkpoint"
    for before, again in redone:
        assert before["learning_rate"] == pytest.approx(again["learning_rate"])
        assert before["loss"] == pytest.approx(again["loss"], abs=1e-3)


def test_bad_runs_are_refused_before_they_start(
    runtime: Runtime, dataset_id: str, tmp_path: Path
) -> None:
    before = runtime.jobs.list().total
    with pytest.raises(NotFound, match="dataset"):
        runtime.training.submit(config("nope"))
    with pytest.raises(InvalidInput, match="not a causal language model|sentence-transformers"):
        runtime.training.submit(config(dataset_id, base_model="all-MiniLM-L6-v2"))
    with pytest.raises(CapabilityMissing, match="GPU"):
        runtime.training.submit(config(dataset_id, method="qlora"))
    with pytest.raises(Exception, match="not available"):
        runtime.training.submit(config(dataset_id, base_model="no-such-model"))
    no_val = tmp_path / "noval.jsonl"
    no_val.write_text("\n".join(json.dumps(r) for r in FACTS[:10]))
    plain = runtime.datasets.add(no_val, "noval.jsonl", DatasetOptions(val_ratio=0)).dataset.id
    with pytest.raises(InvalidInput, match="no validation rows"):
        runtime.training.submit(config(plain))
    from aift.training.schemas import MergeRequest

    with pytest.raises(InvalidInput, match="not an adapter"):
        runtime.training.merge(MergeRequest(adapter="tiny-chat"), runtime.models)
    rough = runtime.training.estimate(config(plain))  # says the same, without refusing
    assert rough.basis.startswith("a rough guess") and "no validation rows" in rough.warnings[0]
    # 18 short examples pack into one row: 3 epochs are 3 optimizer steps, and it says so
    few = runtime.training.estimate(config(dataset_id, max_steps=None, eval_steps=None))
    assert few.steps == 3, few
    assert "Only 3 optimizer step(s): 18 examples pack into about 1 row(s)" in few.warnings[-1]
    from pydantic import ValidationError

    for bad in (
        {"learning_rate": -1},
        {"batch_size": 0},
        {"lora": {"rank": 0}},
        {"method": "full", "lora": {"rank": 4}},
        {"surprise": True},
    ):
        with pytest.raises(ValidationError):
            config(dataset_id, **bad)
    assert runtime.jobs.list().total == before, "no job was created"


def test_a_checkpoint_cut_short_is_not_resumed_from(tmp_path: Path) -> None:
    """A kill in the middle of a save leaves a folder without trainer_state.json."""
    from aift.training.trainer import _latest_checkpoint

    for step, complete in ((5, True), (10, True), (15, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-latest").mkdir()
    assert _latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
