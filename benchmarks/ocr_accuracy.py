"""OCR word accuracy on scans of known text, English and Korean: tesseract (what
`AIFT_OCR_ENGINE=auto` picks when it is installed with its Korean pack) and rapidocr
(the fallback) with aift's word-spacing reconstruction, against rapidocr's raw output.

The pages of the fictional documents (`fictional_documents.py`) are scanned (rendered
with a little blur and tilt at 150 and 300 dpi, saved as image-only PDFs) and read
back through aift's own extraction (`aift.rag.extract.pdf_pages`). Word accuracy is the
share of the known text's words found in order in the OCR text (difflib matching blocks
over word lists); for Korean the words are the space-separated eojeol.

Run: .venv/bin/python benchmarks/ocr_accuracy.py
"""

from __future__ import annotations

import difflib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from fictional_documents import DOCUMENTS, Document, write_scanned_pdf  # noqa: E402

from aift.rag.extract import pdf_pages  # noqa: E402
from aift.rag.ocr import rapid, tesseract  # noqa: E402


def word_accuracy(expected: str, found: str) -> float:
    want, got = expected.split(), found.split()
    matcher = difflib.SequenceMatcher(a=want, b=got, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / max(1, len(want))


class RawRapid(rapid.Backend):
    """rapidocr's own text, without the spacing reconstruction (the baseline)."""

    def _recognise(self, image):  # noqa: ANN001, ANN202
        import numpy as np

        result, _ = self._engine(np.asarray(image.convert("RGB")))
        return [[box, text, score] for box, text, score in result or []]


def measure(document: Document, dpi: int, engine: rapid.Backend) -> tuple[float, float]:
    """(word accuracy, seconds per page) of one document scanned at `dpi`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scan.pdf"
        write_scanned_pdf(document, path, dpi=dpi)
        started = time.perf_counter()
        pages = list(pdf_pages(path, None, lambda: engine))
        spent = (time.perf_counter() - started) / max(1, len(pages))
    expected = " ".join(" ".join(p) for p in document.pages).replace("—", "-")
    return word_accuracy(expected, " ".join(p.text for p in pages)), spent


def main() -> None:
    engines: dict[str, rapid.Backend | tesseract.Backend] = {
        "tesseract (kor+eng, aift layout check)": tesseract.Backend(["en", "ko"]),
        "rapidocr + aift spacing": rapid.Backend(["en", "ko"]),
        "rapidocr raw": RawRapid(["en", "ko"]),
    }
    rows = [
        "| language | dpi | "
        + " | ".join(f"{name}: word accuracy, s / page" for name in engines)
        + " |",
        "|---|---|" + "---|" * len(engines),
    ]
    for korean in (False, True):
        documents = [d for d in DOCUMENTS if d.korean == korean]
        for dpi in (150, 300):
            scores: dict[str, list[float]] = {name: [] for name in engines}
            seconds: dict[str, list[float]] = {name: [] for name in engines}
            for document in documents:
                for name, engine in engines.items():
                    accuracy, spent = measure(document, dpi, engine)
                    scores[name].append(accuracy)
                    seconds[name].append(spent)
            rows.append(
                f"| {'Korean' if korean else 'English'} | {dpi} | "
                + " | ".join(
                    f"{sum(scores[n]) / len(scores[n]):.0%}, "
                    f"{sum(seconds[n]) / len(seconds[n]):.1f}"
                    for n in engines
                )
                + " |"
            )
            print(rows[-1], flush=True)
    rows += [
        "",
        "Pages: the fictional documents' text (English: a report and an SOP, 5 pages; "
        "Korean: a report and a notice, 4 pages) rendered as scans with slight blur and "
        "tilt. rapidocr's bundled models read Chinese and Latin scripts only, so Korean scans "
        "need tesseract with its `kor` pack (`make setup` installs it where it can) or "
        "easyocr.",
    ]
    body = "\n".join(rows)
    record("OCR word accuracy on scans of known text", body, "python benchmarks/ocr_accuracy.py")
    print(body)


if __name__ == "__main__":
    main()
