"""Entry point of a job's own process: `python -m aift.jobs.child JOB_ID`, run either
by a fresh interpreter or in a fork of the job fork server (`aift.jobs.launcher`).

Runs the kind's handler and writes the outcome. Dies with its worker, so a killed worker
leaves no job running unsupervised; the job is then marked interrupted. Only light
modules are imported before the stop signal is wired, so a cancel that arrives while
the process is still starting is honoured rather than killing it mid-import.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aift.runtime import Runtime
    from aift.work.actor import Actor

STOP_REQUESTED = threading.Event()


def run(job_id: str) -> int:
    """Run one job to its end; the exit code says whether it succeeded."""
    from aift import threads
    from aift.config import get_settings
    from aift.procutil import exit_with_parent

    threads.apply(threads.plan(get_settings(), "job"))  # before torch is loaded
    from aift.runtime import Runtime

    exit_with_parent(signal.SIGKILL)
    runtime = Runtime.start(get_settings(), migrate=False)  # the one wiring point
    try:
        return _run(runtime, job_id)
    except Exception as exc:
        from aift.errors import storage_problem
        from aift.jobs.store import STORAGE_EXIT

        problem = storage_problem(exc)
        if problem is None:
            raise
        print(f"job {job_id}: {problem}", flush=True)
        return STORAGE_EXIT
    finally:
        runtime.close()


def _run(runtime: Runtime, job_id: str) -> int:
    """Run the job's handler with its context and the services it declares (taken from
    `runtime`, this process's composition root); record the outcome."""
    import logging
    import traceback

    import aift.tasks  # noqa: F401 - registers the job kinds
    from aift.errors import AiftError, storage_problem
    from aift.jobs.context import JobContext
    from aift.jobs.kinds import get_kind
    from aift.monitoring.logging import job_id_var, secrets_of, setup_logging
    from aift.work.actor import acting_as
    from aift.work.control import Cancelled
    from aift.work.schemas import JobStatus
    from aift.workspace import safe_name

    settings, workspace, store = runtime.settings, runtime.workspace, runtime.job_store
    job_id_var.set(job_id)
    setup_logging(
        settings.log_level,
        workspace.logs / "jobs" / f"{safe_name(job_id)}.jsonl",
        secrets=secrets_of(settings),
        console=logging.StreamHandler(sys.stdout),  # the job's readable log file
    )
    log = logging.getLogger(f"aift.job.{job_id[:8]}")
    job = store.find(job_id)
    if job is None:
        log.error("job %s does not exist", job_id)
        return 2
    kind_name, raw_config, attempt = job.kind, dict(job.config), job.attempt
    work_dir = workspace.job_dir(job_id)
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        kind = get_kind(kind_name)
        config = kind.parse_config(raw_config)
    except AiftError as exc:
        store.finish(job_id, JobStatus.failed, error=exc.message, message="failed")
        return 1
    ctx = JobContext(
        store=store,
        job_id=job_id,
        kind=kind_name,
        config=config,
        attempt=attempt,
        work_dir=work_dir,
        logger=log,
    )
    ctx.cancel_event = STOP_REQUESTED
    log.info("job %s (%s) attempt %d starting", job_id, kind_name, attempt)
    try:
        with acting_as(_owner_actor(runtime, job.owner_id)):
            result = kind.run(ctx, config, runtime)
    except Cancelled:
        log.info("job %s cancelled", job_id)
        message = "cancelled" + (
            " — resume continues from the last checkpoint" if kind.resumable else ""
        )
        store.finish(job_id, JobStatus.cancelled, message=message)
        return 0
    except AiftError as exc:
        log.error("job %s failed: %s", job_id, exc.message)
        store.finish(job_id, JobStatus.failed, error=exc.message, message="failed")
        return 1
    except Exception as exc:  # noqa: BLE001 - any failure must be recorded, not lost
        traceback.print_exc(file=sys.stdout)
        problem = storage_problem(exc)  # a full or read-only disk says so, not a traceback
        error = problem.message if problem is not None else f"{type(exc).__name__}: {exc}"
        store.finish(job_id, JobStatus.failed, error=error, message="failed")
        return 1
    store.finish(job_id, JobStatus.succeeded, progress=1.0, message="done", result=result)
    log.info("job %s succeeded", job_id)
    return 0


def _owner_actor(runtime: Runtime, owner_id: str | None) -> Actor:
    """Whom a job acts as: the user who started it, with their rights now (what it
    makes is theirs; what they can no longer see, it cannot use); everyone for jobs
    started before accounts, by the CLI or by the server itself."""
    from aift.work.actor import EVERYONE

    return EVERYONE if owner_id is None else runtime.accounts.users.actor_of(owner_id)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: STOP_REQUESTED.set())
    sys.exit(run(sys.argv[1]))
