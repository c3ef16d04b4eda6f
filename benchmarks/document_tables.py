"""Tables in documents: do they come back as tables? Generated documents (English and
Korean) holding known tables between paragraphs are written as a text PDF (ruled
tables, fpdf2), a Word file, an Excel workbook and an HTML page, read back through
aift's readers (`aift.rag.extract.pdf_pages`, `aift.rag.documents.document_pages`), and
every Markdown table found is parsed back into cells.

- cell accuracy: the share of known cells found at their row and column in the table
  read back in the same position (tables are matched in order);
- text recall: the share of known cells whose text appears anywhere on the page — what
  the text layer alone (pdfium, before tables were read) gives a retriever;
- PDF parse time per page with table detection and with the text layer alone;
- the same PDF as a clean 200 dpi scan: OCR alone, and OCR with its ruled tables found
  in the image (OpenCV) and read cell by cell.

Run: .venv/bin/python benchmarks/document_tables.py
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from fictional_documents import korean_font  # noqa: E402

from aift.rag import filetypes, pdf_tables  # noqa: E402
from aift.rag.documents import document_pages  # noqa: E402
from aift.rag.extract import pdf_pages  # noqa: E402

WORDS = ["valve", "pump", "filter", "gasket", "sensor", "relay", "fuse", "cable", "motor"]
KOREAN = ["밸브", "펌프", "필터", "개스킷", "센서", "릴레이", "퓨즈", "케이블", "모터"]
Table = list[list[str]]


def make_tables(count: int, seed: int = 7) -> list[Table]:
    rng = random.Random(seed)
    tables = []
    for i in range(count):
        words = KOREAN if i % 2 else WORDS
        cols, rows = rng.randint(2, 5), rng.randint(3, 10)
        header = [f"{rng.choice(words)} {c + 1}" for c in range(cols)]
        body = [
            [f"{rng.choice(words)}-{rng.randint(10, 999)}" if c == 0 else str(rng.randint(1, 9999))
             for c in range(cols)]
            for _ in range(rows)
        ]  # fmt: skip
        tables.append([header, *body])
    return tables


def write_pdf(tables: list[Table], path: Path) -> None:
    from fpdf import FPDF, FontFace

    pdf = FPDF(format="A4")
    pdf.add_font("Nanum", fname=str(korean_font()))
    pdf.set_font("Nanum", size=10)
    for i, table in enumerate(tables):
        if i % 2 == 0:
            pdf.add_page()
        pdf.multi_cell(0, 6, f"Section {i + 1}. The parts below were counted this week.")
        pdf.ln(2)
        with pdf.table(headings_style=FontFace(emphasis=None)) as grid:
            for row in table:
                cells = grid.row()
                for value in row:
                    cells.cell(value)
        pdf.ln(4)
    pdf.output(str(path))


def write_docx(tables: list[Table], path: Path) -> None:
    import docx

    document = docx.Document()
    for i, table in enumerate(tables):
        document.add_heading(f"Section {i + 1}", level=1)
        document.add_paragraph("The parts below were counted this week.")
        grid = document.add_table(rows=0, cols=len(table[0]))
        for row in table:
            for cell, value in zip(grid.add_row().cells, row, strict=True):
                cell.text = value
    document.save(str(path))


def write_xlsx(tables: list[Table], path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for i, table in enumerate(tables):
        sheet = book.create_sheet(f"Count {i + 1}")
        for row in table:
            sheet.append(row)
    book.save(str(path))


def write_html(tables: list[Table], path: Path) -> None:
    parts = ["<!DOCTYPE html><html><body>"]
    for i, table in enumerate(tables):
        parts.append(f"<h1>Section {i + 1}</h1><p>The parts below were counted.</p><table>")
        for r, row in enumerate(table):
            tag = "th" if r == 0 else "td"
            parts.append("<tr>" + "".join(f"<{tag}>{v}</{tag}>" for v in row) + "</tr>")
        parts.append("</table>")
    path.write_text("".join(parts) + "</body></html>")


def tables_in(text: str) -> list[Table]:
    """The Markdown tables of a page's text, as cells."""
    found: list[Table] = []
    current: Table = []
    for line in text.splitlines() + [""]:
        if line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line[1:-1].split(" | ")]
            if not all(set(c) <= {"-"} for c in "".join(cells).split("|")):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def score(known: list[Table], pages: list[str]) -> tuple[float, float]:
    """(cell accuracy, text recall) of the pages against the known tables."""
    read = [t for page in pages for t in tables_in(page)]
    text = "\n".join(pages)
    cells = right = present = 0
    for i, table in enumerate(known):
        got = read[i] if i < len(read) else []
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                cells += 1
                right += r < len(got) and c < len(got[r]) and got[r][c] == value
                present += value in text
    return right / cells, present / cells


def engine_name() -> str:
    from aift.rag.ocr import load_ocr

    return load_ocr("auto", ["en", "ko"]).name


def scanned(typed: Path, scan: Path) -> dict[str, tuple[list[str], float]]:
    """The typed PDF rendered at 200 dpi into an image-only PDF (a clean scan), read by
    OCR alone (before) and with its ruled tables found and read cell by cell; per
    reading its pages and seconds per page."""
    import pypdfium2 as pdfium

    from aift.rag import scan_tables
    from aift.rag.ocr import load_ocr

    document = pdfium.PdfDocument(str(typed))
    images = [page.render(scale=200 / 72).to_pil().convert("L") for page in document]
    images[0].save(scan, save_all=True, append_images=images[1:], resolution=200)
    engine = load_ocr("auto", ["en", "ko"])
    found, result = scan_tables.find_tables, {}
    for label, finder in (("PDF scan, OCR only (before)", lambda image: []),
                          ("PDF scan, ruled tables read (OpenCV grid + OCR)", found)):  # fmt: skip
        scan_tables.find_tables = finder  # type: ignore[assignment]
        started = time.perf_counter()
        pages = [p.text for p in pdf_pages(scan, None, lambda: engine)]
        result[label] = (pages, (time.perf_counter() - started) / len(pages))
    scan_tables.find_tables = found
    return result


def main() -> None:
    tables = make_tables(20)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_pdf(tables, root / "tables.pdf")
        started = time.perf_counter()
        pages = [p.text for p in pdf_pages(root / "tables.pdf", None, lambda: None)]
        with_tables = (time.perf_counter() - started) / len(pages)
        pdf_tables.MIN_PATHS = 10**9  # the text layer alone: what aift read before
        started = time.perf_counter()
        plain = [p.text for p in pdf_pages(root / "tables.pdf", None, lambda: None)]
        text_only = (time.perf_counter() - started) / len(plain)
        rows.append(("PDF, text layer only (before)", *score(tables, plain)))
        rows.append(("PDF, ruled tables read (pdfplumber)", *score(tables, pages)))
        scans = scanned(root / "tables.pdf", root / "scanned.pdf")
        for label, (read, _) in scans.items():
            rows.append((label, *score(tables, read)))
        for name, write in (
            ("Word .docx", write_docx),
            ("Excel .xlsx", write_xlsx),
            ("HTML", write_html),
        ):
            path = root / f"tables{write.__name__.removeprefix('write_')}"
            write(tables, path)
            kind = filetypes.detect(path, path.name + "." + write.__name__[6:])
            read = [p.text for p in document_pages(path, kind)]
            rows.append((name, *score(tables, read)))
    lines = ["| document | cell accuracy | cell text found on the page |", "|---|---:|---:|"]
    lines += [f"| {name} | {acc:.1%} | {found:.1%} |" for name, acc, found in rows]
    body = (
        "20 generated tables (10 English, 10 Korean; 2–5 columns, 3–10 rows plus a header) "
        "between paragraphs.\n\n"
        + "\n".join(lines)
        + f"\n\nPDF parse time per page ({len(pages)} pages): {with_tables * 1000:.0f} ms with "
        f"table detection, {text_only * 1000:.0f} ms for the text layer alone. Scanned "
        f"pages ({engine_name()}): "
        + ", ".join(
            f"{seconds:.1f} s per page {label.split(', ')[1]}"
            for label, (_, seconds) in scans.items()
        )
        + ".\n"
    )
    print(body)
    record("Documents: tables read back as tables", body, "python benchmarks/document_tables.py")


if __name__ == "__main__":
    main()
