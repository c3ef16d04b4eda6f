"""The loading policy: parameter count + devices → dtype, quantization, offload.

A pure function, so the rules are tested without hardware. The rules (from the seed):
on a GPU, ≥20B parameters load in 4-bit, 6B–20B in 8-bit, smaller in bf16 (fp16 when
the GPU lacks bf16); on a CPU, bf16 when the CPU has native bf16, else fp32. When the
model does not fit the GPU(s) the rest is offloaded to CPU RAM, then to disk.
"""

from __future__ import annotations

from aift.errors import InvalidInput
from aift.models.schemas import LoadingPlan
from aift.monitoring.schemas import DeviceInfo

GIB = 1024**3
BILLION = 1_000_000_000
FOUR_BIT_FROM = 20 * BILLION
EIGHT_BIT_FROM = 6 * BILLION
OVERHEAD = 1.2  # activations, KV cache, allocator slack
USABLE_GPU = 0.9
USABLE_RAM = 0.8

BYTES_PER_PARAM = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "8bit": 1.0, "4bit": 0.55}
EXPLICIT_CHOICES = ("float32", "bfloat16", "float16", "8bit", "4bit")


def estimate_bytes(parameter_count: int, precision: str) -> int:
    """Memory a model needs to run at `precision` (weights plus a fixed overhead)."""
    return int(parameter_count * BYTES_PER_PARAM[precision] * OVERHEAD)


def _gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


def plan_loading(
    parameter_count: int,
    devices: list[DeviceInfo],
    *,
    prefer: str | None = None,
) -> LoadingPlan:
    """Choose how to load a model of `parameter_count` parameters on `devices`.

    `devices` holds the CPU (its memory is the RAM) and any GPUs. `prefer` forces a
    precision ("float32", "bfloat16", "float16", "8bit", "4bit") instead of the rules.
    """
    if parameter_count <= 0:
        raise InvalidInput("parameter_count must be positive")
    if prefer is not None and prefer not in EXPLICIT_CHOICES:
        raise InvalidInput(f"Unknown precision {prefer!r}; choose one of {EXPLICIT_CHOICES}.")
    cpu = next((d for d in devices if d.kind == "cpu"), None)
    if cpu is None:
        raise InvalidInput("The device list must include the CPU.")
    gpus = [d for d in devices if d.kind == "cuda"]
    if gpus:
        return _plan_gpu(parameter_count, gpus, cpu, prefer)
    return _plan_cpu(parameter_count, cpu, prefer)


def _plan_gpu(
    params: int, gpus: list[DeviceInfo], cpu: DeviceInfo, prefer: str | None
) -> LoadingPlan:
    all_bf16 = all(g.supports_bf16 for g in gpus)
    if prefer:
        precision = prefer
        why = f"{prefer} as requested"
    elif params >= FOUR_BIT_FROM:
        precision, why = "4bit", "≥20B parameters load in 4-bit"
    elif params >= EIGHT_BIT_FROM:
        precision, why = "8bit", "6B–20B parameters load in 8-bit"
    else:
        precision = "bfloat16" if all_bf16 else "float16"
        why = "under 6B parameters load in " + (
            "bf16" if all_bf16 else "fp16 (this GPU has no bf16)"
        )
    if precision == "bfloat16" and not all_bf16:
        raise InvalidInput("bfloat16 was requested but a GPU here has no bf16 support.")
    compute_dtype = "bfloat16" if all_bf16 else "float16"
    dtype = precision if precision in ("float32", "bfloat16", "float16") else compute_dtype
    quant = precision if precision in ("8bit", "4bit") else None
    need = estimate_bytes(params, precision)
    gpu_room = sum(g.total_memory_bytes for g in gpus) * USABLE_GPU
    ram_room = cpu.total_memory_bytes * USABLE_RAM
    device_map = "auto" if len(gpus) > 1 else "cuda:0"
    if need <= gpu_room:
        return LoadingPlan(
            device="cuda",
            dtype=dtype,
            quantization=quant,
            device_map=device_map,
            estimated_bytes=need,
            reason=f"{why}; needs ~{_gib(need)} of {_gib(gpu_room)} usable GPU memory",
        )
    max_memory = {str(g.index): _gib_int(g.total_memory_bytes * USABLE_GPU) for g in gpus}
    max_memory["cpu"] = _gib_int(ram_room)
    offload = "cpu" if need <= gpu_room + ram_room else "disk"
    return LoadingPlan(
        device="cuda",
        dtype=dtype,
        quantization=quant,
        device_map="auto",
        max_memory=max_memory,
        offload=offload,
        estimated_bytes=need,
        reason=(
            f"{why}; needs ~{_gib(need)} but the GPU(s) hold {_gib(gpu_room)}: "
            f"the rest is offloaded to {'CPU RAM' if offload == 'cpu' else 'disk'} (slower)"
        ),
    )


def _plan_cpu(params: int, cpu: DeviceInfo, prefer: str | None) -> LoadingPlan:
    if prefer in ("8bit", "4bit"):
        raise InvalidInput(
            f"{prefer} loading needs a GPU (bitsandbytes). On CPU use a GGUF model "
            "through the llama.cpp engine, or float32/bfloat16."
        )
    if prefer:
        dtype, why = prefer, f"{prefer} as requested"
    elif cpu.supports_bf16:
        dtype, why = "bfloat16", "this CPU computes bf16 natively"
    else:
        dtype, why = "float32", "this CPU has no native bf16"
    need = estimate_bytes(params, dtype)
    ram_room = cpu.total_memory_bytes * USABLE_RAM
    fits = need <= ram_room
    reason = f"{why}; needs ~{_gib(need)} of {_gib(ram_room)} usable RAM"
    if not fits:
        reason += (
            ". It does not fit: use a quantized GGUF of this model with the llama.cpp "
            "engine, a smaller model, or a GPU machine"
        )
    return LoadingPlan(
        device="cpu",
        dtype=dtype,
        device_map="cpu",
        estimated_bytes=need,
        fits=fits,
        reason=reason,
    )


def _gib_int(value: float) -> str:
    return f"{max(1, int(value // GIB))}GiB"
