"""A finished run's output folder: its files besides the weights, and its registration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aift.models.registry import ModelRegistry
from aift.training.schemas import Method, Objective, TrainingJobConfig
from aift.work.actor import current_actor


def write_run_files(config: TrainingJobConfig, tokenizer: Any, metrics: dict[str, Any]) -> None:
    """Everything of the output folder but the weights: tokenizer, configs, metrics, card."""
    output = Path(config.output_dir)
    tokenizer.save_pretrained(output)
    adapter_config = output / "adapter_config.json"
    if adapter_config.exists():  # point the adapter at the served base name
        data = json.loads(adapter_config.read_text())
        data["base_model_name_or_path"] = config.base_name
        adapter_config.write_text(json.dumps(data, indent=2))
    run = config.model_dump(mode="json")
    (output / "run_config.json").write_text(json.dumps(run, indent=2))
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (output / "README.md").write_text(_model_card(config, metrics))


def register_output(
    models: ModelRegistry, config: TrainingJobConfig, metrics: dict[str, Any]
) -> dict[str, Any]:
    """Register the run's output folder as a served model; the job's result."""
    from aift.models.schemas import ModelKind, ModelSource

    output = Path(config.output_dir)
    kind = ModelKind.finetuned if config.method == Method.full else ModelKind.adapter
    if config.objective == Objective.reward:  # saved whole (merged), scored, not chatted with
        kind = ModelKind.reward
    training = {
        "method": config.method.value,
        "objective": config.objective.value,
        "dataset": config.dataset,
        **metrics,
    }
    info = models.register(
        output.name,
        output,
        source=ModelSource.workspace,
        kind=kind,
        extra={"training": training},
        owner=current_actor.get().user_id,  # the user whose job trained it
    )
    return {"model": info.name, "kind": info.kind.value, "output_dir": str(output), **metrics}


def _model_card(config: TrainingJobConfig, metrics: dict[str, Any]) -> str:
    lines = [
        f"# {Path(config.output_dir).name}",
        "",
        f"Fine-tuned from `{config.base_name}` with aift ({config.method.value}, "
        f"objective {config.objective.value}"
        + (f", continuing adapter `{config.adapter}`" if config.adapter else "")
        + ").",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    for key in (
        "dataset",
        "learning_rate",
        "lr_scheduler",
        "epochs",
        "max_steps",
        "batch_size",
        "gradient_accumulation",
        "max_length",
        "packing",
        "loss_on",
        "seed",
    ):
        lines.append(f"| {key} | {getattr(config, key)} |")
    if config.method != Method.full:
        lines.append(
            f"| lora | rank {config.lora.rank}, alpha {config.lora.alpha}, "
            f"dropout {config.lora.dropout}, targets {config.lora.target_modules} |"
        )
    lines += ["", "## Metrics", "", "```json", json.dumps(metrics, indent=2), "```", ""]
    return "\n".join(lines)
