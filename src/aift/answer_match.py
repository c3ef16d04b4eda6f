"""Scores of one answer against its expected answer, as SQuAD scores them: exact match
and token F1 after normalisation (lower case, no punctuation, no English articles), and
whether the expected answer occurs in the answer. Shared by GRPO's rewards, model
evaluation and knowledge-base answer evaluation."""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation + "。、，！？：；「」『』")


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no English articles,
    single spaces (Hangul and other scripts are kept as they are)."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


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
