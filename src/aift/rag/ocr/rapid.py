"""rapidocr-onnxruntime: detection + recognition ONNX models shipped inside the wheel
(Chinese and Latin scripts)."""

from __future__ import annotations

from typing import Any

from aift.rag.ocr import Box, lines_in_reading_order, polygon_lines

INSTALL = "pip install rapidocr-onnxruntime"


class Backend:
    name = "rapidocr"

    def __init__(self, languages: list[str]) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.languages = languages  # its bundled models cover Chinese and Latin scripts
        self._engine = RapidOCR()

    def read(self, image: Any) -> str:
        import numpy as np

        result, _ = self._engine(np.asarray(image.convert("RGB")))
        boxes = [(float(box[0][1]), float(box[0][0]), text) for box, text, _ in result or []]
        return lines_in_reading_order(boxes)

    def lines(self, image: Any) -> list[tuple[Box, str]]:
        import numpy as np

        result, _ = self._engine(np.asarray(image.convert("RGB")))
        return polygon_lines(result, image.width, image.height)
