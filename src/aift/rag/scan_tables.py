"""Ruled tables in scanned pages: found in the page image by their drawn lines (OpenCV
morphology), each cell read by the page's OCR engine, kept as a Markdown table where
the table stands — the text above it, the table, the text below.

The grid: long horizontal and vertical strokes are kept by opening the inked image with
long thin kernels; a cluster of them that holds at least two rows and two columns is a
table. A cell whose left border is missing in its row continues the cell before (a
merged cell, its text repeated in each column it spans).

All cells of a table are read in one OCR call: their crops are stacked one above another
on a white canvas, and each recognised line belongs to the cell whose band it falls in —
one tesseract run per table instead of one per cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aift.rag.documents.tables import markdown_table

if TYPE_CHECKING:
    from aift.rag.ocr import OcrEngine

MIN_LINE_SHARE = 1 / 25  # a ruling is at least this share of the page's width or height
MIN_TABLE_SHARE = 0.15  # a table spans at least this share of the page's width
BORDER = 4  # pixels trimmed off each side of a cell: its rulings
GAP = 24  # white pixels between stacked cells


@dataclass
class _Grid:
    ys: list[int]  # row rulings, top to bottom
    xs: list[int]  # column rulings, left to right
    cells: list[list[tuple[int, int]]]  # per row: (first column, last column) of each cell


def _ink(image: Any) -> Any:
    import cv2
    import numpy as np

    gray = np.asarray(image.convert("L"))
    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return ink


def _rulings(ink: Any) -> tuple[Any, Any]:
    """The horizontal and the vertical strokes of the image (long thin runs of ink)."""
    import cv2

    height, width = ink.shape
    across = cv2.getStructuringElement(cv2.MORPH_RECT, (max(int(width * MIN_LINE_SHARE), 10), 1))
    down = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(height // 80, 10)))
    return cv2.morphologyEx(ink, cv2.MORPH_OPEN, across), cv2.morphologyEx(
        ink, cv2.MORPH_OPEN, down
    )


def _positions(profile: Any, threshold: float) -> list[int]:
    """Centres of the runs of `profile` at or above `threshold` (one per ruling)."""
    found, start = [], None
    for i, value in enumerate([*profile.tolist(), 0]):
        if value >= threshold and start is None:
            start = i
        elif value < threshold and start is not None:
            found.append((start + i - 1) // 2)
            start = None
    return found


def _grid(horizontal: Any, vertical: Any, box: tuple[int, int, int, int]) -> _Grid | None:
    """Rows, columns and merged cells of the grid inside `box`, or None when it is no
    table (fewer than two rows or two columns)."""
    x0, y0, x1, y1 = box
    across, down = horizontal[y0:y1, x0:x1] > 0, vertical[y0:y1, x0:x1] > 0
    ys = _positions(across.sum(axis=1), 0.5 * (x1 - x0))
    xs = _positions(down.sum(axis=0), 0.25 * (y1 - y0))
    if len(ys) < 3 or len(xs) < 3:
        return None
    cells = []
    for top, bottom in zip(ys, ys[1:], strict=False):
        row: list[tuple[int, int]] = [(0, 0)]
        for c in range(1, len(xs) - 1):
            x = xs[c]
            border = down[top + BORDER : bottom - BORDER, max(x - 3, 0) : x + 4].any(axis=1)
            if border.size and border.mean() >= 0.6:
                row.append((c, c))
            else:  # no ruling here in this row: the cell goes on
                row[-1] = (row[-1][0], c)
        cells.append(row)
    return _Grid([y + y0 for y in ys], [x + x0 for x in xs], cells)


def find_tables(image: Any) -> list[tuple[tuple[int, int, int, int], _Grid]]:
    """The ruled grids of a page image, top to bottom."""
    import cv2

    ink = _ink(image)
    horizontal, vertical = _rulings(ink)
    joined = cv2.dilate(
        cv2.bitwise_or(horizontal, vertical), cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
    )
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined)
    found = []
    for label in range(1, count):
        x, y, w, h = (int(v) for v in stats[label][:4])
        if w < MIN_TABLE_SHARE * ink.shape[1] or h < 2 * BORDER * 4:
            continue
        grid = _grid(horizontal, vertical, (x, y, x + w, y + h))
        if grid is not None:
            found.append(((x, y, x + w, y + h), grid))
    return sorted(found, key=lambda item: item[0][1])


def read_table(image: Any, grid: _Grid, ocr: OcrEngine) -> list[list[str]]:
    """Each cell's text, read in one OCR call over the stacked cell crops."""
    from PIL import Image

    crops, spans = [], []
    for r, row in enumerate(grid.cells):
        for first, last in row:
            box = (
                grid.xs[first] + BORDER,
                grid.ys[r] + BORDER,
                grid.xs[last + 1] - BORDER,
                grid.ys[r + 1] - BORDER,
            )
            crop = image.crop(box)
            if box[2] > box[0] and box[3] > box[1] and _has_ink(crop):
                crops.append(((r, first, last), crop))
    texts: dict[tuple[int, int, int], list[str]] = {}
    if crops:
        width = max(crop.width for _, crop in crops) + 2 * GAP
        height = sum(crop.height + GAP for _, crop in crops) + GAP
        canvas = Image.new("L", (width, height), 255)
        y = GAP
        for key, crop in crops:
            canvas.paste(crop.convert("L"), (GAP, y))
            spans.append((y - GAP // 2, y + crop.height + GAP // 2, key))
            y += crop.height + GAP
        for (_, top, _, bottom), text in ocr.lines(canvas):
            middle = (top + bottom) / 2 * canvas.height
            cell = next((k for a, b, k in spans if a <= middle < b), None)
            if cell is not None and text.strip():
                texts.setdefault(cell, []).append(text.strip())
    rows = []
    for r, row in enumerate(grid.cells):
        cells: list[str] = []
        for first, last in row:
            cells += [" ".join(texts.get((r, first, last), []))] * (last - first + 1)
        rows.append(cells)
    return rows


def _has_ink(crop: Any) -> bool:
    import numpy as np

    gray = np.asarray(crop.convert("L"))
    return bool((gray < 128).mean() > 0.002)


def page_with_tables(image: Any, ocr: OcrEngine) -> str | None:
    """The page's text with its ruled tables as Markdown tables in place (the bands
    between tables read as text), or None when the page has no table. A grid most of
    whose cells read empty is not a table (`pdf_tables.is_table`)."""
    from aift.rag.pdf_tables import is_table

    tables = []
    for box, grid in find_tables(image):
        rows = read_table(image, grid, ocr)
        if is_table([list(row) for row in rows]):
            tables.append((box, rows))
    if not tables:
        return None
    parts, above = [], 0
    for (_, top, _, bottom), rows in tables:
        if top - above > 2 * BORDER:
            parts.append(ocr.read(image.crop((0, above, image.width, top))))
        parts.append(markdown_table(rows))
        above = bottom
    if image.height - above > 2 * BORDER:
        parts.append(ocr.read(image.crop((0, above, image.width, image.height))))
    return "\n\n".join(p.strip() for p in parts if p.strip())
