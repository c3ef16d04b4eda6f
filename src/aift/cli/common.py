"""What every command shares: the consoles, common options, the two ways to reach aift
(the workspace in-process, or the running server) and the one job follower."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from aift.config import Settings, get_settings
from aift.monitoring.units import human_size
from aift.work.schemas import JobInfo, JobStatus

if TYPE_CHECKING:
    from aift.client import AiftClient
    from aift.runtime import Runtime

console = Console()
err_console = Console(stderr=True)

# Help panels: which rule a command follows (see the top-level help).
LOCAL = "Workspace commands (run here, on --workspace)"
REMOTE = "Server commands (talk to the running server at AIFT_SERVER_URL)"
SERVICE = "Running aift"

WorkspaceOpt = Annotated[
    Path | None, typer.Option("--workspace", "-w", help="Workspace folder (AIFT_WORKSPACE).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def local_settings(workspace: Path | None = None) -> Settings:
    """The settings of the workspace this command works on (--workspace exported for
    child processes)."""
    if workspace is not None:
        os.environ["AIFT_WORKSPACE"] = str(workspace.expanduser().resolve())
        get_settings.cache_clear()
    return get_settings()


def local_runtime(workspace: Path | None = None) -> Runtime:
    """The workspace, opened in this process (options exported for child processes),
    with the job kinds registered (this process may queue jobs)."""
    import aift.tasks  # noqa: F401 - registers the job kinds
    from aift.runtime import Runtime

    return Runtime.start(local_settings(workspace))


def step_progress() -> Progress:
    """A progress bar for in-process work: description, bar, percent, and the current
    step in the task's `step` field."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[step]}"),
        console=console,
    )


def server() -> AiftClient:
    """The running server of AIFT_SERVER_URL (with AIFT_API_KEY when set)."""
    from aift.client import AiftClient

    return AiftClient.from_settings(get_settings())


def follow_job(get: Callable[[str], JobInfo], job_id: str, quiet: bool = False) -> JobInfo:
    """Show a job's progress until it ends, read through `get` (the workspace's job
    service or the server's API); exit non-zero unless it succeeded. `quiet` waits
    without a progress bar (output meant for a program, such as --json)."""
    if quiet:
        info = get(job_id)
        while not info.status.is_terminal:
            time.sleep(0.3)
            info = get(job_id)
        return _succeeded(info)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[message]}"),
        console=console,
    ) as bar:
        info = get(job_id)
        task = bar.add_task(f"{info.kind} {job_id[:8]}", total=1.0, message=info.message)
        while True:
            info = get(job_id)
            bar.update(
                task, completed=info.progress, message=f"[{info.status.value}] {info.message}"
            )
            if info.status.is_terminal:
                break
            time.sleep(0.3)
    return _succeeded(info)


def _succeeded(info: JobInfo) -> JobInfo:
    """The finished job, or exit 1 saying why it did not succeed."""
    if info.status != JobStatus.succeeded:
        err_console.print(f"[red]job {info.status.value}[/]: {info.error or info.message}")
        raise typer.Exit(1)
    return info


def print_result(info: JobInfo) -> None:
    if info.result:
        console.print_json(json.dumps(info.result))


def size(num: float | None) -> str:
    """Bytes for a table cell: `98 MB`, or `-` when unknown."""
    return human_size(num, decimals=0) if num else "-"


def pages(start: int, end: int) -> str:
    return f"p. {start}" if start == end else f"pp. {start}-{end}"


def score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
