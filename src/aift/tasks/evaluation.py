"""Job kinds of evaluation: a served model answering a dataset's questions, and
lm-evaluation-harness tasks on a transformers model."""

from __future__ import annotations

import asyncio
from typing import Any

from aift.evaluation.harness import run_harness
from aift.evaluation.model_eval import evaluate_answers
from aift.evaluation.schemas import HarnessJobConfig, ModelEvalRequest
from aift.evaluation.service import HARNESS_KIND, KIND
from aift.inference.schemas import ChatMessage, SamplingParams
from aift.inference.service import ServingService
from aift.jobs.context import JobContext
from aift.jobs.kinds import job_kind
from aift.training.datasets import DatasetService
from aift.workspace import Workspace


@job_kind(KIND, config=ModelEvalRequest)
def run_model_evaluation(
    ctx: JobContext, config: ModelEvalRequest, datasets: DatasetService, serving: ServingService
) -> dict[str, Any]:
    """Ask a served model a dataset's questions greedily and score its answers."""
    examples = list(datasets.examples(config.dataset, config.split))
    params = SamplingParams(temperature=0.0, max_tokens=config.max_tokens)

    def answer(messages: list[dict[str, Any]]) -> str:
        turns = [ChatMessage(role=m["role"], content=str(m["content"])) for m in messages]
        generation = serving.chat(config.model, turns, params, keep_alive="5m")
        return asyncio.run(generation.collect()).text

    ctx.progress(0.0, f"loading {config.model}", force=True)
    return evaluate_answers(ctx, config, examples, answer).model_dump(mode="json")


@job_kind(HARNESS_KIND, config=HarnessJobConfig)
def run_harness_evaluation(
    ctx: JobContext, config: HarnessJobConfig, workspace: Workspace
) -> dict[str, Any]:
    """Run lm-evaluation-harness tasks (its own, or the workspace's YAML tasks)."""
    return run_harness(ctx, config, workspace.eval_tasks).model_dump(mode="json")
