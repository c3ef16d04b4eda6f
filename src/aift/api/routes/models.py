"""Models available locally: list, details, re-scan, and which defaults are in use."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_models
from aift.models.registry import ModelRegistry
from aift.models.schemas import ModelInfo, ModelKind

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


@router.get("/{name:path}", response_model=ModelInfo)
async def get_model(name: str, models: ModelRegistry = Depends(get_models)) -> ModelInfo:
    return await run_in_threadpool(models.get, name)
