"""Runs one job in its own process and watches it: heartbeat, cancel, crash handling.

This code runs inside a worker (one thread per concurrent job). The job's own process
(`aift.jobs.child`) does the work, so a crash or out-of-memory kill of a job never takes
the worker or the server down.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from aift.jobs.schemas import JobStatus
from aift.jobs.service import HOSTNAME
from aift.store import Database, utcnow
from aift.store.tables import JobRow
from aift.workspace import Workspace

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 2.0
POLL_INTERVAL = 0.25


def claim(db: Database, job_id: str) -> bool:
    """Move a queued job to running for this worker; False when it is not queued anymore."""
    now = utcnow()
    with db.session() as session:
        claimed = session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == JobStatus.queued.value)
            .values(
                status=JobStatus.running.value,
                attempt=JobRow.attempt + 1,
                started_at=now,
                heartbeat_at=now,
                updated_at=now,
                worker_host=HOSTNAME,
                worker_pid=os.getpid(),
                process_pid=None,
                stop_deadline_at=None,
                message="starting",
            )
        ).rowcount
    return bool(claimed)


def supervise(db: Database, workspace: Workspace, job_id: str, grace_seconds: float) -> None:
    """Run job `job_id` to its end in a child process, if it is still queued."""
    if not claim(db, job_id):
        log.info("job %s is no longer queued; skipping", job_id)
        return
    log_path = workspace.job_log(job_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc: subprocess.Popen | None = None
    try:
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "aift.jobs.child", job_id],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=os.environ.copy(),
            )
        log.info("job %s started in process %s", job_id, proc.pid)
        _set(db, job_id, process_pid=proc.pid)
        returncode, stop = _watch(db, job_id, proc, grace_seconds)
    except Exception as exc:  # noqa: BLE001 - never leave a job "running" with nobody watching
        log.exception("supervising job %s failed", job_id)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        _set(
            db,
            job_id,
            status=JobStatus.failed.value,
            error=f"The worker could not run this job: {type(exc).__name__}: {exc}",
            message="failed",
            finished_at=utcnow(),
            updated_at=utcnow(),
        )
        return
    _finalize(db, job_id, returncode, stop)


@dataclass
class _Stop:
    """A cancel in progress: when it was asked and when the job must be gone."""

    asked_at: float
    kill_at: float
    killed: bool = False


def _watch(
    db: Database, job_id: str, proc: subprocess.Popen, grace_seconds: float
) -> tuple[int, _Stop | None]:
    """Wait for the child, beating the heartbeat and enforcing cancel.

    After a cancel the child gets the configured grace or the time it declared it needs
    to stop cleanly (`JobContext.stop_needs`), whichever is longer; only then is it
    killed. Returns the exit code and the cancel, if there was one.
    """
    last_beat = 0.0
    stop: _Stop | None = None
    while True:
        try:
            return proc.wait(timeout=POLL_INTERVAL), stop
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        state = None
        if now - last_beat >= HEARTBEAT_INTERVAL:
            last_beat = now
            state = _beat(db, job_id)
        elif stop is None:  # before a cancel, look for one at every poll
            state = _state(db, job_id)
        if state is not None:
            if stop is None and state.cancel_requested:
                log.info("job %s: cancel requested, sending SIGTERM", job_id)
                proc.send_signal(signal.SIGTERM)
                stop = _Stop(asked_at=now, kill_at=now + grace_seconds)
            if stop is not None and not stop.killed:
                stop.kill_at = max(stop.kill_at, _monotonic_at(state.stop_deadline_at, now))
        if stop is not None and not stop.killed and now >= stop.kill_at:
            log.warning(
                "job %s did not stop within %.0fs of the cancel; killing it",
                job_id,
                now - stop.asked_at,
            )
            proc.kill()
            stop.killed = True


@dataclass
class _RowState:
    cancel_requested: bool
    stop_deadline_at: datetime | None


def _beat(db: Database, job_id: str) -> _RowState | None:
    """Record a heartbeat; return what the job row says about stopping."""
    return _state(db, job_id, beat=True)


def _state(db: Database, job_id: str, *, beat: bool = False) -> _RowState | None:
    """What the job row says about stopping (after recording a heartbeat, if `beat`)."""
    with db.session() as session:
        if beat:
            session.execute(update(JobRow).where(JobRow.id == job_id).values(heartbeat_at=utcnow()))
        row = session.get(JobRow, job_id)
        if row is None:
            return None
        return _RowState(bool(row.cancel_requested), row.stop_deadline_at)


def _monotonic_at(moment: datetime | None, now: float) -> float:
    """A wall-clock moment (from the job, same host) on this process's monotonic clock."""
    if moment is None:
        return now - 1.0
    return now + (moment - utcnow()).total_seconds()


def _finalize(db: Database, job_id: str, returncode: int, stop: _Stop | None) -> None:
    """Give a final status to a job whose process ended without writing one."""
    now = utcnow()
    with db.session() as session:
        row = session.get(JobRow, job_id)
        if row is None or row.status != JobStatus.running.value:
            return
        if row.cancel_requested:
            row.status = JobStatus.cancelled.value
            row.message = "cancelled"
            if stop is not None and stop.killed:
                waited = stop.kill_at - stop.asked_at
                lost = "stopped without a checkpoint" if row.resumable else "stopped unfinished"
                row.message = (
                    f"cancelled — {lost}: the process did not stop within {waited:.0f}s of "
                    "the cancel and was killed"
                    + (
                        "; resume continues from the last checkpoint saved before, if any"
                        if row.resumable
                        else ""
                    )
                )
                row.error = row.message
        else:
            row.status = JobStatus.failed.value
            row.error = _describe_exit(returncode)
            row.message = "failed"
        row.finished_at = now
        row.updated_at = now
    log.info("job %s ended with exit code %s", job_id, returncode)


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        sig = signal.Signals(-returncode).name
        hint = (
            " (killed — often out of memory; try a smaller batch or model)"
            if (-returncode == signal.SIGKILL)
            else ""
        )
        return f"The job process was ended by {sig}{hint}. See the job log for details."
    return f"The job process exited with code {returncode}. See the job log for details."


def _set(db: Database, job_id: str, **values: object) -> None:
    with db.session() as session:
        session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))
