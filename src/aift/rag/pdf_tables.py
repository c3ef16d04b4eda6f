"""Ruled tables of text PDFs, found by pdfplumber and kept as Markdown tables in the
page's text, where they stand: the text above a table, the table, the text below.

A merged cell's text is repeated in each column and row it spans (`spanned`). Only
ruled tables (drawn cell borders) are looked for — text-aligned "tables" are too
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


Box = tuple[float, float, float, float]


def spanned(texts: list[list[str | None]], boxes: list[list[Box | None]]) -> list[list[str | None]]:
    """The cells pdfplumber leaves empty (None) under a merged cell, filled with that
    cell's text: from the left where a cell of the row reaches over this column (a column
    span), else from above where a cell of the column reaches down into this row."""
    xs = sorted({box[0] for row in boxes for box in row if box is not None})
    filled = [list(row) for row in texts]
    for r, row in enumerate(boxes):
        top = min((box[1] for box in row if box is not None), default=0.0)
        for c in range(min(len(row), len(xs), len(filled[r]))):
            if row[c] is not None:
                continue
            left = next((b for b in reversed(row[:c]) if b is not None), None)
            if left is not None and left[2] > xs[c] + 1:
                filled[r][c] = filled[r][row.index(left)]
                continue
            above = next((k for k in range(r - 1, -1, -1) if boxes[k][c] is not None), None)
            reach = boxes[above][c] if above is not None else None
            if above is not None and reach is not None and reach[3] > top + 1:
                filled[r][c] = filled[above][c]
    return filled


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
            rows = spanned(table.extract(), [row.cells for row in table.rows])
            if is_table(rows):
                found.append(FoundTable(tuple(table.bbox), markdown_table(rows)))
        return sorted(found, key=lambda t: t.box[1])

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None
