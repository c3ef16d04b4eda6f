"""The memory allocator of job processes: jemalloc where it is installed.

Training allocates and frees activations of a few megabytes each, thousands of times
per step. glibc's malloc raises its mmap threshold as such blocks are freed, then serves
them from heaps it fragments and rarely returns; jemalloc reuses them. PyTorch's CPU
tuning guide recommends it. On a LoRA run of SmolLM2-135M it was 1.25× faster and its
peak memory 0.34 GB lower (docs/benchmarks.md, "a small chat dataset"). It is loaded with
`LD_PRELOAD` into each job process when `job_allocator` is `jemalloc` (the default) and
the library is installed (Debian: libjemalloc2, which `make setup` installs as root);
otherwise jobs keep the system allocator.
"""

from __future__ import annotations

import glob
import os
import resource
import sys
from pathlib import Path

# Where distributions put the shared library (Debian/Ubuntu per architecture, Fedora…).
_PATTERNS = (
    "/usr/lib/*-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)


def jemalloc_library() -> str | None:
    """The path of an installed jemalloc, or None."""
    for pattern in _PATTERNS:
        for path in sorted(glob.glob(pattern)):
            if os.access(path, os.R_OK):
                return path
    return None


def job_environment(base: dict[str, str], allocator: str) -> dict[str, str]:
    """`base` (a copy of the environment) with jemalloc preloaded when asked and installed;
    a preload already set is kept after it."""
    env = dict(base)
    library = jemalloc_library() if allocator == "jemalloc" else None
    if library is None:
        return env
    preloads = [p for p in env.get("LD_PRELOAD", "").split(":") if p and p != library]
    env["LD_PRELOAD"] = ":".join([library, *preloads])
    return env


def without_jemalloc(base: dict[str, str]) -> dict[str, str]:
    """`base` without a jemalloc preload (other preloads kept): for processes that keep
    the system allocator, such as torchrun's ranks."""
    env = dict(base)
    kept = [p for p in env.get("LD_PRELOAD", "").split(":") if p and "libjemalloc" not in p]
    if kept:
        env["LD_PRELOAD"] = ":".join(kept)
    else:
        env.pop("LD_PRELOAD", None)
    return env


def allocator_in_use() -> str:
    """ "jemalloc" when this process has it loaded, else "system"."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "system"
    return "jemalloc" if "libjemalloc" in maps else "system"


def peak_memory_bytes() -> int:
    """The most resident memory this process has held so far (its high-water mark)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux counts KiB
