"""Prometheus metrics: the HTTP, model, job, search, cache and machine figures of this
server (behind the same authentication as every route). An admin (or the API key, or
single-user mode) sees every series; any other user only the series whose model,
knowledge base and job labels name what they may see."""

from collections.abc import Mapping

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.monitoring.collector import LabelFilter
from aift.runtime import Runtime
from aift.work.actor import current_actor
from aift.work.schemas import JobStatus

router = APIRouter(tags=["system"])
ACTIVE = [JobStatus.queued, JobStatus.running]


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(runtime: Runtime = Depends(get_runtime)) -> Response:
    """Every metric in the Prometheus text exposition format (scrape this)."""
    body = await run_in_threadpool(_exposition, runtime)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _exposition(runtime: Runtime) -> bytes:
    keep = None if current_actor.get().admin else _visible_labels(runtime)
    return runtime.metrics.exposition(keep)


def _visible_labels(runtime: Runtime) -> LabelFilter:
    """A label filter passing only what the current user may see: models they may name,
    their knowledge bases (and those shared with them), their jobs."""
    seen = {
        "model": {model.name for model in runtime.serving.manager.servable()},
        "kb_id": {row.id for row in runtime.knowledge_store.list_kbs()},
        "job_id": {job.id for job in runtime.jobs.list(status=ACTIVE, limit=1000).items},
    }

    def keep(labels: Mapping[str, str]) -> bool:
        return all(labels[name] in names for name, names in seen.items() if name in labels)

    return keep
