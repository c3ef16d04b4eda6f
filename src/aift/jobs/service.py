"""Job lifecycle: create, list, get, cancel, resume, recover orphans, log tail."""

from __future__ import annotations

import builtins
import logging
import uuid
from collections import deque
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aift.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable, TooMany
from aift.jobs.kinds import get_kind
from aift.jobs.store import JobStore
from aift.procutil import HOSTNAME, kill_job_process, process_alive
from aift.store import utcnow
from aift.work.actor import current_actor
from aift.work.schemas import (
    RESUMABLE_STATUSES,
    JobCreate,
    JobInfo,
    JobList,
    JobStatus,
)
from aift.workspace import Workspace

if TYPE_CHECKING:
    from aift.jobs.queue import JobQueue

log = logging.getLogger(__name__)


class JobService:
    """Creates and controls jobs from outside them: submit, list, cancel, resume, recover
    the jobs of dead workers. Rows are read and written through the JobStore."""

    def __init__(
        self,
        store: JobStore,
        workspace: Workspace,
        queue: JobQueue | None,
        heartbeat_timeout_seconds: float = 60.0,
        max_jobs_per_user: int = 0,
    ) -> None:
        self.store = store
        self.workspace = workspace
        self.queue = queue
        self.heartbeat_timeout = timedelta(seconds=heartbeat_timeout_seconds)
        self.max_jobs_per_user = max_jobs_per_user  # queued or running; 0: no limit

    # -- creating -------------------------------------------------------------------
    def submit(self, request: JobCreate, *, internal: bool = False) -> JobInfo:
        """Validate and persist a job, then put it on the queue.

        `internal` is for capabilities creating their own kinds after their own checks;
        the public API may only submit kinds marked submittable.
        """
        kind = get_kind(request.kind)
        if not internal and not kind.submittable:
            raise InvalidInput(
                f"Job kind {kind.name!r} is created by its own endpoint, not through /jobs."
            )
        config = kind.parse_config(request.config)
        owner = current_actor.get().user_id
        self._check_limit(owner)
        job_id = uuid.uuid4().hex
        self.store.add(
            job_id,
            kind=kind.name,
            title=request.title or kind.description or kind.name,
            config=config.model_dump(mode="json"),
            resumable=kind.resumable,
            log_path=str(self.workspace.job_log(job_id)),
            owner_id=owner,
        )
        self._enqueue(job_id)
        log.info("job %s (%s) queued", job_id, kind.name)
        return self.get(job_id)

    def _check_limit(self, owner: str | None) -> None:
        """Refuse a user's job past AIFT_MAX_JOBS_PER_USER queued or running ones, so
        one user cannot fill a shared machine's queue."""
        if owner is None or not self.max_jobs_per_user:
            return
        active = [JobStatus.queued, JobStatus.running]
        mine = self.store.page(active, None, 1, 0, owner_id=owner).total
        if mine >= self.max_jobs_per_user:
            raise TooMany(
                f"You have {mine} jobs queued or running; the limit per user is "
                f"{self.max_jobs_per_user} (AIFT_MAX_JOBS_PER_USER). Wait for one to end or "
                "cancel one."
            )

    def _enqueue(self, job_id: str) -> None:
        """Put the job on the queue; if the queue cannot take it, fail the job visibly."""
        if self.queue is None:
            raise Conflict("No job queue is configured in this process.")
        try:
            self.queue.enqueue(job_id)
        except Exception as exc:  # noqa: BLE001 - any queue backend failure
            log.error("could not enqueue job %s: %s", job_id, exc)
            message = (
                f"The job queue is unavailable ({type(exc).__name__}: {exc}). Check "
                "AIFT_REDIS_URL or the workspace's metadata/queue.db, then resume the job."
            )
            self.store.fail(job_id, message)
            raise ServiceUnavailable(message) from None

    # -- reading --------------------------------------------------------------------
    def get(self, job_id: str) -> JobInfo:
        """A job the current user may see (their own; an admin any): another user's job
        is as unknown as a job that does not exist."""
        info = self.store.get(job_id)
        if not current_actor.get().sees(info.owner_id):
            raise NotFound(f"No job {job_id!r}.")
        return info

    def list(
        self,
        *,
        status: list[JobStatus] | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> JobList:
        """Jobs the current user may see, newest first, filtered by status and kind."""
        actor = current_actor.get()
        owner = None if actor.admin else actor.user_id
        return self.store.page(status, kind, limit, offset, owner_id=owner)

    def log_tail(self, job_id: str, lines: int = 200) -> builtins.list[str]:
        """The last `lines` lines of the job's log file."""
        info = self.get(job_id)
        if not info.log_path:
            return []
        try:
            with open(info.log_path, encoding="utf-8", errors="replace") as handle:
                return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
        except FileNotFoundError:
            return []

    # -- controlling ----------------------------------------------------------------
    def cancel(self, job_id: str) -> JobInfo:
        """Cancel: a queued job never starts; a running job is asked to stop."""
        info = self.get(job_id)
        if info.status.is_terminal:
            raise Conflict(f"Job {job_id} is already {info.status.value}; nothing to cancel.")
        self.store.cancel(job_id)
        log.info("job %s: cancel requested", job_id)
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        """Forget a finished job and its log. What it produced (models, documents,
        datasets) stays: delete those where they are listed."""
        info = self.get(job_id)
        if not info.status.is_terminal or not self.store.delete(job_id):
            raise Conflict(f"Job {job_id} is {info.status.value}; cancel it first, then delete it.")
        if info.log_path:
            Path(info.log_path).unlink(missing_ok=True)

    def resume(self, job_id: str) -> JobInfo:
        """Queue an interrupted, cancelled or failed job again, continuing its checkpoints."""
        info = self.get(job_id)
        if not info.resumable:
            raise Conflict(f"Jobs of kind {info.kind!r} cannot resume; submit a new job instead.")
        if info.status not in RESUMABLE_STATUSES:
            raise Conflict(
                f"Job {job_id} is {info.status.value}; only interrupted, cancelled or failed "
                "jobs can be resumed."
            )
        done = self.store.requeue(job_id, info.status)
        if not done:
            raise Conflict(f"Job {job_id} changed state meanwhile; try again.")
        self._enqueue(job_id)
        return self.get(job_id)

    def recover_orphans(self) -> builtins.list[str]:
        """Mark running jobs whose worker is gone as interrupted; return their ids.

        A job is orphaned when its worker ran on this host and that process is dead,
        or when no heartbeat arrived within the timeout (workers on other machines).
        """
        now = utcnow()
        orphans: list[str] = []
        for job in self.store.running():
            same_host = job.worker_host == HOSTNAME
            dead = same_host and not process_alive(job.worker_pid, job.started_at)
            stale = job.heartbeat_at is None or now - job.heartbeat_at > self.heartbeat_timeout
            if not (dead or (not same_host and stale)):
                continue
            message = "interrupted: its worker stopped" + (
                " — resume it to continue" if job.resumable else ""
            )
            if self.store.finish(job.id, JobStatus.interrupted, message=message):
                orphans.append(job.id)
                log.warning("job %s was orphaned by a dead worker; marked interrupted", job.id)
            if same_host:
                kill_job_process(job.process_pid, job.id)
        return orphans
