"""Job kinds of training: a fine-tuning run (or a continual stage), merging an adapter
into its base, and composing experts into a mixture of experts."""

from __future__ import annotations

from typing import Any

from aift.config import Settings
from aift.jobs.context import JobContext
from aift.jobs.kinds import job_kind
from aift.models.registry import ModelRegistry
from aift.training.datasets import DatasetService
from aift.training.merge import merge_adapter
from aift.training.moe import compose_moe
from aift.training.runs import run_training
from aift.training.schemas import MergeJobConfig, MoeJobConfig, TrainingJobConfig


@job_kind("training.run", config=TrainingJobConfig, resumable=True)
def run_training_job(
    ctx: JobContext,
    config: TrainingJobConfig,
    settings: Settings,
    datasets: DatasetService,
    models: ModelRegistry,
) -> dict[str, Any]:
    """Fine-tune a model (or train one stage of a continual-learning chain). A GRPO
    run's cites_page reward checks completions with RAG's attribution (lexical: no
    embedder beside the model being trained)."""
    from aift.rag.attribution import supported_share

    return run_training(
        ctx, config, datasets, models, settings.wandb_project, page_support=supported_share
    )


@job_kind("training.merge", config=MergeJobConfig)
def run_merge(ctx: JobContext, config: MergeJobConfig, models: ModelRegistry) -> dict[str, Any]:
    """Merge an adapter into its base."""
    return merge_adapter(ctx, config, models)


@job_kind("training.moe", config=MoeJobConfig)
def run_moe(ctx: JobContext, config: MoeJobConfig, models: ModelRegistry) -> dict[str, Any]:
    """Compose experts into one Mixtral model, check its routing, and register it."""
    return compose_moe(ctx, config, models)
