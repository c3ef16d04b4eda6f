"""Text per page: pypdfium2's text layer, OCR for pages without a usable one; pypdf for
PDFs pdfium refuses (one library does not decide alone what is corrupt).

Runs inside the parser process (`parser_process.py`), never in the server or the job's
own process, so a hostile file can be stopped by killing that process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aift.rag.filetypes import PDF

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import pypdfium2 as pdfium

    from aift.rag.ocr import OcrEngine
    from aift.rag.pdf_layout import LaidOutPage
    from aift.rag.pdf_lines import Line
    from aift.rag.pdf_tables import PdfTables

MIN_TEXT_CHARS = 16  # fewer visible characters than this: the page is treated as scanned
IMAGE_COVERAGE = 0.3  # images over this share of a page with some text: OCR them too
MIN_IMAGE_SHARE = 0.05  # smaller images (logos, icons) are not read
RENDER_SCALE = 200 / 72  # 200 dpi for OCR
MAX_BOOKMARKS = 10_000  # more outline entries than this are not read


class ExtractionError(Exception):
    """A document that cannot be read; `kind` says which way (shown to the user)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class PageText:
    number: int  # 1-based
    text: str
    ocr: bool  # OCR ran on this page (its text layer was not usable)


def open_pdf(path: Path, password: str | None) -> pdfium.PdfDocument:
    """The PDF, or an ExtractionError saying it is encrypted, broken or empty."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path), password=password)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            if password:
                raise ExtractionError(
                    "needs_password", "The password given for this encrypted PDF is wrong."
                ) from None
            raise ExtractionError(
                "needs_password",
                "This PDF is encrypted: upload it again with its password "
                "(or retry the document with one).",
            ) from None
        raise _second_opinion(path, password, str(exc)) from None
    if len(pdf) == 0:
        pdf.close()
        raise ExtractionError("empty", "The PDF has no pages.")
    return pdf


class PypdfReadable(Exception):
    """pdfium refused the file but pypdf reads it: extract with pypdf instead."""

    def __init__(self, pages: int) -> None:
        super().__init__(f"{pages} pages readable by pypdf")
        self.pages = pages


def _second_opinion(path: Path, password: str | None, pdfium_error: str) -> Exception:
    """What to do with a PDF pdfium cannot open: pypdf's reading of it (no pages → empty,
    pages → read it with pypdf), or corrupt when neither library can."""
    try:
        from pypdf import PdfReader

        reader = PdfReader(str(path), strict=False, password=password)
        pages = len(reader.pages)
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on broken files
        return ExtractionError(
            "corrupt",
            f"The PDF cannot be read by pdfium ({pdfium_error}) nor by pypdf ({exc}); it is "
            "probably corrupt or truncated.",
        )
    if pages == 0:
        return ExtractionError("empty", "The PDF is valid but has no pages.")
    return PypdfReadable(pages)


def pypdf_pages(path: Path, password: str | None) -> Iterator[PageText]:
    """Each page's text as pypdf extracts it (no OCR: pypdf cannot render pages)."""
    from pypdf import PdfReader

    reader = PdfReader(str(path), strict=False, password=password)
    for index, page in enumerate(reader.pages):
        try:
            text = page.extract_text() or ""
        except Exception:  # noqa: BLE001 - one unreadable page does not sink the file
            text = ""
        yield PageText(index + 1, text, False)


def usable(text: str) -> bool:
    """A text layer worth keeping: enough visible characters, mostly not replacement marks."""
    visible = [c for c in text if not c.isspace()]
    if len(visible) < MIN_TEXT_CHARS:
        return False
    return sum(c == "\ufffd" for c in visible) / len(visible) < 0.3


def pdf_pages(
    path: Path,
    password: str | None,
    ocr: Callable[[], OcrEngine],
    progress: Callable[[], None] | None = None,
) -> Iterator[PageText]:
    """Each page's text; pages without a usable text layer go through `ocr()` (lazy).
    Text-layer pages are laid out (`pdf_layout`): reading order, furniture dropped,
    headings and tables marked. A page is given a few pages after it is read (the layout
    looks ahead); `progress` is called as each page is read."""
    try:
        pdf = open_pdf(path, password)
    except PypdfReadable:
        yield from pypdf_pages(path, password)
        return
    from aift.rag.pdf_layout import DocumentLayout
    from aift.rag.pdf_tables import PdfTables

    tables = PdfTables(path, password)
    layout = DocumentLayout(bookmarks(pdf, len(pdf)))
    try:
        for index in range(len(pdf)):
            for number, text, used_ocr in layout.push(_read_page(pdf, index, tables, ocr)):
                yield PageText(number, text, used_ocr)
            if progress is not None:
                progress()
        for number, text, used_ocr in layout.flush():
            yield PageText(number, text, used_ocr)
    finally:
        tables.close()
        pdf.close()


def _read_page(
    pdf: pdfium.PdfDocument, index: int, tables: PdfTables, ocr: Callable[[], OcrEngine]
) -> LaidOutPage:
    """A page's lines from its text layer, or its OCR text when the layer is unusable;
    a mixed page (a watermark or caption over a big picture of text) gets both."""
    from aift.rag.pdf_layout import LaidOutPage

    page = pdf[index]
    try:
        width, height = page.get_size()
        if page.get_rotation() in (90, 270):  # text boxes are in the unturned page's space
            width, height = height, width
        lines = _text_lines(page, index, tables, height)
        text = " ".join(line.text for line in lines)
        if not usable(text):
            read = scanned_page(page.render(scale=RENDER_SCALE).to_pil(), ocr())
            if len(read.strip()) > len(text.strip()):
                return LaidOutPage(index + 1, None, width, height, text=read, ocr=True)
            return LaidOutPage(index + 1, lines, width, height, ocr=True)
        regions = image_regions(page)
        if sum(share for _, share in regions) < IMAGE_COVERAGE:
            return LaidOutPage(index + 1, lines, width, height)
        image = page.render(scale=RENDER_SCALE).to_pil()
        found = [scanned_page(image.crop(box), ocr()).strip() for box, _ in regions]
        extra = "\n\n".join(f for f in found if f)
        return LaidOutPage(index + 1, lines, width, height, extra=extra, ocr=True)
    finally:
        page.close()


def scanned_page(image: Any, engine: OcrEngine) -> str:
    """A scanned page's text by OCR, its ruled tables as Markdown tables in place."""
    from aift.rag.scan_tables import page_with_tables

    try:
        with_tables = page_with_tables(image, engine)
    except Exception as exc:  # noqa: BLE001 - tables are a bonus: the page is still read
        log.warning("table detection failed on a scanned page: %s", exc)
        with_tables = None
    return with_tables if with_tables is not None else engine.read(image)


def _text_lines(page: pdfium.PdfPage, index: int, tables: PdfTables, height: float) -> list[Line]:
    """The page's text lines; each ruled table as one line holding its Markdown table,
    in place of the lines inside its box."""
    import pypdfium2.raw as pdfium_c

    from aift.rag.pdf_lines import Line, page_lines

    textpage = page.get_textpage()
    try:
        lines = page_lines(textpage, height)
    finally:
        textpage.close()
    if not usable(" ".join(line.text for line in lines)):
        return lines
    paths = sum(1 for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH], max_depth=1))
    for table in tables.of_page(index, paths):
        lines = [line for line in lines if not line.inside(table.box)]
        lines.append(Line(table.markdown, *table.box, 0.0, table=True))
    return lines


def bookmarks(pdf: pdfium.PdfDocument, pages: int) -> dict[int, list[tuple[int, str]]]:
    """The PDF's outline as (level, title) per 0-based page; none for an outline of fewer
    than two entries or of page labels ("Page 3")."""
    from aift.rag.pdf_layout import is_page_number

    found: dict[int, list[tuple[int, str]]] = {}
    try:
        for count, item in enumerate(pdf.get_toc(max_depth=6)):
            if count >= MAX_BOOKMARKS:
                break
            dest = item.get_dest()
            page = dest.get_index() if dest is not None else None
            title = " ".join((item.get_title() or "").split())
            if page is None or not 0 <= page < pages or not title:
                continue
            if is_page_number(title):
                continue
            found.setdefault(page, []).append((item.level + 1, title))
    except Exception:  # noqa: BLE001 - a broken outline is no outline; the text stays
        return {}
    return found if sum(len(v) for v in found.values()) >= 2 else {}


def image_regions(page: pdfium.PdfPage) -> list[tuple[tuple[int, int, int, int], float]]:
    """The page's images big enough to hold text, top to bottom: (pixel box at the OCR
    scale, share of the page they cover)."""
    import pypdfium2.raw as raw

    width, height = page.get_size()
    found = []
    for item in page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        left, bottom, right, top = item.get_bounds()
        left, right = max(0.0, left), min(width, right)
        bottom, top = max(0.0, bottom), min(height, top)
        share = (right - left) * (top - bottom) / (width * height) if width and height else 0
        if share >= MIN_IMAGE_SHARE:
            box = (
                int(left * RENDER_SCALE),
                int((height - top) * RENDER_SCALE),
                int(right * RENDER_SCALE),
                int((height - bottom) * RENDER_SCALE),
            )
            found.append((box, share))
    return sorted(found, key=lambda item: (item[0][1], item[0][0]))


def page_count(path: Path, content_type: str, password: str | None) -> int:
    if content_type != PDF:
        return 1
    try:
        pdf = open_pdf(path, password)
    except PypdfReadable as readable:
        return readable.pages
    try:
        return len(pdf)
    finally:
        pdf.close()
