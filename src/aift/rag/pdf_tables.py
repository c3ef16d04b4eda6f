"""Ruled tables of text PDFs, found by pdfplumber and kept as Markdown tables in the
page's text, where they stand: the text above a table, the table, the text below.

Only ruled tables (drawn cell borders) are looked for — text-aligned "tables" are too
often prose in columns — and a found grid counts as a table only when most of its
cells hold text (figures and plots drawn with lines do not). A page with too few drawn
paths to hold a grid is not handed to pdfplumber at all (it is the slow part).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aift.rag.documents.tables import markdown_table

log = logging.getLogger(__name__)

MIN_PATHS = 4  # a ruled grid of 2×2 cells needs at least this many drawn paths
MIN_FILLED_SHARE = 0.6
MIN_FILLED_CELLS = 4


@dataclass
class FoundTable:
    """A table on a page: its box (x0, top, x1, bottom; points from the top-left) and
    its rows as a Markdown table."""

    box: tuple[float, float, float, float]
    markdown: str


def is_table(rows: list[list[str | None]]) -> bool:
    """A grid of at least 2×2 cells, most of them holding readable text."""
    width = max((len(row) for row in rows), default=0)
    filled = [c for row in rows for c in row if c and c.strip()]
    if len(rows) < 2 or width < 2 or len(filled) < MIN_FILLED_CELLS:
        return False
    if len(filled) / (len(rows) * width) < MIN_FILLED_SHARE:
        return False
    return sum("(cid:" in cell for cell in filled) <= 0.2 * len(filled)  # unmapped glyphs


class PdfTables:
    """The ruled tables of one PDF, page by page (pdfplumber opened on first use; each
    page's parse freed after it, so a long PDF never sits in memory)."""

    def __init__(self, path: Path, password: str | None) -> None:
        self.path = path
        self.password = password
        self._pdf: Any = None
        self._failed = False

    def of_page(self, index: int, drawn_paths: int) -> list[FoundTable]:
        """The tables of page `index` (0-based), top to bottom; none when the page has
        too few drawn paths, or when pdfplumber cannot read it (never fatal)."""
        if drawn_paths < MIN_PATHS or self._failed:
            return []
        try:
            page = self._open().pages[index]
            try:
                return self._tables(page)
            finally:
                page.close()
        except Exception as exc:  # noqa: BLE001 - tables are a bonus: the text stays
            log.warning("table detection failed on page %d of %s: %s", index + 1, self.path, exc)
            self._failed = True
            return []

    def _open(self) -> Any:
        if self._pdf is None:
            import pdfplumber

            self._pdf = pdfplumber.open(str(self.path), password=self.password or "")
        return self._pdf

    @staticmethod
    def _tables(page: Any) -> list[FoundTable]:
        found = []
        for table in page.find_tables():
            rows = table.extract()
            if is_table(rows):
                found.append(FoundTable(tuple(table.bbox), markdown_table(rows)))
        return sorted(found, key=lambda t: t.box[1])

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None
