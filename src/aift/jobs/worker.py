"""A worker process: takes jobs from the queue and supervises each in its own process."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from sqlalchemy import select

from aift.jobs.schemas import JobStatus
from aift.jobs.service import HOSTNAME, kill_job_process
from aift.store import utcnow
from aift.store.tables import JobRow

if TYPE_CHECKING:
    from aift.runtime import Runtime

log = logging.getLogger(__name__)


def run_worker(runtime: Runtime) -> None:
    """Run until stopped (SIGINT/SIGTERM); jobs left running are marked interrupted."""
    recovered = runtime.jobs.recover_orphans()
    if recovered:
        log.warning("marked %d orphaned job(s) interrupted: %s", len(recovered), recovered)
    concurrency = runtime.settings.worker_concurrency
    log.info("worker %s:%s started, %d job(s) at a time", HOSTNAME, os.getpid(), concurrency)
    consumer = runtime.queue.consumer(concurrency)
    try:
        consumer.run()
    finally:
        _interrupt_own_jobs(runtime)


def _interrupt_own_jobs(runtime: Runtime) -> None:
    """On shutdown, stop this worker's job processes and mark their jobs interrupted."""
    now = utcnow()
    with runtime.db.session() as session:
        rows = session.scalars(
            select(JobRow).where(
                JobRow.status == JobStatus.running.value,
                JobRow.worker_host == HOSTNAME,
                JobRow.worker_pid == os.getpid(),
            )
        ).all()
        for row in rows:
            kill_job_process(row.process_pid, row.id)
            row.status = JobStatus.interrupted.value
            row.message = "interrupted: the worker shut down" + (
                " — resume it to continue" if row.resumable else ""
            )
            row.finished_at = now
            row.updated_at = now
            log.warning("job %s interrupted by worker shutdown", row.id)
