"""What an uploaded file really is, judged by its bytes, not its name."""

from __future__ import annotations

import codecs
from pathlib import Path

PDF = "application/pdf"
TEXT = "text/plain"
MARKDOWN = "text/markdown"
SUPPORTED = (PDF, TEXT, MARKDOWN)
_MARKDOWN_SUFFIXES = {".md", ".markdown"}


class UnsupportedFile(ValueError):
    """The file is neither a PDF nor UTF-8 text."""


def detect(path: Path, name: str) -> str:
    """The content type of a file: PDF by its magic bytes, text if it decodes as UTF-8."""
    with open(path, "rb") as handle:
        head = handle.read(1024)
    if b"%PDF-" in head:
        return PDF
    if not head:
        raise UnsupportedFile("the file is empty")
    if _is_text(path):
        return MARKDOWN if Path(name).suffix.lower() in _MARKDOWN_SUFFIXES else TEXT
    if Path(name).suffix.lower() == ".pdf":
        raise UnsupportedFile("named .pdf but it is not a PDF (no %PDF- header)")
    raise UnsupportedFile("unsupported type: upload PDF, plain text or Markdown files")


def _is_text(path: Path) -> bool:
    """UTF-8 without NUL bytes, read in blocks (uploads can be large)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                if b"\x00" in block:
                    return False
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def suffix(content_type: str) -> str:
    return {PDF: ".pdf", TEXT: ".txt", MARKDOWN: ".md"}[content_type]
