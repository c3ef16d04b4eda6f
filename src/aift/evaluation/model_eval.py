"""A served model answering a dataset's questions, scored against the rows' answers.

The questions are the rows' demonstrations (a conversation up to its last assistant turn;
a preference pair's prompt with its chosen reply; a prompt with its reference answer),
answered greedily one at a time by whatever `answer` the caller hands in — the serving
layer's chat, so any served model can be evaluated: base, fine-tune, adapter, merged,
GGUF, MoE or a remote Ollama model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aift.answer_match import contains, exact_match, token_f1
from aift.evaluation.judge import judge_messages, verdict
from aift.evaluation.schemas import (
    AnswerScore,
    AnswerSummary,
    JudgeSummary,
    ModelEvalRequest,
    ModelEvalResult,
)
from aift.training.preference_formats import as_demonstration
from aift.work.control import Work

# (conversation so far, as chat messages) → the model's greedy answer
Answer = Callable[[list[dict[str, Any]]], str]


def questions(examples: list[dict[str, Any]]) -> list[tuple[int, list[dict[str, Any]], str]]:
    """(row number, prompt messages, expected answer) of each row that has an answer."""
    out = []
    for row, example in enumerate(examples, start=1):
        shown = as_demonstration(example)
        messages = (shown or {}).get("messages") or []
        if len(messages) < 2 or messages[-1]["role"] != "assistant":
            continue
        out.append((row, messages[:-1], str(messages[-1]["content"])))
    return out


def score(row: int, prompt: list[dict[str, Any]], expected: str, answer: str) -> AnswerScore:
    question = next((str(m["content"]) for m in reversed(prompt) if m["role"] == "user"), "")
    return AnswerScore(
        row=row,
        question=question,
        expected=expected,
        answer=answer,
        exact_match=exact_match(answer, expected),
        contains=contains(answer, expected),
        f1=token_f1(answer, expected),
    )


def evaluate_answers(
    work: Work,
    request: ModelEvalRequest,
    examples: list[dict[str, Any]],
    answer: Answer,
    judge: Answer | None = None,
) -> ModelEvalResult:
    """Ask each question, score each answer — and, with a `judge`, ask it whether the
    answer agrees with the reference — and sum up (progress per question)."""
    asked = questions(examples)[: request.limit]
    started = time.perf_counter()
    scores: list[AnswerScore] = []
    for done, (row, prompt, expected) in enumerate(asked):
        work.check_cancelled()
        scored = score(row, prompt, expected, answer(prompt).strip())
        if judge is not None:
            said = judge(judge_messages(scored.question, expected, scored.answer))
            scored.judged_correct = verdict(said)
        scores.append(scored)
        work.progress((done + 1) / len(asked), f"question {done + 1}/{len(asked)}")
    seconds = time.perf_counter() - started
    summary = summarize(scores, seconds, request.judge)
    work.metrics({"exact_match": summary.exact_match, "f1": summary.f1})
    return ModelEvalResult(request=request, summary=summary, answers=scores)


def summarize(scores: list[AnswerScore], seconds: float, judge: str | None) -> AnswerSummary:
    """Means over the answers; the judge's share of clear verdicts that said right."""
    count = max(len(scores), 1)
    judged: JudgeSummary | None = None
    if judge is not None:
        clear = [s.judged_correct for s in scores if s.judged_correct is not None]
        judged = JudgeSummary(
            model=judge,
            agreed=sum(clear) / len(clear) if clear else 0.0,
            unclear=len(scores) - len(clear),
        )
    return AnswerSummary(
        examples=len(scores),
        exact_match=sum(s.exact_match for s in scores) / count,
        contains=sum(s.contains for s in scores) / count,
        f1=sum(s.f1 for s in scores) / count,
        seconds=seconds,
        answers_per_second=len(scores) / seconds if seconds > 0 else 0.0,
        judge=judged,
    )
