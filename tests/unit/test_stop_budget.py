"""How long a training run asks for to stop cleanly, from its own timings."""

from __future__ import annotations

import pytest
import torch

from aift.training.stopping import BASE_SECONDS, SLOWDOWN, StopBudget, checkpoint_bytes


def test_before_any_timing_the_save_is_estimated_from_the_checkpoint_size() -> None:
    budget = StopBudget(checkpoint_bytes=500_000_000, eval_batches=0)
    assert budget.save_estimate == pytest.approx(2.0 + 10.0)  # 500 MB at 50 MB/s
    assert budget.needed() == pytest.approx(BASE_SECONDS + SLOWDOWN * 12.0)


def test_slow_steps_and_saves_raise_the_budget() -> None:
    budget = StopBudget(checkpoint_bytes=0, eval_batches=4)
    for seconds in (1.0, 30.0, 2.0):
        budget.step_took(seconds)
    budget.save_took(20.0)
    assert budget.step_estimate == 30.0, "the slowest recent step counts"
    assert budget.needed() == pytest.approx(BASE_SECONDS + SLOWDOWN * (30.0 + 20.0))
    # A save under way, then the next step and the cancel's own save.
    assert budget.needed(saving=True) == pytest.approx(BASE_SECONDS + SLOWDOWN * (30 + 40))
    # No evaluation timed yet: one training step per validation batch.
    assert budget.needed(evaluating=True) == pytest.approx(
        BASE_SECONDS + SLOWDOWN * (30 + 4 * 30 + 20)
    )
    budget.eval_took(5.0)
    assert budget.eval_estimate == 5.0


def test_a_7b_full_fine_tune_on_cpu_gets_minutes_not_seconds() -> None:
    budget = StopBudget(checkpoint_bytes=7_000_000_000 * 12, eval_batches=0)
    budget.step_took(90.0)
    assert budget.needed() > 3600


def test_checkpoint_bytes_counts_only_trainable_weights_with_adam_state() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Linear(10, 10))
    model[0].requires_grad_(False)
    assert checkpoint_bytes(model) == 110 * 4 * 3
