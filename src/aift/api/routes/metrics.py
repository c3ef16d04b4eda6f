"""Prometheus metrics: the HTTP, model, job, search, cache and machine figures of this
server (protected by the API key like every API route)."""

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.runtime import Runtime

router = APIRouter(tags=["system"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(runtime: Runtime = Depends(get_runtime)) -> Response:
    """Every metric in the Prometheus text exposition format (scrape this)."""
    body = await run_in_threadpool(runtime.metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
