"""Fine-tuning runs: start one (a job); watch it through /api/v1/jobs and /ws/jobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.runtime import Runtime
from aift.training.schemas import (
    ChainInfo,
    MergeRequest,
    MoeRequest,
    TrainingConfig,
    TrainingCurve,
    TrainingEstimate,
)
from aift.work.schemas import JobInfo

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


@router.post("/moe", response_model=JobInfo, status_code=202)
async def compose_moe(request: MoeRequest, runtime: Runtime = Depends(get_runtime)) -> JobInfo:
    """Compose fine-tunes of one base into a Mixtral-style mixture of experts (a job)."""
    return await run_in_threadpool(runtime.training.compose_moe, request, runtime.models)


@router.post("/estimate", response_model=TrainingEstimate)
async def estimate_training(
    config: TrainingConfig, runtime: Runtime = Depends(get_runtime)
) -> TrainingEstimate:
    """Memory, steps and expected duration of a run config, without starting it."""
    return await run_in_threadpool(runtime.training.estimate, config)


@router.get("/chains", response_model=list[ChainInfo])
async def list_chains(runtime: Runtime = Depends(get_runtime)) -> list[ChainInfo]:
    """Continual-learning chains: stages, strategies and forgetting figures."""
    return await run_in_threadpool(runtime.training.chains)


@router.get("/chains/{name}", response_model=ChainInfo)
async def get_chain(name: str, runtime: Runtime = Depends(get_runtime)) -> ChainInfo:
    """One chain: each stage's scores on every task so far (the forgetting matrix)."""
    return await run_in_threadpool(runtime.training.chain, name)


@router.get("/{job_id}/curve", response_model=TrainingCurve)
async def training_curve(
    job_id: str,
    after: int = Query(-1, ge=-1, description="Only steps after this one."),
    runtime: Runtime = Depends(get_runtime),
) -> TrainingCurve:
    """The run's logged steps: loss, validation loss, learning rate, gradient norm."""
    return await run_in_threadpool(runtime.training.curve, job_id, after)
