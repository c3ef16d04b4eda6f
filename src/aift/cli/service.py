"""Running aift: `serve` (web app, APIs and a worker), `worker`, `version`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from aift import __version__
from aift.cli.app import app
from aift.cli.common import SERVICE, WorkspaceOpt, console, local_runtime
from aift.config import get_settings


@app.command(rich_help_panel=SERVICE)
def version() -> None:
    """Print the aift version."""
    console.print(f"aift {__version__}")


@app.command(rich_help_panel=SERVICE)
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (AIFT_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (AIFT_PORT).")] = None,
    workspace: WorkspaceOpt = None,
    worker: Annotated[bool, typer.Option(help="Also run one local job worker.")] = True,
) -> None:
    """Run the web app, the APIs and a local job worker."""
    for name, value in (("AIFT_HOST", host), ("AIFT_PORT", port), ("AIFT_WORKSPACE", workspace)):
        if value is not None:
            os.environ[name] = str(
                value.expanduser().resolve() if isinstance(value, Path) else value
            )
    get_settings.cache_clear()
    from aift.api.server import serve as run_server

    run_server(get_settings(), with_worker=worker)


@app.command(rich_help_panel=SERVICE)
def worker(
    workspace: WorkspaceOpt = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs at once (AIFT_WORKER_CONCURRENCY).")
    ] = None,
    exit_with_parent: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Run a job worker only (e.g. on another machine sharing the queue)."""
    if exit_with_parent:  # started by `aift serve`: stop when the server goes
        import signal

        from aift.procutil import exit_with_parent as watch_parent

        watch_parent(signal.SIGTERM)
    if concurrency is not None:
        os.environ["AIFT_WORKER_CONCURRENCY"] = str(concurrency)
        get_settings.cache_clear()
    runtime = local_runtime(workspace)
    from aift.jobs.worker import run_worker
    from aift.monitoring.logging import secrets_of, setup_logging

    setup_logging(
        runtime.settings.log_level,
        runtime.workspace.logs / "worker.jsonl",
        secrets=secrets_of(runtime.settings),
    )
    run_worker(runtime.settings, runtime.jobs, runtime.queue, runtime.job_store)


@app.command(rich_help_panel=SERVICE)
def mcp(
    workspace: WorkspaceOpt = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="AIFT_TOKEN", help="API token to act as (needed once accounts exist)."),
    ] = None,
) -> None:
    """Serve the knowledge bases over MCP on stdin/stdout (for desktop assistants and
    IDEs; HTTP clients use the server's /mcp). Searches need the server running."""
    from aift.mcp_server.stdio import serve as serve_mcp

    runtime = local_runtime(workspace)
    try:
        serve_mcp(runtime, token)
    finally:
        runtime.close()
