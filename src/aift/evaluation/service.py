"""Evaluations of served models: checked, queued as jobs, listed and read back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aift.errors import InvalidInput, NotFound
from aift.evaluation.schemas import ModelEvalRequest, ModelEvalResult
from aift.training.datasets import DatasetService
from aift.work.queueing import JobQueueing
from aift.work.schemas import JobCreate, JobInfo

KIND = "evaluation.model"


class EvaluationService:
    """Queues model evaluations and reads their results (kept in the job store)."""

    def __init__(
        self, jobs: JobQueueing, datasets: DatasetService, describe: Callable[[str], Any]
    ) -> None:
        self.jobs = jobs
        self.datasets = datasets
        self.describe = describe  # a served model's registry entry, or NotFound

    def submit(self, request: ModelEvalRequest) -> JobInfo:
        """Check the model and the dataset's rows, then queue the evaluation."""
        model = self.describe(request.model)
        dataset = self.datasets.get(request.dataset)
        rows = dataset.rows_val if request.split == "val" else dataset.rows_train
        if rows == 0:
            raise InvalidInput(f"Dataset {dataset.name} has no {request.split} rows to score.")
        if dataset.format.value == "text":
            raise InvalidInput(f"{dataset.name} is raw text: it has no answers to score.")
        name = getattr(model, "name", request.model)
        return self.jobs.submit(
            JobCreate(
                kind=KIND,
                config=request.model_copy(update={"model": name}).model_dump(mode="json"),
                title=f"evaluate {name} on {dataset.name} ({request.split})",
            ),
            internal=True,
        )

    def list(self, limit: int = 100) -> list[JobInfo]:
        """Model evaluations, newest first."""
        return self.jobs.list(kind=KIND, limit=limit).items

    def get(self, job_id: str) -> ModelEvalResult | None:
        """A finished evaluation's result (None while it runs); 404 for other jobs."""
        job = self.jobs.get(job_id)
        if job.kind != KIND:
            raise NotFound(f"No evaluation {job_id!r}.")
        return ModelEvalResult.model_validate(job.result) if job.result else None
