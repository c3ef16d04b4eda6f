"""Cutting a document into chunks by tokens of its knowledge base's embedding model.

Pages are joined with blank lines; each chunk is a window of at most `size` tokens that
shares `overlap` tokens with the previous one, ends at a sentence or line break when one
is near the end of the window, and keeps its character offsets in the joined text and
the pages it spans (1-based). Chunks never cross documents: one call, one document.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

PAGE_SEPARATOR = "\n\n"
_BREAK = re.compile(r"[.!?。！？]\s|\n")

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
    spans = [s for s in token_spans(text) if s[1] > s[0]]
    chunks: list[Chunk] = []
    first = 0
    while first < len(spans):
        last = min(first + size, len(spans))  # exclusive
        if last < len(spans):
            last = _break_near_end(text, spans, first, last, size)
        start, end = _trim(text, spans[first][0], spans[last - 1][1])
        tokens = last - first
        while measure is not None and end > start:
            tokens = measure(text[start:end])
            if tokens <= size or last - first <= 1:
                break
            last = first + max(1, (last - first) * size // tokens - 1)
            start, end = _trim(text, spans[first][0], spans[last - 1][1])
        if end > start:
            chunks.append(
                Chunk(
                    index=len(chunks),
                    text=text[start:end],
                    page_start=bisect.bisect_right(page_starts, start),
                    page_end=bisect.bisect_right(page_starts, end - 1),
                    char_start=start,
                    char_end=end,
                    tokens=tokens,
                    page_breaks=[p - start for p in page_starts if start < p < end],
                )
            )
        if last >= len(spans):
            break
        first = max(last - overlap, first + 1)
    return chunks


def _break_near_end(text: str, spans: Spans, first: int, last: int, size: int) -> int:
    """Move the window's end back to just after a sentence or line break in its last
    quarter, if there is one."""
    floor = first + max(size * 3 // 4, 1)
    for k in range(last - 1, floor - 1, -1):
        gap = text[spans[k][1] - 1 : spans[k + 1][0] + 1] if k + 1 < len(spans) else ""
        if _BREAK.search(gap):
            return k + 1
    return last


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
