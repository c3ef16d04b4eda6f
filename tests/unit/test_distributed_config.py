"""Distributed launch settings: DeepSpeed configs its own parser accepts, torchrun commands,
and clear refusals where a strategy cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from aift.errors import CapabilityMissing
from aift.training.distributed import (
    check_supported,
    deepspeed_config,
    launch_command,
    node_commands,
)
from aift.training.schemas import DistributedSettings, TrainingJobConfig


def job(**distributed: object) -> TrainingJobConfig:
    return TrainingJobConfig.model_validate(
        {
            "base_model": "m",
            "dataset": "d",
            "batch_size": 2,
            "gradient_accumulation": 4,
            "distributed": {"strategy": "deepspeed", **distributed},
            "output_dir": "/tmp/out",
            "base": {
                "requested": "m",
                "name": "m",
                "source": "local",
                "path": "/m",
                "format": "hf",
            },
        }
    )


@pytest.mark.parametrize(
    ("stage", "offload", "precision"), [(2, False, "bf16"), (3, True, "fp16"), (3, False, "fp32")]
)
def test_generated_zero_configs_pass_deepspeeds_own_parser(
    stage: int, offload: bool, precision: str
) -> None:
    from deepspeed.runtime.config import DeepSpeedConfig

    config = job(zero_stage=stage, offload=offload, processes_per_node=1)
    parsed = DeepSpeedConfig(deepspeed_config(config, precision))
    assert parsed.zero_optimization_stage == stage
    assert parsed.train_micro_batch_size_per_gpu == 2 and parsed.gradient_accumulation_steps == 4
    assert parsed.train_batch_size == 8  # derived by DeepSpeed: micro × accumulation × world
    assert parsed.bfloat16_config.enabled == (precision == "bf16")
    assert parsed.float16_config.enabled == (precision == "fp16")
    offloaded = parsed.zero_config.offload_optimizer
    assert (offloaded is not None and offloaded.device == "cpu") == offload
    if stage == 3:
        assert (parsed.zero_config.offload_param is not None) == offload


def test_deepspeed_is_refused_without_cuda_and_settings_are_checked() -> None:
    with pytest.raises(CapabilityMissing, match="ddp or fsdp"):
        check_supported(DistributedSettings(strategy="deepspeed"), on_gpu=False)
    check_supported(DistributedSettings(strategy="fsdp"), on_gpu=False)
    with pytest.raises(ValidationError, match="node_rank"):
        DistributedSettings(nodes=2, node_rank=2)
    with pytest.raises(ValidationError):
        DistributedSettings(master_addr="host; rm -rf /")
    with pytest.raises(ValidationError, match="continual"):
        job(strategy="ddp").model_validate(
            {**job(strategy="ddp").model_dump(), "continual": {"chain": "c", "start": "new"}}
        )


def test_torchrun_commands_for_each_node() -> None:
    settings = DistributedSettings(
        nodes=2, node_rank=1, processes_per_node=4, master_addr="10.0.0.5"
    )
    command = launch_command(settings, Path("/w/launch.json"), 29500)
    assert command[1:3] == ["-m", "torch.distributed.run"]
    assert {"--nnodes=2", "--nproc-per-node=4", "--node-rank=1", "--master-addr=10.0.0.5"} <= set(
        command
    )
    assert command[-2:] == ["aift.training.rank", "/w/launch.json"]
    lines = node_commands(Path("run.yaml"), settings)
    assert lines[1].endswith("aift train run.yaml --node-rank 1") and len(lines) == 2
