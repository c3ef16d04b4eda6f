"""Job kinds of export: a model as GGUF (and into Ollama), and AWQ quantization."""

from __future__ import annotations

from typing import Any

from aift.export.awq import quantize_to_awq
from aift.export.gguf_export import export_gguf
from aift.export.schemas import ExportJobConfig, QuantizeJobConfig
from aift.jobs.context import JobContext
from aift.jobs.kinds import job_kind
from aift.models.registry import ModelRegistry
from aift.training.datasets import DatasetService


@job_kind("export.gguf", config=ExportJobConfig)
def run_export(ctx: JobContext, config: ExportJobConfig, models: ModelRegistry) -> dict[str, Any]:
    """Export a model as GGUF (with its chat template, a Modelfile, and an Ollama hand-off)."""
    return export_gguf(ctx, config, models)


@job_kind("export.awq", config=QuantizeJobConfig)
def run_awq(
    ctx: JobContext, config: QuantizeJobConfig, models: ModelRegistry, datasets: DatasetService
) -> dict[str, Any]:
    """Quantize a model to AWQ W4A16 (compressed-tensors) and register it."""
    examples = list(datasets.examples(config.dataset)) if config.dataset else None
    return quantize_to_awq(ctx, config, models, examples)
