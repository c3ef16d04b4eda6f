"""Form fields generated from a pydantic schema: controls, bounds, defaults, conditions."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from aift.training.schemas import TrainingConfig
from aift.web.forms import form_fields


class Colour(StrEnum):
    red = "red"
    blue = "blue"


class Inner(BaseModel):
    size: int = Field(3, ge=1, le=9, description="How big.")


class Sample(BaseModel):
    title: str
    colour: Colour = Colour.blue
    mode: Literal["a", "b"] = "a"
    ratio: float = Field(0.5, gt=0, lt=1)
    limit: int | None = Field(None, ge=1)
    on: bool = True
    names: str | list[str] = ["x", "y"]
    inner: Inner = Field(default_factory=Inner, json_schema_extra={"applies_when": {"mode": ["b"]}})


def test_controls_follow_the_field_types() -> None:
    fields = {f.name: f for f in form_fields(Sample, advanced=frozenset({"on"}))}
    assert list(fields) == [
        "title",
        "colour",
        "mode",
        "ratio",
        "limit",
        "on",
        "names",
        "inner.size",
    ]
    assert fields["title"].control == "text" and fields["title"].required
    assert fields["colour"].control == "select" and fields["colour"].value == "blue"
    assert [v for v, _ in fields["colour"].options] == ["red", "blue"]
    assert [v for v, _ in fields["mode"].options] == ["a", "b"]
    assert (fields["ratio"].minimum, fields["ratio"].maximum, fields["ratio"].step) == (0, 1, "any")
    assert fields["limit"].control == "number" and fields["limit"].value is None
    assert fields["limit"].value_type == "int" and fields["limit"].minimum == 1
    assert fields["on"].control == "checkbox" and fields["on"].advanced
    assert fields["names"].value_type == "list" and fields["names"].value == "x, y"


def test_nested_fields_inherit_their_condition() -> None:
    fields = {f.name: f for f in form_fields(Sample)}
    size = fields["inner.size"]
    assert size.applies_when == {"mode": ["b"]} and size.hint == "How big."
    assert size.html_id == "f-inner-size" and (size.minimum, size.maximum) == (1, 9)


def test_choices_turn_text_into_a_select() -> None:
    fields = {f.name: f for f in form_fields(Sample, choices={"title": [("t1", "First")]})}
    assert fields["title"].control == "select" and fields["title"].options == [("t1", "First")]


def test_the_run_form_hides_lora_settings_for_full_fine_tuning() -> None:
    from aift.api.routes.pages import NOT_ON_TRAINING_FORM

    fields = {f.name: f for f in form_fields(TrainingConfig, exclude=NOT_ON_TRAINING_FORM)}
    sections = {"lora", "preference", "grpo", "evaluation"}  # nested settings, flattened
    assert set(TrainingConfig.model_fields) - sections - NOT_ON_TRAINING_FORM <= set(fields)
    assert not any(name.split(".")[0] in NOT_ON_TRAINING_FORM for name in fields)
    lora = [f for f in fields.values() if f.name.startswith("lora.")]
    assert len(lora) == 4
    assert all("full" not in f.applies_when["method"] for f in lora if f.applies_when)
    assert fields["method"].value == "lora"


def test_objective_settings_show_for_their_objectives_and_rewards_edit_as_json() -> None:
    from aift.api.routes.pages import NOT_ON_TRAINING_FORM

    fields = {f.name: f for f in form_fields(TrainingConfig, exclude=NOT_ON_TRAINING_FORM)}
    assert [v for v, _ in fields["objective"].options] == [
        "sft",
        "dpo",
        "orpo",
        "simpo",
        "kto",
        "grpo",
        "rloo",
        "reward",
    ]
    assert fields["preference.center_rewards"].applies_when == {"objective": ["reward"]}
    labels = {name: fields[name].label for name in ("preference.beta", "grpo.beta")}
    assert labels == {"preference.beta": "Beta", "grpo.beta": "KL beta"}, "twins told apart"
    assert fields["grpo.loss_type"].label != fields["preference.loss_type"].label
    assert fields["preference.beta"].applies_when == {"objective": ["dpo", "orpo", "simpo", "kto"]}
    assert fields["preference.loss_type"].applies_when == {"objective": ["dpo"]}
    assert fields["preference.loss_type"].value == "sigmoid"
    rewards = fields["grpo.rewards"]
    assert rewards.control == "json" and rewards.applies_when == {"objective": ["grpo", "rloo"]}
    assert fields["grpo.loss_type"].applies_when == {"objective": ["grpo"]}
    parsed = json.loads(rewards.value)
    assert parsed[0]["kind"] == "normalized"
    config = TrainingConfig(
        base_model="m",
        dataset="d",
        objective="grpo",
        grpo={"rewards": parsed},
        preference={"loss_type": "ipo, robust"},
    )
    assert config.preference.loss_type == ["ipo", "robust"]
