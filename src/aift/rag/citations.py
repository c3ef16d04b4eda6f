"""Checking the [n] citations of a generated answer against the numbered sources."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# One [n] / [n, m] marker with the space before it (group "numbers" holds the numbers);
# shared with attribution, which strips and rewrites markers sentence by sentence.
MARKER = re.compile(r"(?P<space>\s*)\[(?P<numbers>\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")


def marker_numbers(match: re.Match[str]) -> list[int]:
    """The source numbers one marker names, in order."""
    return [int(n) for n in re.split(r"[,;]", match.group("numbers"))]


@dataclass
class CitationCheck:
    answer: str  # the answer with citations of missing sources removed
    cited: list[int] = field(default_factory=list)  # valid source numbers, first use order
    invalid: list[int] = field(default_factory=list)  # numbers that name no source (removed)
    uncited: list[int] = field(default_factory=list)  # sources given but not cited


def check_citations(answer: str, sources: int) -> CitationCheck:
    """Keep [n] for 1 ≤ n ≤ sources, drop the others (reported), list uncited sources."""
    cited: list[int] = []
    invalid: list[int] = []

    def replace(match: re.Match) -> str:
        kept = []
        for number in marker_numbers(match):
            if 1 <= number <= sources:
                kept.append(number)
                if number not in cited:
                    cited.append(number)
            elif number not in invalid:
                invalid.append(number)
        return f"{match.group('space')}[{', '.join(map(str, kept))}]" if kept else " "

    cleaned = MARKER.sub(replace, answer)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)  # no space left before punctuation
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned).strip()
    uncited = [n for n in range(1, sources + 1) if n not in cited]
    return CitationCheck(cleaned, cited, invalid, uncited)
