"""Sentences of a text with their character spans: the unit citations point to.

A sentence ends after . ! ? (and their CJK forms) followed by whitespace, or at a blank
line; single line breaks inside a paragraph (PDF layout) do not end one. Very long runs
without punctuation (tables, lists) are cut at line breaks so no "sentence" swallows a
page.
"""

from __future__ import annotations

import re

_END = re.compile(r"(?<=[.!?。！？])\s+|\n\s*\n")
_LINE = re.compile(r"\n")
LONGEST = 400  # characters; longer pieces are cut at line breaks


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, trimmed of surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _END.finditer(text):
        spans.extend(_pieces(text, start, match.start()))
        start = match.end()
    spans.extend(_pieces(text, start, len(text)))
    return spans


def _pieces(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The trimmed span, cut at line breaks when it is too long."""
    cuts = [(start, end)]
    if end - start > LONGEST:
        cuts, begin = [], start
        for line in _LINE.finditer(text, start, end):
            if line.start() - begin >= 40:
                cuts.append((begin, line.start()))
                begin = line.end()
        cuts.append((begin, end))
    out = []
    for a, b in cuts:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out
