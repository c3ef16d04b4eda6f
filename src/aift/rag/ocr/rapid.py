"""rapidocr-onnxruntime: detection + recognition ONNX models shipped inside the wheel
(Chinese and Latin scripts).

Its recogniser often drops the spaces between the words of a Latin line ("Boarding
closesexactly12minutes"), which breaks exact answers and keyword search. The spaces are
put back from the pixels (`respace`): columns of the line's image with no ink, wider
than a fifth of the line's height, are the gaps between words; a space goes between the
two recognised characters whose (approximate) positions that gap separates.
"""

from __future__ import annotations

from typing import Any

from aift.rag.ocr import Box, lines_in_reading_order, polygon_lines

INSTALL = "pip install rapidocr-onnxruntime"


class Backend:
    name = "rapidocr"

    def __init__(self, languages: list[str]) -> None:
        from rapidocr_onnxruntime import RapidOCR

        from aift.threads import compute_threads

        self.languages = languages  # its bundled models cover Chinese and Latin scripts
        threads = compute_threads()
        self._engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)

    def _recognise(self, image: Any) -> list[Any]:
        """[box, text, score] per line, the text's word spacing rebuilt."""
        import numpy as np

        rgb = np.asarray(image.convert("RGB"))
        result, _ = self._engine(rgb, return_word_box=True)
        gray = rgb.mean(axis=2)
        lines = []
        for line in result or []:
            box, text, score = line[0], line[1], line[2]
            if len(line) > 4 and line[4] and len(line[4]) == len(line[3]):
                centres = [sum(_span(b)) / 2 for b in line[3]]
                text = respace(line[4], centres, word_gaps(gray, box))
            lines.append([box, text, score])
        return lines

    def read(self, image: Any) -> str:
        result = self._recognise(image)
        boxes = [(float(box[0][1]), float(box[0][0]), text) for box, text, _ in result]
        return lines_in_reading_order(boxes)

    def lines(self, image: Any) -> list[tuple[Box, str]]:
        return polygon_lines(self._recognise(image), image.width, image.height)


def _span(box: Any) -> tuple[float, float]:
    xs = [float(point[0]) for point in box]
    return min(xs), max(xs)


def word_gaps(gray: Any, box: Any) -> list[float]:
    """x positions (page pixels) of the blank column runs inside a line's box that are
    wide enough to separate words."""
    import numpy as np

    xs = [float(p[0]) for p in box]
    ys = [float(p[1]) for p in box]
    x0, x1 = max(0, int(min(xs))), min(gray.shape[1], int(max(xs)) + 1)
    y0, y1 = max(0, int(min(ys))), min(gray.shape[0], int(max(ys)) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return []
    crop = gray[y0:y1, x0:x1]
    ink = (crop < min(160.0, float(np.median(crop)) - 60)).sum(axis=0)
    blank = ink <= max(1, (y1 - y0) // 40)  # a speck of noise is still blank
    least = max(3, round(0.2 * (y1 - y0)))
    gaps, start = [], None
    for column, empty in enumerate(blank):
        if empty and start is None:
            start = column
        elif not empty and start is not None:
            if column - start >= least and start > 0:  # not the margin before the text
                gaps.append(x0 + (start + column) / 2)
            start = None
    return gaps


def respace(chars: list[str], centres: list[float], gaps: list[float]) -> str:
    """The line's characters joined, with a space wherever a word gap lies between two
    characters' centres, or the recogniser itself put one."""
    out = ""
    for k, char in enumerate(chars):
        if char.isspace():
            out += " "
            continue
        if k and any(centres[k - 1] < gap < centres[k] for gap in gaps):
            out += " "
        out += char
    return " ".join(out.split())
