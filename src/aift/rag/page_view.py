"""A cited passage shown where it is: the page rendered as an image, with the boxes that
cover the passage on it (pypdfium2's character boxes, or OCR line boxes on scanned pages).

Runs as a short-lived child process (`python -m aift.rag.page_view`) with a time limit,
like the parser: the PDF is native-code input and must not be able to hang the server.
The service caches what it returns, so a citation opens instantly the second time.
"""

from __future__ import annotations

import difflib
import io
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aift.rag.extract import PypdfReadable, open_pdf, usable
from aift.rag.sentences import is_row

VIEW_SCALE = 110 / 72  # 110 dpi: readable on screen, ~100–250 kB per page as PNG
MIN_BLOCK_WORDS = 3  # shorter word matches are coincidences ("the", "of the")
_WORD = re.compile(r"\w+", re.UNICODE)

Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions of the page


def words(text: str) -> list[tuple[str, int, int]]:
    """The words of `text` (lower-cased) with their character spans."""
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def locate(text: str, passage: str) -> list[tuple[int, int]]:
    """Character ranges of `text` that hold `passage`, matched word by word.

    Word matching survives what differs between the stored page text and the PDF's own
    character stream (line breaks, hyphen spacing, OCR spacing); short coincidental
    matches are dropped unless the passage itself is that short.
    """
    rows = [line for line in passage.splitlines() if line.strip()]
    if len(rows) > 1 and all(is_row(line) for line in rows):
        # table rows (a cited row under its header): each found on its own, so the
        # words of the rows between them do not blur the match
        return sorted({found for row in rows for found in locate(text, row)})
    page_words = words(text)
    passage_words = words(passage)
    if not page_words or not passage_words:
        return []
    matcher = difflib.SequenceMatcher(
        None, [w for w, _, _ in page_words], [w for w, _, _ in passage_words], autojunk=False
    )
    least = min(MIN_BLOCK_WORDS, len(passage_words))
    ranges: list[tuple[int, int]] = []
    for block in matcher.get_matching_blocks():
        if block.size < least:
            continue
        start = page_words[block.a][1]
        end = page_words[block.a + block.size - 1][2]
        if ranges and start - ranges[-1][1] <= 2:  # adjacent blocks become one range
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    return ranges


def merge_line_boxes(boxes: Sequence[Box]) -> list[Box]:
    """Character boxes joined into one box per line, so the highlight reads as lines."""
    lines: list[list[float]] = []
    for left, top, right, bottom in sorted(boxes, key=lambda b: (round(b[1], 3), b[0])):
        last = lines[-1] if lines else None
        same_line = last is not None and abs(top - last[1]) < 0.6 * max(bottom - top, 1e-6)
        if last is not None and same_line and left - last[2] < 0.05:
            last[0], last[1] = min(last[0], left), min(last[1], top)
            last[2], last[3] = max(last[2], right), max(last[3], bottom)
        else:
            lines.append([left, top, right, bottom])
    return [(a, b, c, d) for a, b, c, d in lines]


def text_layer_boxes(page: Any, passage: str) -> list[Box]:
    """Boxes of `passage` on a page with a text layer (pypdfium2 character rectangles)."""
    width, height = page.get_size()
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
        boxes: list[Box] = []
        for start, end in locate(text, passage):
            count = textpage.count_rects(start, end - start)
            for index in range(count):
                left, bottom, right, top = textpage.get_rect(index)
                boxes.append((left / width, 1 - top / height, right / width, 1 - bottom / height))
        return merge_line_boxes(boxes)
    finally:
        textpage.close()


def ocr_boxes(lines: list[tuple[Box, str]], passage: str) -> list[Box]:
    """Boxes of the OCR lines that hold `passage` (line boxes as fractions of the image)."""
    text, owners = "", []
    for number, (_, line) in enumerate(lines):
        text += line + "\n"
        owners += [number] * (len(line) + 1)
    hit = sorted({owners[i] for start, end in locate(text, passage) for i in range(start, end)})
    return [lines[n][0] for n in hit]


def view(request: dict[str, Any]) -> dict[str, Any]:
    """Render the page to `request["image"]` (PNG) and find the passage's boxes on it."""
    try:
        pdf = open_pdf(Path(request["path"]), None)
    except PypdfReadable:
        raise ValueError(
            "pdfium cannot open this PDF, so its pages cannot be shown; its text was read "
            "with pypdf."
        ) from None
    try:
        if not 1 <= request["page"] <= len(pdf):
            raise ValueError(f"The document has {len(pdf)} pages, not {request['page']}.")
        page = pdf[request["page"] - 1]
        width, height = page.get_size()
        image = page.render(scale=VIEW_SCALE).to_pil()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        Path(request["image"]).write_bytes(buffer.getvalue())
        textpage = page.get_textpage()
        has_text = usable(textpage.get_text_range())
        textpage.close()
        passage = request.get("passage") or ""
        if has_text or not passage:
            boxes, source = text_layer_boxes(page, passage) if passage else [], "text layer"
        else:
            from aift.rag.ocr import load_ocr

            engine = load_ocr(request["ocr_engine"], request["ocr_languages"])
            boxes, source = ocr_boxes(engine.lines(image), passage), "ocr"
        page.close()
        return {"width": width, "height": height, "boxes": boxes, "source": source}
    finally:
        pdf.close()


def main() -> None:
    """Child-process entry: one JSON request on stdin, one JSON answer on stdout."""
    request = json.loads(sys.stdin.read())
    try:
        answer = view(request)
    except Exception as exc:  # noqa: BLE001 - reported to the service as a message
        answer = {"error": str(exc) or type(exc).__name__}
    sys.stdout.write(json.dumps(answer))


if __name__ == "__main__":
    main()
