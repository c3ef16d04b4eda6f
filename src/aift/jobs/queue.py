"""The durable queue in front of the workers: Huey on SQLite, or on Redis when set.

Only job ids travel through the queue; the job itself lives in the metadata store, so
the queue can be swapped (SQLite → Redis for several machines) without touching jobs.
"""

from __future__ import annotations

import logging

from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer

from aift.config import Settings
from aift.jobs.launcher import JobLauncher
from aift.jobs.store import JobStore
from aift.jobs.supervisor import supervise
from aift.workspace import Workspace

log = logging.getLogger(__name__)

TASK_NAME = "aift.run_job"


def make_huey(settings: Settings) -> Huey:
    """Huey on Redis when `AIFT_REDIS_URL` is set, else on a SQLite file in the workspace."""
    if settings.redis_url:
        return RedisHuey("aift", url=settings.redis_url, results=False, utc=True)
    path = settings.workspace / "metadata" / "queue.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("aift", filename=str(path), results=False, utc=True)


class JobQueue:
    """Puts job ids on the queue (API side) and runs them (worker side)."""

    def __init__(self, settings: Settings, store: JobStore, workspace: Workspace) -> None:
        self.settings = settings
        self.huey = make_huey(settings)
        grace = settings.job_cancel_grace_seconds
        launcher = JobLauncher(settings.job_fork_server, settings.job_allocator)

        def run_job(job_id: str) -> None:
            supervise(store, workspace, job_id, grace, launcher)

        self._task = self.huey.task(name=TASK_NAME)(run_job)

    def enqueue(self, job_id: str) -> None:
        """Hand a job to whichever worker is free next."""
        self._task(job_id)

    def pending_count(self) -> int:
        """Messages waiting in the queue (not yet picked by a worker)."""
        return self.huey.pending_count()

    def consumer(self, workers: int) -> Consumer:
        """A Huey consumer running `workers` jobs at once, polling briskly."""
        return self.huey.create_consumer(
            workers=workers,
            worker_type="thread",
            initial_delay=0.1,
            backoff=1.15,
            max_delay=0.5,
            periodic=False,
        )
