"""A worker process: takes jobs from the queue and supervises each in its own process."""

from __future__ import annotations

import logging
import os

from aift.config import Settings
from aift.jobs.queue import JobQueue
from aift.jobs.service import JobService
from aift.jobs.store import JobStore
from aift.procutil import HOSTNAME, kill_job_process
from aift.work.schemas import JobStatus

log = logging.getLogger(__name__)


def run_worker(settings: Settings, jobs: JobService, queue: JobQueue, store: JobStore) -> None:
    """Run until stopped (SIGINT/SIGTERM); jobs left running are marked interrupted."""
    recovered = jobs.recover_orphans()
    if recovered:
        log.warning("marked %d orphaned job(s) interrupted: %s", len(recovered), recovered)
    concurrency = settings.worker_concurrency
    log.info("worker %s:%s started, %d job(s) at a time", HOSTNAME, os.getpid(), concurrency)
    consumer = queue.consumer(concurrency)
    try:
        consumer.run()
    finally:
        _interrupt_own_jobs(store)


def _interrupt_own_jobs(store: JobStore) -> None:
    """On shutdown, stop this worker's job processes and mark their jobs interrupted."""
    for job in store.running(host=HOSTNAME, pid=os.getpid()):
        kill_job_process(job.process_pid, job.id)
        message = "interrupted: the worker shut down" + (
            " — resume it to continue" if job.resumable else ""
        )
        if store.finish(job.id, JobStatus.interrupted, message=message):
            log.warning("job %s interrupted by worker shutdown", job.id)
