"""Word (.docx) files: paragraphs and tables in reading order, headings by their style
("Heading 1"… or a localised name such as "제목 1"), list items marked, tables kept as
Markdown tables; pages are the top-level sections."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aift.rag.documents.outline import Block, pages_of
from aift.rag.documents.tables import markdown_table
from aift.rag.extract import PageText

HEADING_STYLE = re.compile(r"^(?:heading|제목|titre|überschrift)\s*(\d)$", re.IGNORECASE)


def docx_pages(path: Path) -> list[PageText]:
    import docx
    from docx.table import Table

    document = docx.Document(str(path))
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            blocks.append(Block(markdown_table(_rows(item)), table=True))
        else:
            blocks.append(_paragraph(item))
    return pages_of(blocks)


def _paragraph(paragraph: Any) -> Block:
    text = " ".join(paragraph.text.split())
    style = paragraph.style.name if paragraph.style is not None else ""
    if style == "Title":
        return Block(text, level=1)
    found = HEADING_STYLE.match(style or "")
    if found:
        return Block(text, level=min(6, max(1, int(found.group(1)))))
    listed = (
        style.startswith("List")
        or paragraph._p.pPr is not None
        and (paragraph._p.pPr.numPr is not None)
    )
    return Block(f"- {text}" if listed and text else text)


def _rows(table: Any) -> list[list[str]]:
    """The table's rows; a merged cell's text stands in each column it spans."""
    return [[cell.text for cell in row.cells] for row in table.rows]
