"""One schema per concept of evaluation, shared by API, CLI, jobs and pages."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_EVAL_EXAMPLES = 5000


class ModelEvalRequest(BaseModel):
    """Evaluate a served model on a dataset's rows: greedy answers to each prompt,
    compared with the row's answer."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1, description="Any served model (or ollama/NAME).")
    dataset: str = Field(..., min_length=1, description="Dataset id.")
    split: Literal["val", "train"] = Field("val", description="Which rows to score.")
    limit: int = Field(200, ge=1, le=MAX_EVAL_EXAMPLES, description="The first rows scored.")
    max_tokens: int = Field(64, ge=1, le=4096, description="Tokens per answer.")


class AnswerScore(BaseModel):
    """One question of an evaluation: what was asked, expected, answered, and its scores."""

    row: int = Field(..., description="The row's number in the split (from 1).")
    question: str
    expected: str
    answer: str
    exact_match: bool = Field(..., description="Equal after SQuAD normalisation.")
    contains: bool = Field(..., description="The normalised expected answer is in the answer.")
    f1: float = Field(..., description="Token F1 of answer and expected answer (SQuAD).")


class AnswerSummary(BaseModel):
    """The means over the questions of an evaluation."""

    examples: int
    exact_match: float
    contains: float
    f1: float
    seconds: float
    answers_per_second: float


class ModelEvalResult(BaseModel):
    """A finished model evaluation: the request, its summary and every question."""

    request: ModelEvalRequest
    summary: AnswerSummary
    answers: list[AnswerScore]
