"""Documents other than PDFs, each read into "pages" a citation can name: a Word file's
or web page's sections, a deck's slides, a spreadsheet's sheets (in row groups), an
e-book's chapters, a text file whole. Tables stay tables (Markdown), headings stay
headings, so chunks and citations keep a document's structure.

Each reader takes a file already judged by its bytes (`aift.rag.filetypes.detect`) and
runs in the parser process, which bounds its time (a hostile file costs one document).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aift.rag import filetypes
from aift.rag.extract import PageText


def _text(path: Path) -> list[PageText]:
    """A text or Markdown file is one page."""
    return [PageText(1, path.read_text(encoding="utf-8"), False)]


def _readers() -> dict[str, Callable[[Path], list[PageText]]]:
    from aift.rag.documents.sheets import csv_pages, xlsx_pages
    from aift.rag.documents.slides import pptx_pages
    from aift.rag.documents.web import epub_pages, html_pages
    from aift.rag.documents.word import docx_pages

    return {
        filetypes.TEXT: _text,
        filetypes.MARKDOWN: _text,
        filetypes.DOCX: docx_pages,
        filetypes.PPTX: pptx_pages,
        filetypes.XLSX: xlsx_pages,
        filetypes.CSV: csv_pages,
        filetypes.HTML: html_pages,
        filetypes.EPUB: epub_pages,
    }


def document_pages(path: Path, content_type: str) -> list[PageText]:
    """The pages of a non-PDF document of a supported type."""
    return _readers()[content_type](path)
