"""The numeric precision a run trains in, and the dtype its frozen base is held in."""

from __future__ import annotations

from typing import Any

from aift.training.schemas import Method, Objective, Precision, TrainingConfig


def choose_precision(precision: Precision, on_gpu: bool) -> str:
    """bf16 where the hardware computes it natively (auto), else what was asked."""
    if precision != Precision.auto:
        return precision.value
    if on_gpu:
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    from aift.monitoring.system import cpu_supports_bf16

    return "bf16" if cpu_supports_bf16() else "fp32"


def base_in_bf16(config: TrainingConfig, on_gpu: bool) -> bool:
    """Whether the run holds its frozen base in bf16 rather than fp32.

    An adapter run in bf16 computes every matmul in bf16 anyway (autocast), and its base
    weights are frozen, so it needs no fp32 copy of them: holding the base in bf16 halves
    its memory and spares autocast a bf16 copy of each weight per pass (kept for the
    backward). The adapter's own weights stay fp32 (`trainable_in_fp32`). Full
    fine-tuning keeps fp32 master weights; a reward run's new score head trains whole;
    distributed runs leave dtypes to FSDP/DeepSpeed.
    """
    return (
        config.method in (Method.lora, Method.dora)
        and config.objective != Objective.reward
        and config.distributed is None
        and choose_precision(config.precision, on_gpu) == "bf16"
    )


def base_dtype(config: TrainingConfig, on_gpu: bool) -> Any:
    """The torch dtype the base model is loaded in (`base_in_bf16`)."""
    import torch

    return torch.bfloat16 if base_in_bf16(config, on_gpu) else torch.float32


def trainable_in_fp32(model: Any) -> None:
    """Upcast any trainable parameter held in a lower precision (peft already keeps
    adapter weights in fp32; this covers what it does not), so that updates too small
    for bf16 are not lost."""
    import torch

    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()
