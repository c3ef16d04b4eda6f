"""OCR backends behind one interface, found by name: rapidocr (models in the wheel),
easyocr and tesseract when installed, and `auto` (the default): tesseract when it is
installed with a pack for every configured language — it reads Korean, which rapidocr's
bundled models cannot, and English as well (docs/benchmarks.md) — otherwise rapidocr."""

from __future__ import annotations

import importlib
import logging
from typing import Any, Protocol

from aift.errors import CapabilityMissing, ConfigError

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions of the image

BACKENDS = {
    "rapidocr": "aift.rag.ocr.rapid",
    "easyocr": "aift.rag.ocr.easy",
    "tesseract": "aift.rag.ocr.tesseract",
}


class OcrEngine(Protocol):
    name: str

    def read(self, image: Any) -> str:
        """The text of a page image (PIL), lines in reading order."""
        ...

    def lines(self, image: Any) -> list[tuple[Box, str]]:
        """The recognised lines with their boxes (fractions of the image), in reading order."""
        ...


# ISO codes of the scripts rapidocr's bundled models read (Latin and Chinese)
RAPID_LANGUAGES = {"en", "de", "fr", "es", "it", "pt", "nl", "zh"}


def load_ocr(engine: str, languages: list[str]) -> OcrEngine:
    """The OCR backend `engine`, or a clear message when it is unknown or not installed."""
    if engine == "auto":
        return _automatic(languages)
    if engine not in BACKENDS:
        choices = ", ".join(["auto", *BACKENDS])
        raise ConfigError(f"Unknown OCR engine {engine!r}; choose one of {choices}.")
    module = importlib.import_module(BACKENDS[engine])
    try:
        return module.Backend(languages)
    except ImportError as exc:
        raise CapabilityMissing(
            f"OCR engine {engine} is not installed ({exc}); {module.INSTALL}"
        ) from None


def _automatic(languages: list[str]) -> OcrEngine:
    """Tesseract when it has every language, else rapidocr (warning about the languages
    it cannot read)."""
    try:
        return load_ocr("tesseract", languages)
    except CapabilityMissing as missing:
        unreadable = sorted(set(languages) - RAPID_LANGUAGES)
        if unreadable:
            log.warning(
                "OCR: rapidocr cannot read %s; scans in it come out empty or wrong (%s)",
                ", ".join(unreadable),
                missing,
            )
        return load_ocr("rapidocr", languages)


def lines_in_reading_order(boxes: list[tuple[float, float, str]]) -> str:
    """Join (top, left, text) boxes into lines: top to bottom, then left to right."""
    boxes = sorted(boxes)
    lines: list[list[tuple[float, str]]] = []
    last_top: float | None = None
    for top, left, text in boxes:
        if last_top is None or top - last_top > 12:
            lines.append([])
            last_top = top
        lines[-1].append((left, text))
    return "\n".join(" ".join(t for _, t in sorted(line)) for line in lines)


def polygon_lines(result: list[Any], width: int, height: int) -> list[tuple[Box, str]]:
    """(polygon, text, score) detections (rapidocr, easyocr) as boxes, top to bottom."""
    lines: list[tuple[Box, str]] = []
    for polygon, text, _ in result or []:
        xs = [float(point[0]) for point in polygon]
        ys = [float(point[1]) for point in polygon]
        box = (min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height)
        lines.append((box, text))
    return sorted(lines, key=lambda line: (round(line[0][1], 2), line[0][0]))
