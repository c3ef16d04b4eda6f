"""Evaluations of served models: checked, queued as jobs, listed and read back (their
results are kept with their jobs in the metadata store)."""

from __future__ import annotations

import builtins
from collections.abc import Callable

from aift.errors import InvalidInput, NotFound
from aift.evaluation.schemas import (
    EvalComparison,
    HarnessEvalRequest,
    HarnessEvalResult,
    HarnessJobConfig,
    ModelEvalRequest,
    ModelEvalResult,
)
from aift.models.schemas import ModelFormat, ModelInfo, ModelKind
from aift.rag.schemas import ANSWER_EVAL_KIND, AnswerEvaluation
from aift.training.datasets import DatasetService
from aift.work.queueing import JobQueueing
from aift.work.schemas import JobCreate, JobInfo

KIND = "evaluation.model"
HARNESS_KIND = "evaluation.harness"
KINDS: dict[str, type[ModelEvalResult | HarnessEvalResult | AnswerEvaluation]] = {
    KIND: ModelEvalResult,
    HARNESS_KIND: HarnessEvalResult,
    ANSWER_EVAL_KIND: AnswerEvaluation,
}


class EvaluationService:
    """Queues model evaluations and reads their results."""

    def __init__(
        self,
        jobs: JobQueueing,
        datasets: DatasetService,
        describe: Callable[[str], ModelInfo],
    ) -> None:
        self.jobs = jobs
        self.datasets = datasets
        self.describe = describe  # a served model's registry entry, or NotFound

    def submit(self, request: ModelEvalRequest) -> JobInfo:
        """Check the model and the dataset's rows, then queue the evaluation."""
        model = self.describe(request.model)
        if model.kind in (ModelKind.embedding, ModelKind.reranker, ModelKind.reward):
            raise InvalidInput(
                f"{model.name} is a {model.kind.value} model: it does not answer questions."
            )
        dataset = self.datasets.get(request.dataset)
        rows = dataset.rows_val if request.split == "val" else dataset.rows_train
        if rows == 0:
            raise InvalidInput(f"Dataset {dataset.name} has no {request.split} rows to score.")
        if dataset.format.value == "text":
            raise InvalidInput(f"{dataset.name} is raw text: it has no answers to score.")
        judge = self._judge(request.judge)
        return self.jobs.submit(
            JobCreate(
                kind=KIND,
                config=request.model_copy(update={"model": model.name, "judge": judge}).model_dump(
                    mode="json"
                ),
                title=f"evaluate {model.name} on {dataset.name} ({request.split})",
            ),
            internal=True,
        )

    def _judge(self, name: str | None) -> str | None:
        """The judge's registry name: any served language model, checked before the job."""
        if name is None:
            return None
        judge = self.describe(name)
        if judge.kind in (ModelKind.embedding, ModelKind.reranker, ModelKind.reward):
            raise InvalidInput(f"{judge.name} is a {judge.kind.value} model: it cannot judge.")
        return judge.name

    def submit_harness(self, request: HarnessEvalRequest) -> JobInfo:
        """Queue lm-eval tasks on a model: through lm-eval's transformers backend where
        the model (or an adapter's base) is a transformers model, otherwise through the
        serving layer (generation tasks only; the job says so for the others)."""
        model = self.describe(request.model)
        if model.kind in (ModelKind.embedding, ModelKind.reranker, ModelKind.reward):
            raise InvalidInput(f"{model.name} is a {model.kind.value} model: lm-eval needs a LM.")
        base = self.describe(model.base_model or "") if model.kind == ModelKind.adapter else model
        local = base.format == ModelFormat.hf and not model.name.startswith("ollama/")
        config = HarnessJobConfig(
            **request.model_copy(update={"model": model.name}).model_dump(),
            backend="transformers" if local else "served",
            pretrained=base.path if local else None,
            peft=model.path if local and model.kind == ModelKind.adapter else None,
        )
        return self.jobs.submit(
            JobCreate(
                kind=HARNESS_KIND,
                config=config.model_dump(mode="json"),
                title=f"lm-eval {', '.join(request.tasks)} on {model.name}",
            ),
            internal=True,
        )

    def list(self, limit: int = 100) -> list[JobInfo]:
        """Evaluations of every kind (a model's answers, lm-eval, a knowledge base's
        answers run as a job), newest first."""
        found = [job for kind in KINDS for job in self.jobs.list(kind=kind, limit=limit).items]
        return sorted(found, key=lambda j: j.created_at, reverse=True)[:limit]

    def compare(self, job_ids: builtins.list[str]) -> EvalComparison:
        """Finished answer evaluations of one dataset split, each against the first."""
        from aift.evaluation.compare import compare_runs

        if len(job_ids) < 2:
            raise InvalidInput("Name at least two evaluations to compare.")
        results: builtins.list[ModelEvalResult] = []
        for job_id in job_ids:
            result = self.get(job_id)
            if not isinstance(result, ModelEvalResult):
                raise InvalidInput(
                    f"Evaluation {job_id} is "
                    + ("not finished." if result is None else "an lm-eval run: compare answers.")
                )
            results.append(result)
        first = results[0].request
        for job_id, result in zip(job_ids[1:], results[1:], strict=True):
            if (result.request.dataset, result.request.split) != (first.dataset, first.split):
                raise InvalidInput(
                    f"Evaluation {job_id} scored dataset {result.request.dataset} "
                    f"({result.request.split}), not {first.dataset} ({first.split}): "
                    "only evaluations of the same questions compare."
                )
        return EvalComparison(
            dataset=first.dataset,
            split=first.split,
            runs=[
                compare_runs(job_ids[0], results[0], job_id, result)
                for job_id, result in zip(job_ids[1:], results[1:], strict=True)
            ],
        )

    def get(self, job_id: str) -> ModelEvalResult | HarnessEvalResult | AnswerEvaluation | None:
        """A finished evaluation's result (None while it runs); 404 for other jobs."""
        job = self.jobs.get(job_id)
        if job.kind not in KINDS:
            raise NotFound(f"No evaluation {job_id!r}.")
        if not job.result:
            return None
        return KINDS[job.kind].model_validate(job.result)
