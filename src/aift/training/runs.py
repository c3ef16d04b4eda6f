"""A training run from start to end: a plain run, a distributed one, or one stage of a
continual-learning chain (replay, EWC penalty, training, Fisher, scores on every task).

The loop itself (`setup` → `fit` → `finish`) is `aift.training.trainer`; this module
decides which steps a run takes. The `training.run` job (`aift.tasks.training`) calls
`run_training`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aift.models.registry import ModelRegistry
from aift.training.datasets import DatasetService
from aift.training.preference_formats import demonstrations
from aift.training.rewards import PageSupport
from aift.training.schemas import ExampleScore, Method, RunEvaluation, TrainingJobConfig
from aift.training.trainer import (
    Prepared,
    finish,
    fit,
    restore_inference_settings,
    restore_training_settings,
    setup,
)
from aift.work.control import Work


def run_training(
    ctx: Work,
    config: TrainingJobConfig,
    datasets: DatasetService,
    models: ModelRegistry,
    wandb_project: str | None,
    page_support: PageSupport | None = None,
) -> dict[str, Any]:
    """Fine-tune a model (or train one stage of a continual-learning chain).
    `page_support` checks a GRPO run's cites_page reward (RAG's attribution)."""
    resolver = models.resolver
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    ctx.progress(0.0, "loading the model and the data", force=True)
    examples = {
        "train": list(datasets.examples(config.dataset, "train")),
        "val": list(datasets.examples(config.dataset, "val")),
    }
    if config.stage is not None:
        return _run_stage(ctx, config, examples, datasets, models, wandb_project)
    if config.distributed is not None:
        from aift.training.distributed import run_distributed

        model_dir = resolver.transformers_dir(config.base)
        return run_distributed(ctx, config, examples, model_dir, models, wandb_project)
    adapter_dir = Path(config.adapter_dir) if config.adapter_dir else None
    prepared = setup(config, examples, resolver.transformers_dir(config.base), adapter_dir)
    _log_rows(ctx, prepared, examples)
    scored = _evaluation_rows(config, datasets)
    before = _evaluate(ctx, config, prepared, scored, "before") if scored else None
    ctx.check_cancelled()
    metrics = fit(ctx, config, prepared, wandb_project=wandb_project, page_support=page_support)
    if before is not None and config.evaluation is not None:
        after = _evaluate(ctx, config, prepared, scored, "after")
        dataset = config.evaluation.dataset or config.dataset
        metrics["evaluation"] = RunEvaluation(
            dataset=dataset, before=before, after=after
        ).model_dump()
    ctx.progress(0.99, "saving the trained model…", force=True)
    return finish(models, config, prepared, metrics)


def _evaluation_rows(config: TrainingJobConfig, datasets: DatasetService) -> list[dict]:
    """The validation examples a run is scored on before and after (none when it asks
    for no evaluation), as the dataset holds them (demonstrations, pairs, …)."""
    settings = config.evaluation
    if settings is None:
        return []
    return list(datasets.examples(settings.dataset or config.dataset, "val"))[: settings.examples]


def _evaluate(
    ctx: Work, config: TrainingJobConfig, prepared: Prepared, rows: list[dict], when: str
) -> ExampleScore:
    """The model's loss and exact match on the evaluation rows' demonstrations (a
    preference set's prompts with their chosen replies) and, on pairs, its preference
    rate, `when` training."""
    from aift.training.scoring import preference_rate, score_examples

    assert config.evaluation is not None
    ctx.progress(
        0.0 if when == "before" else 0.97, f"scoring the model {when} training", force=True
    )
    restore_inference_settings(prepared.model)  # generate as the served model does
    try:
        score = score_examples(
            prepared.model,
            prepared.tokenizer,
            demonstrations(rows),
            config.max_length,
            config.loss_on,
            config.evaluation.exact_match,
            ctx.check_cancelled,
        )
        pairs = [row for row in rows if "chosen" in row and "rejected" in row]
        score.preference_rate = preference_rate(
            prepared.model, prepared.tokenizer, pairs, config.max_length, ctx.check_cancelled
        )
    finally:
        restore_training_settings(prepared)
    ctx.log.info("%s training: %s", when, score.model_dump())
    return score


def _log_rows(ctx: Work, prepared: Prepared, examples: dict[str, list[dict]]) -> None:
    ctx.log.info(
        "%d training rows (%d examples, %d truncated), %d validation rows",
        len(prepared.train_rows),
        len(examples["train"]),
        prepared.truncated,
        len(prepared.val_rows),
    )


def _run_stage(
    ctx: Work,
    config: TrainingJobConfig,
    examples: dict[str, list[dict]],
    datasets: DatasetService,
    models: ModelRegistry,
    wandb_project: str | None,
) -> dict[str, Any]:
    """One stage of a chain: replay, EWC penalty, training, Fisher, scores on every task."""
    from aift.training import continual

    settings, plan = config.continual, config.stage
    assert settings is not None and plan is not None
    own = list(examples["train"])
    replayed = _replay(ctx, config, own, datasets)
    examples = {"train": own + replayed, "val": examples["val"]}
    previous = Path(plan.previous_dir) if plan.previous_dir else None
    model_dir = models.resolver.transformers_dir(config.base)
    if previous is not None and config.method == Method.full:
        model_dir, previous = previous, None  # a full model continues from its last stage
    prepared = setup(config, examples, model_dir, adapter_dir=previous)
    _log_rows(ctx, prepared, examples)
    ewc = continual.load_ewc(prepared.model, config)
    use_ewc = bool(ewc.fisher) and settings.ewc_lambda > 0
    if use_ewc:
        ctx.log.info("EWC λ=%g over %d earlier task(s)", settings.ewc_lambda, ewc.tasks)
    ctx.check_cancelled()
    metrics = fit(
        ctx,
        config,
        prepared,
        penalty=ewc.penalty if use_ewc else None,
        wandb_project=wandb_project,
    )

    ctx.progress(0.95, "estimating this task's Fisher information…", force=True)
    restore_inference_settings(prepared.model)
    output = Path(config.output_dir)
    if not ewc.fisher:  # trl may have wrapped the model in its new adapter: protect that
        ewc = continual.load_ewc(prepared.model, config)
    fisher_samples = continual.consolidate(
        ewc, prepared.tokenizer, demonstrations(own), config, output
    )
    scores = _score_tasks(ctx, config, prepared, examples["val"], datasets)
    summary = continual.summarize([*continual.previous_rows(config), scores])
    metrics["continual"] = {
        "chain": settings.chain,
        "stage": plan.stage,
        "task": plan.task,
        "ewc": use_ewc,
        "replayed_rows": len(replayed),
        "fisher_samples": fisher_samples,
        "scores": [s.model_dump() for s in scores],
        "summary": summary.model_dump(),
    }
    ctx.metrics({"continual_" + k: v for k, v in summary.model_dump().items() if v is not None})
    ctx.progress(0.99, "saving the trained model…", force=True)
    result = finish(models, config, prepared, metrics)
    stage = continual.stage_record(config, result["model"], scores, summary, len(replayed), use_ewc)
    continual.write_stage(stage, output)
    return result


def _replay(
    ctx: Work, config: TrainingJobConfig, own: list[dict], datasets: DatasetService
) -> list[dict]:
    """Rows of earlier tasks mixed into this stage's training rows: from the tasks whose
    data this stage's objective can learn (a DPO stage replays earlier preference pairs,
    not earlier demonstrations)."""
    from aift.training import continual
    from aift.training.schemas import OBJECTIVE_FORMATS

    settings, plan = config.continual, config.stage
    assert settings is not None and plan is not None
    accepted = OBJECTIVE_FORMATS[config.objective]
    fitting = [t for t in plan.earlier if datasets.get(t.dataset).format in accepted]
    skipped = [t.task for t in plan.earlier if t not in fitting]
    if skipped and settings.replay_ratio > 0:
        ctx.log.info(
            "not replaying %s: a %s stage cannot learn their rows", skipped, config.objective.value
        )
    earlier = {t.task: list(datasets.examples(t.dataset, "train")) for t in fitting}
    count = round(settings.replay_ratio * len(own)) if fitting else 0
    replayed, taken = continual.replay_examples(earlier, count, config.seed)
    if replayed:
        ctx.log.info("replaying %d rows of earlier tasks: %s", len(replayed), taken)
    return replayed


def _score_tasks(
    ctx: Work,
    config: TrainingJobConfig,
    prepared: Prepared,
    own_val: list[dict],
    datasets: DatasetService,
) -> list[Any]:
    """The trained stage's score on every task of the chain so far (its own validation
    rows for this stage's task, each earlier task's from its dataset)."""
    from aift.training import continual
    from aift.training.schemas import ChainTask

    settings, plan = config.continual, config.stage
    assert settings is not None and plan is not None
    tasks = [
        *plan.earlier,
        ChainTask(
            stage=plan.stage,
            task=plan.task,
            dataset=config.dataset,
            exact_match=settings.exact_match,
        ),
    ]
    scores = []
    for index, task in enumerate(tasks):
        ctx.progress(0.96, f"scoring task {index + 1}/{len(tasks)}: {task.task}", force=True)
        val = own_val if task.stage == plan.stage else list(datasets.examples(task.dataset, "val"))
        scores.append(
            continual.score_task(
                prepared.model, prepared.tokenizer, val, task, config, ctx.check_cancelled
            )
        )
    return scores
