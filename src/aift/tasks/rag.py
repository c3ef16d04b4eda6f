"""Job kinds of knowledge bases: ingesting documents, re-indexing a knowledge base, and
giving a restored workspace its vectors back; evaluating a knowledge base's answers to a
large question file."""

from __future__ import annotations

from typing import Any

from aift.config import Settings
from aift.jobs.context import JobContext
from aift.jobs.kinds import job_kind
from aift.models.registry import ModelRegistry
from aift.rag.ingest import ingest_documents, reindex
from aift.rag.revector import restore_vectors
from aift.rag.schemas import (
    ANSWER_EVAL_KIND,
    AnswerEvalJobConfig,
    IngestJobConfig,
    ReindexJobConfig,
    RestoreVectorsJobConfig,
)
from aift.rag.service import KnowledgeService
from aift.rag.store import KnowledgeStore


@job_kind("rag.ingest", config=IngestJobConfig, resumable=True)
def run_ingest(
    ctx: JobContext,
    config: IngestJobConfig,
    settings: Settings,
    knowledge_store: KnowledgeStore,
    models: ModelRegistry,
) -> dict[str, Any]:
    """Ingest documents into a knowledge base."""
    return ingest_documents(ctx, config, settings, knowledge_store, models)


@job_kind("rag.reindex", config=ReindexJobConfig, resumable=True)
def run_reindex(
    ctx: JobContext,
    config: ReindexJobConfig,
    settings: Settings,
    knowledge_store: KnowledgeStore,
    models: ModelRegistry,
) -> dict[str, Any]:
    """Re-embed every document of a knowledge base into a new index generation."""
    return reindex(ctx, config, settings, knowledge_store, models)


@job_kind("rag.restore_vectors", config=RestoreVectorsJobConfig, resumable=True)
def run_restore_vectors(
    ctx: JobContext,
    config: RestoreVectorsJobConfig,
    settings: Settings,
    knowledge_store: KnowledgeStore,
    models: ModelRegistry,
) -> dict[str, Any]:
    """Embed the chunks of restored knowledge bases again and wait for the index."""
    return restore_vectors(ctx, config, settings, knowledge_store, models)


@job_kind(ANSWER_EVAL_KIND, config=AnswerEvalJobConfig, resumable=True)
def run_answer_evaluation(
    ctx: JobContext, config: AnswerEvalJobConfig, knowledge: KnowledgeService
) -> dict[str, Any]:
    """Ask a knowledge base each question of a file with each setting and score the
    answers (searching the server's index through its reader socket); a resumed
    evaluation asks again from the start."""
    return knowledge.run_answer_evaluation(ctx, config).model_dump(mode="json")
