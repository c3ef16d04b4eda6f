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

    @cached_property
    def model_manager(self):  # noqa: ANN201 - aift.inference.manager.ModelManager
        from aift.inference.manager import ModelManager

        return ModelManager(self.settings, self.models)

    @cached_property
    def serving(self):  # noqa: ANN201 - aift.inference.service.ServingService
        from aift.inference.service import ServingService

        return ServingService(self.model_manager)

    @cached_property
    def datasets(self):  # noqa: ANN201 - aift.training.datasets.DatasetService
        from aift.training.datasets import DatasetService

        return DatasetService(self.settings, self.db, self.workspace, self.models.resolver)

    @cached_property
    def training(self):  # noqa: ANN201 - aift.training.service.TrainingService
        from aift.training.service import TrainingService

        return TrainingService(self.workspace, self.jobs, self.datasets, self.models.resolver)

    @cached_property
    def knowledge(self):  # noqa: ANN201 - aift.rag.service.KnowledgeService
        from aift.rag.service import KnowledgeService
        from aift.rag.store import KnowledgeStore

        return KnowledgeService(
            KnowledgeStore(self.db), self.workspace, self.jobs, self.models.resolver, self.serving
        )

    def own_vector_index(self):  # noqa: ANN201 - aift.rag.syncer.IndexSyncer
        """Open the vector index in this process and keep it synced (the server only)."""
        from aift.rag.index import VectorIndex
        from aift.rag.syncer import IndexSyncer

        syncer = IndexSyncer(self.knowledge.store, VectorIndex(self.settings))
        self.knowledge.syncer = syncer
        syncer.start()
        return syncer

    def close(self) -> None:
        if "model_manager" in self.__dict__:
            self.model_manager.close()
        self.db.dispose()
