"""`aift jobs`: list, show, submit, watch, cancel and resume jobs (workspace commands)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from aift.cli.app import app
from aift.cli.common import (
    LOCAL,
    JsonOpt,
    WorkspaceOpt,
    console,
    follow_job,
    local_runtime,
    print_result,
)
from aift.errors import AiftError
from aift.work.schemas import JobCreate, JobInfo, JobStatus

jobs_app = typer.Typer(help="Long-running work: list, watch, cancel, resume.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs", rich_help_panel=LOCAL)


def _job_table(jobs: list[JobInfo]) -> Table:
    table = Table("id", "kind", "status", "progress", "message", "created")
    for job in jobs:
        table.add_row(
            job.id,
            job.kind,
            job.status.value,
            f"{job.progress:.0%}",
            (job.error or job.message)[:60],
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    return table


@jobs_app.command("list")
def jobs_list(
    status: Annotated[list[JobStatus] | None, typer.Option(help="Filter by status.")] = None,
    kind: Annotated[str | None, typer.Option(help="Filter by kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """List jobs, newest first."""
    result = local_runtime(workspace).jobs.list(status=status, kind=kind, limit=limit)
    if as_json:
        console.print_json(result.model_dump_json())
    else:
        console.print(_job_table(result.items))


@jobs_app.command("show")
def jobs_show(
    job_id: str,
    log: Annotated[bool, typer.Option("--log", help="Also print the log tail.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Show one job (and its log)."""
    runtime = local_runtime(workspace)
    console.print_json(runtime.jobs.get(job_id).model_dump_json())
    if log:
        for line in runtime.jobs.log_tail(job_id):
            console.print(line, markup=False, highlight=False)


@jobs_app.command("submit")
def jobs_submit(
    kind: str,
    config: Annotated[str, typer.Option(help="Config as JSON.")] = "{}",
    wait: Annotated[bool, typer.Option(help="Follow progress until it ends.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Queue a job of a submittable kind, e.g. `aift jobs submit system.benchmark --wait`."""
    try:
        parsed = json.loads(config)
    except json.JSONDecodeError as exc:
        raise AiftError(f"--config is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise AiftError("--config must be a JSON object, e.g. '{\"steps\": 3}'.")
    runtime = local_runtime(workspace)
    job = runtime.jobs.submit(JobCreate(kind=kind, config=parsed))
    console.print(f"queued job [bold]{job.id}[/] ({job.kind})")
    if wait:
        print_result(follow_job(runtime.jobs.get, job.id))


@jobs_app.command("watch")
def jobs_watch(job_id: str, workspace: WorkspaceOpt = None) -> None:
    """Follow a job's progress with a progress bar until it ends."""
    print_result(follow_job(local_runtime(workspace).jobs.get, job_id))


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, workspace: WorkspaceOpt = None) -> None:
    """Cancel a job: a queued one never starts, a running one stops at its next checkpoint."""
    info = local_runtime(workspace).jobs.cancel(job_id)
    console.print(f"job {info.id}: {info.status.value} ({info.message})")


@jobs_app.command("resume")
def jobs_resume(job_id: str, workspace: WorkspaceOpt = None) -> None:
    """Queue an interrupted, cancelled or failed job again, from its last checkpoint."""
    info = local_runtime(workspace).jobs.resume(job_id)
    console.print(f"job {info.id}: {info.status.value}")


@jobs_app.command("rm")
def jobs_rm(job_id: str, workspace: WorkspaceOpt = None) -> None:
    """Forget a finished job and its log; what it produced (models, documents) stays."""
    local_runtime(workspace).jobs.delete(job_id)
    console.print(f"job {job_id}: deleted")
