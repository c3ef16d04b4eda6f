"""The forgetting figures of a chain and how replay draws earlier tasks' rows."""

from __future__ import annotations

import pytest

from aift.training.continual import matrix_figures, replay_examples, summarize
from aift.training.schemas import TaskScore


def test_average_accuracy_backward_transfer_and_forgetting_follow_the_literature() -> None:
    # R[i][j]: accuracy on task j after stage i
    matrix = [[0.9], [0.7, 0.8], [0.8, 0.6, 0.9]]
    average, transfer, forgetting = matrix_figures(matrix, higher_is_better=True)
    assert average == pytest.approx((0.8 + 0.6 + 0.9) / 3)
    assert transfer == pytest.approx(((0.8 - 0.9) + (0.6 - 0.8)) / 2)  # Lopez-Paz & Ranzato
    assert forgetting == pytest.approx(((0.9 - 0.8) + (0.8 - 0.6)) / 2)  # Chaudhry et al.
    assert matrix_figures([[0.5]], higher_is_better=True) == (0.5, None, None)
    # losses: lower is better, so forgetting is a rise above the best loss seen
    losses = [[1.0], [0.8, 2.0], [1.5, 1.0, 0.5]]
    average, transfer, forgetting = matrix_figures(losses, higher_is_better=False)
    assert average == pytest.approx(1.0)
    assert transfer == pytest.approx(((1.5 - 1.0) + (1.0 - 2.0)) / 2)
    assert forgetting == pytest.approx(((1.5 - 0.8) + (1.0 - 2.0)) / 2)


def test_a_summary_leaves_accuracy_empty_unless_every_task_is_scored_by_it() -> None:
    def score(task: str, stage: int, loss: float, em: float | None) -> TaskScore:
        return TaskScore(task=task, stage_trained=stage, loss=loss, exact_match=em)

    rows = [[score("a", 1, 1.0, 1.0)], [score("a", 1, 2.0, 0.5), score("b", 2, 0.5, 1.0)]]
    full = summarize(rows)
    assert (full.average_accuracy, full.backward_transfer, full.forgetting) == (0.75, -0.5, 0.5)
    assert full.forgetting_loss == pytest.approx(1.0) and full.stages == 2
    rows[1][1] = score("b", 2, 0.5, None)
    partial = summarize(rows)
    assert partial.average_accuracy is None and partial.average_loss == pytest.approx(1.25)


def test_replay_spreads_its_rows_over_earlier_tasks_and_is_repeatable() -> None:
    earlier = {"a": [{"id": f"a{i}"} for i in range(10)], "b": [{"id": "b0"}, {"id": "b1"}]}
    rows, taken = replay_examples(earlier, 5, seed=1)
    assert taken == {"a": 3, "b": 2} and len(rows) == 5
    assert rows == replay_examples(earlier, 5, seed=1)[0]
    many, taken = replay_examples(earlier, 8, seed=1)  # b has 2 rows: they repeat
    assert taken == {"a": 4, "b": 4} and sum(r["id"].startswith("b") for r in many) == 4
    assert replay_examples(earlier, 0, seed=1) == ([], {})
    assert replay_examples({}, 4, seed=1) == ([], {})
