"""PDF layout: reading order on two-column pages, running headers/footers and page
numbers dropped, headings found by font size, numbering and bookmarks — on line lists
and on real PDFs written with fpdf2 and read back through pdfium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aift.rag.chunking import chunk_pages
from aift.rag.extract import pdf_pages
from aift.rag.pdf_layout import (
    DocumentLayout,
    HeadingLevels,
    LaidOutPage,
    mark_headings,
    page_text,
    reading_order,
)
from aift.rag.pdf_lines import HYPHEN, Line

WIDTH, HEIGHT = 595.0, 842.0


def line(
    text: str, x0: float, top: float, x1: float, size: float = 10.0, bold: bool = False
) -> Line:
    return Line(text, x0, top, x1, top + size, size, bold)


def two_columns(interleaved: bool) -> list[Line]:
    """A full-width title, then two columns of four lines, then a full-width footer line."""
    left = [line(f"left {i}", 40, 100 + 14 * i, 280) for i in range(4)]
    right = [line(f"right {i}", 315, 100 + 14 * i, 555) for i in range(4)]
    body = (
        [x for pair in zip(left, right, strict=True) for x in pair] if interleaved else left + right
    )
    return [
        line("A title across the page", 40, 60, 555, 14),
        *body,
        line("closing words " * 5, 40, 200, 555),
    ]


@pytest.mark.parametrize("interleaved", [True, False])
def test_two_columns_are_read_left_column_first(interleaved: bool) -> None:
    ordered = [item.text for item in reading_order(two_columns(interleaved), WIDTH)]
    expected = [
        "A title across the page",
        *[f"left {i}" for i in range(4)],
        *[f"right {i}" for i in range(4)],
    ]
    assert ordered[:9] == expected
    assert ordered[9].startswith("closing words")


def test_one_column_keeps_rows_and_aligned_pieces_together() -> None:
    lines = [
        line("Name", 40, 100, 80),
        line("Value", 300, 100, 340),
        line("A paragraph line that runs from margin to margin, as body text does.", 40, 114, 555),
        line("pump", 40, 128, 80),
        line("42", 300, 128, 320),
    ]
    ordered = reading_order(lines, WIDTH)
    assert [item.text for item in ordered] == [item.text for item in lines]
    assert page_text(ordered).splitlines()[0] == "Name Value"


def test_a_word_broken_over_two_lines_is_joined() -> None:
    lines = [
        line(f"the main valve is dis{HYPHEN}", 40, 100, 300),
        line("connected first.", 40, 114, 200),
    ]
    assert page_text(lines) == "the main valve is disconnected first."


def test_headings_by_size_and_numbering_and_not_sentences() -> None:
    levels = HeadingLevels()
    lines = [
        line("3 Maintenance", 40, 60, 200, 18),
        line("3.2 Batteries", 40, 90, 200, 14),
        line("3.2.1 Charging", 40, 120, 200, 10, bold=True),
        line("Body text set in the body size goes on here.", 40, 140, 500),
        line("A big sentence is not a heading.", 40, 160, 400, 14),
        line("Caution", 40, 180, 100, 10, bold=True),  # bold, body size, not numbered
        line("42", 40, 200, 60, 18),  # no letters
    ]
    marked = mark_headings(lines, 10.0, levels)
    assert [item.heading for item in marked] == [1, 2, 3, 0, 0, 0, 0]
    text = page_text(marked)
    assert "# 3 Maintenance\n\n## 3.2 Batteries\n\n### 3.2.1 Charging" in text


def test_a_heading_wrapped_over_two_lines_is_one_heading() -> None:
    lines = [
        line("4 Euclidean and non-Euclidean", 40, 60, 400, 18),
        line("Geometry", 40, 80, 150, 18),
    ]
    marked = mark_headings(lines, 10.0, HeadingLevels())
    assert [(item.heading, item.text) for item in marked] == [
        (1, "4 Euclidean and non-Euclidean Geometry")
    ]


def test_bookmarks_mark_their_lines_and_missing_ones_open_the_page() -> None:
    levels = HeadingLevels({0: [(1, "Batteries"), (2, "Not on the page")]})
    lines = [
        line("Batteries are charged weekly.", 40, 60, 300),
        line("3.2 Batteries", 40, 90, 200, 12),
    ]
    marked = levels.bookmarked(0, lines)
    assert [(item.heading, item.text) for item in marked if item.heading] == [
        (2, "Not on the page"),
        (1, "3.2 Batteries"),  # the biggest line whose text is the title, numbering aside
    ]


def furnished_page(number: int, body: str) -> LaidOutPage:
    lines = [
        line("ACME Field Manual, revision 3", 40, 20, 250, 8),
        line(body, 40, 100, 500),
        line("A line of body text near the top", 40, 40, 500)
        if number == 2
        else line("x", 40, 300, 50),
        line(f"Page {number} of 5", 270, 810, 320, 8),
    ]
    return LaidOutPage(number, lines, WIDTH, HEIGHT)


def test_running_headers_footers_and_page_numbers_are_dropped() -> None:
    layout = DocumentLayout({})
    finished = []
    for number in range(1, 6):
        finished += layout.push(furnished_page(number, f"Body of page {number}."))
    finished += layout.flush()
    assert [number for number, _, _ in finished] == [1, 2, 3, 4, 5]
    for number, text, _ in finished:
        assert f"Body of page {number}." in text
        assert "ACME" not in text and "Page" not in text
    assert "A line of body text near the top" in finished[1][1]  # in the band, but not repeated


def test_one_page_keeps_its_header_but_not_its_page_number() -> None:
    layout = DocumentLayout({})
    (_, text, _), *_ = layout.push(furnished_page(1, "Only page.")) + layout.flush()
    assert "ACME Field Manual" in text and "Page 1" not in text


def write_manual(path: Path, bookmarks: bool) -> None:
    """Three pages: running header and footer, numbered headings at two sizes, and a
    two-column passage written line by line across both columns."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    for page in range(1, 4):
        pdf.add_page()
        pdf.set_font("helvetica", size=8)
        pdf.text(15, 10, "ACME Field Manual, revision 3")
        pdf.text(95, 290, f"Page {page}")
        pdf.set_font("helvetica", size=16)
        if bookmarks:
            pdf.set_y(20)
            pdf.start_section(f"Chapter {page}", level=0)
        pdf.text(15, 30, f"{page} Chapter {page}")
        pdf.set_font("helvetica", size=13)
        pdf.text(15, 45, f"{page}.1 Batteries")
        pdf.set_font("helvetica", size=10)
        for row in range(5):
            pdf.text(
                15, 60 + 5 * row, f"Left column sentence {page}{row} is about the pump and valve."
            )
            pdf.text(
                110, 60 + 5 * row, f"Right column sentence {page}{row} is about the relay and fuse."
            )
    pdf.output(str(path))


@pytest.mark.parametrize("bookmarks", [False, True])
def test_a_generated_manual_reads_in_order_with_sections(tmp_path: Path, bookmarks: bool) -> None:
    path = tmp_path / "manual.pdf"
    write_manual(path, bookmarks)
    read: list[int] = []
    pages = list(
        pdf_pages(
            path, None, ocr=lambda: pytest.fail("no OCR needed"), progress=lambda: read.append(1)
        )
    )
    assert [page.number for page in pages] == [1, 2, 3] and len(read) == 3
    for page in pages:
        n = page.number
        assert "ACME" not in page.text and f"Page {n}" not in page.text
        assert page.text.startswith(f"# {n} Chapter {n}\n\n## {n}.1 Batteries\n\n")
        sentences = [s for s in page.text.splitlines() if "column sentence" in s]
        assert sentences == [
            f"Left column sentence {n}{r} is about the pump and valve." for r in range(5)
        ] + [f"Right column sentence {n}{r} is about the relay and fuse." for r in range(5)]
    chunks = chunk_pages(
        [page.text for page in pages],
        lambda text: [m.span() for m in re.finditer(r"\S+", text)],
        60,
        10,
    )
    relay = next(c for c in chunks if "Right column sentence 21" in c.text)
    assert relay.section == "2 Chapter 2 › 2.1 Batteries"


def test_a_rotated_page_keeps_its_text(tmp_path: Path) -> None:
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    for row in range(8):
        pdf.text(20, 20 + 6 * row, f"Line {row} of a page shown turned a quarter, its text intact.")
    pdf.output(str(tmp_path / "upright.pdf"))
    writer = PdfWriter()
    for page in PdfReader(tmp_path / "upright.pdf").pages:
        writer.add_page(page.rotate(90))
    writer.write(tmp_path / "turned.pdf")
    (page,) = pdf_pages(tmp_path / "turned.pdf", None, ocr=lambda: pytest.fail("no OCR needed"))
    assert page.text.splitlines() == [
        f"Line {row} of a page shown turned a quarter, its text intact." for row in range(8)
    ]


def table_page(
    number: int, table: str, above: str | None = None, bottom: float = 800
) -> LaidOutPage:
    """A page holding a table from near its top to `bottom`, under a line of text."""
    lines = [Line(table, 40, 120 if above else 60, 555, bottom, 0.0, table=True)]
    if above:
        lines.insert(0, line(above, 40, 100, 500))
    return LaidOutPage(number, lines, WIDTH, HEIGHT)


def test_a_table_going_on_over_the_next_page_takes_its_header_along() -> None:
    first = "| part | stock |\n|---|---|\n| valve | 3 |\n| pump | 4 |"
    layout = DocumentLayout({})
    pages = [
        table_page(1, first, above="Stock counted this week."),
        table_page(2, "| relay | 5 |\n|---|---|\n| fuse | 6 |"),  # goes on, no header
        table_page(3, "| part | stock |\n|---|---|\n| cable | 7 |"),  # header repeated by the PDF
        table_page(4, "| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |", above="Another table."),
    ]
    texts = [text for page in pages for _, text, _ in layout.push(page)] + [
        t for _, t, _ in layout.flush()
    ]
    assert texts[1] == "| part | stock |\n|---|---|\n| relay | 5 |\n| fuse | 6 |"
    assert texts[2] == "| part | stock |\n|---|---|\n| cable | 7 |"
    assert texts[3].endswith("| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |")


def test_a_table_ending_mid_page_is_not_continued_by_the_next_pages_table() -> None:
    layout = DocumentLayout({})
    pages = [
        table_page(1, "| part | stock |\n|---|---|\n| valve | 3 |", bottom=400),
        table_page(2, "| shelf | row |\n|---|---|\n| B2 | 4 |"),
    ]
    texts = [text for page in pages for _, text, _ in layout.push(page)] + [
        t for _, t, _ in layout.flush()
    ]
    assert texts[1] == "| shelf | row |\n|---|---|\n| B2 | 4 |"


def test_a_repeated_line_close_above_the_body_is_body_text() -> None:
    """Every page opens with "Section N. The parts below …" right above its text: it
    repeats like a running header but sits in the body, so it stays."""
    layout = DocumentLayout({})
    finished = []
    for number in range(1, 6):
        lines = [
            line(f"Section {number}. The parts below were counted this week.", 40, 30, 400),
            line(
                f"The {['pump', 'valve', 'relay', 'fuse', 'motor'][number - 1]} is checked first.",
                40,
                42,
                500,
            ),
        ]
        finished += layout.push(LaidOutPage(number, lines, WIDTH, HEIGHT))
    finished += layout.flush()
    assert all(text.startswith(f"Section {number}. The parts") for number, text, _ in finished)


def test_merged_cells_of_a_ruled_pdf_table_repeat_their_text(tmp_path: Path) -> None:
    """A header cell spanning two columns and a cell spanning two rows: each column and
    row they cover holds their text, so every row still says what its cells are."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    with pdf.table() as grid:
        head = grid.row()
        head.cell("Part")
        head.cell("Stock", colspan=2)
        sub = grid.row()
        sub.cell("")
        sub.cell("east")
        sub.cell("west")
        first = grid.row()
        first.cell("valve", rowspan=2)
        first.cell("3")
        first.cell("4")
        second = grid.row()
        second.cell("5")
        second.cell("6")
    pdf.output(str(tmp_path / "merged.pdf"))
    (page,) = pdf_pages(tmp_path / "merged.pdf", None, ocr=lambda: pytest.fail("no OCR needed"))
    rows = ["| Part | Stock | Stock |", "|---|---|---|", "|  | east | west |"]
    assert "\n".join([*rows, "| valve | 3 | 4 |", "| valve | 5 | 6 |"]) in page.text
