"""Comparing two answer evaluations: paired deltas, intervals and exact tests."""

from __future__ import annotations

import numpy as np
import pytest

from aift.answer_match import contains, exact_match, token_f1
from aift.evaluation.compare import compare_runs, mcnemar_p, permutation_p
from aift.evaluation.model_eval import score
from aift.evaluation.schemas import AnswerSummary, ModelEvalRequest, ModelEvalResult


def run(model: str, answers: list[str], expected: list[str]) -> ModelEvalResult:
    scores = [
        score(row, [{"role": "user", "content": f"q{row}"}], want, got)
        for row, (got, want) in enumerate(zip(answers, expected, strict=True), start=1)
    ]
    summary = AnswerSummary(
        examples=len(scores), exact_match=0, contains=0, f1=0, seconds=1, answers_per_second=1
    )
    request = ModelEvalRequest(model=model, dataset="d")
    return ModelEvalResult(request=request, summary=summary, answers=scores)


def test_answers_are_scored_as_squad_scores_them() -> None:
    assert exact_match("The Paris.", "paris") and not exact_match("in Paris", "Paris")
    assert contains("It is 7.", "7") and not contains("It is 7.", "")
    assert token_f1("the red big house", "big red barn") == pytest.approx(
        2 * (2 / 3) * (2 / 3) / (4 / 3)
    )
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_a_real_improvement_is_significant_and_a_tie_is_not() -> None:
    expected = [str(n) for n in range(12)]
    base = run("base", ["no"] * 12, expected)
    tuned = run("tuned", expected[:10] + ["no", "no"], expected)
    result = compare_runs("a", base, "b", tuned)
    em = next(m for m in result.metrics if m.metric == "exact_match")
    assert (em.baseline, em.other, em.delta) == (
        0.0,
        pytest.approx(10 / 12),
        pytest.approx(10 / 12),
    )
    assert em.p_value == pytest.approx(2 * 0.5**10)  # 10 gained, 0 lost
    assert em.interval[0] > 0.5 and em.interval[1] <= 1.0
    assert len(result.differences) == 10 and result.differences[0].other_f1 == 1.0
    same = compare_runs("a", base, "c", base)
    assert all(m.p_value == 1.0 and m.interval == (0.0, 0.0) for m in same.metrics)
    assert same.differences == [] and same.questions == 12


def test_the_exact_tests_count_only_what_changed() -> None:
    yes, no = np.array([True, True, False]), np.array([True, False, True])
    assert mcnemar_p(yes, no) == 1.0  # one gained, one lost
    assert permutation_p(np.zeros(5)) == 1.0
    assert permutation_p(np.full(20, 0.5)) < 0.001
