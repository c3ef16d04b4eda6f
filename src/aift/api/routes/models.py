"""Models available locally: list, details, re-scan, and which defaults are in use."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_jobs, get_models, get_runtime, get_serving
from aift.api.routes import sharing
from aift.auth.schemas import ShareGrant, ShareInfo
from aift.export.schemas import ExportRequest, QuantizeRequest
from aift.inference.pull import check_pull_ref
from aift.inference.schemas import (
    LoadedModelInfo,
    LoadRequest,
    PullRequest,
    RewardScoreRequest,
    RewardScores,
)
from aift.inference.service import ServingService
from aift.jobs.service import JobService
from aift.models.registry import ModelRegistry
from aift.models.schemas import ModelInfo, ModelKind
from aift.runtime import Runtime
from aift.work.schemas import JobCreate, JobInfo

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.get("", response_model=list[ModelInfo])
async def list_models(
    kind: ModelKind | None = Query(None), models: ModelRegistry = Depends(get_models)
) -> list[ModelInfo]:
    """Every model the registry knows, optionally of one kind."""
    return await run_in_threadpool(models.list, kind)


@router.post("/scan", response_model=list[ModelInfo])
async def scan_models(models: ModelRegistry = Depends(get_models)) -> list[ModelInfo]:
    """Look on disk again (packaged models, models/, outputs/) and refresh the registry."""
    return await run_in_threadpool(models.scan)


@router.get("/defaults")
async def model_defaults(models: ModelRegistry = Depends(get_models)) -> dict:
    """Configured default models and what is really used for each (fallbacks flagged)."""
    return await run_in_threadpool(models.defaults_in_use)


@router.post("/pull", response_model=JobInfo, status_code=202)
async def pull_model(
    request: PullRequest,
    jobs: JobService = Depends(get_jobs),
    runtime: Runtime = Depends(get_runtime),
) -> JobInfo:
    """Fetch a model (hub repo id, or `ollama/NAME` into the remote Ollama) as a job."""
    check_pull_ref(runtime.settings, request.model)
    return await run_in_threadpool(
        jobs.submit,
        JobCreate(kind="models.pull", config=request.model_dump(), title=f"pull {request.model}"),
        internal=True,
    )


@router.post("/export", response_model=JobInfo, status_code=202)
async def export_model(request: ExportRequest, runtime: Runtime = Depends(get_runtime)) -> JobInfo:
    """Export a model as GGUF (quantized by llama.cpp, with a Modelfile; optionally
    created in the configured Ollama) as a job."""
    return await run_in_threadpool(runtime.export.export, request)


@router.post("/quantize", response_model=JobInfo, status_code=202)
async def quantize_model(
    request: QuantizeRequest, runtime: Runtime = Depends(get_runtime)
) -> JobInfo:
    """Quantize a model with AWQ (llm-compressor, W4A16 compressed-tensors) as a job."""
    return await run_in_threadpool(runtime.export.quantize, request)


@router.get("/loaded", response_model=list[LoadedModelInfo])
async def loaded_models(serving: ServingService = Depends(get_serving)) -> list[LoadedModelInfo]:
    """Models in memory: engine, memory, context, adapters, expiry, requests in flight."""
    return await run_in_threadpool(serving.manager.loaded)


@router.post("/{name:path}/load", response_model=LoadedModelInfo)
async def load_model(
    name: str, request: LoadRequest | None = None, serving: ServingService = Depends(get_serving)
) -> LoadedModelInfo:
    """Load a model now (and keep it for keep_alive)."""
    request = request or LoadRequest()
    return await run_in_threadpool(
        serving.manager.load, name, engine=request.engine, keep_alive=request.keep_alive
    )


@router.post("/{name:path}/score", response_model=RewardScores)
async def score_replies(
    name: str, request: RewardScoreRequest, serving: ServingService = Depends(get_serving)
) -> RewardScores:
    """Score replies to a conversation with a reward model (kind reward)."""
    return await run_in_threadpool(serving.score_replies, name, request)


@router.post("/{name:path}/unload", status_code=204)
async def unload_model(name: str, serving: ServingService = Depends(get_serving)) -> None:
    """Free a loaded model."""
    info = await run_in_threadpool(serving.manager.describe, name)
    await run_in_threadpool(serving.manager.unload, info.name)


@router.get("/{name:path}/shares", response_model=list[ShareInfo])
async def list_shares(name: str, runtime: Runtime = Depends(get_runtime)) -> list[ShareInfo]:
    """Who the model is shared with (its owner and admins may look)."""
    return await sharing.shares_of(runtime, "model", runtime.models.owned, name)


@router.put("/{name:path}/shares", response_model=ShareInfo)
async def share(name: str, grant: ShareGrant, runtime: Runtime = Depends(get_runtime)) -> ShareInfo:
    """Share a model a user's work made with a user (by email) or a group (by name): to
    read is to chat with it, export it and train from it; packaged and installed models
    are everyone's already."""
    return await sharing.grant(runtime, "model", runtime.models.owned, name, grant)


@router.delete("/{name:path}/shares/{grantee_type}/{grantee_id}", status_code=204)
async def unshare(
    name: str,
    grantee_type: Literal["user", "group"],
    grantee_id: str,
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Stop sharing with a user or group."""
    owned = runtime.models.owned
    return await sharing.revoke(runtime, "model", owned, name, grantee_type, grantee_id)


@router.get("/{name:path}", response_model=ModelInfo)
async def get_model(name: str, models: ModelRegistry = Depends(get_models)) -> ModelInfo:
    return await run_in_threadpool(models.get, name)
