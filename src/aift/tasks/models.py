"""Job kinds of the model catalogue: fetching a model."""

from __future__ import annotations

from typing import Any

from aift.inference.pull import pull
from aift.inference.schemas import PullRequest
from aift.jobs.context import JobContext
from aift.jobs.kinds import job_kind
from aift.models.registry import ModelRegistry


@job_kind("models.pull", config=PullRequest, resumable=True)
def pull_job(ctx: JobContext, config: PullRequest, models: ModelRegistry) -> dict[str, Any]:
    """Pull a model."""
    return pull(models, config.model, lambda f, m: ctx.progress(f, m))
