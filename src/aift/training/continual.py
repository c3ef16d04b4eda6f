"""Continual-learning chains: stages that train one task after another on one model.

A chain lives in its stages' output folders, `outputs/continual_task_<n>_<chain>/`: each
holds the stage's adapter (or model), its EWC state (`ewc.safetensors`: Fisher and anchor
of every task so far, online form) and `continual.json`, written last, which marks the
stage as finished and holds its row of the forgetting matrix. Stage n starts from the
output of stage n-1, may mix in rows of earlier tasks (replay) and adds the EWC penalty
of earlier tasks to its loss; after training it is scored on the validation examples of
every task so far.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aift.errors import InvalidInput, NotFound
from aift.store import utcnow
from aift.training.preference_formats import demonstrations
from aift.training.schemas import (
    ChainInfo,
    ChainStage,
    ChainTask,
    ForgettingSummary,
    StagePlan,
    TaskScore,
    TrainingConfig,
    TrainingJobConfig,
)
from aift.training.scoring import example_batches, example_loss, preference_rate, score_examples

if TYPE_CHECKING:
    from aift.training.ewc import EWC

MARKER = "continual.json"
EWC_FILE = "ewc.safetensors"
_FOLDER = re.compile(r"^continual_task_(\d+)_(.+)$")


# -- where chains live --------------------------------------------------------------------
def stage_dir(outputs: Path, chain: str, stage: int) -> Path:
    """The output folder of stage `stage` of `chain`."""
    return outputs / f"continual_task_{stage}_{chain}"


def _stages(outputs: Path) -> Iterator[ChainStage]:
    for folder in sorted(outputs.glob("continual_task_*")):
        marker = folder / MARKER
        if _FOLDER.match(folder.name) and marker.is_file():
            try:
                yield ChainStage.model_validate_json(marker.read_text(encoding="utf-8"))
            except ValueError:
                continue  # a hand-edited or foreign file is not a stage


def _assemble(name: str, stages: list[ChainStage]) -> ChainInfo:
    stages.sort(key=lambda s: s.stage)
    return ChainInfo(
        name=name,
        base_model=stages[0].base_model,
        method=stages[0].method,
        stages=stages,
        summary=stages[-1].summary,
    )


def list_chains(outputs: Path) -> list[ChainInfo]:
    """Every chain with at least one finished stage, by name."""
    by_name: dict[str, list[ChainStage]] = {}
    for stage in _stages(outputs):
        by_name.setdefault(stage.chain, []).append(stage)
    return [_assemble(name, stages) for name, stages in sorted(by_name.items())]


def get_chain(outputs: Path, name: str) -> ChainInfo:
    """One chain by name (NotFound lists the chains there are)."""
    chains = list_chains(outputs)
    for chain in chains:
        if chain.name == name:
            return chain
    known = ", ".join(c.name for c in chains) or "none yet"
    raise NotFound(f"No continual-learning chain named {name!r} (chains: {known}).")


def plan_stage(outputs: Path, config: TrainingConfig, base_name: str) -> tuple[StagePlan, Path]:
    """Which stage this run is and where it starts from; refuses incoherent chains."""
    settings = config.continual
    assert settings is not None
    task = settings.task or config.dataset
    existing = [c for c in list_chains(outputs) if c.name == settings.chain]
    if settings.start == "new":
        if existing:
            raise InvalidInput(
                f"Chain {settings.chain!r} exists already ({len(existing[0].stages)} stages); "
                "use start: continue to add a stage, or another chain name."
            )
        plan = StagePlan(stage=1, task=task)
    else:
        if not existing:
            raise InvalidInput(
                f"There is no chain {settings.chain!r} to continue; start it with start: new."
            )
        chain = existing[0]
        if chain.base_model != base_name or chain.method != config.method:
            raise InvalidInput(
                f"Chain {chain.name!r} trains {chain.method.value} on {chain.base_model}; "
                f"this run asks for {config.method.value} on {base_name}."
            )
        if task in {s.task for s in chain.stages}:
            raise InvalidInput(
                f"Chain {chain.name!r} has a task named {task!r} already; name this one "
                "with continual.task."
            )
        last = chain.stages[-1]
        plan = StagePlan(
            stage=last.stage + 1,
            task=task,
            previous_dir=last.output_dir,
            earlier=[
                ChainTask(stage=s.stage, task=s.task, dataset=s.dataset, exact_match=s.exact_match)
                for s in chain.stages
            ],
        )
    folder = stage_dir(outputs, settings.chain, plan.stage)
    if folder.exists():  # a stage that never finished (no marker): its job is gone
        shutil.rmtree(folder)
    return plan, folder


# -- replay ---------------------------------------------------------------------------------
def replay_examples(
    earlier: dict[str, list[dict]], count: int, seed: int
) -> tuple[list[dict], dict[str, int]]:
    """`count` training examples drawn from earlier tasks, spread evenly over them."""
    tasks = [name for name, rows in earlier.items() if rows]
    if count <= 0 or not tasks:
        return [], {}
    rng = random.Random(seed)
    chosen: list[dict] = []
    taken: dict[str, int] = {}
    for index, name in enumerate(tasks):
        share = count // len(tasks) + (1 if index < count % len(tasks) else 0)
        rows = earlier[name]
        picks = rng.sample(rows, min(share, len(rows)))
        while len(picks) < share:  # fewer rows than asked for: repeat them
            picks.append(rng.choice(rows))
        chosen += picks
        taken[name] = share
    return chosen, taken


def score_task(
    model: Any,
    tokenizer: Any,
    examples: list[dict],
    task: ChainTask,
    config: TrainingJobConfig,
    stop: Callable[[], None] = lambda: None,
) -> TaskScore:
    """Validation loss (and exact match when the task asks for it) of one task's
    demonstrations (a preference task's prompts with their chosen replies) and, for a
    preference task, the rate at which its chosen reply is the likelier one."""
    settings = config.continual
    assert settings is not None
    shown = examples[: settings.eval_examples]
    score = score_examples(
        model,
        tokenizer,
        demonstrations(shown),
        config.max_length,
        config.loss_on,
        task.exact_match,
        stop,
    )
    pairs = [row for row in shown if "chosen" in row and "rejected" in row]
    score.preference_rate = preference_rate(model, tokenizer, pairs, config.max_length, stop)
    return TaskScore(task=task.task, stage_trained=task.stage, **score.model_dump())


# -- EWC across stages ---------------------------------------------------------------------
def load_ewc(model: Any, config: TrainingJobConfig) -> EWC:
    """The penalty of earlier tasks for this stage, from the previous stage's state."""
    from safetensors.torch import load_file

    from aift.training.ewc import EWC

    settings, plan = config.continual, config.stage
    assert settings is not None and plan is not None
    ewc = EWC(model, lam=settings.ewc_lambda, gamma=settings.ewc_gamma)
    if plan.previous_dir is None:
        return ewc
    state_file = Path(plan.previous_dir) / EWC_FILE
    if state_file.is_file():
        try:
            ewc.load_state_dict(load_file(state_file))
        except ValueError as exc:
            raise InvalidInput(f"The EWC state of the previous stage does not fit: {exc}") from None
    return ewc


def consolidate(
    ewc: EWC, tokenizer: Any, examples: list[dict], config: TrainingJobConfig, output: Path
) -> int:
    """Add this task's Fisher to the chain's penalty and save it with the stage."""
    from safetensors.torch import save_file

    settings = config.continual
    assert settings is not None
    items = example_batches(tokenizer, examples, config.max_length, config.loss_on)
    random.Random(config.seed).shuffle(items)
    samples = min(settings.fisher_samples, len(items))
    if samples:
        ewc.consolidate(items, example_loss, samples=samples)
    if ewc.fisher:
        save_file(ewc.state_dict(), str(output / EWC_FILE))
    return samples


# -- the matrix -------------------------------------------------------------------------------
def matrix_figures(
    matrix: list[list[float]], higher_is_better: bool
) -> tuple[float, float | None, float | None]:
    """Average of the last row, backward transfer and forgetting of a score matrix.

    `matrix[i][j]` is the score on task j after stage i (row i holds tasks 0..i). Forgetting
    is measured in the bad direction: positive means the score got worse.
    """
    last, count = matrix[-1], len(matrix)
    average = sum(last) / len(last)
    if count < 2:
        return average, None, None
    sign = 1.0 if higher_is_better else -1.0
    transfer = [last[j] - matrix[j][j] for j in range(count - 1)]
    best = [max(sign * matrix[i][j] for i in range(j, count - 1)) * sign for j in range(count - 1)]
    forgetting = [sign * (best[j] - last[j]) for j in range(count - 1)]
    return average, sum(transfer) / len(transfer), sum(forgetting) / len(forgetting)


def summarize(rows: list[list[TaskScore]]) -> ForgettingSummary:
    """Average accuracy, backward transfer and forgetting of a chain's matrix (rows = stages).

    The accuracy figures need exact match on every task (else they stay empty).
    """
    summary = ForgettingSummary(stages=len(rows))
    accuracy = [[s.exact_match for s in row] for row in rows]
    if all(v is not None for row in accuracy for v in row):
        figures = matrix_figures(accuracy, higher_is_better=True)  # type: ignore[arg-type]
        summary.average_accuracy, summary.backward_transfer, summary.forgetting = figures
    loss = [[s.loss for s in row] for row in rows]
    if all(v is not None for row in loss for v in row):
        figures = matrix_figures(loss, higher_is_better=False)  # type: ignore[arg-type]
        summary.average_loss, summary.backward_transfer_loss, summary.forgetting_loss = figures
    return summary


def previous_rows(config: TrainingJobConfig) -> list[list[TaskScore]]:
    """The matrix rows of the stages before this one."""
    plan = config.stage
    assert plan is not None
    if plan.previous_dir is None:
        return []
    settings = config.continual
    assert settings is not None
    chain = get_chain(Path(plan.previous_dir).parent, settings.chain)
    return [s.scores for s in chain.stages if s.stage < plan.stage]


def write_stage(stage: ChainStage, output: Path) -> None:
    """Mark the stage finished (the marker is written last, atomically)."""
    temporary = output / (MARKER + ".tmp")
    temporary.write_text(stage.model_dump_json(indent=2), encoding="utf-8")
    temporary.replace(output / MARKER)


def stage_record(
    config: TrainingJobConfig,
    model_name: str,
    scores: list[TaskScore],
    summary: ForgettingSummary,
    replayed: int,
    ewc_used: bool,
) -> ChainStage:
    """The finished stage as stored in its marker and listed by the API."""
    settings, plan = config.continual, config.stage
    assert settings is not None and plan is not None
    return ChainStage(
        chain=settings.chain,
        stage=plan.stage,
        task=plan.task,
        dataset=config.dataset,
        model=model_name,
        output_dir=config.output_dir,
        method=config.method,
        base_model=config.base_name,
        ewc_lambda=settings.ewc_lambda if ewc_used else 0.0,
        ewc_gamma=settings.ewc_gamma,
        replay_ratio=settings.replay_ratio if plan.stage > 1 else 0.0,
        replayed_rows=replayed,
        exact_match=settings.exact_match,
        scores=scores,
        summary=summary,
        finished_at=utcnow(),
    )
