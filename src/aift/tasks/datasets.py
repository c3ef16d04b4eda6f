"""Job kinds of training datasets: writing one from a knowledge base's documents."""

from __future__ import annotations

from typing import Any

from aift.inference.service import ServingService
from aift.jobs.context import JobContext
from aift.jobs.kinds import job_kind
from aift.rag.service import KnowledgeService
from aift.tasks.evaluation import served_generation
from aift.training.document_datasets import KIND, write_dataset
from aift.training.drafts import DraftService
from aift.training.schemas import DocumentDatasetJobConfig


@job_kind(KIND, config=DocumentDatasetJobConfig, resumable=True)
def run_document_dataset(
    ctx: JobContext,
    config: DocumentDatasetJobConfig,
    knowledge: KnowledgeService,
    serving: ServingService,
    drafts: DraftService,
) -> dict[str, Any]:
    """Write questions and supported answers about the passages of a knowledge base's
    documents with a served model; a resumed job goes on after its last passage."""
    passages = knowledge.passages(config.kb_id, config.documents)
    generate = served_generation(serving, config.model)
    ctx.progress(0.0, f"loading {config.model}", force=True)
    return write_dataset(
        ctx,
        config,
        passages,
        lambda messages, most: generate(messages, [], most),
        drafts,
        ctx.work_dir,
    )
