"""Office files, spreadsheets, web pages and e-books made here with their own libraries
(python-docx, python-pptx, openpyxl, ebooklib) are recognised by their bytes and read
into pages that keep headings, reading order and tables (as Markdown tables)."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from aift.rag import filetypes
from aift.rag.documents import document_pages, sheets

PARTS = [("Battery", "Volts", "Hours"), ("AA", "1.5", "8"), ("Li-ion 18650", "3.7", "12")]


def read(path: Path, name: str | None = None) -> tuple[str, list[str]]:
    kind = filetypes.detect(path, name or path.name)
    return kind, [page.text for page in document_pages(path, kind)]


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("1 Safety", level=1)
    document.add_paragraph("Wear gloves near the charger.")
    document.add_heading("2 Maintenance", level=1)
    document.add_heading("2.1 Batteries", level=2)
    document.add_paragraph("Replace batteries every year.", style="List Bullet")
    table = document.add_table(rows=0, cols=3)
    for row in PARTS:
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = value
    document.add_paragraph("After the table.")
    document.save(str(path))
    return path


def test_a_word_file_is_read_by_sections_with_its_table_in_place(tmp_path: Path) -> None:
    kind, pages = read(make_docx(tmp_path / "manual.bin"), "manual.bin")
    assert kind == filetypes.DOCX, "judged by its parts, not its name"
    assert len(pages) == 2 and pages[0].startswith("# 1 Safety")
    second = pages[1]
    assert second.startswith("# 2 Maintenance\n\n## 2.1 Batteries")
    assert "- Replace batteries every year." in second
    assert "| Battery | Volts | Hours |\n|---|---|---|\n| AA | 1.5 | 8 |" in second
    assert second.index("| Li-ion 18650 | 3.7 | 12 |") < second.index("After the table.")


def test_a_deck_is_a_page_per_slide_with_title_text_tables_and_notes(tmp_path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Quarterly results"
    first.placeholders[1].text = "Revenue grew 12 %"
    first.notes_slide.notes_text_frame.text = "Mention the new plant."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Parts"
    shape = second.shapes.add_table(3, 3, Inches(1), Inches(2), Inches(6), Inches(2))
    for r, row in enumerate(PARTS):
        for c, value in enumerate(row):
            shape.table.cell(r, c).text = value
    deck.save(str(tmp_path / "deck.pptx"))
    kind, pages = read(tmp_path / "deck.pptx")
    assert kind == filetypes.PPTX and len(pages) == 2
    assert pages[0].startswith("# Quarterly results") and "Revenue grew 12 %" in pages[0]
    assert "Notes: Mention the new plant." in pages[0]
    assert pages[1].startswith("# Parts") and "| AA | 1.5 | 8 |" in pages[1]


def test_sheets_become_tables_in_row_groups_that_repeat_the_header(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Stock"
    book.active.append(["Item", "Count"])
    for i in range(sheets.ROWS_PER_PAGE + 5):
        book.active.append([f"item {i}", i])
    prices = book.create_sheet("Prices")
    prices.append(["Item", "Price", None, None])
    prices.append(["AA", 1.25])
    prices.append([None, None])
    prices["B3"] = "=B2*2"
    book.save(str(tmp_path / "stock.xlsx"))
    kind, pages = read(tmp_path / "stock.xlsx")
    stock, prices = pages[:-1], pages[-1]
    assert kind == filetypes.XLSX and len(stock) >= 2
    assert stock[0].startswith("## Sheet: Stock (rows 2–")
    for page in stock:
        assert page.count("| Item | Count |") == 1, "each page repeats the header"
        assert len(page) <= sheets.PAGE_CHARS + 60, "a page stays within a chunk"
    found = [f"| item {i} | {i} |" in "".join(stock) for i in range(sheets.ROWS_PER_PAGE + 5)]
    assert all(found), "every row once, on some page"
    assert prices.startswith("## Sheet: Prices") and "| AA | 1.25 |" in prices
    assert "| Item | Price |\n" in prices, "empty trailing columns dropped"
    (tmp_path / "stock.upload").write_bytes((tmp_path / "stock.xlsx").read_bytes())
    assert read(tmp_path / "stock.upload")[1] == pages, "a workbook is one whatever its name"


def test_csv_html_and_epub(tmp_path: Path) -> None:
    (tmp_path / "parts.csv").write_text('Battery;Volts\nAA;1.5\n"Li;ion";3.7\n')
    kind, pages = read(tmp_path / "parts.csv")
    assert kind == filetypes.CSV and "| Li;ion | 3.7 |" in pages[0]

    html = """<!DOCTYPE html><html><head><title>t</title><style>p{}</style></head><body>
      <nav>Home | About</nav><h1>Guide</h1><p>Intro <b>bold</b> text.</p>
      <h2>Parts</h2><table><tr><th>Battery</th><th colspan="2">Use</th></tr>
      <tr><td>AA</td><td>remote</td><td>clock</td></tr></table>
      <script>alert(1)</script><footer>© 2026</footer></body></html>"""
    (tmp_path / "guide.html").write_text(html)
    kind, pages = read(tmp_path / "guide.html")
    assert kind == filetypes.HTML and len(pages) == 1
    text = pages[0]
    assert "Intro bold text." in text and "# Guide" in text and "## Parts" in text
    assert "| Battery | Use | Use |" in text and "| AA | remote | clock |" in text
    assert "alert" not in text and "Home" not in text and "2026" not in text

    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("id1")
    book.set_title("Manual")
    chapters = []
    for i, body in enumerate(["<h1>Start</h1><p>Plug it in.</p>", "<h1>Care</h1><p>Dust it.</p>"]):
        chapter = epub.EpubHtml(title=f"c{i}", file_name=f"c{i}.xhtml", content=body)
        book.add_item(chapter)
        chapters.append(chapter)
    book.spine = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    epub.write_epub(str(tmp_path / "manual.epub"), book)
    kind, pages = read(tmp_path / "manual.epub")
    assert kind == filetypes.EPUB and pages == ["# Start\n\nPlug it in.", "# Care\n\nDust it."]


def test_unsupported_and_hostile_containers_are_refused_by_their_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filetypes, "MAX_UNPACKED_BYTES", 64 * 1024)  # 2 GiB in use
    (tmp_path / "old.doc").write_bytes(filetypes.OLE2 + b"\x00" * 600)
    with pytest.raises(filetypes.UnsupportedFile, match="old binary format"):
        filetypes.detect(tmp_path / "old.doc", "old.doc")
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as archive:
        archive.writestr("a.jpg", b"\xff\xd8")
    with pytest.raises(filetypes.UnsupportedFile, match="not a document"):
        filetypes.detect(tmp_path / "photos.zip", "photos.docx")
    with zipfile.ZipFile(tmp_path / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"")
        for i in range(3):
            archive.writestr(f"word/media/{i}.bin", b"\x00" * 32 * 1024)
    with pytest.raises(filetypes.UnsupportedFile, match="unpack to too much"):
        filetypes.detect(tmp_path / "bomb.docx", "bomb.docx")
    (tmp_path / "cut.docx").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(filetypes.UnsupportedFile, match="broken ZIP"):
        filetypes.detect(tmp_path / "cut.docx", "cut.docx")


def ruled_table(pdf: Any, rows: Sequence[Sequence[str]], **options: Any) -> None:
    """`rows` (the first the header) as a ruled table on an fpdf2 page."""
    with pdf.table(**options) as table:
        for row in rows:
            cells = table.row()
            for value in row:
                cells.cell(value)


def table_pdf(path: Path) -> Path:
    """Two pages: a ruled table between two paragraphs; then a plain text page."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Battery guide. The table below lists the parts we stock.")
    pdf.ln(4)
    ruled_table(pdf, PARTS, col_widths=(60, 30, 30))
    pdf.ln(4)
    pdf.multi_cell(0, 6, "Recycle old batteries at the front desk.")
    pdf.add_page()
    pdf.multi_cell(0, 6, "A page of prose without any table at all, long enough to count.")
    pdf.output(str(path))
    return path


def test_a_ruled_table_in_a_text_pdf_becomes_a_markdown_table_where_it_stands(
    tmp_path: Path,
) -> None:
    from aift.rag.extract import pdf_pages

    pages = [p.text for p in pdf_pages(table_pdf(tmp_path / "guide.pdf"), None, lambda: None)]
    first = pages[0]
    table = (
        "| Battery | Volts | Hours |\n|---|---|---|\n| AA | 1.5 | 8 |\n| Li-ion 18650 | 3.7 | 12 |"
    )
    assert table in first, first
    assert first.index("Battery guide") < first.index(table) < first.index("Recycle old")
    assert first.count("18650") == 1, "the table's text is not kept twice"
    assert "|" not in pages[1]


def test_figures_drawn_with_lines_are_not_tables() -> None:
    from aift.rag.pdf_tables import is_table

    assert not is_table([["", "x"], ["", ""]]), "a plot's frame"
    assert not is_table([["4\n2", ""], ["(cid:0) (cid:1)", "2 4 6 8"]])
    assert is_table([["Battery", "Volts"], ["AA", "1.5"], ["C", "1.5"]])


def test_each_table_row_is_a_sentence_that_carries_its_header() -> None:
    from aift.rag.attribution import Passage, source_sentences

    text = "Stock counted.\n\n| Part | Shelf |\n|---|---|\n| AA | B1 |\n| C | B2 |\n\nDone."
    sentences = source_sentences([Passage(1, text, 1, [])])
    assert [s.text for s in sentences] == [
        "Stock counted.",
        "| Part | Shelf |",
        "| Part | Shelf |\n| AA | B1 |",
        "| Part | Shelf |\n| C | B2 |",
        "Done.",
    ]
    row = sentences[3]
    assert text[row.start : row.end] == "| C | B2 |", "the span is the row alone"
