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
import time
from dataclasses import dataclass
from datetime import datetime

from aift.errors import storage_problem
from aift.jobs.launcher import JobLauncher, JobProcess
from aift.jobs.store import STORAGE_EXIT, JobStore
from aift.monitoring.logging import job_id_var
from aift.procutil import HOSTNAME
from aift.store import utcnow
from aift.work.schemas import JobStatus
from aift.workspace import Workspace

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 2.0
POLL_INTERVAL = 0.25
# How long a job's end is retried while the disk is full or read-only (then the orphan
# sweep marks it interrupted once the database takes writes again).
STORAGE_RETRY_SECONDS = 3600.0
STORAGE_RETRY_INTERVAL = 2.0


def claim(store: JobStore, job_id: str) -> bool:
    """Move a queued job to running for this worker; False when it is not queued anymore."""
    return store.claim(job_id, HOSTNAME, os.getpid())


def supervise(
    store: JobStore,
    workspace: Workspace,
    job_id: str,
    grace_seconds: float,
    launcher: JobLauncher,
) -> None:
    """Run job `job_id` to its end in a process of its own that `launcher` starts, if
    it is still queued."""
    token = job_id_var.set(job_id)
    try:
        _supervise(store, workspace, job_id, grace_seconds, launcher)
    finally:
        job_id_var.reset(token)


def _supervise(
    store: JobStore,
    workspace: Workspace,
    job_id: str,
    grace_seconds: float,
    launcher: JobLauncher,
) -> None:
    if not claim(store, job_id):
        log.info("job %s is no longer queued; skipping", job_id)
        return
    log_path = workspace.job_log(job_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc: JobProcess | None = None
    try:
        proc = launcher.start(job_id, log_path)
        log.info("job %s started in process %s", job_id, proc.pid)
        store.set_process(job_id, proc.pid)
        returncode, stop = _watch(store, job_id, proc, grace_seconds)
    except Exception as exc:  # noqa: BLE001 - never leave a job "running" with nobody watching
        log.exception("supervising job %s failed", job_id)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        store.fail(job_id, f"The worker could not run this job: {type(exc).__name__}: {exc}")
        return
    _finalize(store, job_id, returncode, stop)


@dataclass
class _Stop:
    """A cancel in progress: when it was asked and when the job must be gone."""

    asked_at: float
    kill_at: float
    killed: bool = False


def _watch(
    store: JobStore, job_id: str, proc: JobProcess, grace_seconds: float
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
        try:
            if now - last_beat >= HEARTBEAT_INTERVAL:
                last_beat = now
                state = store.stop_state(job_id, beat=True)
            elif stop is None:  # before a cancel, look for one at every poll
                state = store.stop_state(job_id)
        except Exception as exc:
            problem = storage_problem(exc)
            if problem is None:
                raise
            log.warning("job %s: heartbeat not recorded: %s", job_id, problem)
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


def _monotonic_at(moment: datetime | None, now: float) -> float:
    """A wall-clock moment (from the job, same host) on this process's monotonic clock."""
    if moment is None:
        return now - 1.0
    return now + (moment - utcnow()).total_seconds()


def _finalize(store: JobStore, job_id: str, returncode: int, stop: _Stop | None) -> None:
    """Give a final status to a job whose process ended without writing one; while the
    workspace's disk is full or read-only, keep trying (the job's end is not lost)."""
    deadline = time.monotonic() + STORAGE_RETRY_SECONDS
    while True:
        try:
            _record_end(store, job_id, returncode, stop)
            return
        except Exception as exc:
            problem = storage_problem(exc)
            if problem is None or time.monotonic() > deadline:
                raise
            log.warning("job %s: its end cannot be recorded yet: %s", job_id, problem)
            time.sleep(STORAGE_RETRY_INTERVAL)


def _record_end(store: JobStore, job_id: str, returncode: int, stop: _Stop | None) -> None:
    job = store.find(job_id)
    if job is None or job.status != JobStatus.running:
        return
    if job.cancel_requested:
        message = "cancelled"
        if stop is not None and stop.killed:
            waited = stop.kill_at - stop.asked_at
            lost = "stopped without a checkpoint" if job.resumable else "stopped unfinished"
            message = (
                f"cancelled — {lost}: the process did not stop within {waited:.0f}s of the "
                "cancel and was killed"
                + (
                    "; resume continues from the last checkpoint saved before, if any"
                    if job.resumable
                    else ""
                )
            )
            store.finish(job_id, JobStatus.cancelled, message=message, error=message)
        else:
            store.finish(job_id, JobStatus.cancelled, message=message)
    else:
        store.finish(job_id, JobStatus.failed, error=_describe_exit(returncode), message="failed")
    log.info("job %s ended with exit code %s", job_id, returncode)


def _describe_exit(returncode: int) -> str:
    if returncode == STORAGE_EXIT:
        return (
            "The job stopped because the workspace's disk is full or read-only: free space "
            "or make it writable, then resume the job. Its log says which."
        )
    if returncode < 0:
        sig = signal.Signals(-returncode).name
        hint = (
            " (killed — often out of memory; try a smaller batch or model)"
            if (-returncode == signal.SIGKILL)
            else ""
        )
        return f"The job process was ended by {sig}{hint}. See the job log for details."
    return f"The job process exited with code {returncode}. See the job log for details."
