import pytest

from aift.errors import InvalidInput
from aift.models.policy import plan_loading
from aift.monitoring.schemas import DeviceInfo

GIB = 1024**3
B = 1_000_000_000


def cpu(ram_gib: float = 24, bf16: bool = True) -> DeviceInfo:
    return DeviceInfo(kind="cpu", total_memory_bytes=int(ram_gib * GIB), supports_bf16=bf16)


def gpu(mem_gib: float, index: int = 0, bf16: bool = True) -> DeviceInfo:
    return DeviceInfo(
        kind="cuda", index=index, total_memory_bytes=int(mem_gib * GIB), supports_bf16=bf16
    )


@pytest.mark.parametrize(
    ("params", "quant", "dtype"),
    [
        (70 * B, "4bit", "bfloat16"),
        (20 * B, "4bit", "bfloat16"),
        (13 * B, "8bit", "bfloat16"),
        (8 * B, "8bit", "bfloat16"),
        (6 * B, "8bit", "bfloat16"),
        (3 * B, None, "bfloat16"),
        (135_000_000, None, "bfloat16"),
    ],
)
def test_gpu_rules_by_size(params: int, quant: str | None, dtype: str) -> None:
    plan = plan_loading(params, [cpu(256), gpu(80)])
    assert plan.device == "cuda"
    assert plan.quantization == quant
    assert plan.dtype == dtype
    assert plan.offload is None and plan.fits


def test_gpu_without_bf16_uses_fp16() -> None:
    plan = plan_loading(1 * B, [cpu(), gpu(16, bf16=False)])
    assert plan.dtype == "float16" and plan.quantization is None
    with pytest.raises(InvalidInput, match="bf16"):
        plan_loading(1 * B, [cpu(), gpu(16, bf16=False)], prefer="bfloat16")


def test_cpu_picks_bf16_only_when_native() -> None:
    assert plan_loading(1 * B, [cpu(bf16=True)]).dtype == "bfloat16"
    plan = plan_loading(1 * B, [cpu(bf16=False)])
    assert plan.dtype == "float32" and plan.device == "cpu" and plan.quantization is None


def test_cpu_model_too_big_says_what_to_do() -> None:
    plan = plan_loading(70 * B, [cpu(ram_gib=24)])
    assert not plan.fits
    assert "GGUF" in plan.reason


def test_cpu_refuses_bitsandbytes_quantization() -> None:
    with pytest.raises(InvalidInput, match="GPU"):
        plan_loading(1 * B, [cpu()], prefer="4bit")


def test_offload_to_cpu_when_gpu_is_too_small() -> None:
    # 3B in bf16 ≈ 7.2 GB with overhead: does not fit a 4 GiB GPU, fits with RAM.
    plan = plan_loading(3 * B, [cpu(64), gpu(4)])
    assert plan.device_map == "auto"
    assert plan.offload == "cpu"
    assert plan.max_memory == {"0": "3GiB", "cpu": "51GiB"}


def test_offload_to_disk_when_nothing_holds_it() -> None:
    plan = plan_loading(5 * B, [cpu(8), gpu(4)])
    assert plan.offload == "disk"


def test_several_gpus_share_the_model() -> None:
    plan = plan_loading(30 * B, [cpu(128), gpu(24, 0), gpu(24, 1)])
    assert plan.quantization == "4bit" and plan.device_map == "auto" and plan.offload is None


def test_explicit_precision_overrides_rules() -> None:
    plan = plan_loading(1 * B, [cpu(), gpu(80)], prefer="8bit")
    assert plan.quantization == "8bit"
    with pytest.raises(InvalidInput):
        plan_loading(1 * B, [cpu()], prefer="int3")


@pytest.mark.parametrize("params", [0, -5])
def test_nonsense_parameter_count(params: int) -> None:
    with pytest.raises(InvalidInput):
        plan_loading(params, [cpu()])
