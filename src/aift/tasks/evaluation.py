"""Job kinds of evaluation: a served model answering a dataset's questions, and
lm-evaluation-harness tasks on a transformers model or any served one."""

from __future__ import annotations

import asyncio
from typing import Any

from aift.evaluation.harness import load_model, run_harness
from aift.evaluation.model_eval import evaluate_answers
from aift.evaluation.schemas import HarnessJobConfig, ModelEvalRequest
from aift.evaluation.served_lm import Generate, ServedLM
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
    generate = served_generation(serving, config.model)

    def answer(messages: list[dict[str, Any]]) -> str:
        turns = [{"role": m["role"], "content": str(m["content"])} for m in messages]
        return generate(turns, [], config.max_tokens)

    judge = None
    if config.judge is not None:
        judging = served_generation(serving, config.judge)

        def judge(messages: list[dict[str, Any]]) -> str:
            return judging(messages, [], 8)

    ctx.progress(0.0, f"loading {config.model}", force=True)
    return evaluate_answers(ctx, config, examples, answer, judge).model_dump(mode="json")


@job_kind(HARNESS_KIND, config=HarnessJobConfig)
def run_harness_evaluation(
    ctx: JobContext, config: HarnessJobConfig, workspace: Workspace, serving: ServingService
) -> dict[str, Any]:
    """Run lm-evaluation-harness tasks (its own, or the workspace's YAML tasks) on the
    transformers model, or on whatever serves it."""

    def load() -> Any:
        if config.backend == "transformers":
            return load_model(config)
        return ServedLM(config.model, served_generation(serving, config.model), ctx.check_cancelled)

    return run_harness(ctx, config, workspace.eval_tasks, load).model_dump(mode="json")


def served_generation(serving: ServingService, model: str) -> Generate:
    """Greedy text from a served model: a completion of a raw prompt, a chat reply to
    turns."""

    def generate(prompt: str | list[dict[str, str]], stops: list[str], most: int) -> str:
        params = SamplingParams(temperature=0.0, max_tokens=most, stop=stops)
        if isinstance(prompt, str):
            generation = serving.complete(model, prompt, params, keep_alive="5m")
        else:
            turns = [ChatMessage(role=m["role"], content=m["content"]) for m in prompt]
            generation = serving.chat(model, turns, params, keep_alive="5m")
        return asyncio.run(generation.collect()).text

    return generate
