"""Cutting a document into chunks by tokens of its knowledge base's embedding model.

Pages are joined with blank lines; each chunk is a window of at most `size` tokens that
shares `overlap` tokens with the previous one, ends where a new section begins (a
Markdown heading line, as the Word, HTML, e-book and sheet readers write them) when one
is past the window's first quarter, else at a sentence or line break near its end, and keeps
its character offsets in the joined text, the pages it spans (1-based) and its section
path — the headings it sits under ("2 Maintenance › 2.1 Batteries"). A chunk that starts
inside a Markdown table (a long table split over chunks at row ends) opens with the
table's header row, so its rows keep their column names; its offsets still point at the
rows it holds. Chunks never cross documents: one call, one document.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

from aift.rag.documents.tables import columns, rule
from aift.rag.sentences import is_row, table_header

PAGE_SEPARATOR = "\n\n"
_BREAK = re.compile(r"[.!?。！？]\s|\n")
_HEADING = re.compile(r"^(#{1,6}) +(.+?) *$", re.M)
SECTION_SEPARATOR = " › "
MAX_SECTION_CHARS = 500

Spans = list[tuple[int, int]]


@dataclass
class Chunk:
    index: int
    text: str
    page_start: int
    page_end: int
    char_start: int
    char_end: int
    tokens: int
    page_breaks: list[int]  # offsets in text where its later pages begin
    section: str | None = None  # the headings it sits under, outermost first


def join_pages(pages: list[str]) -> tuple[str, list[int]]:
    """The document's text and the offset where each page starts in it."""
    starts, parts, offset = [], [], 0
    for page in pages:
        starts.append(offset)
        parts.append(page)
        offset += len(page) + len(PAGE_SEPARATOR)
    return PAGE_SEPARATOR.join(parts), starts


def chunk_pages(
    pages: list[str],
    token_spans: Callable[[str], Spans],
    size: int,
    overlap: int,
    measure: Callable[[str], int] | None = None,
) -> list[Chunk]:
    """Token windows over the document's pages (see the module docstring).

    `measure`, when given, is the model's exact token count of a text; windows whose
    spans were only estimated are shrunk until they fit `size` by that count."""
    if overlap >= size:
        raise ValueError("overlap must be smaller than the chunk size")
    text, page_starts = join_pages(pages)
    headings = [(m.start(), len(m.group(1)), m.group(2)) for m in _HEADING.finditer(text)]
    starts = [offset for offset, _, _ in headings]
    spans = [s for s in token_spans(text) if s[1] > s[0]]
    chunks: list[Chunk] = []
    first = 0
    floor = 0  # a window starts past the previous one's start
    while first < len(spans):
        first = max(_row_start(text, spans, first), floor)
        floor = first + 1
        header = table_context(text, spans[first][0])
        header_tokens = len(token_spans(header)) if header else 0
        room = max(size - header_tokens, size // 2)
        last = min(first + room, len(spans))  # exclusive
        last, section_ends = _break_near_end(text, spans, first, last, room, starts)
        start, end = _trim(text, spans[first][0], spans[last - 1][1])
        tokens = last - first + header_tokens
        while measure is not None and end > start:
            tokens = measure(header + text[start:end])
            if tokens <= size or last - first <= 1:
                break
            last = first + max(1, (last - first) * room // tokens - 1)
            section_ends = False  # shrunk: the window now ends inside its section
            start, end = _trim(text, spans[first][0], spans[last - 1][1])
        if end > start:
            chunks.append(
                Chunk(
                    index=len(chunks),
                    text=header + text[start:end],
                    page_start=bisect.bisect_right(page_starts, start),
                    page_end=bisect.bisect_right(page_starts, end - 1),
                    char_start=start,
                    char_end=end,
                    tokens=tokens,
                    page_breaks=[p - start + len(header) for p in page_starts if start < p < end],
                    section=section_at(text, headings, start, end),
                )
            )
        if last >= len(spans):
            break
        # a new section starts afresh: no overlap carries the last one's tail into it
        first = last if section_ends else max(last - overlap, first + 1)
    return chunks


def _break_near_end(
    text: str, spans: Spans, first: int, last: int, size: int, starts: list[int]
) -> tuple[int, bool]:
    """Where the window ends, and whether a section begins there: just before the first
    heading past its first quarter (a smaller section shares the next one's chunk); else,
    when the document goes on, just after a sentence or line break in its last quarter;
    else where it is."""
    quarter = first + max(size // 4, 1) - 1
    if quarter < last - 1:
        low, high = spans[quarter][1], spans[last - 1][1]
        inside = [o for o in starts[bisect.bisect_right(starts, low) :] if o < high]
        if inside:
            return bisect.bisect_left(spans, (inside[0], inside[0])), True
    if last >= len(spans):
        return last, False
    floor = first + max(size * 3 // 4, 1)
    for k in range(last - 1, floor - 1, -1):
        gap = text[spans[k][1] - 1 : spans[k + 1][0] + 1] if k + 1 < len(spans) else ""
        if _BREAK.search(gap):
            return k + 1, False
    return last, False


Heading = tuple[int, int, str]  # offset, level, title


def _row_start(text: str, spans: Spans, first: int) -> int:
    """The window's first span moved back to the start of its table row when it begins
    inside one (an overlap cut mid-row): a chunk holds whole rows."""
    offset = spans[first][0]
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    if line_start == offset or not is_row(
        text[line_start : line_end if line_end >= 0 else len(text)]
    ):
        return first
    return bisect.bisect_left(spans, (line_start, -1))


def table_context(text: str, offset: int) -> str:
    """The header row and rule of the Markdown table a chunk starting at `offset` begins
    inside of (below its header), to open that chunk with: a long table's rows keep
    their column names in every chunk. Empty when the chunk does not start mid-table."""
    header = table_header(text, offset)
    if header is None:
        return ""
    return f"{header}\n{rule(columns(header))}\n"


def section_at(text: str, headings: list[Heading], start: int, end: int) -> str | None:
    """The path of headings a chunk sits under: those in force where its first line that
    is not itself a heading begins (a chunk opening with its section's heading is in it)."""
    body = start
    for line in text[start:end].splitlines(keepends=True):
        if line.strip() and not _HEADING.match(line):
            break
        body += len(line)
    path: dict[int, str] = {}
    for offset, level, title in headings:
        if offset >= body:
            break
        path = {lvl: t for lvl, t in path.items() if lvl < level}
        path[level] = title
    if not path:
        return None
    return SECTION_SEPARATOR.join(path[lvl] for lvl in sorted(path))[:MAX_SECTION_CHARS]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
