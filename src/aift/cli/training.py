"""`aift train`, `aift merge` and `aift datasets` (workspace commands: a worker runs the
jobs they queue)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from aift.cli.app import app
from aift.cli.common import (
    LOCAL,
    JsonOpt,
    WorkspaceOpt,
    console,
    err_console,
    follow_job,
    local_runtime,
    print_result,
)
from aift.errors import AiftError

if TYPE_CHECKING:
    from aift.training.schemas import TrainingConfig

datasets_app = typer.Typer(help="Training datasets.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets", rich_help_panel=LOCAL)
chains_app = typer.Typer(help="Continual-learning chains.", no_args_is_help=True)
app.add_typer(chains_app, name="chains", rich_help_panel=LOCAL)


@app.command(rich_help_panel=LOCAL)
def train(
    config_file: Path,
    wait: Annotated[bool, typer.Option(help="Follow progress until it ends.")] = True,
    node_rank: Annotated[
        int | None,
        typer.Option(help="Join a multi-node run as this node (1…nodes-1), in the foreground."),
    ] = None,
    print_launch: Annotated[
        bool, typer.Option(help="Print what to run on each node of a distributed run.")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Start a fine-tuning run from a YAML (or JSON) run config; a worker runs it."""
    from aift.training.schemas import TrainingConfig

    config = TrainingConfig.model_validate(_read_mapping(config_file))
    if print_launch:
        _print_launch(config_file, config)
        return
    runtime = local_runtime(workspace)
    if node_rank is not None:
        console.print(f"node {node_rank}: starting this machine's ranks…")
        code, log_file = runtime.training.join_node(config, node_rank)
        if code != 0:
            raise AiftError(f"this node's ranks failed (exit {code}); see {log_file}")
        console.print(f"node {node_rank} finished; node 0 holds the output (log: {log_file})")
        return
    job = runtime.training.submit(config)
    console.print(f"queued training job [bold]{job.id}[/] ({job.title})")
    if wait:
        print_result(follow_job(runtime.jobs.get, job.id))


@app.command(rich_help_panel=LOCAL)
def merge(
    adapter: str,
    name: Annotated[str | None, typer.Option(help="Name of the merged model.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow progress until it ends.")] = True,
    workspace: WorkspaceOpt = None,
) -> None:
    """Merge an adapter into its base model as a new full model (a worker runs it)."""
    from aift.training.schemas import MergeRequest

    runtime = local_runtime(workspace)
    runtime.models.scan()
    job = runtime.training.merge(MergeRequest(adapter=adapter, name=name), runtime.models)
    console.print(f"queued merge job [bold]{job.id}[/]")
    if wait:
        print_result(follow_job(runtime.jobs.get, job.id))


@app.command(rich_help_panel=LOCAL)
def moe(
    config_file: Path,
    wait: Annotated[bool, typer.Option(help="Follow progress until it ends.")] = True,
    workspace: WorkspaceOpt = None,
) -> None:
    """Compose fine-tunes of one base into a mixture-of-experts model, from a YAML file
    (name, base_model, experts: [{model, prompts}], top_k, gate_mode)."""
    from aift.training.schemas import MoeRequest

    request = MoeRequest.model_validate(_read_mapping(config_file))
    runtime = local_runtime(workspace)
    runtime.models.scan()
    job = runtime.training.compose_moe(request, runtime.models)
    console.print(f"queued job [bold]{job.id}[/] ({job.title})")
    if wait:
        print_result(follow_job(runtime.jobs.get, job.id))


def _print_launch(config_file: Path, config: TrainingConfig) -> None:
    """Each node's command of a distributed run, and the torchrun line it runs."""
    from aift.training.distributed import launch_command, node_commands

    if config.distributed is None:
        raise AiftError(f"{config_file} has no distributed section: it trains in one process.")
    settings = config.distributed
    for line in node_commands(config_file, settings):
        console.print(line)
    console.print("\nEach node then runs PyTorch's launcher:")
    for rank in range(settings.nodes):
        node = settings.model_copy(update={"node_rank": rank})
        command = launch_command(
            node, Path("<output>/distributed/launch.json"), settings.master_port
        )
        console.print(f"node {rank}: python " + " ".join(command[1:]), soft_wrap=True)


def _read_mapping(config_file: Path) -> dict:
    """A YAML (or JSON) file holding one mapping of settings."""
    import yaml

    if not config_file.is_file():
        raise AiftError(f"{config_file} is not a file.")
    try:
        raw = yaml.safe_load(config_file.read_text())
    except yaml.YAMLError as exc:
        raise AiftError(f"{config_file} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise AiftError(f"{config_file} must hold a mapping of settings.")
    return raw


@datasets_app.command("add")
def datasets_add(
    file: Path,
    val_file: Annotated[Path | None, typer.Option(help="Validation rows (no split).")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    format: Annotated[
        str | None, typer.Option(help="alpaca, chat, sharegpt, text, preference, kto or prompts.")
    ] = None,
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
    runtime = local_runtime(workspace)
    options = DatasetOptions.model_validate(
        {
            "name": name,
            "format": format,
            "val_ratio": val_ratio,
            "skip_invalid": skip_invalid,
            "base_model": base_model,
            "max_length": max_length,
        }
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
    items = local_runtime(workspace).datasets.list()
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
    runtime = local_runtime(workspace)
    console.print_json(runtime.datasets.get(dataset_id).model_dump_json())
    for example in runtime.datasets.preview(dataset_id):
        console.rule()
        console.print(example, markup=False, highlight=False)


@datasets_app.command("rm")
def datasets_rm(dataset_id: str, workspace: WorkspaceOpt = None) -> None:
    """Delete a dataset."""
    local_runtime(workspace).datasets.delete(dataset_id)
    console.print(f"deleted {dataset_id}")


@chains_app.command("list")
def chains_list(as_json: JsonOpt = False, workspace: WorkspaceOpt = None) -> None:
    """Continual-learning chains with their stages and figures."""
    chains = local_runtime(workspace).training.chains()
    if as_json:
        console.print_json(json.dumps([c.model_dump(mode="json") for c in chains]))
        return
    table = Table("chain", "base", "method", "stages", "tasks", "avg acc", "BWT", "forgetting")
    for chain in chains:
        summary = chain.summary
        table.add_row(
            chain.name,
            chain.base_model,
            chain.method.value,
            str(len(chain.stages)),
            ", ".join(s.task for s in chain.stages),
            _percent(summary.average_accuracy),
            _signed(summary.backward_transfer, percent=True),
            _percent(summary.forgetting),
        )
    console.print(table)


@chains_app.command("show")
def chains_show(name: str, as_json: JsonOpt = False, workspace: WorkspaceOpt = None) -> None:
    """One chain: the forgetting matrix (stage × task: exact match, loss) and its figures."""
    chain = local_runtime(workspace).training.chain(name)
    if as_json:
        console.print_json(chain.model_dump_json())
        return
    console.print(f"[bold]{chain.name}[/]: {chain.method.value} on {chain.base_model}")
    tasks = [s.task for s in chain.stages]
    table = Table("after stage", "strategy", *tasks, title="exact match / validation loss")
    for stage in chain.stages:
        cells = {score.task: _cell(score.exact_match, score.loss) for score in stage.scores}
        strategy = []
        if stage.ewc_lambda:
            strategy.append(f"EWC λ={stage.ewc_lambda:g}")
        if stage.replayed_rows:
            strategy.append(f"replay {stage.replayed_rows} rows")
        table.add_row(
            f"{stage.stage}: {stage.task}",
            ", ".join(strategy) or "plain",
            *[cells.get(task, "") for task in tasks],
        )
    console.print(table)
    s = chain.summary
    console.print(
        f"average accuracy {_percent(s.average_accuracy)}, backward transfer "
        f"{_signed(s.backward_transfer, percent=True)}, forgetting {_percent(s.forgetting)}; "
        f"average loss {_number(s.average_loss)}, loss BWT {_signed(s.backward_transfer_loss)}, "
        f"loss forgetting {_number(s.forgetting_loss)}"
    )


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _signed(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value * 100:+.0f} pts" if percent else f"{value:+.3f}"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _cell(accuracy: float | None, loss: float | None) -> str:
    parts = [_percent(accuracy)] if accuracy is not None else []
    if loss is not None:
        parts.append(f"{loss:.3f}")
    return " / ".join(parts) or "—"
