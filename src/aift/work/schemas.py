"""Pydantic schemas of jobs (records of queued work), shared by every layer: the API, the
CLI, the UI, the workers, and the domain services that queue their work."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    interrupted = "interrupted"

    @property
    def is_terminal(self) -> bool:
        """No further change will happen without a user action (resume, submit again)."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.interrupted}
)
RESUMABLE_STATUSES = frozenset({JobStatus.failed, JobStatus.cancelled, JobStatus.interrupted})


class JobCreate(BaseModel):
    """A request to run a job of a given kind with its kind-specific config."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(..., min_length=1, max_length=64, examples=["system.benchmark"])
    config: dict[str, Any] = Field(default_factory=dict)
    title: str = Field("", max_length=200)


class JobInfo(BaseModel):
    """Everything known about one job."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    title: str
    config: dict[str, Any]
    status: JobStatus
    progress: float
    message: str
    error: str | None
    result: dict[str, Any] | None
    metrics: dict[str, Any] | None = None
    resumable: bool
    attempt: int
    cancel_requested: bool
    worker_host: str | None
    worker_pid: int | None
    process_pid: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    heartbeat_at: datetime | None
    owner_id: str | None = Field(
        None, description="The user who started it (None: before accounts)."
    )
    log_path: str | None


class JobEvent(BaseModel):
    """A progress or status change, as sent over the job WebSocket."""

    type: str = "job"
    id: str
    status: JobStatus
    progress: float
    message: str
    error: str | None = None
    result: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    updated_at: datetime

    @classmethod
    def from_info(cls, info: JobInfo) -> JobEvent:
        return cls(
            id=info.id,
            status=info.status,
            progress=info.progress,
            message=info.message,
            error=info.error,
            result=info.result,
            metrics=info.metrics,
            updated_at=info.updated_at,
        )


class JobKindInfo(BaseModel):
    """A kind of job: its name, whether it resumes, and the JSON schema of its config."""

    name: str
    description: str
    resumable: bool
    submittable: bool
    config_schema: dict[str, Any]


class JobList(BaseModel):
    items: list[JobInfo]
    total: int
