"""The wired-up services of one process: settings, workspace, database, queue, jobs.

The one wiring point: the CLI, the web app, the worker and each job process build one
Runtime and pass it down (a job handler finds it on `ctx.runtime`); services never
reach for globals or build each other. Services are created on first use, so a process
imports only what it uses; `close()` owns all shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from aift.config import Settings
from aift.jobs.queue import JobQueue
from aift.jobs.service import JobService
from aift.jobs.store import JobStore
from aift.store import Database
from aift.workspace import Workspace

if TYPE_CHECKING:
    from aift.auth.accounts import Accounts
    from aift.conversations.service import ConversationService
    from aift.doctor.service import DoctorService
    from aift.evaluation.arena import Arena
    from aift.evaluation.service import EvaluationService
    from aift.export.service import ExportService
    from aift.inference.manager import ModelManager
    from aift.inference.schemas import LoadedModelInfo
    from aift.inference.service import ServingService
    from aift.models.registry import ModelRegistry
    from aift.monitoring.collector import Metrics
    from aift.rag.cache import SearchCache
    from aift.rag.index import VectorIndex
    from aift.rag.service import KnowledgeService
    from aift.rag.store import KnowledgeStore
    from aift.rag.syncer import IndexSyncer
    from aift.training.datasets import DatasetService
    from aift.training.document_datasets import DocumentDatasets
    from aift.training.drafts import DraftService
    from aift.training.service import TrainingService


@dataclass
class Runtime:
    settings: Settings
    workspace: Workspace
    db: Database
    owns_vector_index: bool = False

    @classmethod
    def start(
        cls, settings: Settings, *, migrate: bool = True, owns_vector_index: bool = False
    ) -> Runtime:
        """Create the workspace folders and bring the database schema up to date.

        `owns_vector_index`: this process (the server) opens the vector index and keeps it
        in sync; embedded Qdrant allows one such process per workspace.
        """
        workspace = Workspace.from_settings(settings).ensure()
        db = Database(settings.effective_database_url)
        if migrate:
            db.migrate()
        return cls(settings, workspace, db, owns_vector_index)

    @cached_property
    def job_store(self) -> JobStore:
        return JobStore(self.db)

    @cached_property
    def queue(self) -> JobQueue:
        return JobQueue(self.settings, self.job_store, self.workspace)

    @cached_property
    def jobs(self) -> JobService:
        return JobService(
            self.job_store,
            self.workspace,
            self.queue,
            heartbeat_timeout_seconds=self.settings.job_heartbeat_timeout_seconds,
            max_jobs_per_user=self.settings.max_jobs_per_user,
        )

    @cached_property
    def models(self) -> ModelRegistry:
        from aift.models.registry import ModelRegistry

        return ModelRegistry(self.settings, self.db, self.workspace)

    @cached_property
    def model_manager(self) -> ModelManager:
        from aift.inference.manager import ModelManager

        return ModelManager(self.settings, self.models)

    @cached_property
    def serving(self) -> ServingService:
        from aift.inference.service import ServingService

        return ServingService(self.model_manager)

    @cached_property
    def datasets(self) -> DatasetService:
        from aift.training.datasets import DatasetService

        return DatasetService(self.settings, self.db, self.workspace, self.models.resolver)

    @cached_property
    def drafts(self) -> DraftService:
        from aift.training.drafts import DraftService

        return DraftService(self.db, self.datasets)

    @cached_property
    def document_datasets(self) -> DocumentDatasets:
        from aift.training.document_datasets import DocumentDatasets

        return DocumentDatasets(
            self.jobs,
            self.datasets,
            self.knowledge,
            lambda name: self.serving.describe(name),
            self.settings.default_llm,
        )

    @cached_property
    def training(self) -> TrainingService:
        from aift.training.service import TrainingService

        return TrainingService(
            self.workspace,
            self.jobs,
            self.datasets,
            self.models.resolver,
            pages=lambda ref, wanted: self.knowledge.page_texts(ref, wanted),
        )

    @cached_property
    def evaluation(self) -> EvaluationService:
        from aift.evaluation.service import EvaluationService

        return EvaluationService(self.jobs, self.datasets, lambda name: self.serving.describe(name))

    @cached_property
    def arena(self) -> Arena:
        from aift.evaluation.arena import Arena

        manager = self.model_manager
        return Arena(
            self.db,
            lambda: [m.name for m in manager.servable()],
            lambda name: manager.describe(name).name,
        )

    @cached_property
    def export(self) -> ExportService:
        from aift.export.service import ExportService

        return ExportService(self.settings, self.workspace, self.jobs, self.models, self.datasets)

    @cached_property
    def doctor(self) -> DoctorService:
        from aift.doctor.service import DoctorService

        return DoctorService(self.settings, self.models.resolver)

    @cached_property
    def accounts(self) -> Accounts:
        """Users and groups, signed-in browsers (server-side; the cookie holds only a
        random token), API tokens and the audit trail."""
        from aift.auth.accounts import Accounts

        s = self.settings
        return Accounts(self.db, s.session_hours, s.audit_retention_days)

    @cached_property
    def conversations(self) -> ConversationService:
        from aift.conversations.service import ConversationService

        return ConversationService(self.db)

    @cached_property
    def knowledge_store(self) -> KnowledgeStore:
        from aift.rag.store import KnowledgeStore

        return KnowledgeStore(self.db)

    @cached_property
    def knowledge(self) -> KnowledgeService:
        from aift.rag.service import KnowledgeService

        return KnowledgeService(
            self.knowledge_store,
            self.workspace,
            self.jobs,
            self.models.resolver,
            self.serving,
            self.index_syncer,
            self.search_cache,
            index=self.index_syncer.index if self.index_syncer else self._index_reader(),
        )

    def _index_reader(self) -> VectorIndex:
        """The vector index as a process that does not own it reads it: a shared Qdrant
        server, or the server's index process through its socket (connected on first
        use; a job that searches while no server runs is told so)."""
        if self.settings.qdrant_url:
            from aift.rag.open_index import open_index

            return open_index(self.settings)
        from aift.rag.index_access import IndexReader

        return IndexReader(self.settings.effective_qdrant_path)

    @cached_property
    def search_cache(self) -> SearchCache:
        from aift.rag.cache import open_cache

        s = self.settings
        return open_cache(s.redis_url, s.cache_ttl_seconds, s.cache_max_entries)

    @cached_property
    def metrics(self) -> Metrics:
        """This process's metrics and its services' state, as `/metrics` shows them."""
        from aift.monitoring.collector import Metrics, MetricSources

        return Metrics(
            MetricSources(
                workspace_root=self.workspace.root,
                job_counts=self.job_store.counts,
                job_durations=self.job_store.durations,
                running_jobs=self.job_store.running,
                queue_depth=self.queue.pending_count,
                loaded_models=self._loaded_models,
                document_counts=self.knowledge_store.document_counts,
            )
        )

    def _loaded_models(self) -> list[LoadedModelInfo]:
        """Models loaded in this process; none (and no manager built just to say so)
        when no model was ever asked for here."""
        if "model_manager" not in self.__dict__:
            return []
        return self.model_manager.loaded()

    @cached_property
    def index_syncer(self) -> IndexSyncer | None:
        """The open vector index, kept in sync with the database by a background thread;
        None unless this process owns the index."""
        if not self.owns_vector_index:
            return None
        from aift.rag.index_process import IndexProcess
        from aift.rag.open_index import open_index
        from aift.rag.syncer import IndexSyncer

        index: VectorIndex = (
            open_index(self.settings) if self.settings.qdrant_url else IndexProcess(self.settings)
        )
        syncer = IndexSyncer(self.knowledge_store, index, self.search_cache)
        syncer.start()
        return syncer

    def close(self) -> None:
        """Stop what this process started, in order: models, the index syncer, the
        database. Safe to call more than once."""
        if "model_manager" in self.__dict__:
            self.model_manager.close()
        syncer = self.__dict__.pop("index_syncer", None)
        if syncer is not None:
            syncer.stop()
            syncer.index.close()
        self.db.dispose()
