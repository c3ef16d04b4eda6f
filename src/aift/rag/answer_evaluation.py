"""Answer quality of a knowledge base on a question file, per answer setting.

Each question is asked with each setting (an answer mode, a context, a model…) through
the same `ask` as users use, kept out of the history, and each answer is scored:

- contains / F1 — an accepted form is in the answer / the best token F1 against one
  (SQuAD's normalisation);
- first citation right — the first [n] of the answer cites the expected document (and
  page: the page of its supporting sentence);
- citation recall — the share of the answer's statements that carry a citation, i.e.
  that a source sentence supports (ALCE's "every statement cited"; ALCE judges support
  with an NLI model, aift with its attribution: offline there is no NLI model);
- citations on target — the share of its citations that point at the expected document
  (and page): citations elsewhere are not wrong per se, but are not what was asked;
- not found right — for a question the knowledge base does not hold: the answer said so
  (`found: false`) or was flagged unsupported;
- first-token and total time.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Awaitable, Callable

from aift.answer_match import contains, token_f1
from aift.rag.schemas import (
    AnswerEvalRow,
    AnswerEvalSetting,
    AnswerEvaluation,
    AnswerQuestion,
    AskRequest,
    AskResponse,
    Citation,
)

Ask = Callable[[AskRequest], Awaitable[AskResponse]]
_MARKER = re.compile(r"\[(\d+)\]")


def cited_place(citation: Citation) -> tuple[str, int]:
    """(document, page) a citation points at: its supporting sentence's page."""
    page = citation.support.page if citation.support else citation.page_start
    return citation.document, page


def first_citation(done: AskResponse) -> tuple[str, int] | None:
    """(document, page) of the first [n] in the answer that names a citation."""
    by_number = {c.number: c for c in done.citations}
    for match in _MARKER.finditer(done.answer):
        citation = by_number.get(int(match.group(1)))
        if citation is not None:
            return cited_place(citation)
    return None


def on_target(place: tuple[str, int] | None, question: AnswerQuestion) -> bool:
    if place is None or question.document is None:
        return False
    return place[0] == question.document and question.page in (None, place[1])


def score_answer(setting: str, question: AnswerQuestion, done: AskResponse) -> AnswerEvalRow:
    """One answer's scores (None where a metric does not apply to the question)."""
    answerable = not question.unanswerable
    forms = question.answers if answerable else []
    places = [cited_place(c) for c in done.citations]
    return AnswerEvalRow(
        setting=setting,
        question=question.question,
        answer=done.answer,
        found=done.found,
        supported=done.supported,
        contains=any(contains(done.answer, f) for f in forms) if forms else None,
        f1=max(token_f1(done.answer, f) for f in forms) if forms else None,
        first_citation_right=(
            on_target(first_citation(done), question) if answerable and question.document else None
        ),
        citation_recall=(
            done.supported_statements / done.statements if answerable and done.statements else None
        ),
        citations_on_target=(
            sum(on_target(p, question) for p in places) / len(places)
            if answerable and question.document and places
            else None
        ),
        not_found_right=(not done.found or not done.supported) if not answerable else None,
        first_token_ms=done.first_token_ms,
        total_ms=done.total_ms,
    )


def _mean(values: list[float | bool | None]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None


def summarize(setting: str, rows: list[AnswerEvalRow]) -> AnswerEvalSetting:
    firsts = [r.first_token_ms for r in rows if r.first_token_ms is not None]
    return AnswerEvalSetting(
        setting=setting,
        questions=len(rows),
        contains=_mean([r.contains for r in rows]),
        f1=_mean([r.f1 for r in rows]),
        first_citation_right=_mean([r.first_citation_right for r in rows]),
        citation_recall=_mean([r.citation_recall for r in rows]),
        citations_on_target=_mean([r.citations_on_target for r in rows]),
        not_found_right=_mean([r.not_found_right for r in rows]),
        first_token_ms_p50=statistics.median(firsts) if firsts else None,
        total_ms_p50=statistics.median(r.total_ms for r in rows),
    )


async def evaluate_answers(
    ask: Ask,
    knowledge_base: str,
    questions: list[AnswerQuestion],
    settings: dict[str, AskRequest],
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> AnswerEvaluation:
    """Ask every question with every setting (`settings`: label → a request whose query
    is replaced), score each answer and sum up per setting; `progress(done, total)`
    after each answer (a job's progress, and where its cancel is noticed)."""
    started = time.perf_counter()
    rows: list[AnswerEvalRow] = []
    summaries = []
    for label, template in settings.items():
        mine = []
        for question in questions:
            request = template.model_copy(
                update={"query": question.question, "stream": False, "history": False}
            )
            mine.append(score_answer(label, question, await ask(request)))
            progress(len(rows) + len(mine), len(questions) * len(settings))
        summaries.append(summarize(label, mine))
        rows += mine
    return AnswerEvaluation(
        knowledge_base=knowledge_base,
        questions=len(questions),
        settings=summaries,
        rows=rows,
        seconds=time.perf_counter() - started,
    )
