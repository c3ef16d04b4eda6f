"""The optimizer steps a run will make, counted as packing makes its rows, and the
warning when they are too few to learn from."""

from __future__ import annotations

from aift.training.schemas import TrainingConfig
from aift.training.steps import FEW_STEPS, few_steps_warning, planned_steps, rows_per_epoch


def config(**values: object) -> TrainingConfig:
    return TrainingConfig(**{"base_model": "m", "dataset": "d", **values})


def test_sixty_short_examples_pack_into_a_few_rows_and_three_steps() -> None:
    """The trap of a small dataset: 60 chat rows of ~60 tokens, batch 4, 3 epochs."""
    run = config(batch_size=4, epochs=3)
    rows = rows_per_epoch(run, examples=60, mean_tokens=60)
    assert rows == 4  # 3,600 tokens in rows of 1,024
    assert planned_steps(run, rows) == 3
    warning = few_steps_warning(run, 60, rows, 3)
    assert warning is not None
    assert "Only 3 optimizer step(s)" in warning
    assert "60 examples pack into about 4 row(s)" in warning
    assert "max_steps" in warning


def test_without_packing_every_example_is_a_row() -> None:
    run = config(batch_size=4, epochs=3, packing=False)
    rows = rows_per_epoch(run, examples=60, mean_tokens=60)
    assert rows == 60 and planned_steps(run, rows) == 45
    assert few_steps_warning(run, 60, rows, 45) is None


def test_long_examples_fill_a_row_each_and_max_steps_wins() -> None:
    run = config(max_length=512, batch_size=2, gradient_accumulation=2, epochs=1)
    assert rows_per_epoch(run, examples=40, mean_tokens=2000) == 40  # truncated to a row
    assert planned_steps(run, 40) == 10
    assert planned_steps(config(max_steps=7), 40) == 7
    warning = few_steps_warning(run, 40, 40, 10)
    assert warning is not None and "pack" not in warning and "4 row(s)" in warning
    assert few_steps_warning(run, 40, 40, FEW_STEPS) is None
