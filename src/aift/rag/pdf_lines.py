"""The lines of a text PDF page, read from pdfium's characters: each with its text, its
box, its font size and whether it is bold — what reading order, page furniture and
heading detection (`pdf_layout.py`) decide from.

A pdfium line is cut into pieces where a horizontal gap wider than `GAP_EMS` font sizes
opens: two columns written line by line come out as one pdfium line per baseline, and
only the gap tells them apart.
"""

from __future__ import annotations

import ctypes
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

GAP_EMS = 1.5
Box = tuple[float, float, float, float]  # x0, top, x1, bottom
_BOLD_WEIGHT = 600
_FORCE_BOLD = 1 << 18  # the PDF font descriptor's ForceBold flag
HYPHEN = "\x02"  # pdfium's mark for a hyphen that breaks a word at a line's end


@dataclass
class Line:
    """A run of text on one baseline; boxes in points from the page's top-left. Its
    text may end with `HYPHEN`, a word broken over the line's end.
    `heading` is the Markdown level once decided (0: body text); a `table` line holds a
    Markdown table found where its grid stood."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    size: float
    bold: bool = False
    heading: int = 0
    table: bool = False

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2

    def inside(self, box: tuple[float, float, float, float]) -> bool:
        """Its centre lies in `box` (x0, top, x1, bottom), give or take a point."""
        x0, top, x1, bottom = box
        return x0 - 1 <= (self.x0 + self.x1) / 2 <= x1 + 1 and top - 1 <= self.middle <= bottom + 1


@dataclass
class _Piece:
    chars: list[str] = field(default_factory=list)
    sizes: Counter[float] = field(default_factory=Counter)
    box: list[float] = field(default_factory=lambda: [1e9, 1e9, -1e9, -1e9])
    first: int = -1  # index of its first visible character

    def add(
        self, char: str, index: int, box: tuple[float, float, float, float], size: float
    ) -> None:
        self.chars.append(char)
        if box[2] <= box[0] and box[3] <= box[1]:
            return  # a generated space or line break has no box
        if self.first < 0:
            self.first = index
        self.sizes[round(size * 2) / 2] += 1
        self.box = [min(self.box[0], box[0]), min(self.box[1], box[1]),
                    max(self.box[2], box[2]), max(self.box[3], box[3])]  # fmt: skip


class _CharReader:
    """pdfium's per-character calls on one text page (buffers made once)."""

    def __init__(self, textpage: Any, height: float) -> None:
        import pypdfium2.raw as raw

        self.raw = raw
        self.page = textpage.raw
        self.height = height
        self._box = [ctypes.c_double() for _ in range(4)]

    def char(self, index: int) -> str:
        return chr(self.raw.FPDFText_GetUnicode(self.page, index))

    def box(self, index: int) -> Box:
        """(x0, top, x1, bottom) from the top-left; an empty box for generated chars."""
        left, right, bottom, top = self._box
        if self.raw.FPDFText_IsGenerated(self.page, index) == 1 or not self.raw.FPDFText_GetCharBox(
            self.page, index, left, right, bottom, top
        ):
            return (0.0, 0.0, 0.0, 0.0)
        return (left.value, self.height - top.value, right.value, self.height - bottom.value)

    def size(self, index: int) -> float:
        return float(self.raw.FPDFText_GetFontSize(self.page, index))

    def bold(self, index: int) -> bool:
        """Bold by weight, by the ForceBold flag or by the font's name."""
        if self.raw.FPDFText_GetFontWeight(self.page, index) >= _BOLD_WEIGHT:
            return True
        flags = ctypes.c_int()
        size = self.raw.FPDFText_GetFontInfo(self.page, index, None, 0, flags)
        if size <= 0:
            return False
        name = ctypes.create_string_buffer(size)
        self.raw.FPDFText_GetFontInfo(self.page, index, name, size, flags)
        return bool(flags.value & _FORCE_BOLD) or b"bold" in name.value.lower()


def page_lines(textpage: Any, height: float) -> list[Line]:
    """The page's lines in pdfium's order, cut at wide gaps; empty pieces dropped."""
    reader = _CharReader(textpage, height)
    lines: list[Line] = []
    piece = _Piece()
    for index in range(textpage.count_chars()):
        char = reader.char(index)
        if char in "\r\n":
            _finish(piece, reader, lines)
            piece = _Piece()
            continue
        box = reader.box(index)
        size = reader.size(index)
        if _starts_new_piece(piece, box, size):
            _finish(piece, reader, lines)
            piece = _Piece()
        piece.add(char, index, box, size)
    _finish(piece, reader, lines)
    return lines


def _starts_new_piece(piece: _Piece, box: Box, size: float) -> bool:
    """A visible character far right of the piece, or below it, begins another one."""
    if piece.first < 0 or box[2] <= box[0]:
        return False
    far_right = box[0] - piece.box[2] > GAP_EMS * max(size, 1.0)
    below = box[1] >= piece.box[3]
    return far_right or below


def _finish(piece: _Piece, reader: _CharReader, lines: list[Line]) -> None:
    text = " ".join("".join(piece.chars).split())
    if not text or piece.first < 0:
        return
    size = piece.sizes.most_common(1)[0][0]
    x0, top, x1, bottom = piece.box
    lines.append(Line(text, x0, top, x1, bottom, size, reader.bold(piece.first)))
