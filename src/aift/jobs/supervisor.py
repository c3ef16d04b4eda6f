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
        returncode, forced = _watch(db, job_id, proc, grace_seconds)
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
    _finalize(db, job_id, returncode, forced)


def _watch(
    db: Database, job_id: str, proc: subprocess.Popen, grace_seconds: float
) -> tuple[int, bool]:
    """Wait for the child, beating the heartbeat and enforcing cancel with a grace period.

    Returns the exit code and whether the child had to be killed after the grace period.
    """
    last_beat = 0.0
    kill_at: float | None = None
    while True:
        try:
            return proc.wait(timeout=POLL_INTERVAL), kill_at == float("inf")
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if now - last_beat >= HEARTBEAT_INTERVAL:
            last_beat = now
            if kill_at is None and _beat(db, job_id):
                log.info("job %s: cancel requested, sending SIGTERM", job_id)
                proc.send_signal(signal.SIGTERM)
                kill_at = now + grace_seconds
        elif kill_at is None and _cancel_requested(db, job_id):
            proc.send_signal(signal.SIGTERM)
            kill_at = now + grace_seconds
        if kill_at is not None and now >= kill_at:
            log.warning("job %s did not stop within %.0fs; killing it", job_id, grace_seconds)
            proc.kill()
            kill_at = float("inf")


def _beat(db: Database, job_id: str) -> bool:
    """Record a heartbeat; return whether a cancel was requested."""
    with db.session() as session:
        session.execute(update(JobRow).where(JobRow.id == job_id).values(heartbeat_at=utcnow()))
        row = session.get(JobRow, job_id)
        return bool(row and row.cancel_requested)


def _cancel_requested(db: Database, job_id: str) -> bool:
    with db.session() as session:
        row = session.get(JobRow, job_id)
        return bool(row and row.cancel_requested)


def _finalize(db: Database, job_id: str, returncode: int, forced: bool) -> None:
    """Give a final status to a job whose process ended without writing one."""
    now = utcnow()
    with db.session() as session:
        row = session.get(JobRow, job_id)
        if row is None or row.status != JobStatus.running.value:
            return
        if row.cancel_requested:
            row.status = JobStatus.cancelled.value
            row.message = (
                "cancelled (killed: it did not stop within the grace period)"
                if forced
                else "cancelled"
            )
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
