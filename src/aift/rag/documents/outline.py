"""A document as a run of blocks (headings, text, tables) cut into pages at its top
heading level: the shared last step of the Word, HTML and e-book readers.

Each page begins with the path of headings it sits under, as Markdown headings, so a
chunk taken from it still says where it is ("# 3 Maintenance" / "## 3.2 Batteries").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aift.rag.extract import PageText

MAX_PAGE_CHARS = 40_000  # a section longer than this continues on a new page


@dataclass
class Block:
    """A heading (`level` 1–6), a paragraph or list item, or a table (Markdown)."""

    text: str
    level: int = 0  # 0: not a heading
    table: bool = False


@dataclass
class _Page:
    parts: list[str] = field(default_factory=list)
    size: int = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)


def heading(level: int, text: str) -> str:
    return f"{'#' * level} {text}"


def pages_of(blocks: list[Block]) -> list[PageText]:
    """Pages cut at the highest heading level the document uses (a document without
    headings is one page; a long section goes on over several)."""
    levels = [b.level for b in blocks if b.level and b.text]
    top = min(levels) if levels else 0
    path: dict[int, str] = {}
    pages: list[_Page] = [_Page()]
    for block in blocks:
        if not block.text:
            continue
        if block.level:
            path = {lvl: t for lvl, t in path.items() if lvl < block.level}
            path[block.level] = block.text
            if block.level == top and pages[-1].parts:
                pages.append(_Page())
            pages[-1].add(heading(block.level, block.text))
            continue
        if pages[-1].size > MAX_PAGE_CHARS:  # go on over a new page, under the same path
            pages.append(_Page())
            for lvl in sorted(path):
                pages[-1].add(heading(lvl, path[lvl]))
        pages[-1].add(block.text)
    kept = [p for p in pages if p.parts]
    return [PageText(n, "\n\n".join(p.parts), False) for n, p in enumerate(kept, 1)]
