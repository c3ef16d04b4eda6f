"""A worker process: takes jobs from the queue and supervises each in its own process."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from aift.jobs.schemas import JobStatus
from aift.procutil import HOSTNAME, kill_job_process

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
    for job in runtime.job_store.running(host=HOSTNAME, pid=os.getpid()):
        kill_job_process(job.process_pid, job.id)
        message = "interrupted: the worker shut down" + (
            " — resume it to continue" if job.resumable else ""
        )
        if runtime.job_store.finish(job.id, JobStatus.interrupted, message=message):
            log.warning("job %s interrupted by worker shutdown", job.id)
