"""Fine-tuning runs: start one (a job); watch it through /api/v1/jobs and /ws/jobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.jobs.schemas import JobInfo
from aift.runtime import Runtime
from aift.training.schemas import MergeRequest, TrainingConfig

router = APIRouter(prefix="/api/v1/training", tags=["training"])


@router.post("", response_model=JobInfo, status_code=202)
async def start_training(
    config: TrainingConfig, runtime: Runtime = Depends(get_runtime)
) -> JobInfo:
    """Validate the run config (dataset, base model, method, memory) and queue the run."""
    return await run_in_threadpool(runtime.training.submit, config)


@router.post("/merge", response_model=JobInfo, status_code=202)
async def merge_adapter(request: MergeRequest, runtime: Runtime = Depends(get_runtime)) -> JobInfo:
    """Merge an adapter into its base as a new full model (a job; registered when done)."""
    return await run_in_threadpool(runtime.training.merge, request, runtime.models)
