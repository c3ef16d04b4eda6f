"""Two evaluations of the same questions side by side: is the difference real?

The runs are paired question by question (the same rows of the same split). For each
metric: both means, the delta, a 95 % paired bootstrap interval of the delta (questions
resampled with replacement, seeded), and a two-sided p-value — exact McNemar for the
yes/no metrics (only the questions one run got and the other did not count) and a paired
sign-flip permutation test for F1 (and the LLM judge's verdicts, where both runs were
judged, as a yes/no metric). Then the questions whose F1 differs, largest first.
"""

from __future__ import annotations

import numpy as np

from aift.evaluation.schemas import (
    AnswerScore,
    MetricComparison,
    ModelEvalResult,
    QuestionDifference,
    RunComparison,
)

RESAMPLES = 10_000
BINARY = ("exact_match", "contains", "judged_correct")


def bootstrap_interval(deltas: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean of `deltas` under resampling."""
    if len(deltas) == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(deltas), size=(RESAMPLES, len(deltas)))
    means = deltas[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def mcnemar_p(baseline: np.ndarray, other: np.ndarray) -> float:
    """Exact two-sided McNemar test of two paired yes/no results."""
    from scipy.stats import binomtest

    gained = int(np.sum(~baseline & other))
    lost = int(np.sum(baseline & ~other))
    if gained + lost == 0:
        return 1.0
    return float(binomtest(gained, gained + lost, 0.5).pvalue)


def permutation_p(deltas: np.ndarray, seed: int = 0) -> float:
    """Two-sided paired sign-flip permutation test of a mean delta of 0."""
    if len(deltas) == 0 or not np.any(deltas):
        return 1.0
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(RESAMPLES, len(deltas)))
    observed = abs(deltas.mean())
    extreme = np.sum(np.abs((signs * deltas).mean(axis=1)) >= observed - 1e-12)
    return float((extreme + 1) / (RESAMPLES + 1))


def metric(name: str, first: list[AnswerScore], second: list[AnswerScore]) -> MetricComparison:
    a = np.array([getattr(s, name) for s in first], dtype=float)
    b = np.array([getattr(s, name) for s in second], dtype=float)
    deltas = b - a
    p = mcnemar_p(a.astype(bool), b.astype(bool)) if name in BINARY else permutation_p(deltas)
    return MetricComparison(
        metric=name,
        baseline=float(a.mean()) if len(a) else 0.0,
        other=float(b.mean()) if len(b) else 0.0,
        delta=float(deltas.mean()) if len(deltas) else 0.0,
        interval=bootstrap_interval(deltas),
        p_value=p,
    )


def metric_names(first: list[AnswerScore], second: list[AnswerScore]) -> list[str]:
    """The string metrics, and the LLM judge's verdict where both runs have one for every
    question (a judged run against an unjudged one compares on the string metrics)."""
    names = ["exact_match", "contains", "f1"]
    if first and all(s.judged_correct is not None for s in [*first, *second]):
        names.append("judged_correct")
    return names


def compare_runs(
    baseline_id: str, baseline: ModelEvalResult, other_id: str, other: ModelEvalResult
) -> RunComparison:
    """`other` against `baseline` on the questions both answered."""
    theirs = {s.row: s for s in other.answers}
    mine = [s for s in baseline.answers if s.row in theirs]
    paired = [theirs[s.row] for s in mine]
    differences = [
        QuestionDifference(
            row=a.row,
            question=a.question,
            expected=a.expected,
            baseline=a.answer,
            other=b.answer,
            baseline_f1=a.f1,
            other_f1=b.f1,
        )
        for a, b in zip(mine, paired, strict=True)
        if a.f1 != b.f1
    ]
    differences.sort(key=lambda d: -abs(d.other_f1 - d.baseline_f1))
    return RunComparison(
        baseline=baseline_id,
        other=other_id,
        baseline_model=baseline.request.model,
        other_model=other.request.model,
        questions=len(mine),
        metrics=[metric(name, mine, paired) for name in metric_names(mine, paired)],
        differences=differences,
    )
