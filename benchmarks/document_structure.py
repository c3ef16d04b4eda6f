"""Structure in PDFs: headings, reading order and page furniture. Generated manuals
(English and Korean) with numbered and unnumbered headings at three sizes, running
headers and footers with page numbers, and two-column pages — half written column by
column, half line by line across both columns (as some producers do) — are read back
by aift's PDF reader (`aift.rag.extract.pdf_pages`) and by the text layer alone (pdfium's
text, what aift read before), and scored:

- heading precision / recall: headings found (Markdown lines) against those written, by
  exact text; level agreement: found headings whose nesting matches the written one;
- reading order: of the written sentences, the share of consecutive pairs that come out
  in the written order (a sentence cut by another column counts as out of order);
- furniture: the share of pages whose text still holds the running header or footer;
- body kept: the share of written sentences found whole in the text;
- parse time per page.

Half the documents carry PDF bookmarks for their headings, half do not.

Run: .venv/bin/python benchmarks/document_structure.py
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from fictional_documents import korean_font  # noqa: E402

from aift.rag.extract import pdf_pages  # noqa: E402

SUBJECTS = ["the pump", "the valve", "the filter", "the relay", "the motor", "the sensor"]
VERBS = ["is checked", "is cleaned", "is replaced", "is tested", "is logged", "is tightened"]
WHEN = ["every week", "after each shift", "before start-up", "once a month", "when it hums"]
KO_SUBJECTS = ["펌프는", "밸브는", "필터는", "릴레이는", "모터는", "센서는"]
KO_VERBS = ["점검한다", "청소한다", "교체한다", "시험한다", "기록한다", "조인다"]
KO_WHEN = ["매주", "교대 후마다", "가동 전에", "한 달에 한 번", "소음이 날 때"]
SIZES = {1: 18.0, 2: 14.0, 3: 11.5}  # heading sizes by level; body 10 (level 3 is bold)
BODY = 10.0


@dataclass
class Written:
    """What a generated document holds, to score a reading against."""

    headings: list[tuple[int, str]] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    header: str = ""
    pages: int = 0


def sentence(rng: random.Random, korean: bool, serial: int) -> str:
    if korean:
        return f"{rng.choice(KO_WHEN)} {rng.choice(KO_SUBJECTS)} 부품 {serial}번을 {rng.choice(KO_VERBS)}."
    subject = rng.choice(SUBJECTS).capitalize()
    return f"{subject} of unit {serial} {rng.choice(VERBS)} {rng.choice(WHEN)}."


def outline(rng: random.Random, korean: bool) -> list[tuple[int, str]]:
    """Chapters, sections and subsections; some numbered, some not."""
    names = ["유지보수", "배터리", "안전", "설치", "점검", "보관"] if korean else [
        "Maintenance", "Batteries", "Safety", "Installation", "Inspection", "Storage"]  # fmt: skip
    found: list[tuple[int, str]] = []
    for c in range(1, 4):
        found.append((1, f"{c} {rng.choice(names)} {c}"))
        for s in range(1, 3):
            found.append((2, f"{c}.{s} {rng.choice(names)} {c}{s}"))
            if rng.random() < 0.5:
                found.append((3, f"{c}.{s}.1 {rng.choice(names)} {c}{s}1"))
        if rng.random() < 0.5:
            found.append(
                (2, rng.choice(["참고", "비고"]) if korean else rng.choice(["Notes", "Remarks"]))
            )
    return found


class Writer:
    """An fpdf2 document with running header and footer and two ways to set columns."""

    def __init__(self, korean: bool, bookmarks: bool, header: str) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(format="A4")
        self.pdf.set_auto_page_break(False)
        self.pdf.add_font("Nanum", fname=str(korean_font()))
        self.pdf.add_font(
            "Nanum", style="B", fname=str(korean_font().with_name("NanumGothicBold.ttf"))
        )
        self.bookmarks = bookmarks
        self.header = header
        self.y = 0.0

    def page(self) -> None:
        pdf = self.pdf
        pdf.add_page()
        pdf.set_font("Nanum", size=8)
        pdf.text(15, 10, self.header)
        pdf.text(95, 290, f"Page {pdf.page_no()}")
        self.y = 20.0

    def room(self, height: float) -> None:
        if self.y + height > 275:
            self.page()

    def heading(self, level: int, title: str) -> None:
        self.room(16)
        self.pdf.set_font("Nanum", style="B" if level == 3 else "", size=SIZES[level])
        if self.bookmarks:
            self.pdf.set_y(self.y)
            self.pdf.start_section(title, level=level - 1)
        self.pdf.text(15, self.y + SIZES[level] * 0.35, title)
        self.y += SIZES[level] * 0.35 + 4

    def lines_of(self, text: str, width: float) -> list[str]:
        self.pdf.set_font("Nanum", size=BODY)
        lines: list[str] = self.pdf.multi_cell(width, 5, text, dry_run=True, output="LINES")
        return lines

    def paragraph(self, text: str) -> None:
        lines = self.lines_of(text, 180)
        for line in lines:
            self.room(5)
            self.pdf.text(15, self.y + 4, line)
            self.y += 5
        self.y += 2

    def columns(self, left: str, right: str, interleaved: bool) -> None:
        """Two columns of 85 mm with a 10 mm gutter, from the current height."""
        a, b = self.lines_of(left, 85), self.lines_of(right, 85)
        self.room(5 * max(len(a), len(b)))
        self.pdf.set_font("Nanum", size=BODY)
        if interleaved:
            for i in range(max(len(a), len(b))):
                for x, lines in ((15, a), (110, b)):
                    if i < len(lines):
                        self.pdf.text(x, self.y + 4 + 5 * i, lines[i])
        else:
            for x, lines in ((15, a), (110, b)):
                for i, line in enumerate(lines):
                    self.pdf.text(x, self.y + 4 + 5 * i, line)
        self.y += 5 * max(len(a), len(b)) + 2


def write(path: Path, seed: int, korean: bool, bookmarks: bool) -> Written:
    rng = random.Random(seed)
    written = Written(
        header="현장 정비 설명서 제3판" if korean else "ACME Field Manual, revision 3"
    )
    writer = Writer(korean, bookmarks, written.header)
    writer.page()
    serial = seed * 1000
    for level, title in outline(rng, korean):
        writer.heading(level, title)
        written.headings.append((level, title))
        for kind in rng.choices(["text", "columns"], weights=[2, 1], k=2):
            said = []
            for _ in range(rng.randint(4, 8) if kind == "columns" else rng.randint(2, 4)):
                serial += 1
                said.append(sentence(rng, korean, serial))
            written.sentences += said
            if kind == "text":
                writer.paragraph(" ".join(said))
            else:
                half = (len(said) + 1) // 2
                writer.columns(" ".join(said[:half]), " ".join(said[half:]), rng.random() < 0.5)
    written.pages = writer.pdf.page_no()
    writer.pdf.output(str(path))
    return written


def pdfium_text(path: Path) -> list[str]:
    """The text layer alone, page by page (what aift read before this layout)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        pages = []
        for page in pdf:
            textpage = page.get_textpage()
            pages.append(textpage.get_text_bounded().replace("\r\n", "\n").replace("\r", "\n"))
            textpage.close()
            page.close()
        return pages
    finally:
        pdf.close()


def aift_text(path: Path) -> list[str]:
    return [page.text for page in pdf_pages(path, None, _no_ocr)]


def _no_ocr() -> Any:
    raise AssertionError("the generated PDFs have a text layer on every page")


def _flat(text: str) -> str:
    return " ".join(text.split())


def score(written: Written, pages: list[str]) -> dict[str, float]:
    """Heading, reading-order, furniture and body figures of one document's reading."""
    text = "\n".join(pages)
    found = [
        (len(m.group(1)), _flat(m.group(2))) for m in re.finditer(r"^(#{1,6}) +(.+)$", text, re.M)
    ]
    titles = [t for _, t in written.headings]
    right = Counter(titles) & Counter(t for _, t in found)
    flat = _flat(text)
    positions = [flat.find(s) for s in written.sentences]
    pairs = list(zip(positions, positions[1:], strict=False))
    in_order = sum(1 for a, b in pairs if 0 <= a < b)
    return {
        "headings_written": len(titles),
        "headings_found": len(found),
        "headings_right": sum(right.values()),
        "levels_right": _levels_right(written.headings, found),
        "pairs": len(pairs),
        "pairs_in_order": in_order,
        "sentences": len(written.sentences),
        "sentences_kept": sum(1 for p in positions if p >= 0),
        "pages": len(pages),
        "furniture_pages": sum(
            1 for p in pages if written.header in p or re.search(r"Page \d+", p)
        ),
    }


def _levels_right(written: list[tuple[int, str]], found: list[tuple[int, str]]) -> int:
    """Found headings under the same parent (the nearest heading above of a smaller
    level) as written: the nesting a section path is made of."""

    def parents(items: list[tuple[int, str]]) -> Counter[tuple[str, str | None]]:
        result: Counter[tuple[str, str | None]] = Counter()
        stack: list[tuple[int, str]] = []
        for level, title in items:
            while stack and stack[-1][0] >= level:
                stack.pop()
            result[(title, stack[-1][1] if stack else None)] += 1
            stack.append((level, title))
        return result

    return sum((parents(written) & parents(found)).values())


def run(count: int = 8) -> dict[str, Any]:
    totals: dict[str, dict[str, float]] = {"aift": {}, "pdfium": {}}
    seconds = {"aift": 0.0, "pdfium": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(count):
            path = Path(tmp) / f"manual-{seed}.pdf"
            written = write(path, seed + 1, korean=seed % 2 == 1, bookmarks=seed % 4 >= 2)
            for name, read in (("aift", aift_text), ("pdfium", pdfium_text)):
                start = time.perf_counter()
                pages = read(path)
                seconds[name] += time.perf_counter() - start
                for key, value in score(written, pages).items():
                    totals[name][key] = totals[name].get(key, 0) + value
    return {name: _summary(t, seconds[name]) for name, t in totals.items()}


def _summary(t: dict[str, float], seconds: float) -> dict[str, float]:
    return {
        "heading_precision": round(t["headings_right"] / max(t["headings_found"], 1), 3),
        "heading_recall": round(t["headings_right"] / t["headings_written"], 3),
        "nesting_right": round(t["levels_right"] / t["headings_written"], 3),
        "order_right": round(t["pairs_in_order"] / t["pairs"], 3),
        "furniture_pages": round(t["furniture_pages"] / t["pages"], 3),
        "body_kept": round(t["sentences_kept"] / t["sentences"], 3),
        "pages": int(t["pages"]),
        "ms_per_page": round(1000 * seconds / t["pages"], 1),
    }


ROWS = [
    ("heading_precision", "heading precision", "{:.1%}"),
    ("heading_recall", "heading recall", "{:.1%}"),
    ("nesting_right", "headings under the right parent", "{:.1%}"),
    ("order_right", "sentence pairs in reading order", "{:.1%}"),
    ("furniture_pages", "pages still holding header/footer", "{:.1%}"),
    ("body_kept", "sentences found whole", "{:.1%}"),
    ("ms_per_page", "parse time per page", "{:.1f} ms"),
]


REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pdfs"


def real_pdfs() -> list[str]:
    """The shared real-world PDFs (no answer key): headings found, the share of the text
    layer's words still in the text (what furniture removal and joined words take away),
    and parse time per page."""
    rows = []
    for path in sorted(REAL.glob("*.pdf")):
        if "password" in path.name or "image" in path.name:
            continue
        start = time.perf_counter()
        pages = aift_text(path)
        seconds = time.perf_counter() - start
        before, after = _words(pdfium_text(path)), _words(pages)
        kept = sum((before & after).values()) / max(sum(before.values()), 1)
        headings = sum(len(re.findall(r"^#{1,6} ", p, re.M)) for p in pages)
        rows.append(
            f"| {path.name} | {len(pages)} | {headings} | {kept:.1%} | {1000 * seconds / len(pages):.0f} ms |"
        )
    return rows


def _words(pages: list[str]) -> Counter[str]:
    return Counter(w for p in pages for w in re.findall(r"\w+", p.replace("\x02", "")))


def main() -> None:
    result = run()
    lines = ["| | pdfium text layer (before) | aift layout |", "|---|---:|---:|"]
    for key, label, form in ROWS:
        lines.append(
            f"| {label} | {form.format(result['pdfium'][key])} | {form.format(result['aift'][key])} |"
        )
    body = (
        f"8 generated manuals (4 English, 4 Korean; {result['aift']['pages']} pages): numbered and "
        "unnumbered headings at three levels (18, 14 and bold 11.5 pt over 10 pt body text), "
        "running header and page-number footer on every page, two-column passages (half "
        "written column by column, half line by line across both columns); half with PDF "
        "bookmarks.\n\n" + "\n".join(lines) + "\n"
    )
    real = real_pdfs()
    if real:
        body += (
            "\nThe shared real-world PDFs (no answer key: headings found, and the share of the "
            "text layer's words still in aift's text — running headers, page numbers and words "
            "split by a line-end hyphen are what it drops):\n\n"
            "| PDF | pages | headings | words kept | parse time per page |\n|---|---:|---:|---:|---:|\n"
            + "\n".join(real)
            + "\n"
        )
    print(body)
    record("Documents: headings, reading order and page furniture in PDFs", body,
           "python benchmarks/document_structure.py")  # fmt: skip


if __name__ == "__main__":
    main()
