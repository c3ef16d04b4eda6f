"""Evaluations of served models: start one (a job: scored answers to a dataset's
questions, or lm-evaluation-harness tasks), list them, read one's results."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.errors import Conflict
from aift.evaluation.schemas import (
    EvalComparison,
    HarnessEvalRequest,
    HarnessEvalResult,
    ModelEvalRequest,
    ModelEvalResult,
)
from aift.rag.schemas import AnswerEvaluation
from aift.runtime import Runtime
from aift.work.schemas import JobInfo

router = APIRouter(prefix="/api/v1/evaluations", tags=["evaluations"])


@router.post("/model", response_model=JobInfo, status_code=202)
async def evaluate_model(request: ModelEvalRequest, rt: Runtime = Depends(get_runtime)) -> JobInfo:
    """Queue a model evaluation on a dataset's rows (greedy answers, scored)."""
    return await run_in_threadpool(rt.evaluation.submit, request)


@router.post("/harness", response_model=JobInfo, status_code=202)
async def evaluate_harness(
    request: HarnessEvalRequest, rt: Runtime = Depends(get_runtime)
) -> JobInfo:
    """Queue lm-evaluation-harness tasks on a transformers model (or adapter)."""
    return await run_in_threadpool(rt.evaluation.submit_harness, request)


@router.get("", response_model=list[JobInfo])
async def list_evaluations(
    limit: int = Query(100, ge=1, le=1000), rt: Runtime = Depends(get_runtime)
) -> list[JobInfo]:
    """Model evaluations, newest first (their jobs: status, progress, summary metrics)."""
    return await run_in_threadpool(rt.evaluation.list, limit)


@router.get("/compare", response_model=EvalComparison)
async def compare_evaluations(
    ids: list[str] = Query(..., min_length=2, max_length=10),
    rt: Runtime = Depends(get_runtime),
) -> EvalComparison:
    """Answer evaluations of the same questions side by side, each against the first:
    metric deltas with a paired bootstrap interval and p-value, the questions that differ."""
    return await run_in_threadpool(rt.evaluation.compare, ids)


@router.get("/{job_id}", response_model=ModelEvalResult | HarnessEvalResult | AnswerEvaluation)
async def get_evaluation(
    job_id: str, rt: Runtime = Depends(get_runtime)
) -> ModelEvalResult | HarnessEvalResult | AnswerEvaluation:
    """A finished evaluation: a model's answers and their scores, lm-eval's figures, or a
    knowledge base's answers per setting."""
    result = await run_in_threadpool(rt.evaluation.get, job_id)
    if result is None:
        raise Conflict(f"Evaluation {job_id} has not finished; follow its job for progress.")
    return result
