"""EasyOCR (the seed's engine): many languages, PyTorch models fetched on first use."""

from __future__ import annotations

from typing import Any

from aift.rag.ocr import Box, lines_in_reading_order, polygon_lines

INSTALL = "pip install 'aift[easyocr]' (its models download on first use)"


class Backend:
    name = "easyocr"

    def __init__(self, languages: list[str]) -> None:
        import easyocr

        self._reader = easyocr.Reader(languages or ["en"], gpu=False, verbose=False)

    def read(self, image: Any) -> str:
        import numpy as np

        result = self._reader.readtext(np.asarray(image.convert("RGB")))
        boxes = [(float(box[0][1]), float(box[0][0]), text) for box, text, _ in result]
        return lines_in_reading_order(boxes)

    def lines(self, image: Any) -> list[tuple[Box, str]]:
        import numpy as np

        result = self._reader.readtext(np.asarray(image.convert("RGB")))
        return polygon_lines(result, image.width, image.height)
