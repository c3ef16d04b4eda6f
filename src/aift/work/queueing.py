"""The port through which a domain service queues its long work and reads it back.

`aift.jobs.service.JobService` implements it; the composition root hands it to the
services (training, ingestion, export, backup), which so never import the job machinery.
"""

from __future__ import annotations

from typing import Protocol

from aift.work.schemas import JobCreate, JobInfo, JobList, JobStatus


class JobQueueing(Protocol):
    """Submit a job of a kind, read one, list them by status and kind."""

    def submit(self, request: JobCreate, *, internal: bool = False) -> JobInfo:
        """Validate, persist and queue a job; `internal` for kinds a capability creates."""

    def get(self, job_id: str) -> JobInfo:
        """One job (NotFound when there is none)."""

    def list(
        self,
        *,
        status: list[JobStatus] | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> JobList:
        """Jobs, newest first, filtered by status and kind."""
