"""The numeric precision a run trains in."""

from __future__ import annotations

from aift.training.schemas import Precision


def choose_precision(precision: Precision, on_gpu: bool) -> str:
    """bf16 where the hardware computes it natively (auto), else what was asked."""
    if precision != Precision.auto:
        return precision.value
    if on_gpu:
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    from aift.monitoring.system import cpu_supports_bf16

    return "bf16" if cpu_supports_bf16() else "fp32"
