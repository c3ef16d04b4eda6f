"""What parsing costs: time and peak memory of aift's PDF reader (layout, ruled tables,
OCR where needed) in a process of its own, as the ingestion job's parser process runs it.

- GeoTopo (117 text pages, some ruled tables) — the issue's "100-page text PDF with
  tables" budget is 30 s and 1 GB;
- the same PDF repeated into 2,000+ pages — it must stream: peak memory should not grow
  with the page count;
- a clean 200 dpi scan of generated pages with ruled tables (English and Korean) — the
  budget is 5 s per page.

Run: .venv/bin/python benchmarks/parse_cost.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402

GEOTOPO = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "pdfs"
    / "GeoTopo-komprimiert.pdf"
)

CHILD = """
import json, resource, sys, time
from pathlib import Path
from aift.rag.extract import pdf_pages
from aift.rag.ocr import load_ocr
engine = None
def ocr():
    global engine
    engine = engine or load_ocr("auto", ["en", "ko"])
    return engine
start = time.perf_counter()
pages = chars = 0
for page in pdf_pages(Path(sys.argv[1]), None, ocr):
    pages += 1
    chars += len(page.text)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"pages": pages, "seconds": seconds, "peak_mb": peak, "chars": chars}))
"""


def measure(path: Path) -> dict[str, float]:
    """Parse `path` in a fresh process: pages, seconds, peak resident MB."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def repeated(source: Path, target: Path, pages: int) -> None:
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(source)
    writer = PdfWriter()
    while len(writer.pages) < pages:
        for page in reader.pages:
            writer.add_page(page)
    writer.write(target)


def scanned_tables(target: Path) -> None:
    import pypdfium2 as pdfium
    from document_tables import make_tables, write_pdf

    typed = target.with_name("typed.pdf")
    write_pdf(make_tables(8, seed=11), typed)
    images = [
        page.render(scale=200 / 72).to_pil().convert("L") for page in pdfium.PdfDocument(str(typed))
    ]
    images[0].save(target, save_all=True, append_images=images[1:], resolution=200)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        long = Path(folder) / "long.pdf"
        repeated(GEOTOPO, long, 2000)
        scan = Path(folder) / "scanned-tables.pdf"
        scanned_tables(scan)
        for label, path in (
            ("GeoTopo, text with ruled tables", GEOTOPO),
            ("GeoTopo repeated", long),
            ("scanned pages with ruled tables (OCR)", scan),
        ):
            got = measure(path)
            rows.append(
                f"| {label} | {got['pages']:.0f} | {got['seconds']:.1f} s | "
                f"{got['seconds'] / got['pages']:.2f} s | {got['peak_mb']:.0f} MB |"
            )
            print(rows[-1], flush=True)
    body = (
        "Each PDF parsed in a process of its own through `aift.rag.extract.pdf_pages` (layout, "
        "ruled tables, OCR where a page has no text layer; tesseract for the scan), as the "
        "ingestion job's parser process does; peak is that process's resident memory.\n\n"
        "| PDF | pages | parse time | per page | peak memory |\n|---|---:|---:|---:|---:|\n"
        + "\n".join(rows)
        + "\n"
    )
    print(body)
    record("Documents: parse time and memory", body, "python benchmarks/parse_cost.py")


if __name__ == "__main__":
    main()
