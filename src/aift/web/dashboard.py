"""What the dashboard shows: the machine, activity, loaded models, jobs and knowledge
bases (server-rendered, refreshed as a partial by htmx). Every number is read from the
metrics `/metrics` exposes (`runtime.metrics`), so the page and Prometheus agree."""

from __future__ import annotations

from prometheus_client.core import Metric
from pydantic import BaseModel

from aift.doctor.schemas import DoctorReport
from aift.inference.schemas import LoadedModelInfo
from aift.monitoring.metrics import sample_value as value
from aift.monitoring.schemas import DeviceInfo
from aift.monitoring.system import detect_devices
from aift.rag.schemas import KnowledgeBaseInfo
from aift.runtime import Runtime
from aift.work.schemas import JobInfo, JobStatus

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


class Activity(BaseModel):
    """What this server has done since it started, from the same counters as /metrics."""

    http_requests: float
    http_server_errors: float
    generations: float
    generated_tokens: float
    searches: float
    cache_hits: float
    cache_lookups: float
    queue_depth: float

    @property
    def cache_hit_rate(self) -> float | None:
        return self.cache_hits / self.cache_lookups if self.cache_lookups else None


class Dashboard(BaseModel):
    machine: MachineUse
    activity: Activity
    loaded: list[LoadedModelInfo]
    running: list[JobInfo]
    recent: list[JobInfo]
    knowledge_bases: list[KnowledgeBaseInfo]
    models_available: int
    doctor: DoctorReport | None = None  # None while the first machine check runs

    @property
    def first_run(self) -> bool:
        """Nothing has been done yet: no job ever ran and no knowledge base exists."""
        return not self.recent and not self.knowledge_bases


def machine_use(metrics: list[Metric]) -> MachineUse:
    """The machine's CPU, memory and disk, as the metrics report them."""
    total = value(metrics, "aift_machine_memory_total_bytes")
    disk_total = value(metrics, "aift_workspace_disk_total_bytes")
    return MachineUse(
        cpu_count=int(value(metrics, "aift_machine_cpu_count")) or 1,
        cpu_percent=value(metrics, "aift_machine_cpu_percent"),
        memory_used_bytes=int(value(metrics, "aift_machine_memory_used_bytes")),
        memory_total_bytes=int(total),
        disk_used_bytes=int(disk_total - value(metrics, "aift_workspace_disk_free_bytes")),
        disk_total_bytes=int(disk_total),
        devices=list(detect_devices()),
    )


def activity(metrics: list[Metric]) -> Activity:
    """Requests, generations, searches and cache use counted since the server started."""
    server_errors = sum(
        s.value
        for m in metrics
        for s in m.samples
        if s.name == "aift_http_requests_total" and s.labels.get("status", "").startswith("5")
    )
    return Activity(
        http_requests=value(metrics, "aift_http_requests_total"),
        http_server_errors=server_errors,
        generations=value(metrics, "aift_model_requests_total"),
        generated_tokens=value(metrics, "aift_model_generated_tokens_total"),
        searches=value(metrics, "aift_search_duration_seconds_count"),
        cache_hits=value(metrics, "aift_cache_lookups_total", result="hit"),
        cache_lookups=value(metrics, "aift_cache_lookups_total"),
        queue_depth=value(metrics, "aift_job_queue_depth"),
    )


def dashboard(runtime: Runtime) -> Dashboard:
    """Everything the dashboard shows, from the services (no HTTP round trips)."""
    running = runtime.jobs.list(status=[JobStatus.running, JobStatus.queued], limit=20).items
    metrics = runtime.metrics.collect()
    return Dashboard(
        machine=machine_use(metrics),
        activity=activity(metrics),
        loaded=runtime.model_manager.loaded(),
        running=running,
        recent=runtime.jobs.list(limit=RECENT_JOBS).items,
        knowledge_bases=runtime.knowledge.list(),
        models_available=len(runtime.models.list()),
        doctor=runtime.doctor.latest(),
    )
