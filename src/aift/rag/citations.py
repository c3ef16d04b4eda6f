"""Checking the [n] citations of a generated answer against the numbered sources."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BRACKET = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")


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
        numbers = [int(n) for n in re.split(r"[,;]", match.group(1))]
        kept = []
        for number in numbers:
            if 1 <= number <= sources:
                kept.append(number)
                if number not in cited:
                    cited.append(number)
            elif number not in invalid:
                invalid.append(number)
        return f"[{', '.join(map(str, kept))}]" if kept else ""

    cleaned = _BRACKET.sub(replace, answer)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)  # no space left before punctuation
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned).strip()
    uncited = [n for n in range(1, sources + 1) if n not in cited]
    return CitationCheck(cleaned, cited, invalid, uncited)
