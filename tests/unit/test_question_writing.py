"""Writing question–answer rows from passages: candidate answers, question tidying,
support checks, deduplication, preference pairs, and a job that resumes after the last
passage it finished. The model is a scripted function here (the packaged model writes
real rows in tests/integration/test_document_datasets.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aift.config import Settings
from aift.rag.schemas import SourcePassage
from aift.runtime import Runtime
from aift.training import question_writing as qw
from aift.training.document_datasets import write_dataset
from aift.training.schemas import (
    DatasetFormat,
    DocumentDatasetJobConfig,
    DocumentDatasetRequest,
    DraftEdit,
    DraftReview,
    DraftStatus,
)
from aift.work.control import Cancelled

TEXT = (
    "The zorvex pump is serviced every 41 days by the night shift. "
    "Chief technician Ilse Varga signs the service log after each visit."
)
PASSAGE = SourcePassage(
    chunk_id="c1",
    document_id="d1",
    document="pump.pdf",
    page_start=3,
    page_end=4,
    page_breaks=[TEXT.index("Chief")],  # the second sentence is on page 4
    section="Maintenance",
    text=TEXT,
)
QUESTIONS = {
    "41 days": "How often is the zorvex pump serviced?",
    "Ilse Varga": "Who signs the service log?",
}


def scripted(closed_book: str = "It is serviced every 90 days.", from_passage: str = "") -> Any:
    """A stand-in model: the question for the answer the prompt names; an answer from
    the passage; an answer without it."""
    calls: list[list[dict[str, str]]] = []

    def generate(messages: list[dict[str, str]], most: int) -> str:
        calls.append(messages)
        last = messages[-1]["content"]
        if "Answer:" in last:
            return "1. " + QUESTIONS[last.rsplit("Answer: ", 1)[1]]
        if messages[0]["role"] == "system":
            return from_passage or "The pump is serviced every 41 days by the night shift."
        return closed_book

    generate.calls = calls  # type: ignore[attr-defined]
    return generate


def request(**values: Any) -> DocumentDatasetRequest:
    return DocumentDatasetRequest(knowledge_base="kb", phrasings=1, **values)


def test_answer_spans_are_names_dates_and_numbers_with_units() -> None:
    spans = qw.answer_spans
    assert spans("Chief engineer Odile Marchetti leads the division since March 2029.", 3) == [
        "Odile Marchetti",
        "March 2029",
    ]
    assert spans("The Keldby plant processes 58 million litres per day.", 3) == ["58 million"]
    assert spans("Boarding closes 12 minutes before departure.", 2) == ["12 minutes"]
    assert spans("도림시 공공도서관의 장서는 284,000권이다.", 2) == ["284,000권"]
    assert spans("배 수확은 9월 22일에 시작한다.", 2) == ["9월 22일"]
    assert spans("The committee approved the minutes.", 2) == []


def test_questions_are_tidied_or_refused() -> None:
    sentence = "The zorvex pump is serviced every 41 days by the night shift."
    clean = qw.clean_question
    assert clean('1. "How often is the pump serviced?"\nmore', sentence, "41 days") == (
        "How often is the pump serviced?"
    )
    assert clean("What is the answer to this question?", sentence, "41 days") is None
    assert clean("Is the pump serviced every 41 days?", sentence, "41 days") is None
    assert clean("The pump is serviced often", sentence, None) is None
    assert clean("도서관의 장서는 몇 권인가", "도서관의 장서는 284,000권이다.", "284,000권") == (
        "도서관의 장서는 몇 권인가?"
    )


def test_support_needs_the_passage_to_hold_the_answer() -> None:
    text = PASSAGE.text
    assert qw.support("41 days", text) == 1.0
    assert qw.support("The pump is serviced every 41 days.", text) >= 0.8
    assert qw.support("It is serviced every 90 days.", text) == 0.0, "an invented number"
    assert qw.support("Marmalade is made from oranges in Seville.", text) < 0.3


def test_duplicates_are_dropped() -> None:
    dedupe = qw.Deduplicator()
    assert dedupe.is_new("How often is the pump serviced?", "41 days")
    assert not dedupe.is_new("how often is the pump serviced", "41 days")
    assert not dedupe.is_new("How often is the pump serviced?", "every 41 days"), "asked"
    assert dedupe.is_new("How often is the zorvex pump serviced?", "41 days")
    assert not dedupe.is_new("How often is the zorvex pump serviced now?", "41 days")
    assert dedupe.is_new("How often is the zorvex pump serviced now?", "every 41 days")


def test_extractive_rows_carry_their_page_and_passage() -> None:
    counts = qw.WritingCounts()
    rows = list(qw.rows_of_passage(PASSAGE, scripted(), request(), qw.Deduplicator(), counts))
    assert [(r.question, r.answer, r.page) for r in rows] == [
        ("How often is the zorvex pump serviced?", "41 days", 3),
        ("Who signs the service log?", "Ilse Varga", 4),
    ]
    assert all(r.passage == PASSAGE.text and r.section == "Maintenance" for r in rows)
    assert counts.kept == 2
    assert counts.as_dict()["supported_share"] == 1.0


def test_generated_answers_the_passage_does_not_support_are_dropped() -> None:
    counts = qw.WritingCounts()
    invented = scripted(from_passage="The pump is serviced every 90 days.")
    rows = list(
        qw.rows_of_passage(
            PASSAGE, invented, request(answers="generated"), qw.Deduplicator(), counts
        )
    )
    assert rows == [] and counts.answers == 2 and counts.supported == 0
    assert counts.as_dict()["supported_share"] == 0.0


def test_preference_pairs_reject_an_unsupported_closed_book_answer() -> None:
    counts = qw.WritingCounts()
    rows = list(
        qw.rows_of_passage(
            PASSAGE, scripted(), request(preference_pairs=True), qw.Deduplicator(), counts
        )
    )
    assert [r.rejected_answer for r in rows] == ["It is serviced every 90 days."] * 2
    knows = scripted(closed_book="Every 41 days, and Ilse Varga signs the log.")
    counts = qw.WritingCounts()
    none = list(
        qw.rows_of_passage(
            PASSAGE, knows, request(preference_pairs=True), qw.Deduplicator(), counts
        )
    )
    assert none == [] and counts.pairs == 0, "a right closed-book answer makes no pair"


class Stopper:
    """A job's control that asks to stop before the `stop_at`-th passage."""

    def __init__(self, stop_at: int | None) -> None:
        self.stop_at = stop_at
        self.checks = 0

    def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        pass

    def metrics(self, values: dict[str, Any]) -> None:
        pass

    def stop_needs(self, seconds: float) -> None:
        pass

    def cancelled(self) -> bool:
        return self.stop_at is not None and self.checks >= self.stop_at

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise Cancelled()
        self.checks += 1


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.start(settings)
    yield rt
    rt.close()


def test_a_resumed_job_goes_on_after_its_last_passage(runtime: Runtime, tmp_path: Path) -> None:
    passages = [PASSAGE.model_copy(update={"chunk_id": f"c{n}"}) for n in range(3)]
    dataset = runtime.datasets.create_generated(
        "pumps", DatasetFormat.chat, "knowledge base kb", {"generated": {"val_ratio": 0.0}}
    )
    config = DocumentDatasetJobConfig(
        knowledge_base="kb", dataset_id=dataset.id, kb_id="k", model="m", phrasings=1
    )
    model = scripted()
    with pytest.raises(Cancelled):
        write_dataset(Stopper(1), config, passages, model, runtime.drafts, tmp_path)
    assert runtime.drafts.written(dataset.id) == 2
    asked = len(model.calls)
    result = write_dataset(Stopper(None), config, passages, model, runtime.drafts, tmp_path)
    assert len(model.calls) == 3 * asked, "two passages left; the finished one not again"
    assert result["rows"] == 2 and result["duplicates"] == 4, "the same passage again: dups"
    page = runtime.drafts.page(dataset.id)
    assert page.counts.pending == 2 and page.total == 2
    info = runtime.datasets.get(dataset.id)
    assert info.stats["generated"]["status"] == "review"
    runtime.drafts.review(
        dataset.id, DraftReview(status=DraftStatus.accepted, ids=[page.rows[0].id])
    )
    examples = list(runtime.datasets.examples(dataset.id))
    assert examples == [
        {
            "messages": [
                {"role": "user", "content": page.rows[0].question},
                {"role": "assistant", "content": page.rows[0].answer},
            ]
        }
    ]


def test_accepted_pairs_publish_as_preference_examples(runtime: Runtime) -> None:
    dataset = runtime.datasets.create_generated(
        "pairs", DatasetFormat.preference, "knowledge base kb", {"generated": {"val_ratio": 0.0}}
    )
    rows = list(
        qw.rows_of_passage(
            PASSAGE, scripted(), request(preference_pairs=True), qw.Deduplicator(),
            qw.WritingCounts(),
        )
    )  # fmt: skip
    runtime.drafts.add(dataset.id, rows)
    first = runtime.drafts.page(dataset.id).rows[0]
    runtime.drafts.edit(dataset.id, first.id, DraftEdit(rejected_answer="Every 90 days."))
    assert list(runtime.datasets.examples(dataset.id)) == [
        {
            "prompt": [{"role": "user", "content": "How often is the zorvex pump serviced?"}],
            "chosen": [{"role": "assistant", "content": "41 days"}],
            "rejected": [{"role": "assistant", "content": "Every 90 days."}],
        }
    ]
    assert runtime.datasets.get(dataset.id).rows_train == 1
