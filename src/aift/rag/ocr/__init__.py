"""OCR backends behind one interface, found by name: rapidocr (default, models in the
wheel), easyocr and tesseract when installed."""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from aift.errors import CapabilityMissing, ConfigError

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


def load_ocr(engine: str, languages: list[str]) -> OcrEngine:
    """The OCR backend `engine`, or a clear message when it is unknown or not installed."""
    if engine not in BACKENDS:
        raise ConfigError(f"Unknown OCR engine {engine!r}; choose one of {', '.join(BACKENDS)}.")
    module = importlib.import_module(BACKENDS[engine])
    try:
        return module.Backend(languages)
    except ImportError as exc:
        raise CapabilityMissing(
            f"OCR engine {engine} is not installed ({exc}); {module.INSTALL}"
        ) from None


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
