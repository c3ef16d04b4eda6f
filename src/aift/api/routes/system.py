"""What this server runs on and with: versions, devices, settings, models in use."""

from __future__ import annotations

import platform

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from aift import __version__
from aift.api.deps import get_runtime
from aift.doctor.schemas import DoctorReport
from aift.monitoring.system import detect_devices, library_versions, usage
from aift.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get("/system")
async def system(request: Request, runtime: Runtime = Depends(get_runtime)) -> dict:
    """Versions, devices, usage, active settings (no secrets), models really in use."""
    models_in_use = await run_in_threadpool(runtime.models.defaults_in_use)
    worker = getattr(request.app.state, "worker", None)
    return {
        "version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
        "devices": [d.model_dump() for d in detect_devices()],
        "usage": usage(),
        "settings": runtime.settings.public_view(),
        "models": models_in_use,
        "queue": {
            "backend": "redis" if runtime.settings.redis_url else "sqlite",
            "pending": await run_in_threadpool(runtime.queue.pending_count),
        },
        "worker": worker.status() if worker else None,
        "doctor": _doctor_view(runtime.doctor.latest()),
    }


def _doctor_view(report: DoctorReport | None) -> dict | None:
    return report.model_dump(mode="json") if report is not None else None


@router.get("/system/doctor", response_model=DoctorReport)
async def doctor(runtime: Runtime = Depends(get_runtime)) -> DoctorReport:
    """Check this machine now (CPU against the native libraries with a tiny decode in a
    child process, OCR, disk, memory, default models, configured services): each line ok
    or what is wrong and the command that fixes it; `ok` is false when one failed."""
    return await run_in_threadpool(runtime.doctor.check)
