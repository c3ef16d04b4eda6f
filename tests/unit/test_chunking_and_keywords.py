"""Chunking by tokens with page spans and offsets; keyword terms for mixed scripts."""

from __future__ import annotations

import re

import pytest

from aift.rag.chunking import chunk_pages, join_pages
from aift.rag.filetypes import MARKDOWN, PDF, TEXT, UnsupportedFile, detect
from aift.rag.keywords import document_vector, query_vector, terms


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def test_chunks_keep_offsets_pages_and_overlap() -> None:
    pages = [" ".join(f"p1w{i}" for i in range(30)), " ".join(f"p2w{i}" for i in range(30))]
    text, starts = join_pages(pages)
    chunks = chunk_pages(pages, word_spans, size=20, overlap=5)
    assert all(c.tokens <= 20 for c in chunks)
    for chunk in chunks:
        assert text[chunk.char_start : chunk.char_end] == chunk.text
    assert chunks[0].page_start == chunks[0].page_end == 1
    assert chunks[-1].page_end == 2 and any(c.page_start == 1 and c.page_end == 2 for c in chunks)
    first, second = chunks[0].text.split(), chunks[1].text.split()
    assert first[-5:] == second[:5], "neighbours share the overlap"
    covered = {w for c in chunks for w in c.text.split()}
    assert covered == set(text.split()), "no word is lost"
    # every character's page: a chunk spanning two pages knows where the second begins
    spanning = next(c for c in chunks if c.page_start == 1 and c.page_end == 2)
    (offset,) = spanning.page_breaks
    assert spanning.text[offset:].startswith("p2w0") and spanning.char_start + offset == starts[1]
    assert all(c.page_breaks == [] for c in chunks if c.page_start == c.page_end)


def test_windows_end_at_a_sentence_break_when_one_is_near() -> None:
    text = "one two three four five six seven eight. nine ten eleven twelve"
    chunks = chunk_pages([text], word_spans, size=10, overlap=2)
    assert chunks[0].text.endswith("eight.")


def test_estimated_spans_are_shrunk_to_the_exact_count() -> None:
    text = " ".join(["word"] * 100)
    chunks = chunk_pages(
        [text], word_spans, size=20, overlap=0, measure=lambda t: 2 * len(t.split())
    )
    assert all(c.tokens <= 20 for c in chunks) and len(chunks) >= 10


def test_overlap_must_be_smaller_than_the_size() -> None:
    with pytest.raises(ValueError):
        chunk_pages(["a b c"], word_spans, size=4, overlap=4)


def test_korean_terms_include_bigrams_so_particles_do_not_hide_words() -> None:
    assert "서울" in terms("서울에서 회의가 열렸다")
    assert "서울" in terms("서울은 수도이다")
    assert terms("Hello, WORLD") == ["hello", "world"]
    assert "文本" in terms("中文文本")


def test_keyword_vectors_are_stable_and_saturate_repeats() -> None:
    indices, values = document_vector("apple apple apple banana")
    assert indices == sorted(indices) and len(indices) == 2
    apple = dict(zip(*document_vector("apple"), strict=True))
    many = dict(zip(*document_vector("apple " * 50), strict=True))
    key = next(iter(apple))
    assert many[key] > apple[key] and many[key] < 50 * apple[key]
    assert query_vector("apple banana")[0] == indices


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [(b"%PDF-1.7\n...", "x.bin", PDF), (b"hello", "a.txt", TEXT), (b"# T", "a.md", MARKDOWN)],
)
def test_type_is_judged_by_content(tmp_path, content: bytes, name: str, expected: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    assert detect(path, name) == expected


def test_a_non_pdf_named_pdf_is_refused(tmp_path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(UnsupportedFile, match="not a PDF"):
        detect(path, "scan.pdf")


def test_chunks_end_where_a_section_begins_and_carry_their_section_path() -> None:
    intro = " ".join(f"intro{i}" for i in range(14))
    batteries = " ".join(f"cell{i}" for i in range(30))
    pages = [
        f"# 1 Safety\n\n{intro}",
        f"# 2 Maintenance\n\n## 2.1 Batteries\n\n{batteries}",
    ]
    chunks = chunk_pages(pages, word_spans, size=20, overlap=5)
    first = chunks[0]
    assert first.text.endswith("intro13"), "the window stops before the next section"
    assert first.section == "1 Safety"
    second = chunks[1]
    assert second.text.startswith("# 2 Maintenance\n\n## 2.1 Batteries"), "no overlap across"
    assert second.section == "2 Maintenance › 2.1 Batteries"
    assert chunks[-1].section == "2 Maintenance › 2.1 Batteries" and "cell29" in chunks[-1].text
    assert chunk_pages(["plain words " * 30], word_spans, size=20, overlap=5)[0].section is None


@pytest.mark.parametrize("overlap", [0, 5])
def test_a_long_table_is_cut_at_row_ends_and_each_part_opens_with_its_header(overlap: int) -> None:
    from aift.rag.documents.tables import columns, markdown_table

    rows = [["part", "stock | spare", "shelf"]] + [
        [f"valve-{i}", str(i * 7), f"B{i}"] for i in range(60)
    ]
    text = (
        "# Stock\n\nThe parts counted this week:\n\n"
        + markdown_table(rows)
        + "\n\nEnd of the list."
    )
    chunks = chunk_pages([text], word_spans, size=40, overlap=overlap)
    assert len(chunks) > 3
    header = "| part | stock \\| spare | shelf |\n|---|---|---|\n"
    for chunk in chunks[1:]:
        if chunk.text.startswith("|"):
            assert chunk.text.startswith(header)  # the column names, then whole rows
            table = chunk.text.split("\n\n")[0].splitlines()
            assert all(columns(line) == 3 for line in table)  # whole rows only
            assert chunk.tokens <= 40
            assert text[chunk.char_start : chunk.char_end] == chunk.text.removeprefix(header)
    found = "".join(c.text.removeprefix(header) for c in chunks if c.text.startswith("|"))
    assert all(f"| valve-{i} | {i * 7} | B{i} |" in found + chunks[0].text for i in range(60))
