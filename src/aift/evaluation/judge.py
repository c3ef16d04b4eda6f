"""An LLM as judge: a served model asked whether an answer says what the reference
answer says, for answers that string metrics score unfairly (a right answer in other
words). Optional and always labelled with the judge's name: a judge model has its own
errors and biases (it favours long and confident answers, and small models judge
poorly), so its verdict is reported beside exact match and F1, never instead.
"""

from __future__ import annotations

import re

INSTRUCTION = (
    "You grade answers. Given a question, the reference answer and a candidate answer, "
    "reply with one word: yes if the candidate answer states what the reference answer "
    "states (other words are fine), no if it does not or says something else."
)
_VERDICT = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def judge_messages(question: str, expected: str, answer: str) -> list[dict[str, str]]:
    """The judge's chat: the instruction, then the case."""
    case = f"Question: {question}\nReference answer: {expected}\nCandidate answer: {answer}"
    return [
        {"role": "system", "content": INSTRUCTION},
        {"role": "user", "content": f"{case}\nDoes the candidate answer agree? yes or no:"},
    ]


def verdict(reply: str) -> bool | None:
    """The judge's first yes or no; None when it gave neither (counted as unclear)."""
    found = _VERDICT.search(reply)
    return None if found is None else found.group(1).lower() == "yes"
