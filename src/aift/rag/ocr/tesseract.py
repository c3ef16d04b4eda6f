"""Tesseract through its command-line program (Debian: apt-get install tesseract-ocr
tesseract-ocr-kor …)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

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
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "page.png"
            image.save(source)
            done = subprocess.run(
                [str(self._program), str(source), "stdout", "-l", self._languages],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"tesseract failed: {done.stderr.strip()[:300]}")
        return done.stdout
