"""`aift models`: models on disk (workspace commands) and models in the server's memory
(server commands: load, unload, ps)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from aift.cli.app import app
from aift.cli.common import (
    LOCAL,
    REMOTE,
    JsonOpt,
    WorkspaceOpt,
    console,
    local_runtime,
    server,
    size,
    step_progress,
)
from aift.inference.schemas import LoadRequest
from aift.models.schemas import ModelKind, Purpose

models_app = typer.Typer(
    help="Models: on disk (workspace) and loaded in the server.", no_args_is_help=True
)
app.add_typer(models_app, name="models", rich_help_panel=LOCAL)


@models_app.command("list", rich_help_panel=LOCAL)
def models_list(
    kind: Annotated[ModelKind | None, typer.Option(help="Only this kind.")] = None,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """List the models available locally (scans disk first)."""
    registry = local_runtime(workspace).models
    registry.scan()
    registry.defaults_in_use()  # logs a warning for each default that falls back
    items = registry.list(kind)
    if as_json:
        console.print_json(json.dumps([m.model_dump(mode="json") for m in items]))
        return
    table = Table("name", "kind", "format", "source", "architecture", "params", "dtype", "size")
    for m in items:
        params = f"{m.parameter_count / 1e6:.0f}M" if m.parameter_count else "-"
        table.add_row(
            m.name,
            m.kind.value,
            m.format.value,
            m.source.value,
            m.architecture or "-",
            params,
            m.dtype or "-",
            size(m.size_bytes),
        )
    console.print(table)


@models_app.command("show", rich_help_panel=LOCAL)
def models_show(name: str, workspace: WorkspaceOpt = None) -> None:
    """Show one model of the registry."""
    registry = local_runtime(workspace).models
    registry.scan()
    console.print_json(registry.get(name).model_dump_json())


@models_app.command("resolve", rich_help_panel=LOCAL)
def models_resolve(
    ref: str,
    purpose: Annotated[Purpose | None, typer.Option(help="Allow a packaged stand-in.")] = None,
    download: Annotated[bool, typer.Option(help="Try the model hub when not local.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Show where a model reference leads (local path, cache, hub, packaged)."""
    resolver = local_runtime(workspace).models.resolver
    resolved = resolver.resolve(
        ref, purpose=purpose, fallback=purpose is not None, allow_download=download
    )
    console.print_json(resolved.model_dump_json())


@models_app.command("pull", rich_help_panel=LOCAL)
def models_pull(ref: str, workspace: WorkspaceOpt = None) -> None:
    """Fetch a model: a hub repo id, or `ollama/NAME` into the configured Ollama server."""
    from aift.inference.pull import pull

    runtime = local_runtime(workspace)
    with step_progress() as bar:
        task = bar.add_task(f"pull {ref}", total=1.0, step="")
        result = pull(
            runtime.models,
            ref,
            lambda fraction, status: bar.update(task, completed=fraction, step=status),
        )
    console.print(f"{result['model']}: {result['source']}")


@models_app.command("load", rich_help_panel=REMOTE)
def models_load(
    name: str,
    engine: Annotated[str | None, typer.Option(help="transformers or llamacpp.")] = None,
    keep_alive: Annotated[str, typer.Option(help="How long to stay loaded: 5m, 1h, -1.")] = "5m",
) -> None:
    """Load a model in the running server."""
    request = LoadRequest(engine=engine, keep_alive=keep_alive)
    with server() as client, console.status(f"loading {name}…"):
        info = client.load_model(name, request)
    console.print(
        f"loaded {info.name} with {info.engine} "
        f"({size(info.memory_bytes)}, context {info.context_length})"
    )


@models_app.command("unload", rich_help_panel=REMOTE)
def models_unload(name: str) -> None:
    """Unload a model from the running server."""
    with server() as client:
        client.unload_model(name)
    console.print(f"unloaded {name}")


@models_app.command("ps", rich_help_panel=REMOTE)
def models_ps(as_json: JsonOpt = False) -> None:
    """Models loaded in the running server."""
    with server() as client:
        loaded = client.loaded_models()
    if as_json:
        console.print_json(json.dumps([m.model_dump(mode="json") for m in loaded]))
        return
    table = Table("name", "engine", "memory", "context", "adapters", "busy", "expires")
    for item in loaded:
        table.add_row(
            item.name,
            item.engine,
            size(item.memory_bytes),
            str(item.context_length),
            ", ".join(item.adapters) or "-",
            str(item.busy),
            item.expires_at.isoformat() if item.expires_at else "never",
        )
    console.print(table)
