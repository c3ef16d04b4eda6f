"""Jobs: list, submit, inspect, cancel, resume, log tail."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_jobs
from aift.jobs.kinds import all_kinds
from aift.jobs.service import JobService
from aift.work.schemas import JobCreate, JobInfo, JobKindInfo, JobList, JobStatus

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get("", response_model=JobList)
async def list_jobs(
    status: list[JobStatus] | None = Query(None, description="Filter by status (repeatable)."),
    kind: str | None = Query(None, max_length=64),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    jobs: JobService = Depends(get_jobs),
) -> JobList:
    """Jobs, newest first."""
    return await run_in_threadpool(jobs.list, status=status, kind=kind, limit=limit, offset=offset)


@router.post("", response_model=JobInfo, status_code=202)
async def submit_job(request: JobCreate, jobs: JobService = Depends(get_jobs)) -> JobInfo:
    """Queue a job of a submittable kind (see GET /api/v1/jobs/kinds)."""
    return await run_in_threadpool(jobs.submit, request)


@router.get("/kinds", response_model=list[JobKindInfo])
def list_kinds() -> list[JobKindInfo]:
    """Known job kinds with the JSON schema of their config."""
    return [
        JobKindInfo(
            name=k.name,
            description=k.description,
            resumable=k.resumable,
            submittable=k.submittable,
            config_schema=k.config_model.model_json_schema(),
        )
        for k in all_kinds()
    ]


@router.get("/{job_id}", response_model=JobInfo)
async def get_job(job_id: str, jobs: JobService = Depends(get_jobs)) -> JobInfo:
    return await run_in_threadpool(jobs.get, job_id)


@router.post("/{job_id}/cancel", response_model=JobInfo)
async def cancel_job(job_id: str, jobs: JobService = Depends(get_jobs)) -> JobInfo:
    """A queued job never starts; a running one is asked to stop, then killed after a grace."""
    return await run_in_threadpool(jobs.cancel, job_id)


@router.post("/{job_id}/resume", response_model=JobInfo, status_code=202)
async def resume_job(job_id: str, jobs: JobService = Depends(get_jobs)) -> JobInfo:
    """Queue an interrupted, cancelled or failed job again; it continues from its checkpoint."""
    return await run_in_threadpool(jobs.resume, job_id)


@router.get("/{job_id}/log")
async def job_log(
    job_id: str,
    lines: int = Query(200, ge=1, le=10_000),
    jobs: JobService = Depends(get_jobs),
) -> dict:
    """The last lines of the job's log."""
    return {"id": job_id, "lines": await run_in_threadpool(jobs.log_tail, job_id, lines)}


@router.delete("/{job_id}", status_code=204)
async def delete_job(job_id: str, jobs: JobService = Depends(get_jobs)) -> Response:
    """Forget a finished job and its log; what it produced stays."""
    await run_in_threadpool(jobs.delete, job_id)
    return Response(status_code=204)
