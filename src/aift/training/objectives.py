"""Preference and reinforcement objectives, trained by trl's trainers.

aift does not write these losses: DPO (and its variants) is trl's `DPOTrainer`, KTO its
`KTOTrainer`, GRPO its `GRPOTrainer`, RLOO its `RLOOTrainer`, ORPO and SimPO the
experimental `ORPOTrainer` and `CPOTrainer`. This module maps a run config onto them:
the trainer's config (the run's Trainer arguments plus the objective's own settings),
the rows in the shape each reads, and the reference model:

- a new LoRA/DoRA adapter is handed to trl as a `peft_config`, and the reference is the
  base with the adapter disabled — no second copy of the model;
- an earlier run's adapter (SFT → DPO) trains further, and trl keeps a frozen copy of
  that adapter (a few MB) as the reference, so DPO pulls towards the SFT model;
- a full fine-tune computes the reference log-probabilities once before training
  instead of holding a second model.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from aift.training.penalised import with_penalty
from aift.training.preference_formats import as_prompt, unpaired
from aift.training.rewards import PageSupport, reward_functions
from aift.training.schemas import (
    REWARD_OBJECTIVES,
    Method,
    Objective,
    TrainingConfig,
    TrainingJobConfig,
)

# objective → (module, config class, trainer class) of trl
TRAINERS: dict[Objective, tuple[str, str, str]] = {
    Objective.dpo: ("trl", "DPOConfig", "DPOTrainer"),
    Objective.kto: ("trl", "KTOConfig", "KTOTrainer"),
    Objective.grpo: ("trl", "GRPOConfig", "GRPOTrainer"),
    Objective.rloo: ("trl", "RLOOConfig", "RLOOTrainer"),
    Objective.orpo: ("trl.experimental.orpo", "ORPOConfig", "ORPOTrainer"),
    Objective.simpo: ("trl.experimental.cpo", "CPOConfig", "CPOTrainer"),
    Objective.reward: ("trl", "RewardConfig", "RewardTrainer"),
}
# Objectives whose loss compares with a reference model.
WITH_REFERENCE = (Objective.dpo, Objective.kto)


def trl_rows(config: TrainingConfig, examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Canonical examples in the shape the objective's trainer reads: KTO takes a
    preference set as its chosen (good) and rejected (bad) replies; GRPO takes prompts
    and reference answers, a demonstration's last reply being its answer."""
    if config.objective == Objective.kto:
        return [row for e in examples for row in (unpaired(e) if "chosen" in e else [e])]
    if config.objective in REWARD_OBJECTIVES:
        rows = [as_prompt(e) for e in examples]
        if any("document" in row for row in rows):  # one set of columns for every row
            rows = [{"document": None, "page": None, **row} for row in rows]
        return rows
    return list(examples)


def objective_arguments(config: TrainingJobConfig) -> dict[str, Any]:
    """The objective's own settings, as its trl config names them."""
    preference, grpo = config.preference, config.grpo
    precompute = preference.precompute_reference or config.method == Method.full
    if config.objective == Objective.dpo:
        return {
            "beta": preference.beta,
            "loss_type": list(preference.loss_type),
            "label_smoothing": preference.label_smoothing,
            "precompute_ref_log_probs": precompute,
            "max_length": config.max_length,
        }
    if config.objective == Objective.kto:
        return {
            "beta": preference.beta,
            "desirable_weight": preference.desirable_weight,
            "undesirable_weight": preference.undesirable_weight,
            "precompute_ref_log_probs": precompute,
            "max_length": config.max_length,
        }
    if config.objective == Objective.reward:
        return {
            "center_rewards_coefficient": preference.center_rewards or None,
            "max_length": config.max_length,
        }
    if config.objective == Objective.orpo:
        return {"beta": preference.beta, "max_length": config.max_length}
    if config.objective == Objective.simpo:
        return {
            "beta": preference.beta,
            "loss_type": "simpo",
            "cpo_alpha": 0.0,
            "simpo_gamma": preference.simpo_gamma,
            "max_length": config.max_length,
        }
    sampling = {
        "num_generations": grpo.num_generations,
        "max_completion_length": grpo.max_completion_length,
        "temperature": grpo.temperature,
        "beta": grpo.beta,
        "reward_weights": [r.weight for r in grpo.rewards],
        "log_completions": False,
    }
    if config.objective == Objective.grpo:
        sampling["loss_type"] = grpo.loss_type
    if grpo.vllm:  # checked at submission: the gpu extra and a GPU are there
        sampling.update(use_vllm=True, vllm_mode="colocate")
    return sampling


def build_trainer(
    config: TrainingJobConfig,
    model: Any,
    tokenizer: Any,
    rows: dict[str, list[dict[str, Any]]],
    values: dict[str, Any],
    callbacks: list[Any],
    peft_config: Any = None,
    page_support: PageSupport | None = None,
    penalty: Callable[[], Any] | None = None,
) -> Any:
    """The trl trainer of the run's objective over `rows` (train, and val when it has
    rows), with the run's Trainer arguments `values` and aift's callbacks.
    `page_support` scores a cites_page reward (RAG's attribution, from the caller);
    `penalty` is added to the loss (a continual stage's EWC)."""
    from datasets import Dataset

    module_name, config_name, trainer_name = TRAINERS[config.objective]
    module = importlib.import_module(module_name)
    arguments = {**values, **objective_arguments(config)}
    arguments["gradient_checkpointing"] = config.gradient_checkpointing
    if config.objective in REWARD_OBJECTIVES:  # batch_size counts prompts: a group per prompt
        arguments["per_device_train_batch_size"] *= config.grpo.num_generations
        arguments["per_device_eval_batch_size"] = arguments["per_device_train_batch_size"]
    args = getattr(module, config_name)(**arguments)
    kwargs: dict[str, Any] = {
        "model": model,
        "args": args,
        "train_dataset": Dataset.from_list(rows["train"]),
        "eval_dataset": Dataset.from_list(rows["val"]) if rows.get("val") else None,
        "processing_class": tokenizer,
        "callbacks": callbacks,
        "peft_config": peft_config,
    }
    if config.objective in REWARD_OBJECTIVES:
        kwargs["reward_funcs"] = reward_functions(
            config.grpo.rewards, config.reward_models, reward_pages(config), page_support
        )
    trainer_class = getattr(module, trainer_name)
    if penalty is not None:
        trainer_class = with_penalty(trainer_class, penalty)
    return trainer_class(**kwargs)


def reward_pages(config: TrainingJobConfig) -> dict[str, str]:
    """The page texts a cites_page reward checks against, read at submission."""
    import json
    from pathlib import Path

    if not config.reward_pages:
        return {}
    return dict(json.loads(Path(config.reward_pages).read_text(encoding="utf-8")))


def drop_reference_adapter(model: Any) -> None:
    """Remove the frozen reference copy trl adds beside a continued adapter, so the saved
    output holds the trained adapter alone."""
    peft_config = getattr(model, "peft_config", None)
    if isinstance(peft_config, dict) and "ref" in peft_config:
        model.delete_adapter("ref")


def processed_tokens(
    config: TrainingJobConfig, tokenizer: Any, rows: list[dict[str, Any]], sample: int = 2000
) -> int:
    """Tokens one epoch passes through the model, about (what tokens/s counts): prompt
    and chosen and rejected reply for a pair; prompt and completion for KTO; for GRPO,
    the prompt and a completion as long as the reference answer, for each of the group."""
    from aift.models.tokenizers import render

    if not rows:
        return 0
    shown = rows[:sample]
    total = 0
    for row in shown:
        total += len(tokenizer(render(tokenizer, row))["input_ids"])
        if "rejected" in row:
            total += len(
                tokenizer(render(tokenizer, {**row, "chosen": row["rejected"]}))["input_ids"]
            )
    if config.objective in REWARD_OBJECTIVES:
        total *= config.grpo.num_generations
    return round(total * len(rows) / len(shown))
