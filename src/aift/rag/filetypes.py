"""What an uploaded file really is, judged by its bytes, not its name: a PDF by its
header; a Word, PowerPoint or Excel file or an EPUB by the parts inside its ZIP
container (and a container that would unpack to too much is refused); HTML, CSV,
Markdown or plain text when it decodes as UTF-8."""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path

PDF = "application/pdf"
TEXT = "text/plain"
MARKDOWN = "text/markdown"
CSV = "text/csv"
HTML = "text/html"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EPUB = "application/epub+zip"
SUFFIXES = {
    PDF: ".pdf",
    TEXT: ".txt",
    MARKDOWN: ".md",
    CSV: ".csv",
    HTML: ".html",
    DOCX: ".docx",
    PPTX: ".pptx",
    XLSX: ".xlsx",
    EPUB: ".epub",
}
SUPPORTED = tuple(SUFFIXES)
_MARKDOWN_SUFFIXES = {".md", ".markdown"}
_CSV_SUFFIXES = {".csv", ".tsv"}
_HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
_OFFICE_PARTS = {"word/document.xml": DOCX, "ppt/presentation.xml": PPTX, "xl/workbook.xml": XLSX}
MAX_UNPACKED_BYTES = 2 * 1024**3  # what a container may unpack to (a ZIP bomb is refused)
MAX_PARTS = 50_000
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .doc, .xls, .ppt (before 2007)
WHAT_WORKS = (
    "upload PDF, Word (.docx), PowerPoint (.pptx), Excel (.xlsx), CSV, HTML, EPUB, Markdown or text"
)


class UnsupportedFile(ValueError):
    """The file is not of a supported type (or is a container that is too big unpacked)."""


def detect(path: Path, name: str) -> str:
    """The content type of a file, by its bytes (the name only tells text kinds apart)."""
    with open(path, "rb") as handle:
        head = handle.read(1024)
    suffix = Path(name).suffix.lower()
    if b"%PDF-" in head:
        return PDF
    if not head:
        raise UnsupportedFile("the file is empty")
    if head.startswith(b"PK\x03\x04"):
        return _container(path)
    if head.startswith(OLE2):
        raise UnsupportedFile(
            "an Office file of the old binary format (.doc, .xls, .ppt): save it as "
            ".docx, .xlsx or .pptx"
        )
    if _is_text(path):
        return _text_kind(head, suffix)
    if suffix == ".pdf":
        raise UnsupportedFile("named .pdf but it is not a PDF (no %PDF- header)")
    raise UnsupportedFile(f"unsupported type: {WHAT_WORKS} files")


def _text_kind(head: bytes, suffix: str) -> str:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html")) or (
        suffix in _HTML_SUFFIXES and start.startswith(b"<")
    ):
        return HTML
    if suffix in _CSV_SUFFIXES:
        return CSV
    return MARKDOWN if suffix in _MARKDOWN_SUFFIXES else TEXT


def _container(path: Path) -> str:
    """Which document a ZIP container holds; refused when it is none of them or would
    unpack to more than MAX_UNPACKED_BYTES."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            if len(parts) > MAX_PARTS or sum(p.file_size for p in parts) > MAX_UNPACKED_BYTES:
                raise UnsupportedFile("a ZIP container that would unpack to too much")
            names = {p.filename for p in parts}
            if "mimetype" in names and archive.read("mimetype").strip() == EPUB.encode():
                return EPUB
    except zipfile.BadZipFile as exc:
        raise UnsupportedFile(f"a broken ZIP container ({exc})") from None
    for part, kind in _OFFICE_PARTS.items():
        if part in names:
            return kind
    raise UnsupportedFile(f"a ZIP archive, not a document: {WHAT_WORKS} files")


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
    return SUFFIXES[content_type]
