"""The wired-up services of one process: settings, workspace, database, queue, jobs.

The CLI, the web app and the worker each build one Runtime and pass it down; services
never reach for globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from aift.config import Settings
from aift.jobs.queue import JobQueue
from aift.jobs.service import JobService
from aift.store import Database
from aift.workspace import Workspace


@dataclass
class Runtime:
    settings: Settings
    workspace: Workspace
    db: Database

    @classmethod
    def start(cls, settings: Settings, *, migrate: bool = True) -> Runtime:
        """Create the workspace folders and bring the database schema up to date."""
        workspace = Workspace.from_settings(settings).ensure()
        db = Database(settings.effective_database_url)
        if migrate:
            db.migrate()
        return cls(settings=settings, workspace=workspace, db=db)

    @cached_property
    def queue(self) -> JobQueue:
        return JobQueue(self.settings, self.db, self.workspace)

    @cached_property
    def jobs(self) -> JobService:
        return JobService(
            self.db,
            self.workspace,
            self.queue,
            heartbeat_timeout_seconds=self.settings.job_heartbeat_timeout_seconds,
        )

    @cached_property
    def models(self):  # noqa: ANN201 - aift.models.registry.ModelRegistry
        from aift.models.registry import ModelRegistry

        return ModelRegistry(self.settings, self.db, self.workspace)

    def close(self) -> None:
        self.db.dispose()
