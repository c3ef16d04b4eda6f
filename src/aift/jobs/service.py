"""Job lifecycle: create, list, get, cancel, resume, recover orphans, log tail."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import deque
from datetime import timedelta
from typing import TYPE_CHECKING

import psutil
from sqlalchemy import func, select, update

from aift.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from aift.jobs.kinds import get_kind
from aift.jobs.schemas import (
    RESUMABLE_STATUSES,
    JobCreate,
    JobInfo,
    JobList,
    JobStatus,
)
from aift.store import Database, utcnow
from aift.store.tables import JobRow
from aift.workspace import Workspace

if TYPE_CHECKING:
    from aift.jobs.queue import JobQueue

log = logging.getLogger(__name__)

HOSTNAME = socket.gethostname()


class JobService:
    """Creates and controls jobs; the only code that changes a job's status from outside."""

    def __init__(
        self,
        db: Database,
        workspace: Workspace,
        queue: JobQueue | None,
        heartbeat_timeout_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.workspace = workspace
        self.queue = queue
        self.heartbeat_timeout = timedelta(seconds=heartbeat_timeout_seconds)

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
        job_id = uuid.uuid4().hex
        now = utcnow()
        row = JobRow(
            id=job_id,
            kind=kind.name,
            title=request.title or kind.description or kind.name,
            config=config.model_dump(mode="json"),
            status=JobStatus.queued.value,
            progress=0.0,
            message="queued",
            resumable=kind.resumable,
            attempt=0,
            cancel_requested=False,
            log_path=str(self.workspace.job_log(job_id)),
            created_at=now,
            updated_at=now,
        )
        with self.db.session() as session:
            session.add(row)
        self._enqueue(job_id)
        log.info("job %s (%s) queued", job_id, kind.name)
        return self.get(job_id)

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
            now = utcnow()
            with self.db.session() as session:
                session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id)
                    .values(
                        status=JobStatus.failed.value,
                        error=message,
                        message="failed",
                        finished_at=now,
                        updated_at=now,
                    )
                )
            raise ServiceUnavailable(message) from None

    # -- reading --------------------------------------------------------------------
    def get(self, job_id: str) -> JobInfo:
        with self.db.session() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                raise NotFound(f"No job with id {job_id!r}. List jobs with GET /api/v1/jobs.")
            return JobInfo.model_validate(row)

    def list(
        self,
        *,
        status: list[JobStatus] | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> JobList:
        """Jobs, newest first, filtered by status and kind."""
        query = select(JobRow)
        count = select(func.count()).select_from(JobRow)
        if status:
            values = [s.value for s in status]
            query = query.where(JobRow.status.in_(values))
            count = count.where(JobRow.status.in_(values))
        if kind:
            query = query.where(JobRow.kind == kind)
            count = count.where(JobRow.kind == kind)
        query = query.order_by(JobRow.created_at.desc()).limit(limit).offset(offset)
        with self.db.session() as session:
            rows = session.scalars(query).all()
            total = session.scalar(count) or 0
            return JobList(items=[JobInfo.model_validate(r) for r in rows], total=total)

    def log_tail(self, job_id: str, lines: int = 200) -> list[str]:
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
        now = utcnow()
        with self.db.session() as session:
            done = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == JobStatus.queued.value)
                .values(
                    status=JobStatus.cancelled.value,
                    message="cancelled before it started",
                    cancel_requested=True,
                    finished_at=now,
                    updated_at=now,
                )
            ).rowcount
            if not done:
                session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.status == JobStatus.running.value)
                    .values(cancel_requested=True, message="stopping…", updated_at=now)
                )
        log.info("job %s: cancel requested", job_id)
        return self.get(job_id)

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
        now = utcnow()
        with self.db.session() as session:
            done = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == info.status.value)
                .values(
                    status=JobStatus.queued.value,
                    cancel_requested=False,
                    stop_deadline_at=None,
                    error=None,
                    message="queued to resume",
                    finished_at=None,
                    updated_at=now,
                )
            ).rowcount
        if not done:
            raise Conflict(f"Job {job_id} changed state meanwhile; try again.")
        self._enqueue(job_id)
        return self.get(job_id)

    def recover_orphans(self) -> list[str]:
        """Mark running jobs whose worker is gone as interrupted; return their ids.

        A job is orphaned when its worker ran on this host and that process is dead,
        or when no heartbeat arrived within the timeout (workers on other machines).
        """
        now = utcnow()
        orphans: list[str] = []
        with self.db.session() as session:
            rows = session.scalars(
                select(JobRow).where(JobRow.status == JobStatus.running.value)
            ).all()
            for row in rows:
                same_host = row.worker_host == HOSTNAME
                dead = same_host and not _process_alive(row.worker_pid, row.started_at)
                stale = row.heartbeat_at is None or now - row.heartbeat_at > self.heartbeat_timeout
                if dead or (not same_host and stale):
                    orphans.append(row.id)
                    row.status = JobStatus.interrupted.value
                    row.message = "interrupted: its worker stopped" + (
                        " — resume it to continue" if row.resumable else ""
                    )
                    row.finished_at = now
                    row.updated_at = now
                    if same_host:
                        kill_job_process(row.process_pid, row.id)
        for job_id in orphans:
            log.warning("job %s was orphaned by a dead worker; marked interrupted", job_id)
        return orphans


def _process_alive(pid: int | None, started_at) -> bool:  # noqa: ANN001
    """Whether `pid` is a live process that existed when the job started (no pid reuse)."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started_at is not None and proc.create_time() > started_at.timestamp() + 1:
            return False
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def kill_job_process(pid: int | None, job_id: str) -> None:
    """Kill the process of job `job_id` if it still runs (checked by its command line)."""
    if not pid or pid == os.getpid():
        return
    try:
        proc = psutil.Process(pid)
        if job_id in proc.cmdline():
            proc.kill()
    except psutil.Error:
        pass
