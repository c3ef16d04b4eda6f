"""Retrieval evaluation of a knowledge base as it is: questions from a file, searched with
the server's own search, scored by where the first relevant chunk ranks.

A relevant chunk is in the expected document (and spans the expected page, when given),
or contains the expected answer text. Metrics are those of `rag.evaluation.metrics`.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from aift.errors import InvalidInput
from aift.rag.evaluation import CUTOFF, metrics
from aift.rag.schemas import (
    MAX_EVAL_QUESTIONS,
    EvalQuestion,
    EvalRow,
    KbEvaluation,
    SearchHit,
    SearchRequest,
    SearchResponse,
)

T = TypeVar("T", bound=BaseModel)


def load_questions(path: Path, name: str) -> list[EvalQuestion]:
    """Questions of a JSONL, JSON (list) or CSV file with question/document/page/answer."""
    return load_rows(
        path,
        name,
        EvalQuestion,
        MAX_EVAL_QUESTIONS,
        "Each row needs a question and the relevant document (optionally its page) "
        "or the answer text.",
    )


def load_rows(path: Path, name: str, schema: type[T], limit: int, needs: str) -> list[T]:
    """The rows of a JSONL, JSON (list) or CSV file as `schema`, at most `limit`; every
    row that does not fit is named (`needs` says what a row must hold)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{name} is not UTF-8 text.") from None
    try:
        if name.lower().endswith(".csv"):
            rows = list(csv.DictReader(io.StringIO(text)))
        elif name.lower().endswith(".json"):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (ValueError, csv.Error) as exc:
        raise InvalidInput(f"{name} cannot be read as {_kind(name)}: {exc}") from None
    if not isinstance(rows, list) or not rows:
        raise InvalidInput(f"{name} holds no questions.")
    if len(rows) > limit:
        raise InvalidInput(
            f"{name} has {len(rows)} questions; the limit here is {limit}. Split the file."
        )
    parsed, errors = [], []
    for number, row in enumerate(rows, start=1):
        try:
            if isinstance(row, dict):
                row = {k: (v if v != "" else None) for k, v in row.items()}
            parsed.append(schema.model_validate(row))
        except ValidationError as exc:
            errors.append(f"row {number}: {exc.errors()[0]['msg']}")
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise InvalidInput(
            f"{len(errors)} of {len(rows)} rows cannot be used: {'; '.join(errors[:3])}{more}. "
            + needs
        )
    return parsed


def _kind(name: str) -> str:
    if name.lower().endswith(".csv"):
        return "CSV"
    return "JSON" if name.lower().endswith(".json") else "JSON lines"


def relevant(hit: SearchHit, question: EvalQuestion) -> bool:
    """Whether a hit holds the question's answer (document/page, or the answer text)."""
    if question.document is not None:
        if hit.document != question.document:
            return False
        if question.page is not None and not hit.page_start <= question.page <= hit.page_end:
            return False
    if question.answer is not None:
        return " ".join(question.answer.split()).lower() in " ".join(hit.text.split()).lower()
    return True


def evaluate_kb(
    search: Callable[[SearchRequest], SearchResponse],
    questions: list[EvalQuestion],
    settings: SearchRequest,
) -> KbEvaluation:
    """Search every question with `settings` (top 10) and score the ranks."""
    started = time.perf_counter()
    rows: list[EvalRow] = []
    response: SearchResponse | None = None
    for question in questions:
        request = settings.model_copy(update={"query": question.question, "limit": CUTOFF})
        response = search(request)
        rank = next(
            (n for n, hit in enumerate(response.hits, start=1) if relevant(hit, question)), None
        )
        top = response.hits[0] if response.hits else None
        expected = question.document or ""
        if question.page is not None:
            expected += f", p. {question.page}"
        if question.answer is not None:
            expected += f"{' · ' if expected else ''}“{question.answer[:60]}”"
        rows.append(
            EvalRow(
                question=question.question,
                expected=expected,
                rank=rank,
                top_document=top.document if top else None,
                top_page=top.page_start if top else None,
            )
        )
    assert response is not None  # load_questions never returns an empty list
    return KbEvaluation(
        knowledge_base=response.knowledge_base,
        questions=len(questions),
        mode=response.mode,
        reranked=response.reranked,
        metrics=metrics([row.rank for row in rows]),
        rows=rows,
        notes=response.notes,
        seconds=time.perf_counter() - started,
    )
