"""Ruled tables in scanned pages: the grid found in the image (merged cells included),
and a scanned PDF of known tables read back as Markdown tables by the real OCR engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from aift.rag.extract import pdf_pages
from aift.rag.scan_tables import find_tables
from tests.unit.test_document_formats import ruled_table


def drawn_grid() -> Image.Image:
    """A page image with some text lines and a 4-row, 3-column grid whose header row's
    last two cells are one merged cell."""
    image = Image.new("L", (1600, 2200), 255)
    draw = ImageDraw.Draw(image)
    for row in range(3):
        draw.rectangle((150, 150 + 60 * row, 1100, 170 + 60 * row), fill=0)  # "text"
    xs, ys = [200, 600, 1000, 1400], [500, 580, 660, 740, 820]
    for y in ys:
        draw.line((xs[0], y, xs[-1], y), fill=0, width=3)
    for x in xs:
        top = ys[1] if x == xs[2] else ys[0]  # no ruling between the merged header cells
        draw.line((x, top, x, ys[-1]), fill=0, width=3)
    return image


def test_a_drawn_grid_is_found_with_its_rows_columns_and_merged_cell() -> None:
    ((box, grid),) = find_tables(drawn_grid())
    x0, top, x1, bottom = box
    assert abs(x0 - 200) < 8 and abs(x1 - 1400) < 8 and abs(top - 500) < 8 and abs(bottom - 820) < 8
    assert len(grid.ys) == 5 and len(grid.xs) == 4
    assert grid.cells[0] == [(0, 0), (1, 2)]  # the header's second cell spans two columns
    assert all(row == [(0, 0), (1, 1), (2, 2)] for row in grid.cells[1:])


def test_a_page_of_text_without_rulings_has_no_table() -> None:
    image = Image.new("L", (1600, 2200), 255)
    draw = ImageDraw.Draw(image)
    for row in range(20):
        draw.rectangle((150, 150 + 60 * row, 1400, 170 + 60 * row), fill=0)
    assert find_tables(image) == []


@pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract is installed by make setup"
)
def test_a_scanned_table_is_read_back_as_a_markdown_table(tmp_path: Path) -> None:
    import pypdfium2 as pdfium
    from fpdf import FPDF

    from aift.rag.ocr import load_ocr

    rows = [
        ["Part", "Shelf", "Count"],
        ["valve-17", "B4", "312"],
        ["pump-9", "C1", "48"],
        ["relay-3", "A7", "905"],
    ]
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, "Stock counted on Monday, before the delivery.")
    pdf.ln(4)
    ruled_table(pdf, rows)
    pdf.ln(4)
    pdf.multi_cell(0, 8, "Counted by the night shift.")
    pdf.output(str(tmp_path / "typed.pdf"))
    page = pdfium.PdfDocument(str(tmp_path / "typed.pdf"))[0]
    scan = page.render(scale=200 / 72).to_pil().convert("L")
    scan.save(tmp_path / "scanned.pdf", resolution=200)

    engine = load_ocr("auto", ["en"])
    (read,) = pdf_pages(tmp_path / "scanned.pdf", None, lambda: engine)
    assert read.ocr
    table = "\n".join(
        ["| Part | Shelf | Count |", "|---|---|---|"] + [f"| {' | '.join(r)} |" for r in rows[1:]]
    )
    assert table in read.text
    before, after = read.text.split(table)
    assert "Stock counted on Monday" in before and "night shift" in after
