"""Cancel gives a job the time it says it needs to stop cleanly; a forced kill is recorded.

The supervisor runs against a real SQLite job table and real child processes that take
a while to stop (as a training run that finishes its step and saves a checkpoint does).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from aift.config import load_settings
from aift.jobs.supervisor import _finalize, _watch, claim
from aift.runtime import Runtime
from aift.store import utcnow
from aift.store.tables import JobRow
from aift.work.schemas import JobCreate

# A child that, on SIGTERM, takes `delay` seconds to "save" and then exits 0; it prints
# "ready" once its handler is installed.
SLOW_STOPPER = """
import signal, sys, time
delay = float(sys.argv[1])
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(time.monotonic()))
print("ready", flush=True)
while not stopping:
    time.sleep(0.05)
while time.monotonic() - stopping[0] < delay:
    time.sleep(0.05)
sys.exit(0)
"""


@pytest.fixture
def runtime(tmp_path: Path):  # noqa: ANN201
    rt = Runtime.start(load_settings(workspace=tmp_path / "ws", offline=True))
    yield rt
    rt.close()


def running_job(runtime: Runtime) -> str:
    """A resumable job row in state running, as the worker's claim leaves it."""
    queued = runtime.jobs.submit(
        JobCreate(kind="system.benchmark", config={"steps": 1}), internal=True
    )
    assert claim(runtime.job_store, queued.id)
    return queued.id


def slow_stopper(delay: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_STOPPER, str(delay)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def set_row(runtime: Runtime, job_id: str, **values: object) -> None:
    with runtime.db.session() as session:
        session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))


def test_a_job_that_asked_for_time_is_not_killed_before_it(runtime: Runtime) -> None:
    job_id = running_job(runtime)
    proc = slow_stopper(delay=4.0)  # longer than the grace below
    set_row(
        runtime,
        job_id,
        cancel_requested=True,
        stop_deadline_at=utcnow() + timedelta(seconds=120),
    )
    returncode, stop = _watch(runtime.job_store, job_id, proc, grace_seconds=0.5)
    assert returncode == 0, "it stopped by itself after its save"
    assert stop is not None and not stop.killed
    _finalize(runtime.job_store, job_id, returncode, stop)
    job = runtime.jobs.get(job_id)
    assert job.status == "cancelled" and job.message == "cancelled" and job.error is None


def test_without_a_declared_need_the_configured_grace_applies(runtime: Runtime) -> None:
    job_id = running_job(runtime)
    proc = slow_stopper(delay=120.0)
    set_row(runtime, job_id, cancel_requested=True)
    returncode, stop = _watch(runtime.job_store, job_id, proc, grace_seconds=1.0)
    assert returncode < 0 and stop is not None and stop.killed
    _finalize(runtime.job_store, job_id, returncode, stop)
    job = runtime.jobs.get(job_id)
    assert job.status == "cancelled"
    assert "stopped without a checkpoint" in job.message and "killed" in job.message
    assert job.error == job.message, "the forced kill is recorded, not silent"


def test_a_job_past_its_own_deadline_is_killed_and_that_is_recorded(runtime: Runtime) -> None:
    job_id = running_job(runtime)
    proc = slow_stopper(delay=120.0)
    set_row(
        runtime, job_id, cancel_requested=True, stop_deadline_at=utcnow() + timedelta(seconds=3)
    )
    returncode, stop = _watch(runtime.job_store, job_id, proc, grace_seconds=0.5)
    assert stop is not None and stop.killed and returncode < 0
    assert stop.kill_at - stop.asked_at >= 2.0, "it waited for the job's own deadline"
    _finalize(runtime.job_store, job_id, returncode, stop)
    assert "stopped without a checkpoint" in runtime.jobs.get(job_id).message
