"""Datasets written from a knowledge base's documents: checked and queued here, written
by the job `dataset.from_documents` (`write_dataset`), reviewed in `drafts`.

The dataset exists from the moment it is asked for, empty, with `stats["generated"]`
saying how it is written and how far; rows reach it pending review as each passage is
done, so a reviewer can start before the job ends, and a resumed job goes on after the
last passage it finished.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aift.errors import InvalidInput
from aift.models.schemas import ModelInfo, ModelKind
from aift.rag.schemas import SourcePassage
from aift.rag.service import KnowledgeService
from aift.training.datasets import DatasetService
from aift.training.drafts import DraftService
from aift.training.question_writing import (
    Deduplicator,
    Generate,
    WritingCounts,
    rows_of_passage,
)
from aift.training.schemas import (
    DatasetFormat,
    DocumentDatasetJobConfig,
    DocumentDatasetRequest,
    DocumentDatasetStarted,
)
from aift.work.control import Work
from aift.work.queueing import JobQueueing
from aift.work.schemas import JobCreate

log = logging.getLogger(__name__)

KIND = "dataset.from_documents"
CHECKPOINT = "written.json"


class DocumentDatasets:
    """Starts datasets written from documents."""

    def __init__(
        self,
        jobs: JobQueueing,
        datasets: DatasetService,
        knowledge: KnowledgeService,
        describe: Callable[[str], ModelInfo],
        default_model: str,
    ) -> None:
        self.jobs = jobs
        self.datasets = datasets
        self.knowledge = knowledge
        self.describe = describe  # a served model's registry entry, or NotFound
        self.default_model = default_model

    def submit(self, request: DocumentDatasetRequest) -> DocumentDatasetStarted:
        """Check the knowledge base, its documents and the model, create the empty
        dataset, and queue the job that writes it."""
        kb = self.knowledge.get(request.knowledge_base)
        passages = self.knowledge.passage_count(kb.id, request.documents)
        if not passages:
            raise InvalidInput(f"{kb.name} has no ingested document to write questions about.")
        model = self.describe(request.model or self.default_model)
        if model.kind in (ModelKind.embedding, ModelKind.reranker, ModelKind.reward):
            raise InvalidInput(f"{model.name} is a {model.kind.value} model: it writes no text.")
        fmt = DatasetFormat.preference if request.preference_pairs else DatasetFormat.chat
        settings = request.model_dump(mode="json") | {
            "knowledge_base": kb.name,
            "model": model.name,
            "status": "queued",
            "passages": passages,
        }
        dataset = self.datasets.create_generated(
            request.name or f"{kb.name}-questions", fmt, f"knowledge base {kb.name}",
            {"generated": settings},
        )  # fmt: skip
        config = DocumentDatasetJobConfig(
            **request.model_dump(exclude={"model"}),
            dataset_id=dataset.id,
            kb_id=kb.id,
            model=model.name,
        )
        job = self.jobs.submit(
            JobCreate(
                kind=KIND,
                config=config.model_dump(mode="json"),
                title=f"write dataset {dataset.name} from {kb.name} with {model.name}",
            ),
            internal=True,
        )
        dataset = self.datasets.update_generation(dataset.id, job_id=job.id)
        return DocumentDatasetStarted(dataset=dataset, job=job)


def write_dataset(
    work: Work,
    config: DocumentDatasetJobConfig,
    passages: list[SourcePassage],
    generate: Generate,
    drafts: DraftService,
    checkpoint_dir: Path,
) -> dict[str, Any]:
    """Write rows about each passage, store them pending review passage by passage, and
    report the counts (see `question_writing.WritingCounts`)."""
    checkpoint = checkpoint_dir / CHECKPOINT
    done, counts = _resume(checkpoint)
    _status(drafts, config, "writing", counts)
    try:
        _write_passages(work, config, passages, generate, drafts, (checkpoint, done, counts))
    except BaseException:
        _status(drafts, config, "stopped", counts)
        raise
    _status(drafts, config, "review", counts)
    written = drafts.written(config.dataset_id)
    log.info("dataset %s: %s", config.dataset_id, counts.as_dict())
    return {"dataset_id": config.dataset_id, "rows": written, **counts.as_dict()}


def _write_passages(
    work: Work,
    config: DocumentDatasetJobConfig,
    passages: list[SourcePassage],
    generate: Generate,
    drafts: DraftService,
    progress: tuple[Path, set[str], WritingCounts],
) -> None:
    """Rows about each passage not done yet, stored passage by passage, until
    `max_rows`; the checkpoint records each finished passage."""
    checkpoint, done, counts = progress
    dedupe = _seen(drafts, config.dataset_id)
    written = drafts.written(config.dataset_id)
    for number, passage in enumerate(passages):
        if written >= config.max_rows:
            break
        if passage.chunk_id in done:
            continue
        work.check_cancelled()
        work.progress(number / len(passages), f"passage {number + 1} of {len(passages)}")
        rows = []
        for row in rows_of_passage(passage, generate, config, dedupe, counts):
            rows.append(row)
            if written + len(rows) >= config.max_rows:
                break
        drafts.add(config.dataset_id, rows)
        written += len(rows)
        done.add(passage.chunk_id)
        _save(checkpoint, done, counts)
        work.metrics({"rows": written, "supported_share": counts.as_dict()["supported_share"]})


def _resume(checkpoint: Path) -> tuple[set[str], WritingCounts]:
    if not checkpoint.is_file():
        return set(), WritingCounts()
    saved = json.loads(checkpoint.read_text(encoding="utf-8"))
    counts = WritingCounts(**{k: v for k, v in saved["counts"].items() if k != "supported_share"})
    return set(saved["done"]), counts


def _save(checkpoint: Path, done: set[str], counts: WritingCounts) -> None:
    staging = checkpoint.with_suffix(".new")
    staging.write_text(
        json.dumps({"done": sorted(done), "counts": counts.as_dict()}), encoding="utf-8"
    )
    staging.replace(checkpoint)


def _seen(drafts: DraftService, dataset_id: str) -> Deduplicator:
    """A deduplicator that knows the rows written before a resume."""
    dedupe = Deduplicator()
    offset = 0
    while True:
        page = drafts.page(dataset_id, offset=offset, limit=500)
        for row in page.rows:
            dedupe.is_new(row.question, row.answer)
        offset += len(page.rows)
        if not page.rows or offset >= page.total:
            return dedupe


def _status(
    drafts: DraftService, config: DocumentDatasetJobConfig, status: str, counts: WritingCounts
) -> None:
    """Record how far the writing is on the dataset itself (the page shows it)."""
    drafts.datasets.update_generation(config.dataset_id, status=status, counts=counts.as_dict())
