"""`aift export` and `aift quantize` (workspace commands: a worker runs the job)."""

from __future__ import annotations

from typing import Annotated

import typer

from aift.cli.app import app
from aift.cli.common import LOCAL, WorkspaceOpt, console, follow_job, local_runtime, print_result
from aift.export.schemas import QUANT_NAMES, ExportFormat, QuantizeMethod


@app.command(rich_help_panel=LOCAL)
def export(
    model: str,
    format: Annotated[ExportFormat, typer.Option("--format", help="Output format.")] = (
        ExportFormat.gguf
    ),
    quant: Annotated[str, typer.Option(help=f"One of: {', '.join(QUANT_NAMES)}.")] = "q8_0",
    ollama: Annotated[
        str | None, typer.Option(help="Also create this model in AIFT_OLLAMA_URL's Ollama.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Name of the exported model.")] = None,
    system: Annotated[str | None, typer.Option(help="SYSTEM prompt for the Modelfile.")] = None,
    parameter: Annotated[
        list[str] | None,
        typer.Option("--parameter", "-p", help="Modelfile PARAMETER as key=value (repeatable)."),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow progress until it ends.")] = True,
    workspace: WorkspaceOpt = None,
) -> None:
    """Export a model (base, fine-tune, adapter, MoE) as GGUF with its chat template and a
    Modelfile; quantized by llama.cpp; optionally created in Ollama."""
    from aift.export.schemas import ExportRequest

    request = ExportRequest(
        model=model,
        format=format,
        quant=quant,
        ollama=ollama,
        name=name,
        system=system,
        parameters=_parameters(parameter or []),
    )
    runtime = local_runtime(workspace)
    runtime.models.scan()
    job = runtime.export.export(request)
    console.print(f"queued export job [bold]{job.id}[/] ({job.title})")
    if wait:
        print_result(follow_job(runtime.jobs.get, job.id))


@app.command(rich_help_panel=LOCAL)
def quantize(
    model: str,
    method: Annotated[QuantizeMethod, typer.Option(help="Quantization method.")] = (
        QuantizeMethod.awq
    ),
    dataset: Annotated[
        str | None, typer.Option(help="Calibration dataset id (default: a shipped sample).")
    ] = None,
    samples: Annotated[int, typer.Option(help="Calibration samples.")] = 64,
    name: Annotated[str | None, typer.Option(help="Name of the quantized model.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow progress until it ends.")] = True,
    workspace: WorkspaceOpt = None,
) -> None:
    """Quantize a model to AWQ 4-bit (W4A16, compressed-tensors: vLLM loads it)."""
    from aift.export.schemas import QuantizeRequest

    request = QuantizeRequest(
        model=model, method=method, dataset=dataset, samples=samples, name=name
    )
    runtime = local_runtime(workspace)
    runtime.models.scan()
    job = runtime.export.quantize(request)
    console.print(f"queued quantization job [bold]{job.id}[/] ({job.title})")
    if wait:
        print_result(follow_job(runtime.jobs.get, job.id))


def _parameters(items: list[str]) -> dict[str, float | int | str | list[str]]:
    """key=value pairs as Modelfile parameters (numbers as numbers; repeated keys as lists)."""
    values: dict[str, float | int | str | list[str]] = {}
    for item in items:
        key, found, raw = item.partition("=")
        if not found or not key.strip():
            raise typer.BadParameter(f"{item!r} is not key=value")
        value: float | int | str
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
        key = key.strip()
        if key in values:
            previous = values[key]
            values[key] = [
                *(previous if isinstance(previous, list) else [str(previous)]),
                str(value),
            ]
        else:
            values[key] = value
    return values
