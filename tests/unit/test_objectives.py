"""How a run config maps onto trl's trainer configs: each objective's own settings under
trl's names, and the reference model kept to one copy."""

from __future__ import annotations

import json
from pathlib import Path

from aift.models.schemas import ModelFormat, ModelSource, ResolvedModel
from aift.training.objectives import TRAINERS, objective_arguments, reward_pages, trl_rows
from aift.training.schemas import Objective, TrainingConfig, TrainingJobConfig


def job(tmp_path: Path, **values: object) -> TrainingJobConfig:
    base = ResolvedModel(
        requested="m", name="m", source=ModelSource.workspace, format=ModelFormat.hf, path="/m"
    )
    config = TrainingConfig(base_model="m", dataset="d", **values)  # type: ignore[arg-type]
    return TrainingJobConfig(**config.model_dump(), output_dir=str(tmp_path), base=base)


def test_every_objective_but_sft_has_a_trl_trainer() -> None:
    assert set(TRAINERS) == set(Objective) - {Objective.sft}


def test_each_objective_names_its_settings_as_trl_does(tmp_path: Path) -> None:
    dpo = objective_arguments(job(tmp_path, objective="dpo", method="full"))
    assert dpo["precompute_ref_log_probs"] and dpo["loss_type"] == ["sigmoid"]
    reward = objective_arguments(job(tmp_path, objective="reward"))
    assert reward == {"center_rewards_coefficient": 0.01, "max_length": 1024}
    off = objective_arguments(job(tmp_path, objective="reward", preference={"center_rewards": 0}))
    assert off["center_rewards_coefficient"] is None
    grpo = objective_arguments(job(tmp_path, objective="grpo", grpo={"vllm": True}))
    assert grpo["use_vllm"] and grpo["vllm_mode"] == "colocate" and grpo["loss_type"] == "dapo"
    rloo = objective_arguments(job(tmp_path, objective="rloo"))
    assert "use_vllm" not in rloo and "loss_type" not in rloo


def test_prompt_rows_keep_their_page_columns_for_every_row(tmp_path: Path) -> None:
    config = job(tmp_path, objective="grpo")
    prompt = [{"role": "user", "content": "q"}]
    rows = trl_rows(
        config,
        [
            {"prompt": prompt, "answer": "a", "document": "d.pdf", "page": 2},
            {"prompt": prompt, "answer": "b"},
        ],
    )
    assert [(r["document"], r["page"]) for r in rows] == [("d.pdf", 2), (None, None)]
    pages = tmp_path / "pages.json"
    pages.write_text(json.dumps({"d.pdf#2": "text"}))
    assert reward_pages(config.model_copy(update={"reward_pages": str(pages)})) == {
        "d.pdf#2": "text"
    }
    assert reward_pages(config) == {}
