"""PowerPoint (.pptx) decks: one page per slide — its title as a heading, then its text
boxes top to bottom, left to right, its tables as Markdown, and the speaker notes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aift.rag.documents.tables import markdown_table
from aift.rag.extract import PageText


def pptx_pages(path: Path) -> list[PageText]:
    from pptx import Presentation

    deck = Presentation(str(path))
    pages = []
    for number, slide in enumerate(deck.slides, 1):
        title = slide.shapes.title
        parts = (
            [f"# {title.text_frame.text.strip()}"]
            if title is not None and title.has_text_frame and title.text_frame.text.strip()
            else []
        )
        for shape in _in_reading_order(slide.shapes):
            if title is not None and shape.shape_id == title.shape_id:
                continue
            parts.extend(_shape_text(shape))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                parts.append(f"Notes: {notes.text.strip()}")
        pages.append(PageText(number, "\n\n".join(p for p in parts if p), False))
    return pages


def _in_reading_order(shapes: Any) -> list[Any]:
    return sorted(shapes, key=lambda s: ((s.top or 0) // 100_000, s.left or 0))


def _shape_text(shape: Any) -> Iterator[str]:
    if shape.shape_type is not None and shape.shape_type == 6:  # a group: its shapes
        for inner in _in_reading_order(shape.shapes):
            yield from _shape_text(inner)
        return
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        yield markdown_table(rows)
    elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        lines = [p.text.strip() for p in shape.text_frame.paragraphs]
        yield "\n".join(line for line in lines if line)
