"""Job rows in the database: every read and every status change of a job goes through
`JobStore`, whichever process makes it (the service, the worker, the supervisor, the
job's own process).

Each change is a conditional update on the status the change starts from (queued →
running, running → finished…), so two processes racing on one job cannot both win:
the loser's update matches no row and it learns so from the return value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from aift.errors import NotFound
from aift.store import Database, rows_changed, utcnow
from aift.store.tables import JobRow
from aift.work.schemas import TERMINAL_STATUSES, JobInfo, JobList, JobStatus

# The exit code of a job process that could not even record its end because the
# workspace's disk is full or read-only; its supervisor records it once it can.
STORAGE_EXIT = 75

RUNNING = JobStatus.running.value
QUEUED = JobStatus.queued.value


@dataclass(frozen=True)
class StopState:
    """What a job row says about stopping: asked to, and how long a clean stop may take."""

    cancel_requested: bool
    stop_deadline_at: datetime | None


class JobStore:
    """The jobs table, as the job lifecycle sees it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading --------------------------------------------------------------------
    def find(self, job_id: str) -> JobInfo | None:
        with self.db.session() as session:
            row = session.get(JobRow, job_id)
            return JobInfo.model_validate(row) if row is not None else None

    def get(self, job_id: str) -> JobInfo:
        info = self.find(job_id)
        if info is None:
            raise NotFound(f"No job with id {job_id!r}. List jobs with GET /api/v1/jobs.")
        return info

    def page(
        self,
        statuses: list[JobStatus] | None,
        kind: str | None,
        limit: int,
        offset: int,
        owner_id: str | None = None,
    ) -> JobList:
        """Jobs, newest first, filtered by status, kind and owner, with the total count."""
        query = select(JobRow)
        count = select(func.count()).select_from(JobRow)
        if owner_id is not None:
            query = query.where(JobRow.owner_id == owner_id)
            count = count.where(JobRow.owner_id == owner_id)
        if statuses:
            values = [s.value for s in statuses]
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

    def running(self, *, host: str | None = None, pid: int | None = None) -> list[JobInfo]:
        """Running jobs, optionally only those of one worker (host and process id)."""
        query = select(JobRow).where(JobRow.status == RUNNING)
        if host is not None:
            query = query.where(JobRow.worker_host == host)
        if pid is not None:
            query = query.where(JobRow.worker_pid == pid)
        with self.db.session() as session:
            return [JobInfo.model_validate(r) for r in session.scalars(query).all()]

    def counts(self) -> dict[tuple[str, str], int]:
        """How many jobs there are of each (kind, status)."""
        query = select(JobRow.kind, JobRow.status, func.count()).group_by(
            JobRow.kind, JobRow.status
        )
        with self.db.session() as session:
            return {(kind, status): n for kind, status, n in session.execute(query).all()}

    def durations(self) -> list[tuple[str, str, float]]:
        """(kind, status, seconds from start to finish) of every finished job that ran."""
        query = select(JobRow.kind, JobRow.status, JobRow.started_at, JobRow.finished_at).where(
            JobRow.started_at.is_not(None), JobRow.finished_at.is_not(None)
        )
        with self.db.session() as session:
            rows = session.execute(query).all()
        return [
            (kind, status, max(0.0, (finished - started).total_seconds()))
            for kind, status, started, finished in rows
            if started is not None and finished is not None
        ]

    def stop_state(self, job_id: str, *, beat: bool = False) -> StopState | None:
        """Whether a stop was asked (after recording the supervisor's heartbeat, if `beat`)."""
        with self.db.session() as session:
            if beat:
                session.execute(
                    update(JobRow).where(JobRow.id == job_id).values(heartbeat_at=utcnow())
                )
            row = session.get(JobRow, job_id)
            if row is None:
                return None
            return StopState(bool(row.cancel_requested), row.stop_deadline_at)

    # -- changing -------------------------------------------------------------------
    def _update(self, job_id: str, from_status: str | None, **values: Any) -> bool:
        """Set `values` on the job if it is in `from_status` (any status when None)."""
        query = update(JobRow).where(JobRow.id == job_id)
        if from_status is not None:
            query = query.where(JobRow.status == from_status)
        with self.db.session() as session:
            return bool(rows_changed(session.execute(query.values(**values))))

    def add(
        self,
        job_id: str,
        *,
        kind: str,
        title: str,
        config: dict[str, Any],
        resumable: bool,
        log_path: str,
        owner_id: str | None = None,
    ) -> None:
        """Store a new job, queued, of `owner_id` (the user who started it)."""
        now = utcnow()
        row = JobRow(
            id=job_id,
            kind=kind,
            title=title,
            config=config,
            status=QUEUED,
            progress=0.0,
            message="queued",
            resumable=resumable,
            attempt=0,
            cancel_requested=False,
            log_path=log_path,
            created_at=now,
            updated_at=now,
            owner_id=owner_id,
        )
        with self.db.session() as session:
            session.add(row)

    def claim(self, job_id: str, host: str, pid: int) -> bool:
        """queued → running for the worker `host:pid`; False when it is no longer queued."""
        now = utcnow()
        return self._update(
            job_id,
            QUEUED,
            status=RUNNING,
            attempt=JobRow.attempt + 1,
            started_at=now,
            heartbeat_at=now,
            updated_at=now,
            worker_host=host,
            worker_pid=pid,
            process_pid=None,
            stop_deadline_at=None,
            message="starting",
        )

    def set_process(self, job_id: str, pid: int) -> None:
        """Record the process running the job (so it can be found and killed)."""
        self._update(job_id, None, process_pid=pid)

    def report(self, job_id: str, **values: Any) -> None:
        """What a running job says about itself: progress, message, metrics, stop budget.
        Ignored once the job has ended."""
        self._update(job_id, RUNNING, updated_at=utcnow(), **values)

    def finish(self, job_id: str, status: JobStatus, **values: Any) -> bool:
        """running → `status` (succeeded, failed, cancelled, interrupted)."""
        now = utcnow()
        return self._update(
            job_id, RUNNING, status=status.value, finished_at=now, updated_at=now, **values
        )

    def fail(self, job_id: str, error: str) -> None:
        """Mark the job failed whatever its state (it could not be queued or supervised)."""
        now = utcnow()
        self._update(
            job_id,
            None,
            status=JobStatus.failed.value,
            error=error,
            message="failed",
            finished_at=now,
            updated_at=now,
        )

    def cancel(self, job_id: str) -> None:
        """A queued job is cancelled at once; a running one is asked to stop."""
        now = utcnow()
        cancelled = self._update(
            job_id,
            QUEUED,
            status=JobStatus.cancelled.value,
            message="cancelled before it started",
            cancel_requested=True,
            finished_at=now,
            updated_at=now,
        )
        if not cancelled:
            self._update(
                job_id, RUNNING, cancel_requested=True, message="stopping…", updated_at=now
            )

    def delete(self, job_id: str) -> bool:
        """Remove a finished job's row; False when it is not finished (or gone)."""
        terminal = [s.value for s in TERMINAL_STATUSES]
        with self.db.session() as session:
            result = session.execute(
                delete(JobRow).where(JobRow.id == job_id, JobRow.status.in_(terminal))
            )
            session.commit()
            return rows_changed(result) == 1

    def requeue(self, job_id: str, from_status: JobStatus) -> bool:
        """`from_status` → queued again, continuing from the job's checkpoints."""
        return self._update(
            job_id,
            from_status.value,
            status=QUEUED,
            cancel_requested=False,
            stop_deadline_at=None,
            error=None,
            message="queued to resume",
            finished_at=None,
            updated_at=utcnow(),
        )
