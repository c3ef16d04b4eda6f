"""What this CPU says it can do, read from /proc/cpuinfo.

The flags are what the CPU (or the hypervisor in front of it) *advertises*; they are not
proof that an instruction runs: a VM may list AMX and still fault on `tileloadd`. aift
uses them to skip code that certainly cannot run, and a probe in a child process for
the rest (`llamacpp_backend`).
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name, its vendor and the instruction-set flags it advertises."""

    model: str
    vendor: str
    flags: frozenset[str]
    machine: str

    def fingerprint(self) -> str:
        """A short key that changes when the machine's CPU (or its advertised flags) do."""
        text = "|".join((self.machine, self.vendor, self.model, " ".join(sorted(self.flags))))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def has(self, *flags: str) -> bool:
        return all(flag in self.flags for flag in flags)


def parse_cpuinfo(text: str, machine: str) -> CpuInfo:
    """The first processor's model, vendor and flags from /proc/cpuinfo's text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough: every core is the same model
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return CpuInfo(
        model=fields.get("model name", "unknown"),
        vendor=fields.get("vendor_id", "unknown"),
        flags=frozenset(fields.get("flags", "").split()),
        machine=machine,
    )


@cache
def cpu_info() -> CpuInfo:
    """This machine's CPU (flags empty where /proc/cpuinfo is missing: not Linux)."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return parse_cpuinfo(text, platform.machine())
