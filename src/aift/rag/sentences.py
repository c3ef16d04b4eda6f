"""Sentences of a text with their character spans: the unit citations point to.

A sentence ends after . ! ? (and their CJK forms) followed by whitespace, or at a blank
line; single line breaks inside a paragraph (PDF layout) do not end one. Each row of a
Markdown table (as the document readers write tables) is a sentence of its own, the
rule under the header none. Very long runs without punctuation (lists) are cut at line
breaks so no "sentence" swallows a page.
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
    """The trimmed span: a table's rows one by one; cut at line breaks when too long."""
    rows = table_rows(text, start, end)
    cuts = rows or [(start, end)]
    if not rows and end - start > LONGEST:
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


def is_row(line: str) -> bool:
    """A Markdown table row (its rule line included)."""
    line = line.strip()
    return len(line) > 1 and line.startswith("|") and line.endswith("|")


def _is_rule(line: str) -> bool:
    return set(line.strip()) <= {"|", "-", ":", " "}


def table_rows(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The rows (without the rule) of a span that is all table lines; [] otherwise."""
    rows, offset = [], start
    for line in text[start:end].split("\n"):
        if line.strip():
            if not is_row(line):
                return []
            if not _is_rule(line):
                rows.append((offset, offset + len(line)))
        offset += len(line) + 1
    return rows


def table_header(text: str, start: int) -> str | None:
    """The header row of the Markdown table whose row starts at `start` (None when the
    row is the header, or the table's start is not in `text`)."""
    lines_before = text[:start].split("\n")[:-1]
    block = []
    for line in reversed(lines_before):
        if not is_row(line):
            break
        block.append(line)
    if len(block) < 2 or not _is_rule(block[-2]):  # header, rule, … rows above this one
        return None
    return block[-1].strip()
