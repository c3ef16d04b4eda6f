"""One schema per concept of evaluation, shared by API, CLI, jobs and pages."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_EVAL_EXAMPLES = 5000
_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")


class ModelEvalRequest(BaseModel):
    """Evaluate a served model on a dataset's rows: greedy answers to each prompt,
    compared with the row's answer."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1, description="Any served model (or ollama/NAME).")
    dataset: str = Field(..., min_length=1, description="Dataset id.")
    split: Literal["val", "train"] = Field("val", description="Which rows to score.")
    limit: int = Field(200, ge=1, le=MAX_EVAL_EXAMPLES, description="The first rows scored.")
    max_tokens: int = Field(64, ge=1, le=4096, description="Tokens per answer.")
    judge: str | None = Field(
        None,
        min_length=1,
        description="Also ask this served model whether each answer agrees with the "
        "reference (LLM-as-judge; reported as such, beside the string metrics).",
    )


class AnswerScore(BaseModel):
    """One question of an evaluation: what was asked, expected, answered, and its scores."""

    row: int = Field(..., description="The row's number in the split (from 1).")
    question: str
    expected: str
    answer: str
    exact_match: bool = Field(..., description="Equal after SQuAD normalisation.")
    contains: bool = Field(..., description="The normalised expected answer is in the answer.")
    f1: float = Field(..., description="Token F1 of answer and expected answer (SQuAD).")
    judged_correct: bool | None = Field(
        None, description="The LLM judge's verdict (None: no judge, or no clear verdict)."
    )


class JudgeSummary(BaseModel):
    """What the LLM judge said, over the questions: labelled with the judge's name."""

    model: str = Field(..., description="The judge model.")
    agreed: float = Field(..., description="Answers the judge called right / clear verdicts.")
    unclear: int = Field(..., description="Answers the judge gave no yes or no for.")


class AnswerSummary(BaseModel):
    """The means over the questions of an evaluation."""

    examples: int
    exact_match: float
    contains: float
    f1: float
    seconds: float
    answers_per_second: float
    judge: JudgeSummary | None = Field(None, description="LLM-as-judge, when one was asked.")


class ModelEvalResult(BaseModel):
    """A finished model evaluation: the request, its summary and every question."""

    request: ModelEvalRequest
    summary: AnswerSummary
    answers: list[AnswerScore]


class HarnessEvalRequest(BaseModel):
    """Run lm-evaluation-harness tasks on a model: standard tasks (where their data is
    reachable) or tasks defined by YAML files in the workspace's `data/eval_tasks/`."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        ..., min_length=1, description="Any served LM (GGUF, Ollama: generation tasks only)."
    )
    tasks: list[str] = Field(
        ..., min_length=1, max_length=20, description="lm-eval task (or group) names."
    )
    limit: int | None = Field(
        100, ge=1, le=100_000, description="Documents per task (the first; none: all)."
    )
    num_fewshot: int | None = Field(None, ge=0, le=64, description="Few-shot examples.")
    apply_chat_template: bool = Field(
        False, description="Render prompts with the model's chat template (chat models)."
    )

    @field_validator("tasks")
    @classmethod
    def _names(cls, tasks: list[str]) -> list[str]:
        for task in tasks:
            if not _TASK_NAME.match(task):
                raise ValueError(f"{task!r} is not a task name (letters, digits, _ . -)")
        return tasks


class HarnessJobConfig(HarnessEvalRequest):
    """The request plus how the model runs, fixed at submission: lm-eval's transformers
    backend over the model's files, or aift's serving layer (GGUF, MoE, Ollama)."""

    backend: Literal["transformers", "served"] = "transformers"
    pretrained: str | None = Field(None, description="Folder of the transformers model (base).")
    peft: str | None = Field(None, description="Folder of the adapter, for an adapter.")


class HarnessEvalResult(BaseModel):
    """lm-eval's figures per task (its metric names, e.g. `acc,none`) and sample counts."""

    request: HarnessEvalRequest
    results: dict[str, dict[str, float | str | None]]
    samples: dict[str, int]
    seconds: float
    lm_eval_version: str


class MetricComparison(BaseModel):
    """One metric of two evaluations on the same questions, paired question by question."""

    metric: str
    baseline: float = Field(..., description="The baseline run's mean.")
    other: float = Field(..., description="The other run's mean.")
    delta: float = Field(..., description="other − baseline.")
    interval: tuple[float, float] = Field(
        ..., description="95 % paired bootstrap interval of the delta."
    )
    p_value: float = Field(
        ...,
        description="Two-sided: exact McNemar (sign) test for exact match and contains, "
        "paired sign-flip permutation test for F1.",
    )


class QuestionDifference(BaseModel):
    """A question the two runs answered differently well."""

    row: int
    question: str
    expected: str
    baseline: str = Field(..., description="The baseline run's answer.")
    other: str = Field(..., description="The other run's answer.")
    baseline_f1: float
    other_f1: float


class RunComparison(BaseModel):
    """One run against the baseline."""

    baseline: str = Field(..., description="Job id of the baseline evaluation.")
    other: str = Field(..., description="Job id of the compared evaluation.")
    baseline_model: str
    other_model: str
    questions: int = Field(..., description="Questions both runs answered (paired).")
    metrics: list[MetricComparison]
    differences: list[QuestionDifference] = Field(
        ..., description="Questions whose F1 differs, the largest differences first."
    )


class EvalComparison(BaseModel):
    """Evaluations of the same dataset split side by side, each against the first."""

    dataset: str
    split: str
    runs: list[RunComparison]


# the arena: one question, two models, the user picks the better answer ----------------
Side = Literal["a", "b"]
Verdict = Literal["a", "b", "tie", "both_bad"]
MAX_ARENA_PROMPT_CHARS = 20_000


class ArenaBattleCreate(BaseModel):
    """Start a battle: the question, and the two models (or none: two picked at random
    among the chat models). Which model answers on which side is drawn at random and
    stays hidden until the vote."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(..., min_length=1, max_length=MAX_ARENA_PROMPT_CHARS)
    models: list[str] | None = Field(
        None, min_length=2, max_length=2, description="Two different models, or none."
    )
    max_tokens: int = Field(512, ge=1, le=4096)
    temperature: float = Field(0.7, ge=0.0, le=2.0)


class ArenaBattle(BaseModel):
    """A battle as the voter sees it: the models are named only once the vote is in."""

    id: str
    prompt: str
    answer_a: str | None = None
    answer_b: str | None = None
    winner: Verdict | None = None
    model_a: str | None = Field(None, description="Shown after the vote.")
    model_b: str | None = Field(None, description="Shown after the vote.")
    max_tokens: int = 512
    temperature: float = 0.7
    created_at: datetime


class ArenaVote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    winner: Verdict = Field(..., description="a, b, tie, or both_bad (a tie, both poor).")


class ArenaStanding(BaseModel):
    """One model's record in the arena's votes."""

    model: str
    battles: int
    wins: int
    losses: int
    ties: int
    win_rate: float = Field(..., description="(wins + ties / 2) / battles.")
    rating: float = Field(
        ..., description="Bradley–Terry strength on the Elo scale (1000 = average)."
    )


class ArenaLeaderboard(BaseModel):
    votes: int
    standings: list[ArenaStanding]
