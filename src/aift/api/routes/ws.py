"""WebSocket progress stream of one job: a snapshot, then every change, until it ends."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.errors import NotFound
from aift.work.schemas import JobEvent

router = APIRouter(tags=["jobs"])

POLL_SECONDS = 0.2


@router.websocket("/ws/jobs/{job_id}")
async def job_events(websocket: WebSocket, job_id: str) -> None:
    """Send JobEvent JSON on every change of status, progress or message; close at the end."""
    jobs = get_runtime(websocket).jobs
    await websocket.accept()
    try:
        info = await run_in_threadpool(jobs.get, job_id)
    except NotFound as exc:
        await websocket.send_json({"type": "error", "code": exc.code, "message": exc.message})
        await websocket.close(code=4404)
        return
    last = None
    try:
        while True:
            event = JobEvent.from_info(info)
            key = (event.status, event.progress, event.message, event.error, str(event.metrics))
            if key != last:
                await websocket.send_text(event.model_dump_json())
                last = key
            if info.status.is_terminal:
                await websocket.close(code=1000)
                return
            await asyncio.sleep(POLL_SECONDS)
            info = await run_in_threadpool(jobs.get, job_id)
    except WebSocketDisconnect:
        return
