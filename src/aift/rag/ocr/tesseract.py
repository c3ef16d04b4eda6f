"""Tesseract through its command-line program (Debian: apt-get install tesseract-ocr
tesseract-ocr-kor …)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from aift.rag.ocr import Box

INSTALL = "apt-get install tesseract-ocr (plus tesseract-ocr-<lang> packs)"

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


class Backend:
    name = "tesseract"

    def __init__(self, languages: list[str]) -> None:
        self._program = shutil.which("tesseract")
        if self._program is None:
            raise ImportError("the tesseract program is not on PATH")
        self._languages = "+".join(_CODES.get(code, code) for code in languages or ["en"])

    def read(self, image: Any) -> str:
        return self._run(image)

    def lines(self, image: Any) -> list[tuple[Box, str]]:
        """Word boxes from tesseract's TSV output, joined per line."""
        found: dict[tuple[str, ...], list[tuple[float, float, float, float, str]]] = {}
        for row in self._run(image, "tsv").splitlines()[1:]:
            cells = row.split("\t")
            if len(cells) < 12 or cells[0] != "5" or not cells[11].strip():
                continue
            left, top, width, height = (float(c) for c in cells[6:10])
            word = (left, top, left + width, top + height, cells[11])
            found.setdefault(tuple(cells[1:5]), []).append(word)
        lines = []
        for boxes in found.values():
            box = (
                min(b[0] for b in boxes) / image.width,
                min(b[1] for b in boxes) / image.height,
                max(b[2] for b in boxes) / image.width,
                max(b[3] for b in boxes) / image.height,
            )
            lines.append((box, " ".join(b[4] for b in boxes)))
        return lines

    def _run(self, image: Any, *extra: str) -> str:
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "page.png"
            image.save(source)
            done = subprocess.run(
                [str(self._program), str(source), "stdout", "-l", self._languages, *extra],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"tesseract failed: {done.stderr.strip()[:300]}")
        return done.stdout
