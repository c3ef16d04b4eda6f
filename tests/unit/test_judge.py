"""The LLM judge's prompt and how its reply is read."""

from __future__ import annotations

from aift.evaluation.judge import judge_messages, verdict


def test_the_first_yes_or_no_is_the_verdict_and_anything_else_is_unclear() -> None:
    assert verdict("Yes.") is True
    assert verdict(" no, it says 6") is False
    assert verdict("NO") is False
    assert verdict("The answer is yes") is True
    assert verdict("Yesterday I was sure") is None, "a word that starts with yes is not yes"
    assert verdict("") is None and verdict("maybe") is None


def test_the_case_carries_the_question_the_reference_and_the_answer() -> None:
    system, user = judge_messages("What is 2 + 3?", "5", "five")
    assert system["role"] == "system" and "yes" in system["content"]
    assert user["role"] == "user"
    for part in ("What is 2 + 3?", "Reference answer: 5", "Candidate answer: five"):
        assert part in user["content"]
