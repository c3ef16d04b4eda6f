"""A text PDF page's lines put in reading order, stripped of page furniture, with its
headings marked — the page text a chunk and its section path are made from.

- **Reading order.** Lines are read top to bottom; on a page of two columns (a vertical
  gutter no line crosses, with wide lines on both sides of it) the left column is read
  before the right, between the full-width lines (titles, tables) that cut across both.
- **Page furniture.** Lines in the top or bottom band of the page that repeat on several
  nearby pages (running headers and footers, counted with digits blurred so "Page 3" and
  "Page 4" are one), and lone page numbers there, are dropped.
- **Headings.** A short line in a font clearly bigger than the body's, or a numbered
  ("3.2 Batteries") bold line, is a heading; its level is the rank of its size among the
  heading sizes met so far, or comes from the PDF's bookmarks where it has them.

Headings and tables are written as Markdown, as the other formats' readers write them, so
the chunker finds section paths the same way for every format.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from aift.rag.documents.tables import columns
from aift.rag.pdf_lines import HYPHEN, Line

BAND = 0.08  # top and bottom share of the page where running headers and footers sit
REPEATS = 3  # a band line on this many pages of the window is furniture
BREAK_SHARE = 0.2  # a table runs on over a page break when it ends and starts this close to it
HEADING_RATIO = 1.15  # a heading's font is at least this much bigger than the body's
MAX_HEADING_CHARS = 150
MIN_COLUMN_LINES = 2
CUT_HEIGHTS = 0.8  # a blank band across both columns this many line heights high ends a stretch
MIN_COLUMN_WIDTH = 0.25  # a column's wide lines span at least this share of the page

_PAGE_NUMBER = re.compile(
    r"^(?:(?:page|p\.|쪽)\s*)?[-–—(]?\s*(?:#+|x{0,3}(?:ix|iv|v?i{0,3}))\s*[-–—)]?(?:\s*(?:of|/)\s*#+)?\s*(?:쪽|페이지)?$",
    re.I,
)
_NUMBER_PREFIX = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2}){0,4}|[A-Z]|[IVX]{1,4})[.)]?\s+")
_NUMBERED = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,4})\.?\s+\S")


def signature(text: str) -> str:
    """A line's text with digits blurred and case and spacing ignored."""
    return re.sub(r"\d+", "#", " ".join(text.lower().replace(HYPHEN, "-").split()))


def in_band(line: Line, height: float) -> bool:
    return line.bottom <= BAND * height or line.top >= (1 - BAND) * height


def is_page_number(text: str) -> bool:
    return bool(_PAGE_NUMBER.match(signature(text)))


# --- reading order ------------------------------------------------------------------


def gutter(lines: list[Line], width: float) -> float | None:
    """The x of the gutter between two columns, or None when the page has one column.
    The gutter is the x in the page's middle that most often lies in the gap between a
    line and its neighbour to the right on the same height; both sides must hold a
    column's worth of wide lines."""
    body = [line for line in lines if not line.table]
    gaps = []
    for line in body:
        beside = [
            o for o in body if o.x0 > line.x1 and min(o.bottom, line.bottom) > max(o.top, line.top)
        ]
        if beside:
            gaps.append((line.x1, min(o.x0 for o in beside)))
    if len(gaps) < MIN_COLUMN_LINES:
        return None
    counts = {
        x: sum(1 for a, b in gaps if a < x < b)
        for x in range(int(0.3 * width), int(0.7 * width) + 1, 2)
    }
    most = max(counts.values())
    if most < MIN_COLUMN_LINES:
        return None
    best = [x for x, count in counts.items() if count == most]
    x = float(best[len(best) // 2])
    left = [line for line in body if line.x1 <= x]
    right = [line for line in body if line.x0 >= x]
    return x if _column(left, width) and _column(right, width) else None


def _column(lines: list[Line], width: float) -> bool:
    """Enough wide lines (not only headings and the short ends of paragraphs) for a
    column of text."""
    wide = sum(1 for line in lines if line.x1 - line.x0 >= MIN_COLUMN_WIDTH * width)
    return wide >= MIN_COLUMN_LINES


def rows(lines: Iterable[Line]) -> list[Line]:
    """Top to bottom, left to right within a visual row (lines whose middles lie within
    half a font size of each other share a row)."""
    ordered = sorted(lines, key=lambda line: line.top)
    result: list[Line] = []
    row: list[Line] = []
    for line in ordered:
        if row and abs(line.middle - row[0].middle) > 0.5 * max(row[0].size, 1.0):
            result.extend(sorted(row, key=lambda item: item.x0))
            row = []
        row.append(line)
    result.extend(sorted(row, key=lambda item: item.x0))
    return result


def reading_order(lines: list[Line], width: float) -> list[Line]:
    """The page's lines as a reader takes them (see the module's docstring): on a page
    of two columns, each stretch between full-width lines and wide blank bands is read
    left column first."""
    x = gutter(lines, width)
    if x is None:
        return rows(lines)
    heights = sorted(line.bottom - line.top for line in lines if not line.table)
    blank = CUT_HEIGHTS * heights[len(heights) // 2]
    ordered: list[Line] = []
    left: list[Line] = []
    right: list[Line] = []
    reached = 0.0  # the lowest bottom of the lines taken so far
    for line in sorted(lines, key=lambda item: item.top):
        if (left or right) and line.top - reached > blank:  # a blank band across the page
            ordered += rows(left) + rows(right)
            left, right = [], []
        reached = max(reached, line.bottom)
        if line.x1 <= x and not line.table:
            left.append(line)
        elif line.x0 >= x and not line.table:
            right.append(line)
        else:  # across the gutter: what came before it is read first, column by column
            ordered += rows(left) + rows(right) + [line]
            left, right = [], []
    return ordered + rows(left) + rows(right)


# --- headings -----------------------------------------------------------------------


@dataclass
class HeadingLevels:
    """Heading levels of one document, kept while its pages stream by: the sizes met so
    far rank the font-size headings; bookmarks (level, title) per page come first."""

    bookmarks: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    sizes: list[float] = field(default_factory=list)

    @property
    def offset(self) -> int:
        """Levels the bookmarks take: font headings nest below them."""
        return max((lvl for marks in self.bookmarks.values() for lvl, _ in marks), default=0)

    def level_of(self, line: Line, body: float) -> int:
        """The Markdown level of a heading line, 0 for body text."""
        text = line.text
        if len(text) > MAX_HEADING_CHARS or not any(c.isalpha() for c in text):
            return 0
        if text[-1] in ".,;:" or line.table:
            return 0
        bigger = line.size >= HEADING_RATIO * body
        if not bigger and not (line.bold and _NUMBERED.match(text) and line.size >= body - 0.5):
            return 0
        size = line.size if bigger else body
        if size not in self.sizes:
            self.sizes = sorted({*self.sizes, size}, reverse=True)
        return min(6, self.offset + 1 + self.sizes.index(size))

    def bookmarked(self, page: int, lines: list[Line]) -> list[Line]:
        """Marks the lines that open this page's bookmarks (the biggest line whose text,
        numbering aside, is the title's or most of it); bookmarks matching no line
        become heading lines at the top of the page."""
        missing = []
        for level, title in self.bookmarks.get(page, []):
            key = _plain(title)
            found = [
                line for line in lines if not line.heading and _matches(_plain(line.text), key)
            ]
            if not found:
                missing.append(Line(title, 0, 0, 0, 0, 0, heading=min(6, level)))
                continue
            max(found, key=lambda line: (line.size, -line.top)).heading = min(6, level)
        return missing + lines


def _plain(text: str) -> str:
    """Letters and digits only, lower case, a leading section number dropped."""
    text = _NUMBER_PREFIX.sub("", text.strip())
    return "".join(c for c in text.lower() if c.isalnum())


def _matches(line: str, title: str) -> bool:
    if not line or not title:
        return False
    if line == title:
        return True
    shorter, longer = sorted((line, title), key=len)
    return longer.startswith(shorter) and len(shorter) >= 0.5 * len(longer) and len(shorter) >= 4


def body_size(lines: Iterable[Line]) -> float:
    """The font size most of the text is set in."""
    counts: Counter[float] = Counter()
    for line in lines:
        if not line.table:
            counts[line.size] += len(line.text)
    return counts.most_common(1)[0][0] if counts else 0.0


def mark_headings(lines: list[Line], body: float, levels: HeadingLevels) -> list[Line]:
    """Sets each line's heading level; a heading wrapped over consecutive lines of the
    same level becomes one line."""
    merged: list[Line] = []
    for line in lines:
        if not line.heading and body:
            line.heading = levels.level_of(line, body)
        last = merged[-1] if merged else None
        if (
            last is not None and line.heading and last.heading == line.heading
            and line.size == last.size and 0 <= line.top - last.bottom < line.size
        ):  # fmt: skip
            last.text = f"{last.text} {line.text}"
            last.bottom = line.bottom
            continue
        merged.append(line)
    return merged


# --- the page's text ----------------------------------------------------------------


def page_text(lines: list[Line]) -> str:
    """Lines in order as text: a visual row's pieces joined by spaces, headings and
    tables as Markdown blocks of their own."""
    blocks: list[str] = []
    current: list[str] = []
    previous: Line | None = None
    for line in lines:
        if line.heading or line.table:
            blocks.append("\n".join(current))
            current = []
            blocks.append(f"{'#' * line.heading} {line.text}" if line.heading else line.text)
            previous = None
            continue
        if previous is not None and current and _same_row(previous, line):
            current[-1] = f"{current[-1]} {line.text}"
        elif current and current[-1].endswith(HYPHEN):  # a word broken over two lines
            current[-1] = current[-1][:-1] + line.text
        else:
            current.append(line.text)
        previous = line
    blocks.append("\n".join(current))
    return "\n\n".join(b for b in blocks if b.strip()).replace(HYPHEN, "-")


def _same_row(before: Line, after: Line) -> bool:
    return after.x0 >= before.x1 and abs(after.middle - before.middle) <= 0.5 * max(before.size, 1)


def carried_header(table: str, previous: str) -> str:
    """A table opening a page that goes on from the table closing the page before (both
    near the page break, as many columns, another first row): its rows under that
    table's header row."""
    head, rule, *_ = [*previous.split("\n"), "", ""]
    own = table.split("\n")
    if len(own) < 2 or own[0] == head or columns(own[0]) != columns(head):
        return table
    return "\n".join([head, rule, own[0], *own[2:]])


# --- a document's pages, streamed ---------------------------------------------------


@dataclass
class LaidOutPage:
    """One page read from the PDF: its lines (None when its text came from OCR, then in
    `text`), its size, and what OCR read from its pictures (`extra`, after the lines)."""

    number: int
    lines: list[Line] | None
    width: float = 0.0
    height: float = 0.0
    text: str = ""
    extra: str = ""
    ocr: bool = False


class DocumentLayout:
    """Turns a PDF's pages into page text as they stream by, holding only `WINDOW` pages
    before and after the one being finished (what furniture and body size are judged
    from), so a 2,000-page PDF is never held whole."""

    WINDOW = 4

    def __init__(self, bookmarks: dict[int, list[tuple[int, str]]]) -> None:
        self.levels = HeadingLevels(bookmarks)
        self.ahead: list[LaidOutPage] = []
        self.behind: list[LaidOutPage] = []
        self.last_table: str | None = None  # a table that ran to the foot of the page before

    def push(self, page: LaidOutPage) -> list[tuple[int, str, bool]]:
        """Takes the next page; gives back the pages now finished: (number, text, ocr)."""
        self.ahead.append(page)
        return [self._finish()] if len(self.ahead) > self.WINDOW else []

    def flush(self) -> list[tuple[int, str, bool]]:
        return [self._finish() for _ in range(len(self.ahead))]

    def _finish(self) -> tuple[int, str, bool]:
        page = self.ahead.pop(0)
        window = [p for p in (*self.behind, page, *self.ahead) if p.lines is not None]
        self.behind = [*self.behind, page][-self.WINDOW :]
        if page.lines is None:
            return page.number, page.text, page.ocr
        lines = reading_order(self._without_furniture(page, window), page.width)
        if (
            lines
            and lines[0].table
            and self.last_table
            and lines[0].top <= BREAK_SHARE * page.height
        ):
            lines[0].text = carried_header(lines[0].text, self.last_table)
        closing = lines[-1] if lines and lines[-1].table else None
        self.last_table = (
            closing.text if closing and closing.bottom >= (1 - BREAK_SHARE) * page.height else None
        )
        lines = self.levels.bookmarked(page.number - 1, lines)
        body = body_size(line for p in window for line in p.lines or [])
        text = page_text(mark_headings(lines, body, self.levels))
        return page.number, "\n\n".join(t for t in (text, page.extra) if t), page.ocr

    @staticmethod
    def _without_furniture(page: LaidOutPage, window: list[LaidOutPage]) -> list[Line]:
        """The page's lines less its furniture (`furniture`), judged against the band
        lines of the pages around it."""
        counts: Counter[str] = Counter()
        for other in window:
            counts.update({signature(line.text) for line in other.lines or []
                           if not line.table and in_band(line, other.height)})  # fmt: skip
        needed = min(REPEATS, len(window))
        repeated = {sig for sig, count in counts.items() if needed >= 2 and count >= needed}
        dropped = furniture(page.lines or [], page.height, repeated)
        return [line for line in page.lines or [] if id(line) not in dropped]


def furniture(lines: list[Line], height: float, repeated: set[str]) -> set[int]:
    """Ids of the running headers and footers — band lines whose signature repeats on
    nearby pages and that stand apart from the body (a line's height of space or more
    between them and the nearest other line) — and of page numbers (in a band, or the
    page's first or last line)."""
    text = [line for line in lines if not line.table]
    if not text:
        return set()
    edges = {id(min(text, key=lambda line: line.top)), id(max(text, key=lambda line: line.bottom))}
    numbers = {
        id(line)
        for line in text
        if is_page_number(line.text) and (in_band(line, height) or id(line) in edges)
    }
    candidates = {
        id(line) for line in text if in_band(line, height) and signature(line.text) in repeated
    }
    rest = [line for line in lines if id(line) not in candidates | numbers]
    dropped = set(numbers)
    for line in text:
        if id(line) in candidates and _apart(line, rest, height):
            dropped.add(id(line))
    return dropped


def _apart(line: Line, body: list[Line], height: float) -> bool:
    """No body line within a line's height of `line`, towards the page's middle."""
    if line.top < height / 2:
        gaps = [other.top - line.bottom for other in body if other.top >= line.top]
    else:
        gaps = [line.top - other.bottom for other in body if other.bottom <= line.bottom]
    return min(gaps, default=height) >= line.bottom - line.top
