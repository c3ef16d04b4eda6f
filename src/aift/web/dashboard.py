"""What the dashboard shows: the machine, loaded models, jobs and knowledge bases, read
from the services in one go (server-rendered, refreshed as a partial by htmx)."""

from __future__ import annotations

import shutil

import psutil
from pydantic import BaseModel

from aift.inference.schemas import LoadedModelInfo
from aift.jobs.schemas import JobInfo, JobStatus
from aift.monitoring.schemas import DeviceInfo
from aift.monitoring.system import detect_devices
from aift.rag.schemas import KnowledgeBaseInfo
from aift.runtime import Runtime

RECENT_JOBS = 8


class MachineUse(BaseModel):
    """CPU, memory and disk use now, and the devices the loading policy sees."""

    cpu_count: int
    cpu_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    disk_used_bytes: int
    disk_total_bytes: int
    devices: list[DeviceInfo]


class Dashboard(BaseModel):
    machine: MachineUse
    loaded: list[LoadedModelInfo]
    running: list[JobInfo]
    recent: list[JobInfo]
    knowledge_bases: list[KnowledgeBaseInfo]
    models_available: int

    @property
    def first_run(self) -> bool:
        """Nothing has been done yet: no job ever ran and no knowledge base exists."""
        return not self.recent and not self.knowledge_bases


def machine_use(runtime: Runtime) -> MachineUse:
    memory = psutil.virtual_memory()
    disk = shutil.disk_usage(runtime.workspace.root)
    return MachineUse(
        cpu_count=psutil.cpu_count(logical=True) or 1,
        cpu_percent=psutil.cpu_percent(interval=None),
        memory_used_bytes=memory.total - memory.available,
        memory_total_bytes=memory.total,
        disk_used_bytes=disk.used,
        disk_total_bytes=disk.total,
        devices=list(detect_devices()),
    )


def dashboard(runtime: Runtime) -> Dashboard:
    """Everything the dashboard shows, from the services (no HTTP round trips)."""
    running = runtime.jobs.list(status=[JobStatus.running, JobStatus.queued], limit=20).items
    return Dashboard(
        machine=machine_use(runtime),
        loaded=runtime.model_manager.loaded(),
        running=running,
        recent=runtime.jobs.list(limit=RECENT_JOBS).items,
        knowledge_bases=runtime.knowledge.list(),
        models_available=len(runtime.models.list()),
    )
