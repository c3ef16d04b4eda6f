"""Retrieval evaluation files and relevance: formats, limits, row errors, matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from aift.errors import InvalidInput
from aift.rag.kb_evaluation import load_questions, relevant
from aift.rag.schemas import MAX_EVAL_QUESTIONS, EvalQuestion, SearchHit


def hit(document: str, pages: tuple[int, int], text: str = "") -> SearchHit:
    return SearchHit(
        chunk_id="c",
        document_id="d",
        document=document,
        page_start=pages[0],
        page_end=pages[1],
        chunk_index=0,
        text=text,
        fused_score=1.0,
    )


def test_jsonl_json_and_csv_read_alike(tmp_path: Path) -> None:
    rows = {
        "q.jsonl": '{"question": "a?", "document": "x.pdf", "page": 2}\n\n',
        "q.json": '[{"question": "a?", "document": "x.pdf", "page": 2}]',
        "q.csv": "question,document,page,answer\na?,x.pdf,2,\n",
    }
    for name, text in rows.items():
        (tmp_path / name).write_text(text)
        [question] = load_questions(tmp_path / name, name)
        assert (question.document, question.page, question.answer) == ("x.pdf", 2, None), name


def test_bad_files_say_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "a?"}\n{"question": "", "answer": "x"}\n')
    with pytest.raises(InvalidInput, match="2 of 2 rows.*row 1.*row 2"):
        load_questions(path, "q.jsonl")
    path.write_text("{not json")
    with pytest.raises(InvalidInput, match="JSON lines"):
        load_questions(path, "q.jsonl")
    path.write_text("")
    with pytest.raises(InvalidInput, match="no questions"):
        load_questions(path, "q.jsonl")
    path.write_text('{"question": "a?", "answer": "b"}\n' * (MAX_EVAL_QUESTIONS + 1))
    with pytest.raises(InvalidInput, match="limit"):
        load_questions(path, "q.jsonl")
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InvalidInput, match="UTF-8"):
        load_questions(path, "q.jsonl")


def test_relevance_by_document_page_or_answer_text() -> None:
    by_page = EvalQuestion(question="q", document="x.pdf", page=3)
    assert relevant(hit("x.pdf", (2, 4)), by_page)
    assert not relevant(hit("x.pdf", (4, 5)), by_page)
    assert not relevant(hit("y.pdf", (2, 4)), by_page)
    by_text = EvalQuestion(question="q", answer="0.6 and  1.1 mg/L")
    assert relevant(hit("any", (1, 1), "stays between 0.6 and\n1.1 MG/L daily"), by_text)
    assert not relevant(hit("any", (1, 1), "stays between 0.6 and 1.2 mg/L"), by_text)
