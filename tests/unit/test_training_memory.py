"""The memory estimate of a run: weights, trainable state and one pass's activations."""

from __future__ import annotations

from aift.training.memory import (
    ModelShape,
    pass_tokens,
    run_bytes,
    shape_of_config,
    shape_of_summary,
)
from aift.training.schemas import TrainingConfig

SMOLLM2 = ModelShape(layers=30, hidden=576, intermediate=1536, vocab=49152)
PARAMS = 134_515_008


def run(**values: object) -> TrainingConfig:
    fixed = {"base_model": "m", "dataset": "d", "lora": {"rank": 16, "alpha": 32}}
    return TrainingConfig(**{**fixed, **values})


def test_the_small_dataset_run_is_estimated_near_what_it_measured() -> None:
    """docs/benchmarks.md: LoRA r16 on SmolLM2-135M, bf16 on a CPU, peaked at 1.69 GB."""
    need = run_bytes(run(batch_size=4), PARAMS, SMOLLM2, bf16=True, on_gpu=False)
    assert 1.4e9 < need < 2.0e9
    fp32 = run_bytes(run(batch_size=4), PARAMS, SMOLLM2, bf16=False, on_gpu=False)
    assert fp32 > need + PARAMS * 2, "an fp32 base and fp32 activations need more"


def test_memory_follows_the_tokens_of_a_pass_not_the_packing_length() -> None:
    short, long = run(max_length=1024), run(max_length=4096)
    assert pass_tokens(short, on_gpu=False) == pass_tokens(long, on_gpu=False) == 512
    assert run_bytes(short, PARAMS, SMOLLM2, True, False) == run_bytes(
        long, PARAMS, SMOLLM2, True, False
    )
    assert pass_tokens(run(max_length=256), on_gpu=False) == 256
    # a GPU takes the whole batch; unpacked rows and KTO/GRPO batches too
    assert pass_tokens(run(batch_size=4), on_gpu=True) == 4 * 1024
    assert pass_tokens(run(batch_size=4, packing=False), on_gpu=False) == 4 * 1024
    assert pass_tokens(run(objective="dpo"), on_gpu=False) == 2 * 1024
    gpu = run_bytes(run(batch_size=4), PARAMS, SMOLLM2, True, on_gpu=True)
    assert gpu > run_bytes(run(batch_size=4), PARAMS, SMOLLM2, True, on_gpu=False)


def test_full_fine_tuning_holds_weights_gradients_and_adam_moments() -> None:
    full_run = TrainingConfig(base_model="m", dataset="d", method="full")
    full = run_bytes(full_run, PARAMS, SMOLLM2, bf16=True, on_gpu=False)
    assert full > PARAMS * 16


def test_shapes_from_a_config_or_a_gguf_summary_and_the_fallback_without_one() -> None:
    config = {"hidden_size": 576, "num_hidden_layers": 30, "intermediate_size": 1536}
    assert shape_of_config({**config, "vocab_size": 49152}) == SMOLLM2
    assert shape_of_config({"text_config": {**config, "vocab_size": 49152}}) == SMOLLM2
    assert shape_of_config({"hidden_size": 576}) is None
    summary = {"shape": {"layers": 30, "hidden": 576, "intermediate": 1536, "vocab": 49152}}
    assert shape_of_summary(summary) == SMOLLM2
    assert shape_of_summary({"shape": {"layers": None}}) is None
    assert shape_of_summary({}) is None
    assert run_bytes(run(), PARAMS, None, True, False) == int(PARAMS * 4 * 1.3)
