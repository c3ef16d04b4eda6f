"""Scores of one answer against its expected answer, as SQuAD scores them: exact match
and token F1 after normalisation (lower case, no punctuation, no English articles), and
whether the expected answer occurs in the answer."""

from __future__ import annotations

from collections import Counter

from aift.training.rewards import normalize


def exact_match(answer: str, expected: str) -> bool:
    return normalize(answer) == normalize(expected)


def contains(answer: str, expected: str) -> bool:
    wanted = normalize(expected)
    return bool(wanted) and wanted in normalize(answer)


def token_f1(answer: str, expected: str) -> float:
    """Harmonic mean of the token precision and recall of the answer (1.0 when both are
    empty)."""
    got, want = normalize(answer).split(), normalize(expected).split()
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)
