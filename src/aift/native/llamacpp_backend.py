"""Which llama.cpp CPU backend a process loads: the fastest one this machine really runs.

`make setup` and the images build llama-cpp-python with llama.cpp's runtime CPU dispatch
(`GGML_BACKEND_DL` + `GGML_CPU_ALL_VARIANTS`, scripts/llama-cpp-wheel.sh): the CPU code is
compiled once per instruction-set level (x64, haswell, skylakex, …, sapphirerapids) into
`libggml-cpu-<variant>.so`. llama.cpp alone would load the variant whose features the CPU
*advertises*; a VM can advertise AMX and still fault on its instructions (SIGILL on the
first decode, taking the process with it). So aift chooses:

1. variants whose instruction families /proc/cpuinfo does not list are left out;
2. the best remaining one is tried in a child process (`llamacpp_probe`: load it, decode a
   few tokens of a small GGUF); if that child dies of a signal, the next one is tried;
3. the choice is kept in the cache, keyed by the CPU, the library files and their
   version, so it is made once per machine and build.

`ensure_backend()` then has llama.cpp load exactly that variant (`GGML_BACKEND_PATH`,
inherited by child processes such as a peer llama.cpp server), before any model loads.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from filelock import FileLock
from pydantic import BaseModel, Field

from aift.errors import CapabilityMissing
from aift.native.cpu import CpuInfo, cpu_info

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 180
PROBE_UNSUPPORTED = 3  # exit code of a probe whose variant the CPU does not have
PROBE_NO_MODEL = 4  # exit code of a probe that could not load its model
VARIANT_PREFIX = "libggml-cpu-"

# llama.cpp's x86 variants and the instruction families each is compiled with (from
# ggml/src/CMakeLists.txt), as /proc/cpuinfo names them. AVX512 is llama.cpp's
# -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw.
_AVX512 = ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")
_HASWELL = ("sse4_2", "avx", "f16c", "fma", "avx2", "bmi2")
VARIANT_FLAGS: dict[str, tuple[str, ...]] = {
    "x64": (),
    "sse42": ("sse4_2",),
    "sandybridge": ("sse4_2", "avx"),
    "ivybridge": ("sse4_2", "avx", "f16c"),
    "piledriver": ("sse4_2", "avx", "f16c", "fma"),
    "haswell": _HASWELL,
    "skylakex": (*_HASWELL, *_AVX512),
    "cannonlake": (*_HASWELL, *_AVX512, "avx512vbmi"),
    "cascadelake": (*_HASWELL, *_AVX512, "avx512_vnni"),
    "icelake": (*_HASWELL, *_AVX512, "avx512vbmi", "avx512_vnni"),
    "cooperlake": (*_HASWELL, *_AVX512, "avx512_vnni", "avx512_bf16"),
    "zen4": (*_HASWELL, *_AVX512, "avx512vbmi", "avx512_vnni", "avx512_bf16"),
    "alderlake": (*_HASWELL, "avx_vnni"),
    "sapphirerapids": (
        *_HASWELL,
        *_AVX512,
        "avx512vbmi",
        "avx512_vnni",
        "avx512_bf16",
        "amx_tile",
        "amx_int8",
    ),
}


class VariantProbe(BaseModel):
    """What became of one CPU variant on this machine."""

    variant: str
    result: str  # runs | crashed | unsupported | not advertised | failed | not tried
    detail: str = ""
    seconds: float | None = None


class BackendChoice(BaseModel):
    """The llama.cpp CPU backend of this machine, and why."""

    library_dir: str | None = None
    version: str | None = None
    portable: bool = False  # built with runtime CPU dispatch (one library per variant)
    variant: str | None = None  # the variant loaded (None: the build's only CPU library)
    path: str | None = None
    verified: bool = False  # a child process decoded with it
    probes: list[VariantProbe] = Field(default_factory=list)
    error: str | None = None  # no variant runs here
    fingerprint: str = ""


def library_dir() -> Path | None:
    """llama-cpp-python's folder of shared libraries (without importing it)."""
    try:
        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    return lib if lib.is_dir() else None


def installed_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama_cpp_python")
    except PackageNotFoundError:
        return None


def variants(lib_dir: Path) -> dict[str, Path]:
    """The CPU variant libraries of a portable build, by variant name. llama.cpp installs
    them as "binaries": in llama-cpp-python's wheel that is `bin/` beside the package
    (site-packages/bin), or the package's own lib folder."""
    found = {}
    for folder in (lib_dir.parents[1] / "bin", lib_dir):
        for path in sorted(folder.glob(f"{VARIANT_PREFIX}*.so")):
            found[path.name.removeprefix(VARIANT_PREFIX).removesuffix(".so")] = path
    return found


def preference(names: list[str]) -> list[str]:
    """Variants best first: more instruction families first; unknown names last."""
    known = list(VARIANT_FLAGS)

    def rank(name: str) -> tuple[int, int]:
        if name not in VARIANT_FLAGS:
            return (-1, 0)
        return (len(VARIANT_FLAGS[name]), known.index(name))

    return sorted(names, key=rank, reverse=True)


def _fingerprint(cpu: CpuInfo, lib_dir: Path, found: dict[str, Path], version: str | None) -> str:
    paths = [*lib_dir.glob("*.so*"), *found.values()]
    files = sorted(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths)
    text = "|".join((cpu.fingerprint(), str(lib_dir), version or "", *files))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_probe(variant: Path | None, model: Path) -> VariantProbe:
    """Load `variant` (None: the build's own CPU library) in a child process and decode a
    few tokens of `model`; the child's fate says whether this machine runs that code."""
    name = variant.name.removeprefix(VARIANT_PREFIX).removesuffix(".so") if variant else "built-in"
    env = dict(os.environ)
    env.pop("GGML_BACKEND_PATH", None)
    if variant is not None:
        env["GGML_BACKEND_PATH"] = str(variant)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "aift.native.llamacpp_probe", str(model)],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return VariantProbe(variant=name, result="failed", detail="the probe timed out")
    seconds = round(time.monotonic() - started, 2)
    code = done.returncode
    if code == 0:
        return VariantProbe(variant=name, result="runs", seconds=seconds)
    if code < 0:
        return VariantProbe(
            variant=name, result="crashed", detail=signal_name(-code), seconds=seconds
        )
    tail = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or [""]
    result = "unsupported" if code == PROBE_UNSUPPORTED else "failed"
    return VariantProbe(variant=name, result=result, detail=tail[0][:300], seconds=seconds)


def signal_name(number: int) -> str:
    """'SIGILL (illegal instruction)' for 4, and so on."""
    try:
        sig = signal.Signals(number)
    except ValueError:
        return f"signal {number}"
    return f"{sig.name} ({signal.strsignal(sig) or sig.name})".replace("Illegal", "illegal")


def choose(
    lib_dir: Path, found: dict[str, Path], cpu: CpuInfo, model: Path | None
) -> BackendChoice:
    """Try the variants best first; the first one that a child process runs wins."""
    choice = BackendChoice(library_dir=str(lib_dir), version=installed_version(), portable=True)
    for name in preference(list(found)):
        needs = [flag for flag in VARIANT_FLAGS.get(name, ()) if flag not in cpu.flags]
        if needs and cpu.flags:
            detail = "missing " + ", ".join(needs)
            choice.probes.append(VariantProbe(variant=name, result="not advertised", detail=detail))
            continue
        if choice.variant is not None:
            choice.probes.append(VariantProbe(variant=name, result="not tried"))
            continue
        if model is None:  # nothing to decode with: trust the flags
            choice.variant, choice.path = name, str(found[name])
            continue
        probe = run_probe(found[name], model)
        choice.probes.append(probe)
        if probe.result == "runs":
            choice.variant, choice.path, choice.verified = name, str(found[name]), True
        elif probe.result == "crashed":
            log.warning("llama.cpp's %s CPU code crashes here (%s): left out", name, probe.detail)
    if choice.variant is None:
        choice.error = "No llama.cpp CPU variant runs on this machine: " + "; ".join(
            f"{p.variant}: {p.result} {p.detail}".strip() for p in choice.probes
        )
    return choice


def select_backend(cache_dir: Path, model: Path | None) -> BackendChoice:
    """The CPU backend for this machine and build (probed once, then read from the cache)."""
    lib_dir = library_dir()
    if lib_dir is None:
        return BackendChoice(error="llama-cpp-python is not installed (run `make setup`).")
    found = variants(lib_dir)
    if not found:  # a build for one CPU: nothing to choose
        return BackendChoice(library_dir=str(lib_dir), version=installed_version())
    cpu = cpu_info()
    fingerprint = _fingerprint(cpu, lib_dir, found, installed_version())
    record = cache_dir / "native" / f"llamacpp-cpu-{fingerprint}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(record) + ".lock"):
        if record.exists():
            try:
                return BackendChoice.model_validate_json(record.read_text())
            except ValueError:
                log.warning("ignoring an unreadable backend record %s", record)
        choice = choose(lib_dir, found, cpu, model)
        choice.fingerprint = fingerprint
        if choice.verified or model is None:
            record.write_text(json.dumps(choice.model_dump(), indent=1))
    log.info(
        "llama.cpp CPU backend: %s (%s)",
        choice.variant or "none",
        "probed" if choice.verified else "by advertised flags",
    )
    return choice


_lock = threading.Lock()
_chosen: BackendChoice | None = None


def ensure_backend(cache_dir: Path | None = None, model: Path | None = None) -> BackendChoice:
    """Load the chosen CPU backend into this process's llama.cpp (once per process).

    The probe decodes the packaged SmolLM2 when it is installed, else `model` (the GGUF
    about to be served). Raises CapabilityMissing when no variant runs here.
    """
    global _chosen
    with _lock:
        if _chosen is not None:
            return _chosen
        model = default_probe_model() or model
        if cache_dir is None:
            from aift.config import Settings

            cache_dir = Settings().effective_cache_dir
        choice = select_backend(cache_dir, model)
        if choice.portable and choice.path is None:
            raise CapabilityMissing(
                f"{choice.error or 'No llama.cpp CPU variant runs here.'} Run `aift doctor`; "
                "`make setup` rebuilds llama.cpp for this machine's CPU family."
            )
        if choice.path:
            os.environ["GGML_BACKEND_PATH"] = choice.path
        import llama_cpp

        llama_cpp.llama_backend_init()
        if choice.path:
            _load_accelerators(Path(choice.path).parent)
        _chosen = choice
        return choice


def _load_accelerators(folder: Path) -> None:
    """GPU backends a portable build ships beside its CPU variants (libggml-cuda.so in
    the CUDA image): llama.cpp looks for them only next to the executable, so load them
    here, each on its own (never "the best of all", which would pick a CPU variant too)."""
    extras = [
        path
        for path in sorted(folder.glob("libggml-*.so"))
        if not path.name.startswith(VARIANT_PREFIX) and path.name != "libggml-base.so"
    ]
    if not extras:
        return
    ggml = ggml_library()
    assert ggml is not None, "a portable build has libggml"
    ggml.ggml_backend_load.restype = ctypes.c_void_p
    ggml.ggml_backend_load.argtypes = [ctypes.c_char_p]
    for path in extras:
        if not ggml.ggml_backend_load(str(path).encode()):
            log.warning("llama.cpp could not load %s (no such device here?)", path.name)


def ggml_library() -> ctypes.CDLL | None:
    """The ggml library llama.cpp runs on, for its backend registry (None: a build with
    the CPU code linked in). Opened as the very file libllama loaded, by its soname: the
    wheel ships copies under other names, and a copy opened by path would be a second,
    empty registry."""
    import llama_cpp

    path = Path(llama_cpp.__file__).parent / "lib" / "libggml.so.0"
    return ctypes.CDLL(str(path)) if path.exists() else None


def default_probe_model() -> Path | None:
    """The packaged SmolLM2 GGUF (a real model, 100 MB, loads in a second), if installed."""
    from aift.models.packaged import SMOLLM2

    return SMOLLM2.locate()
