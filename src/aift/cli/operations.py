"""Operating a workspace: `backup`, `restore` and `tensorboard`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aift.cli.app import app
from aift.cli.common import LOCAL, WorkspaceOpt, console, local_settings, step_progress
from aift.procutil import run_in_foreground

if TYPE_CHECKING:
    from aift.jobs.service import JobService
    from aift.store import Database


@app.command(rich_help_panel=LOCAL)
def backup(
    path: Annotated[Path, typer.Argument(help="New folder to write the backup into.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Copy the workspace (database, documents, datasets, outputs, models) into PATH.

    Safe while the server runs: the database is copied with SQLite's online backup API
    (one consistent snapshot). The vector index is rebuilt on restore from the chunks
    the database keeps.
    """
    from aift.backup.service import create_backup
    from aift.workspace import Workspace

    settings = local_settings(workspace)
    with step_progress() as bar:
        task = bar.add_task("backup", total=1.0, step="")
        manifest = create_backup(
            settings,
            Workspace.from_settings(settings),
            path,
            lambda step, done: bar.update(task, completed=done, step=step),
        )
    console.print_json(manifest.model_dump_json())


@app.command(rich_help_panel=LOCAL)
def restore(
    path: Annotated[Path, typer.Argument(help="A folder written by `aift backup`.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Restore a backup into an empty workspace (run it before starting the server).

    The database is migrated to this release, paths are rewritten to the new place,
    running work is marked interrupted, and a job is queued that embeds the knowledge
    bases' chunks again; `aift serve` runs it and search answers as before.
    """
    from aift.backup.service import restore_backup
    from aift.models.resolver import ModelResolver
    from aift.runtime import Runtime
    from aift.workspace import Workspace

    settings = local_settings(workspace)
    target = Workspace.from_settings(settings).ensure()
    resolver = ModelResolver(settings, target)

    def opened() -> tuple[Database, JobService]:
        import aift.tasks  # noqa: F401 - registers the job kinds (a restore queues one)

        runtime = Runtime.start(settings)
        return runtime.db, runtime.jobs

    with step_progress() as bar:
        task = bar.add_task("restore", total=1.0, step="")
        result = restore_backup(
            settings,
            target,
            opened,
            path,
            resolver.path_allowed,
            lambda step, done: bar.update(task, completed=done, step=step),
        )
    console.print_json(result.model_dump_json())
    if result.job_id:
        console.print(
            f"Start the server (`aift serve`): job {result.job_id[:8]} embeds "
            f"{result.chunks_to_embed} chunks again; search is complete when it ends."
        )


@app.command(rich_help_panel=LOCAL)
def tensorboard(
    workspace: WorkspaceOpt = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 6006,
    host: Annotated[
        str | None, typer.Option(help="Bind address (default AIFT_HOST, 127.0.0.1).")
    ] = None,
    path_prefix: Annotated[
        str,
        typer.Option(
            help="URL prefix; `/tensorboard` to serve it through aift's sign-in "
            "(with AIFT_TENSORBOARD_URL pointing here)."
        ),
    ] = "",
) -> None:
    """Serve the workspace's training logs (every run in outputs/) with TensorBoard.

    TensorBoard has no sign-in of its own: keep it on loopback and reach it through
    aift at /tensorboard (AIFT_TENSORBOARD_URL), which asks for aift's key."""
    settings = local_settings(workspace)
    logs = settings.workspace / "outputs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(logs),
        "--host",
        host or settings.host,
        "--port",
        str(port),
        "--reload_interval",
        "15",
        *(["--path_prefix", path_prefix] if path_prefix else []),
    ]
    console.print(f"TensorBoard on http://{host or settings.host}:{port} (runs in {logs})")
    raise typer.Exit(run_in_foreground(command))


@app.command(rich_help_panel=LOCAL)
def doctor(
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """Check this machine for aift: CPU against the native libraries (a tiny llama.cpp
    decode in a child process), OCR engines and language packs, disk and memory, which
    default models fall back, and the services configured (Redis, Qdrant, Ollama).

    Each line is ok or says what is wrong and the command that fixes it; exits 1 when
    something the defaults need is broken.
    """
    from aift.doctor.checks import run_checks

    report = run_checks(local_settings(workspace))
    if as_json:
        console.print_json(report.model_dump_json())
    else:
        marks = {"ok": "[green]ok  [/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
        for check in report.checks:
            line = f"{marks[check.status.value]} {check.name}: {check.summary}"
            console.print(line, highlight=False, soft_wrap=True)
            if check.fix:
                console.print(f"     fix: {check.fix}", highlight=False, soft_wrap=True)
        verdict = "ready" if report.ok else "something the defaults need is broken"
        console.print(f"\n{verdict} ({report.seconds:.1f} s)")
    raise typer.Exit(0 if report.ok else 1)
