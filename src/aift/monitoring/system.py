"""What this machine has: CPU, RAM, GPUs, and the versions of the libraries in use."""

from __future__ import annotations

import importlib.metadata
import logging
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psutil

from aift.monitoring.schemas import DeviceInfo

log = logging.getLogger(__name__)

LIBRARIES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "accelerate",
    "sentence-transformers",
    "qdrant-client",
    "llama-cpp-python",
    "fastapi",
    "sqlalchemy",
    "huey",
)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AVX-512 BF16 or AMX)."""
    flags = _cpu_flags()
    return bool({"avx512_bf16", "amx_bf16"} & flags)


@contextmanager
def _nvml() -> Iterator[Any]:
    """NVML, initialised for the block; None when there is no library or no driver."""
    try:
        import pynvml
    except ImportError:
        yield None
        return
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver means no GPU, not an error
        yield None
        return
    try:
        yield pynvml
    finally:
        pynvml.nvmlShutdown()


def _gpus() -> list[DeviceInfo]:
    """NVIDIA GPUs through NVML; an empty list when there are none or no driver."""
    gpus = []
    with _nvml() as nvml:
        if nvml is None:
            return []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle).total
            major, _minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append(
                DeviceInfo(
                    kind="cuda",
                    index=index,
                    name=name if isinstance(name, str) else name.decode(),
                    total_memory_bytes=int(memory),
                    supports_bf16=major >= 8,
                )
            )
    return gpus


@lru_cache(maxsize=1)
def detect_devices() -> tuple[DeviceInfo, ...]:
    """The CPU (with total RAM) followed by any GPUs; read once per process."""
    cpu = DeviceInfo(
        kind="cpu",
        name=_cpu_name(),
        total_memory_bytes=psutil.virtual_memory().total,
        supports_bf16=cpu_supports_bf16(),
    )
    return (cpu, *_gpus())


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries aift builds on (None when absent)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def usage() -> dict[str, Any]:
    """Current CPU and memory use of the machine."""
    memory = psutil.virtual_memory()
    return {
        "cpu_count": psutil.cpu_count(logical=True),
        "cpu_percent": psutil.cpu_percent(interval=None),
        "memory_total_bytes": memory.total,
        "memory_available_bytes": memory.available,
    }


def gpu_usage() -> list[dict[str, Any]]:
    """Utilisation (%) and memory (bytes) of each NVIDIA GPU now, through NVML; an empty
    list without a GPU or driver."""
    found = []
    with _nvml() as nvml:
        if nvml is None:
            return []
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)
                found.append(
                    {
                        "index": index,
                        "utilization_percent": float(rates.gpu),
                        "memory_used_bytes": int(memory.used),
                        "memory_total_bytes": int(memory.total),
                    }
                )
        except Exception:  # noqa: BLE001 - a GPU that stops answering is reported as absent
            log.warning("NVML stopped answering; GPU metrics skipped", exc_info=True)
    return found
