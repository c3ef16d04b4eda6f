"""The `aift` command line: serve, worker, jobs, models, version."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from aift import __version__
from aift.config import get_settings
from aift.errors import AiftError
from aift.jobs.schemas import JobCreate, JobInfo, JobStatus
from aift.models.schemas import ModelKind, Purpose

app = typer.Typer(
    help="aift: fine-tune, ground (RAG) and serve open language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
jobs_app = typer.Typer(help="Long-running work: list, watch, cancel, resume.", no_args_is_help=True)
models_app = typer.Typer(help="Models available locally.", no_args_is_help=True)
datasets_app = typer.Typer(help="Training datasets.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(models_app, name="models")
app.add_typer(datasets_app, name="datasets")
kb_app = typer.Typer(help="Knowledge bases (RAG) in the running server.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
history_app = typer.Typer(help="Past searches and questions.", no_args_is_help=True)
app.add_typer(history_app, name="history")
eval_app = typer.Typer(help="Measure retrieval quality.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

console = Console()
err_console = Console(stderr=True)

WorkspaceOpt = Annotated[
    Path | None, typer.Option("--workspace", "-w", help="Workspace folder (AIFT_WORKSPACE).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _runtime(workspace: Path | None = None):  # noqa: ANN202 - aift.runtime.Runtime
    """Settings from the environment (options exported for child processes) → Runtime."""
    if workspace is not None:
        os.environ["AIFT_WORKSPACE"] = str(workspace.expanduser().resolve())
        get_settings.cache_clear()
    from aift.runtime import Runtime

    return Runtime.start(get_settings())


@app.callback()
def _setup() -> None:
    """Warnings and errors go to stderr; `serve` and `worker` configure fuller logging."""
    from aift.monitoring.logging import setup_logging

    setup_logging("WARNING", fmt="%(levelname)s: %(message)s")


@app.command()
def version() -> None:
    """Print the aift version."""
    console.print(f"aift {__version__}")


@app.command()
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


@app.command()
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
    runtime = _runtime(workspace)
    from aift.jobs.worker import run_worker
    from aift.monitoring.logging import setup_logging

    setup_logging(runtime.settings.log_level, runtime.workspace.logs / "worker.log")
    run_worker(runtime)


# -- jobs --------------------------------------------------------------------------
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
    result = _runtime(workspace).jobs.list(status=status, kind=kind, limit=limit)
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
    runtime = _runtime(workspace)
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
    runtime = _runtime(workspace)
    job = runtime.jobs.submit(JobCreate(kind=kind, config=parsed))
    console.print(f"queued job [bold]{job.id}[/] ({job.kind})")
    if wait:
        _follow(runtime, job.id)


@jobs_app.command("watch")
def jobs_watch(job_id: str, workspace: WorkspaceOpt = None) -> None:
    """Follow a job's progress with a progress bar until it ends."""
    _follow(_runtime(workspace), job_id)


def _follow(runtime, job_id: str) -> None:  # noqa: ANN001
    """Show a live progress bar; exit non-zero unless the job succeeded."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[message]}"),
        console=console,
    ) as bar:
        info = runtime.jobs.get(job_id)
        task = bar.add_task(f"{info.kind} {job_id[:8]}", total=1.0, message=info.message)
        while True:
            info = runtime.jobs.get(job_id)
            bar.update(
                task, completed=info.progress, message=f"[{info.status.value}] {info.message}"
            )
            if info.status.is_terminal:
                break
            time.sleep(0.3)
    if info.status != JobStatus.succeeded:
        err_console.print(f"[red]job {info.status.value}[/]: {info.error or info.message}")
        raise typer.Exit(1)
    if info.result:
        console.print_json(json.dumps(info.result))


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, workspace: WorkspaceOpt = None) -> None:
    """Cancel a job: a queued one never starts, a running one stops at its next checkpoint."""
    info = _runtime(workspace).jobs.cancel(job_id)
    console.print(f"job {info.id}: {info.status.value} ({info.message})")


@jobs_app.command("resume")
def jobs_resume(job_id: str, workspace: WorkspaceOpt = None) -> None:
    """Queue an interrupted, cancelled or failed job again, from its last checkpoint."""
    info = _runtime(workspace).jobs.resume(job_id)
    console.print(f"job {info.id}: {info.status.value}")


# -- models ------------------------------------------------------------------------
def _size(num: int | None) -> str:
    if not num:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if num < 1024:
            return f"{num:.0f} {unit}"
        num /= 1024
    return f"{num:.1f} PB"


@models_app.command("list")
def models_list(
    kind: Annotated[ModelKind | None, typer.Option(help="Only this kind.")] = None,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """List the models available locally (scans disk first)."""
    registry = _runtime(workspace).models
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
            _size(m.size_bytes),
        )
    console.print(table)


@models_app.command("show")
def models_show(name: str, workspace: WorkspaceOpt = None) -> None:
    """Show one model of the registry."""
    registry = _runtime(workspace).models
    registry.scan()
    console.print_json(registry.get(name).model_dump_json())


@models_app.command("resolve")
def models_resolve(
    ref: str,
    purpose: Annotated[Purpose | None, typer.Option(help="Allow a packaged stand-in.")] = None,
    download: Annotated[bool, typer.Option(help="Try the model hub when not local.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Show where a model reference leads (local path, cache, hub, packaged)."""
    resolver = _runtime(workspace).models.resolver
    resolved = resolver.resolve(
        ref, purpose=purpose, fallback=purpose is not None, allow_download=download
    )
    console.print_json(resolved.model_dump_json())


@models_app.command("pull")
def models_pull(ref: str, workspace: WorkspaceOpt = None) -> None:
    """Fetch a model: a hub repo id, or `ollama/NAME` into the configured Ollama server."""
    from aift.inference.pull import pull

    runtime = _runtime(workspace)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
    ) as bar:
        task = bar.add_task(f"pull {ref}", total=1.0, status="")
        result = pull(
            runtime.models,
            ref,
            lambda fraction, status: bar.update(task, completed=fraction, status=status),
        )
    console.print(f"{result['model']}: {result['source']}")


# -- training ----------------------------------------------------------------------------
@app.command()
def train(
    config_file: Path,
    wait: Annotated[bool, typer.Option(help="Follow progress until it ends.")] = True,
    workspace: WorkspaceOpt = None,
) -> None:
    """Start a fine-tuning run from a YAML (or JSON) run config; a worker runs it."""
    import yaml

    from aift.training.config import TrainingConfig

    if not config_file.is_file():
        raise AiftError(f"{config_file} is not a file.")
    try:
        raw = yaml.safe_load(config_file.read_text())
    except yaml.YAMLError as exc:
        raise AiftError(f"{config_file} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise AiftError(f"{config_file} must hold a mapping of settings (base_model, dataset…).")
    config = TrainingConfig.model_validate(raw)
    runtime = _runtime(workspace)
    job = runtime.training.submit(config)
    console.print(f"queued training job [bold]{job.id}[/] ({job.title})")
    if wait:
        _follow(runtime, job.id)


@app.command()
def merge(
    adapter: str,
    name: Annotated[str | None, typer.Option(help="Name of the merged model.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow progress until it ends.")] = True,
    workspace: WorkspaceOpt = None,
) -> None:
    """Merge an adapter into its base model as a new full model (a worker runs it)."""
    from aift.training.merge import MergeRequest

    runtime = _runtime(workspace)
    runtime.models.scan()
    job = runtime.training.merge(MergeRequest(adapter=adapter, name=name), runtime.models)
    console.print(f"queued merge job [bold]{job.id}[/]")
    if wait:
        _follow(runtime, job.id)


# -- datasets --------------------------------------------------------------------------
@datasets_app.command("add")
def datasets_add(
    file: Path,
    val_file: Annotated[Path | None, typer.Option(help="Validation rows (no split).")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    format: Annotated[str | None, typer.Option(help="alpaca, chat, sharegpt or text.")] = None,
    val_ratio: Annotated[float, typer.Option(help="Share held out for validation.")] = 0.1,
    skip_invalid: Annotated[bool, typer.Option(help="Keep only the valid rows.")] = False,
    base_model: Annotated[str | None, typer.Option(help="Tokenizer for stats.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Report longer examples.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Validate and store a training dataset (JSONL, JSON, CSV, Parquet)."""
    from aift.training.schemas import DatasetOptions

    for path in (file, val_file):
        if path is not None and not path.is_file():
            raise AiftError(f"{path} is not a file.")
    runtime = _runtime(workspace)
    options = DatasetOptions(
        name=name,
        format=format,
        val_ratio=val_ratio,
        skip_invalid=skip_invalid,
        base_model=base_model,
        max_length=max_length,
    )
    with console.status(f"checking {file.name}…"):
        report = runtime.datasets.add(file, file.name, options, val_file)
    info = report.dataset
    console.print(
        f"dataset [bold]{info.id}[/] {info.name} ({info.format.value}): "
        f"{info.rows_train} train, {info.rows_val} validation, "
        f"{info.rows_skipped} skipped"
    )
    tokens = info.stats.get("tokens")
    if tokens:
        console.print(
            f"tokens per example: min {tokens['min']}, median {tokens['p50']}, "
            f"p95 {tokens['p95']}, max {tokens['max']}"
        )
    for error in report.errors[:10]:
        err_console.print(f"[yellow]skipped[/] {error.reason}")
    if report.preview:
        console.rule("first example as the model sees it")
        console.print(report.preview[0], markup=False, highlight=False)


@datasets_app.command("list")
def datasets_list(as_json: JsonOpt = False, workspace: WorkspaceOpt = None) -> None:
    """List training datasets."""
    items = _runtime(workspace).datasets.list()
    if as_json:
        console.print_json(json.dumps([d.model_dump(mode="json") for d in items]))
        return
    table = Table("id", "name", "format", "train", "val", "skipped", "created")
    for d in items:
        table.add_row(
            d.id,
            d.name,
            d.format.value,
            str(d.rows_train),
            str(d.rows_val),
            str(d.rows_skipped),
            d.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@datasets_app.command("show")
def datasets_show(dataset_id: str, workspace: WorkspaceOpt = None) -> None:
    """Show a dataset and its first examples as the model will see them."""
    runtime = _runtime(workspace)
    console.print_json(runtime.datasets.get(dataset_id).model_dump_json())
    for example in runtime.datasets.preview(dataset_id):
        console.rule()
        console.print(example, markup=False, highlight=False)


@datasets_app.command("rm")
def datasets_rm(dataset_id: str, workspace: WorkspaceOpt = None) -> None:
    """Delete a dataset."""
    _runtime(workspace).datasets.delete(dataset_id)
    console.print(f"deleted {dataset_id}")


# -- talking to a running server (models in memory live there) ---------------------------
def _server():  # noqa: ANN202 - httpx.Client
    import httpx

    settings = get_settings()
    headers = {}
    if settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
    return httpx.Client(base_url=settings.server_url, headers=headers, timeout=600)


def _check(response) -> dict | list | None:  # noqa: ANN001
    """Raise the server's error message as a CLI error."""
    if response.status_code >= 400:
        try:
            error = response.json().get("error")
            message = error.get("message") if isinstance(error, dict) else error
        except ValueError:
            message = response.text
        raise AiftError(f"{message} (HTTP {response.status_code})")
    return response.json() if response.content else None


def _connect_error(exc: Exception) -> AiftError:
    return AiftError(
        f"Cannot reach the aift server at {get_settings().server_url} ({exc}). Start it with "
        "`aift serve` or set AIFT_SERVER_URL."
    )


def _call(method: str, path: str, **kwargs):  # noqa: ANN003, ANN202
    """One request to the running server; its errors become CLI errors."""
    import httpx

    try:
        with _server() as client:
            return _check(client.request(method, path, **kwargs))
    except httpx.TransportError as exc:
        raise _connect_error(exc) from None


@models_app.command("load")
def models_load(
    name: str,
    engine: Annotated[str | None, typer.Option(help="transformers or llamacpp.")] = None,
    keep_alive: Annotated[str, typer.Option(help="How long to stay loaded: 5m, 1h, -1.")] = "5m",
) -> None:
    """Load a model in the running server."""
    import httpx

    try:
        with _server() as client, console.status(f"loading {name}…"):
            info = _check(
                client.post(
                    f"/api/v1/models/{name}/load", json={"engine": engine, "keep_alive": keep_alive}
                )
            )
    except httpx.TransportError as exc:
        raise _connect_error(exc) from None
    console.print(
        f"loaded {info['name']} with {info['engine']} "
        f"({_size(info['memory_bytes'])}, context {info['context_length']})"
    )


@models_app.command("unload")
def models_unload(name: str) -> None:
    """Unload a model from the running server."""
    _call("POST", f"/api/v1/models/{name}/unload")
    console.print(f"unloaded {name}")


@models_app.command("ps")
def models_ps(as_json: JsonOpt = False) -> None:
    """Models loaded in the running server."""
    loaded = _call("GET", "/api/v1/models/loaded")
    if as_json:
        console.print_json(json.dumps(loaded))
        return
    table = Table("name", "engine", "memory", "context", "adapters", "busy", "expires")
    for item in loaded:
        table.add_row(
            item["name"],
            item["engine"],
            _size(item["memory_bytes"]),
            str(item["context_length"]),
            ", ".join(item["adapters"]) or "-",
            str(item["busy"]),
            item["expires_at"] or "never",
        )
    console.print(table)


@kb_app.command("create")
def kb_create(
    name: str,
    embedding_model: Annotated[
        str | None, typer.Option(help="Default: the configured one.")
    ] = None,
    chunk_tokens: Annotated[int, typer.Option(help="Tokens per chunk.")] = 512,
    overlap_tokens: Annotated[int, typer.Option(help="Tokens shared by neighbours.")] = 128,
    description: str = "",
) -> None:
    """Create a knowledge base bound to an embedding model."""
    info = _call(
        "POST",
        "/api/v1/kb",
        json={
            "name": name,
            "description": description,
            "embedding_model": embedding_model,
            "chunking": {"chunk_tokens": chunk_tokens, "overlap_tokens": overlap_tokens},
        },
    )
    console.print(
        f"created {info['name']} ({info['id']}): {info['embedding_model']}, "
        f"{info['dimension']} dims, chunks of {info['effective_chunk_tokens']} tokens"
    )
    if info.get("warning"):
        console.print(f"[yellow]{info['warning']}[/yellow]")


@kb_app.command("list")
def kb_list(as_json: JsonOpt = False) -> None:
    """Knowledge bases with their model, documents and chunks."""
    items = _call("GET", "/api/v1/kb")
    if as_json:
        console.print_json(json.dumps(items))
        return
    table = Table("name", "id", "embedding model", "dims", "documents", "chunks", "status")
    for kb in items:
        table.add_row(
            kb["name"],
            kb["id"],
            kb["embedding_model"],
            str(kb["dimension"]),
            str(kb["documents"]),
            str(kb["chunks"]),
            kb["status"],
        )
    console.print(table)


@kb_app.command("show")
def kb_show(kb: str) -> None:
    """A knowledge base and the status of each of its documents."""
    console.print_json(json.dumps(_call("GET", f"/api/v1/kb/{kb}")))
    table = Table("document", "id", "status", "pages", "OCR pages", "chunks", "error")
    for doc in _call("GET", f"/api/v1/kb/{kb}/documents"):
        table.add_row(
            doc["name"],
            doc["id"],
            doc["status"],
            str(doc["pages"] or "-"),
            str(doc["ocr_pages"]),
            str(doc["chunks"]),
            doc["error"] or "",
        )
    console.print(table)


@kb_app.command("rm")
def kb_rm(kb: str) -> None:
    """Delete a knowledge base with its documents and vectors."""
    _call("DELETE", f"/api/v1/kb/{kb}")
    console.print(f"deleted {kb}")


@kb_app.command("rm-doc")
def kb_rm_doc(kb: str, document_id: str) -> None:
    """Delete one document (its rows, vectors and files)."""
    _call("DELETE", f"/api/v1/kb/{kb}/documents/{document_id}")
    console.print(f"deleted {document_id}")


@kb_app.command("reindex")
def kb_reindex(
    kb: str,
    embedding_model: Annotated[str | None, typer.Option(help="Switch to this model.")] = None,
) -> None:
    """Re-embed every document (a job); search keeps working on the old index meanwhile."""
    job = _call("POST", f"/api/v1/kb/{kb}/reindex", json={"embedding_model": embedding_model})
    _follow_remote(job["id"])


def _collect(paths: list[Path]) -> list[Path]:
    """Files under the given paths (folders recursively), hidden files skipped."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
        elif path.is_file():
            found.append(path)
        else:
            raise AiftError(f"{path} does not exist.")
    if not found:
        raise AiftError("No files to ingest.")
    return found


def _follow_remote(job_id: str) -> dict:
    """A progress bar for a job of the running server, until it ends."""
    import time

    from rich.progress import Progress

    with Progress(console=console) as bar:
        task = bar.add_task("queued", total=1.0)
        while True:
            job = _call("GET", f"/api/v1/jobs/{job_id}")
            bar.update(
                task, completed=job["progress"], description=job["message"][:60] or job["status"]
            )
            if job["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
                break
            time.sleep(0.5)
    if job["status"] != "succeeded":
        raise AiftError(f"job {job_id} {job['status']}: {job.get('error') or ''}")
    return job


@app.command()
def ingest(
    kb: str,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursively).")],
    password: Annotated[str | None, typer.Option(help="For encrypted PDFs.")] = None,
) -> None:
    """Upload documents into a knowledge base and follow their ingestion."""
    files = _collect(paths)
    handles = [open(f, "rb") for f in files]  # noqa: SIM115 - closed below
    try:
        result = _call(
            "POST",
            f"/api/v1/kb/{kb}/documents",
            files=[("files", (str(f), h)) for f, h in zip(files, handles, strict=True)],
            data={"password": password} if password else {},
        )
    finally:
        for handle in handles:
            handle.close()
    for rejected in result["rejected"]:
        console.print(f"[red]rejected[/red] {rejected['name']}: {rejected['reason']}")
    for duplicate in result["duplicates"]:
        console.print(f"already in {kb}: {duplicate['name']}")
    if not result["job_id"]:
        return
    _follow_remote(result["job_id"])
    ids = {d["id"] for d in result["accepted"]}
    for doc in _call("GET", f"/api/v1/kb/{kb}/documents"):
        if doc["id"] in ids:
            colour = "green" if doc["status"] == "indexed" else "red"
            detail = (
                f"{doc['pages']} pages, {doc['chunks']} chunks"
                if doc["status"] == "indexed"
                else doc["error"]
            )
            console.print(f"[{colour}]{doc['status']}[/{colour}] {doc['name']}: {detail}")


def _pages(hit: dict) -> str:
    start, end = hit["page_start"], hit["page_end"]
    return f"p. {start}" if start == end else f"pp. {start}-{end}"


@app.command("search")
def search_command(
    kb: str,
    query: str,
    mode: Annotated[str, typer.Option(help="hybrid, dense or keywords.")] = "hybrid",
    fusion: Annotated[str, typer.Option(help="weighted or rrf.")] = "weighted",
    limit: int = 5,
    rerank: Annotated[bool, typer.Option(help="Re-rank with a cross-encoder.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Search a knowledge base; shows each hit's document, pages and scores."""
    body = {"query": query, "mode": mode, "fusion": fusion, "limit": limit, "rerank": rerank}
    result = _call("POST", f"/api/v1/kb/{kb}/search", json=body)
    if as_json:
        console.print_json(json.dumps(result))
        return
    for note in result["notes"]:
        console.print(f"[yellow]{note}[/yellow]")
    table = Table("#", "document", "pages", "dense", "keyword", "fused", "rerank", "text")
    for number, hit in enumerate(result["hits"], start=1):
        score = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(
            str(number),
            hit["document"],
            _pages(hit),
            score(hit["dense_score"]),
            score(hit["keyword_score"]),
            score(hit["fused_score"]),
            score(hit["rerank_score"]),
            hit["text"][:80].replace("\n", " "),
        )
    console.print(table)
    console.print(f"{result['latency_ms']:.0f} ms")


@app.command("ask")
def ask_command(
    kb: str,
    question: str,
    model: Annotated[str | None, typer.Option(help="Any served model.")] = None,
    max_tokens: int = 512,
    limit: Annotated[int, typer.Option(help="Sources given to the model.")] = 5,
) -> None:
    """Ask a knowledge base; the answer streams, then its sources with pages."""
    import httpx

    body = {
        "query": question,
        "model": model,
        "max_tokens": max_tokens,
        "limit": limit,
        "stream": True,
    }
    done = None
    try:
        with (
            _server() as client,
            client.stream("POST", f"/api/v1/kb/{kb}/ask", json=body) as response,
        ):
            if response.status_code >= 400:
                response.read()
                _check(response)
            kind = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if kind == "token":
                        console.out(data["text"], end="", highlight=False)
                    elif kind == "done":
                        done = data
                    elif kind == "error":
                        raise AiftError(data["message"])
    except httpx.TransportError as exc:
        raise _connect_error(exc) from None
    console.print()
    if done is None:
        raise AiftError("The answer stream ended early.")
    for citation in done["citations"]:
        console.print(f"[{citation['number']}] {citation['document']}, {_pages(citation)}")
    for source in done["uncited_sources"]:
        console.print(
            f"[dim]not cited: [{source['number']}] {source['document']}, {_pages(source)}[/dim]"
        )
    for note in done["notes"]:
        console.print(f"[yellow]{note}[/yellow]")


@history_app.command("list")
def history_list(kb: str | None = None, limit: int = 20, as_json: JsonOpt = False) -> None:
    """Recent searches and questions."""
    entries = _call("GET", "/api/v1/history", params={"limit": limit, **({"kb": kb} if kb else {})})
    if as_json:
        console.print_json(json.dumps(entries))
        return
    table = Table("id", "when", "kind", "knowledge base", "query", "model", "ms")
    for e in entries:
        table.add_row(
            e["id"],
            e["created_at"][:19],
            e["kind"],
            e["kb_name"],
            e["query"][:50],
            e["model"] or "-",
            f"{e['latency_ms']:.0f}",
        )
    console.print(table)


@history_app.command("show")
def history_show(entry_id: str) -> None:
    """One search or question with its hits and answer."""
    console.print_json(json.dumps(_call("GET", f"/api/v1/history/{entry_id}")))


@history_app.command("rm")
def history_rm(entry_id: str) -> None:
    """Delete a history entry."""
    _call("DELETE", f"/api/v1/history/{entry_id}")
    console.print(f"deleted {entry_id}")


@eval_app.command("retrieval")
def eval_retrieval(
    files: Annotated[list[Path], typer.Argument(help="SQuAD-format JSON files.")],
    embedding_model: Annotated[
        str | None, typer.Option(help="Default: the configured one.")
    ] = None,
    reranker: Annotated[str | None, typer.Option(help="Default: the configured one.")] = None,
    max_questions: Annotated[int | None, typer.Option(help="Evaluate only the first N.")] = None,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Recall@1/5/10, MRR@10, nDCG@10 of dense, keyword, hybrid and re-ranked search."""
    from aift.inference.embedders import load_embedder
    from aift.models.schemas import Purpose
    from aift.rag.evaluation import evaluate
    from aift.rag.rerank import Rerankers

    runtime = _runtime(workspace)
    resolver = runtime.models.resolver
    ref = embedding_model or resolver.default_ref(Purpose.embedding)
    resolved = resolver.resolve(ref, purpose=Purpose.embedding, fallback=embedding_model is None)
    if resolved.warning and not as_json:
        console.print(f"[yellow]{resolved.warning}[/yellow]")
    runtime.models.scan()  # packaged and workspace models into the registry
    embedder = load_embedder(runtime.models.get(resolved.name))
    loaded_reranker, why = Rerankers(resolver).get(reranker)
    reports = []
    for path in files:
        if not path.is_file():
            raise AiftError(f"{path} does not exist.")
        reports.append(
            evaluate(
                path,
                embedder,
                loaded_reranker,
                runtime.settings,
                max_questions=max_questions,
                progress=lambda m: None if as_json else console.print(f"[dim]{m}[/dim]"),
            )
        )
        if why:
            reports[-1]["notes"] = [why]
    if as_json:
        print(json.dumps(reports, indent=2))
        return
    for report in reports:
        console.print(
            f"{report['file']}: {report['paragraphs']} paragraphs, "
            f"{report['questions']} questions, {report['embedding_model']}"
        )
        table = Table("method", "recall@1", "recall@5", "recall@10", "MRR@10", "nDCG@10")
        for name, m in report["methods"].items():
            table.add_row(
                name,
                *(
                    f"{m[k]:.3f}"
                    for k in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
                ),
            )
        console.print(table)
        for note in report.get("notes", []):
            console.print(f"[yellow]{note}[/yellow]")


@app.command()
def chat(
    model: str,
    system: Annotated[str | None, typer.Option(help="A system prompt.")] = None,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.7,
    max_tokens: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Chat with a model served by the running server (streams; /bye or Ctrl-D ends)."""
    import httpx

    messages: list[dict] = [{"role": "system", "content": system}] if system else []
    console.print(f"[dim]chatting with {model} — /bye to end[/]")
    with _server() as client:
        while True:
            try:
                line = console.input("[bold]>>> [/]")
            except (EOFError, KeyboardInterrupt):
                break
            if line.strip() in ("/bye", "/exit", "/quit"):
                break
            if not line.strip():
                continue
            messages.append({"role": "user", "content": line})
            body = {
                "model": model,
                "messages": messages,
                "stream": True,
                "temperature": temperature,
                "max_tokens": max_tokens,
            }
            reply = []
            try:
                with client.stream("POST", "/v1/chat/completions", json=body) as response:
                    if response.status_code >= 400:
                        response.read()
                        _check(response)
                    for raw in response.iter_lines():
                        if not raw.startswith("data: ") or raw == "data: [DONE]":
                            continue
                        delta = json.loads(raw[6:])["choices"][0]["delta"].get("content") or ""
                        reply.append(delta)
                        console.print(delta, end="", markup=False, highlight=False)
            except httpx.TransportError as exc:
                raise _connect_error(exc) from None
            console.print()
            messages.append({"role": "assistant", "content": "".join(reply)})


def main() -> None:
    """Entry point: user errors print a message and exit 2, never a traceback."""
    from pydantic import ValidationError

    try:
        app()
    except AiftError as exc:
        err_console.print(f"[red]error:[/] {exc.message}")
        sys.exit(2)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            err_console.print(f"[red]error:[/] {field}: {err['msg']}")
        sys.exit(2)


if __name__ == "__main__":
    main()
