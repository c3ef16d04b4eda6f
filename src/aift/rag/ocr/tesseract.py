"""Tesseract through its command-line program (Debian: apt-get install tesseract-ocr
tesseract-ocr-kor …).

Two things make it read well here. The language packs are passed non-Latin first:
tesseract treats the first pack as the primary one, and "kor+eng" reads both Korean
and English at ~98 % where "eng+kor" reads Korean at ~40 %. Its automatic page layout
(psm 3) keeps columns apart but, on some plain pages (the Korean scans of the
benchmarks), finds one line of four or reads noise. So a page is read as one column
(psm 4); only when that reading shows a gutter (lines with a wide gap at the same
place) is it read again with the automatic layout, kept where it found blocks side by
side.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from aift.procutil import die_with_parent
from aift.rag.ocr import Box

INSTALL = "apt-get install tesseract-ocr (plus tesseract-ocr-<lang> packs, e.g. tesseract-ocr-kor)"

# ISO 639-1 hints from the settings → tesseract's language packs
_CODES = {
    "en": "eng",
    "ko": "kor",
    "de": "deu",
    "fr": "fra",
    "es": "spa",
    "ja": "jpn",
    "zh": "chi_sim",
    "ar": "ara",
    "it": "ita",
    "pt": "por",
    "ru": "rus",
}
_LATIN = {"eng", "deu", "fra", "spa", "ita", "por"}


def pack_order(languages: list[str]) -> list[str]:
    """Tesseract pack names for ISO hints, non-Latin scripts first (the primary pack)."""
    packs = list(dict.fromkeys(_CODES.get(code, code) for code in languages or ["en"]))
    return sorted(packs, key=lambda pack: pack in _LATIN)  # stable: keeps the user's order


@functools.cache
def installed_packs(program: str) -> frozenset[str]:
    """The language packs the tesseract program has."""
    done = subprocess.run(
        [program, "--list-langs"], capture_output=True, text=True, timeout=60, check=False
    )
    return frozenset(line.strip() for line in done.stdout.splitlines()[1:] if line.strip())


class Backend:
    name = "tesseract"

    def __init__(self, languages: list[str]) -> None:
        program = shutil.which("tesseract")
        if program is None:
            raise ImportError("the tesseract program is not on PATH")
        packs = pack_order(languages)
        missing = [pack for pack in packs if pack not in installed_packs(program)]
        if missing:
            raise ImportError(f"tesseract has no language pack for {', '.join(missing)}")
        self._program = program
        self._languages = "+".join(packs)

    def read(self, image: Any) -> str:
        return self._reading(image)[0]

    def lines(self, image: Any) -> list[tuple[Box, str]]:
        """The recognised lines with their boxes (fractions of the image)."""
        lines = []
        for words in _parse_tsv(self._reading(image)[1]).values():
            box = (
                min(w[0] for w in words) / image.width,
                min(w[1] for w in words) / image.height,
                max(w[2] for w in words) / image.width,
                max(w[3] for w in words) / image.height,
            )
            lines.append((box, _join(words)))
        return lines

    def _reading(self, image: Any) -> tuple[str, str]:
        """(text, TSV) of the page read as one column, or — when that reading shows a
        gutter running down the page — with the automatic layout, where it found the
        columns."""
        text, tsv = self._run(image, "4")
        if not _has_gutter(tsv, image.width):
            return text, tsv
        automatic = self._run(image, "3")
        return automatic if _has_columns(automatic[1]) else (text, tsv)

    def _run(self, image: Any, layout: str) -> tuple[str, str]:
        """tesseract's plain text and TSV of `image` with page segmentation `layout`."""
        from aift.threads import compute_threads

        environment = {**os.environ, "OMP_THREAD_LIMIT": str(compute_threads())}
        with tempfile.TemporaryDirectory() as folder:
            source, base = Path(folder) / "page.png", Path(folder) / "read"
            image.save(source)
            done = subprocess.run(
                [self._program, str(source), str(base), "-l", self._languages]
                + ["--psm", layout, "txt", "tsv"],
                preexec_fn=die_with_parent(signal.SIGKILL),  # noqa: PLW1509 - prctl only
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
                env=environment,
            )
            if done.returncode != 0:
                raise RuntimeError(f"tesseract failed: {done.stderr.strip()[:300]}")
            text = base.with_suffix(".txt").read_text(encoding="utf-8")
            return text, base.with_suffix(".tsv").read_text(encoding="utf-8")


Word = tuple[float, float, float, float, str, float, str]  # box, text, confidence, block


def _parse_tsv(tsv: str) -> dict[tuple[str, ...], list[Word]]:
    """tesseract's TSV rows of words grouped by line, in its reading order."""
    found: dict[tuple[str, ...], list[Word]] = {}
    for row in tsv.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or cells[0] != "5" or not cells[11].strip():
            continue
        left, top, width, height, confidence = (float(c) for c in cells[6:11])
        word = (left, top, left + width, top + height, cells[11], confidence, cells[2])
        found.setdefault(tuple(cells[1:5]), []).append(word)
    return found


def _join(words: list[Word]) -> str:
    """A line's words, spaced where the gap between them is a word gap: tesseract
    cuts Korean lines into syllable-sized "words" that the text must not split."""
    height = max(w[3] - w[1] for w in words)
    text = words[0][4]
    for before, word in zip(words, words[1:], strict=False):
        text += (" " if word[0] - before[2] > 0.25 * height else "") + word[4]
    return text


def _has_gutter(tsv: str, width: int) -> bool:
    """Whether lines read as one column have a wide gap (wider than the line's text is
    tall, unlike a word space) at about the same place — two columns read across; a
    heading or a table row alone does not make one."""
    centres = []
    lines = [words for words in _parse_tsv(tsv).values() if len(words) > 1]
    for words in lines:
        height = sorted(w[3] - w[1] for w in words)[len(words) // 2]
        pairs = zip(words, words[1:], strict=False)
        gap, at = max((b[0] - a[2], (a[2] + b[0]) / 2) for a, b in pairs)
        if gap > 0.8 * height:
            centres.append(at)
    if len(centres) < 3 or len(centres) < 0.3 * len(lines):
        return False
    middle = sorted(centres)[len(centres) // 2]
    return sum(abs(c - middle) < 0.03 * width for c in centres) >= 3


def _has_columns(tsv: str) -> bool:
    """Whether two blocks of several lines each sit side by side (overlap in height,
    not in width): columns, not a stray word read beside a line."""
    blocks: dict[str, list[float]] = {}
    lines: dict[str, int] = {}
    for words in _parse_tsv(tsv).values():
        block = words[0][6]
        lines[block] = lines.get(block, 0) + 1
        for w in words:
            box = blocks.setdefault(block, [w[0], w[1], w[2], w[3]])
            box[:] = [min(box[0], w[0]), min(box[1], w[1]), max(box[2], w[2]), max(box[3], w[3])]
    boxes = [box for block, box in blocks.items() if lines[block] >= 3]
    for index, a in enumerate(boxes):
        for b in boxes[index + 1 :]:
            overlap = min(a[3], b[3]) - max(a[1], b[1])
            apart = a[2] <= b[0] or b[2] <= a[0]
            if apart and overlap > 0.5 * min(a[3] - a[1], b[3] - b[1]):
                return True
    return False
