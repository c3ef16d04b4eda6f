"""Tables as Markdown: the form a chunk keeps a table in, header row first."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

_PIPE = re.compile(r"(?<!\\)\|")  # a cell border, not an escaped pipe in a cell


def cell_text(value: Any) -> str:
    """A cell's value as one line of table text (pipes escaped, line breaks as spaces)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.isoformat(sep=" ", timespec="minutes").removesuffix(" 00:00")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    return " ".join(text.split()).replace("|", "\\|")


def markdown_table(rows: Sequence[Sequence[Any]]) -> str:
    """Rows (the first the header) as a Markdown table; short rows are padded."""
    cells = [[cell_text(value) for value in row] for row in rows]
    width = max((len(row) for row in cells), default=0)
    if not width:
        return ""
    cells = [row + [""] * (width - len(row)) for row in cells]
    lines = [_line(cells[0]), rule(width), *(_line(row) for row in cells[1:])]
    return "\n".join(lines)


def columns(row: str) -> int:
    """The cells of a Markdown table row (escaped pipes inside cells not counted)."""
    return max(len(_PIPE.findall(row)) - 1, 0)


def rule(width: int) -> str:
    """The line under a Markdown table's header row."""
    return "|" + "---|" * width


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def row_length(row: Sequence[Any]) -> int:
    """The characters a row takes in a Markdown table (with its line break)."""
    return len(_line([cell_text(value) for value in row])) + 1


def trimmed(rows: list[list[Any]]) -> list[list[Any]]:
    """Rows without the empty rows and the empty trailing columns a sheet often holds."""
    rows = [row for row in rows if any(cell_text(v) for v in row)]
    width = 0
    for row in rows:
        filled = [i for i, v in enumerate(row) if cell_text(v)]
        width = max(width, filled[-1] + 1 if filled else 0)
    return [list(row[:width]) for row in rows]
