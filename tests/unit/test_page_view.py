"""Finding a cited passage on its page: word matching, line boxes, OCR lines."""

from __future__ import annotations

from aift.rag.page_view import locate, merge_line_boxes, ocr_boxes
from tests.unit.test_document_formats import ruled_table

PAGE = (
    "Results\r\nThe gull colony grew by 12 % in 2023.\r\nNesting moved to the "
    "northern cliffs, where the\r\nwind is weaker. The gull colony is counted each spring."
)


def test_a_passage_is_found_across_line_breaks_and_spacing() -> None:
    passage = "Nesting moved to the northern cliffs,  where the wind is weaker."
    ranges = locate(PAGE, passage)
    assert len(ranges) == 1
    start, end = ranges[0]
    assert PAGE[start:end] == "Nesting moved to the northern cliffs, where the\r\nwind is weaker"


def test_coincidental_short_matches_are_ignored() -> None:
    assert locate(PAGE, "the of the and a the") == []
    assert locate(PAGE, "") == [] and locate("", "gull") == []
    assert locate(PAGE, "colony") != []  # a one-word passage may match one word


def test_the_passage_in_context_picks_the_right_repeat() -> None:
    ranges = locate(PAGE, "wind is weaker. The gull colony is counted")
    assert [PAGE[a:b] for a, b in ranges] == ["wind is weaker. The gull colony is counted"]


def test_character_boxes_merge_into_lines() -> None:
    chars = [(0.10, 0.20, 0.12, 0.22), (0.12, 0.20, 0.14, 0.22), (0.10, 0.25, 0.13, 0.27)]
    assert merge_line_boxes(chars) == [(0.10, 0.20, 0.14, 0.22), (0.10, 0.25, 0.13, 0.27)]


def test_ocr_lines_holding_the_passage_are_returned() -> None:
    lines = [
        ((0.1, 0.1, 0.9, 0.12), "Annual report"),
        ((0.1, 0.2, 0.9, 0.22), "Chlorine dosing at the"),
        ((0.1, 0.23, 0.9, 0.25), "plant stays between 0.6 and 1.1 mg/L."),
        ((0.1, 0.3, 0.9, 0.32), "Signed by the operator"),
    ]
    assert ocr_boxes(lines, "Chlorine dosing at the plant stays between") == [
        (0.1, 0.2, 0.9, 0.22),
        (0.1, 0.23, 0.9, 0.25),
    ]


def test_a_cited_table_row_is_highlighted_with_its_header_row(tmp_path) -> None:  # noqa: ANN001
    """A table row cited with its header (as row sentences are quoted) lights up the
    header row and that row on the page, not the rows between."""
    import pypdfium2 as pdfium
    from fpdf import FPDF

    from aift.rag.page_view import text_layer_boxes

    rows = [["Part", "Shelf", "Count"]] + [[f"part-{i}", f"C{i}", str(40 + i)] for i in range(8)]
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    ruled_table(pdf, rows)
    pdf.output(str(tmp_path / "stock.pdf"))
    page = pdfium.PdfDocument(str(tmp_path / "stock.pdf"))[0]
    boxes = text_layer_boxes(page, "| Part | Shelf | Count |\n| part-5 | C5 | 45 |")
    tops = sorted({round(box[1], 3) for box in boxes})
    assert len(tops) == 2 and len(boxes) == 6, boxes  # the header's cells and the row's

    def top_of(row: str) -> float:
        return min(box[1] for box in text_layer_boxes(page, row))

    assert top_of("| part-4 | C4 | 44 |") < tops[1] < top_of("| part-6 | C6 | 46 |")
    assert tops[0] < top_of("| part-0 | C0 | 40 |")
