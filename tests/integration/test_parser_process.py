"""The parser process: real pypdfium2 and rapidocr in a separate process, with limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from aift.rag.extract import ExtractionError, usable
from aift.rag.parser_process import ParserOptions, ParserProcess
from tests.conftest import SHARED_DATA

PDFS = SHARED_DATA / "pdfs"


@pytest.fixture()
def parser():
    process = ParserProcess(ParserOptions("rapidocr", ["en"], 60))
    yield process
    process.close()


def parse(parser: ParserProcess, path: Path, password: str | None = None) -> tuple[int, list]:
    items = list(parser.parse(path, "application/pdf", password))
    return items[0], items[1:]


def zero_page_pdf() -> bytes:
    """A well-formed PDF whose page tree is empty."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 3\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref


def test_zero_pages_and_broken_files_fail_alone_and_the_parser_goes_on(parser, tmp_path) -> None:
    import pypdfium2 as pdfium

    empty = tmp_path / "empty.pdf"
    empty.write_bytes(zero_page_pdf())
    with pytest.raises(ExtractionError) as caught:
        parse(parser, empty)
    assert caught.value.kind == "empty"
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 10)
    with pytest.raises(ExtractionError) as caught:
        parse(parser, garbage)
    assert caught.value.kind == "corrupt" and "corrupt" in str(caught.value)
    text = tmp_path / "a.pdf"
    page = pdfium.PdfDocument.new()
    page.new_page(200, 200)
    page.save(str(text))
    total, pages = parse(parser, text)  # the same process answers the next file
    assert total == 1 and len(pages) == 1


@pytest.mark.skipif(not PDFS.exists(), reason="../shared/data is not present")
def test_a_wrong_password_says_so(parser) -> None:
    locked = PDFS / "libreoffice-writer-password.pdf"
    with pytest.raises(ExtractionError) as caught:
        parse(parser, locked, "wrong")
    assert caught.value.kind == "needs_password" and "wrong" in str(caught.value)
    total, pages = parse(parser, locked, "openpassword")
    assert total == 1 and "Lorem ipsum" in pages[0].text


@pytest.mark.skipif(not PDFS.exists(), reason="../shared/data is not present")
def test_a_parser_that_takes_too_long_is_killed_and_replaced() -> None:
    slow = ParserProcess(ParserOptions("rapidocr", ["en"], 0.001))  # nothing is that fast
    try:
        with pytest.raises(ExtractionError) as caught:
            list(slow.parse(PDFS / "minimal-document.pdf", "application/pdf", None))
        assert caught.value.kind == "timeout" and "no progress" in str(caught.value)
        assert slow._process is None, "the stuck process was killed"
        slow.options.page_timeout_seconds = 60
        items = list(slow.parse(PDFS / "minimal-document.pdf", "application/pdf", None))
        assert items[0] == 1, "a fresh parser took over"
    finally:
        slow.close()


def test_usable_text_layer_heuristic() -> None:
    assert usable("A real sentence with enough characters.")
    assert not usable("  3  ")
    assert not usable("\ufffd" * 40)


@pytest.mark.skipif(not PDFS.exists(), reason="../shared/data is not present")
def test_a_pdf_pdfium_refuses_is_read_by_pypdf_before_it_is_called_corrupt(
    parser, tmp_path
) -> None:
    import re

    damaged = tmp_path / "no-root-in-trailer.pdf"  # valid pages, a broken trailer
    original = (PDFS / "pdflatex-4-pages.pdf").read_bytes()
    damaged.write_bytes(re.sub(rb"/Root\s+\d+\s+\d+\s+R", b"/Rooo 1 0 R", original))
    total, pages = parse(parser, damaged)
    assert total == 4 and [p.number for p in pages] == [1, 2, 3, 4]
    assert all(usable(p.text) for p in pages)
    with pytest.raises(ExtractionError) as caught:  # the empty one says so, not "corrupt"
        empty = tmp_path / "empty.pdf"
        empty.write_bytes(zero_page_pdf())
        parse(parser, empty)
    assert caught.value.kind == "empty" and "no pages" in str(caught.value)


def test_ocr_keeps_the_spaces_between_words(parser, tmp_path) -> None:
    """rapidocr's recogniser runs the words of a Latin line together on an ordinary
    150 dpi office scan; the spaces are rebuilt from the characters' boxes."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    lines = [
        "Boarding closes exactly 12 minutes before each departure.",
        "The night ferry to Orsund leaves the north pier at 23:40.",
        "Deck officer Paulo Vanterpool signs the safety log after every crossing.",
    ]
    dejavu = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    font = ImageFont.truetype(str(dejavu), 30) if dejavu.exists() else ImageFont.load_default(30)
    page = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
    draw = ImageDraw.Draw(page)
    for number, line in enumerate(lines):
        draw.text((120, 120 + 70 * number), line, fill=20, font=font)
    page = page.rotate(0.5, fillcolor=255, resample=Image.BICUBIC).filter(
        ImageFilter.GaussianBlur(0.6)
    )
    path = tmp_path / "scan.pdf"
    page.convert("RGB").save(path, format="PDF", resolution=150)
    total, pages = parse(parser, path)
    assert total == 1 and pages[0].ocr
    words = pages[0].text.split()
    expected = " ".join(lines).split()
    assert sum(1 for w in expected if w in words) >= 0.85 * len(expected), pages[0].text
    assert {"closes", "exactly", "minutes", "Vanterpool"} <= set(words), pages[0].text


def test_a_blank_scan_reports_that_ocr_ran(parser, tmp_path) -> None:
    from PIL import Image

    path = tmp_path / "blank.pdf"
    Image.new("RGB", (1240, 1754), "white").save(path, format="PDF", resolution=150)
    total, pages = parse(parser, path)
    assert total == 1 and pages[0].ocr and not pages[0].text.strip()


def test_a_picture_of_text_under_a_watermark_is_read(parser, tmp_path) -> None:
    """A page whose only text layer is a watermark still has its big image OCR'd."""
    import io

    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    dejavu = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    font = ImageFont.truetype(str(dejavu), 44) if dejavu.exists() else ImageFont.load_default(44)
    picture = Image.new("RGB", (1600, 900), "white")
    draw = ImageDraw.Draw(picture)
    draw.text((60, 200), "Pump station Kelvedon opens at 06:15.", fill="black", font=font)
    draw.text((60, 400), "The spare impeller is kept in locker 9.", fill="black", font=font)
    png = io.BytesIO()
    picture.save(png, format="PNG")
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 8, "CONFIDENTIAL - INTERNAL USE ONLY")
    pdf.image(png, x=10, y=30, w=190)
    path = tmp_path / "mixed.pdf"
    pdf.output(str(path))
    total, pages = parse(parser, path)
    assert total == 1 and pages[0].ocr
    assert pages[0].text.startswith("CONFIDENTIAL"), pages[0].text
    assert "Kelvedon" in pages[0].text and "locker 9" in pages[0].text, pages[0].text


def test_a_korean_scan_is_read_by_the_automatic_engine(tmp_path) -> None:
    """`auto` reads Hangul scans with tesseract's Korean pack (rapidocr reads none), and
    keeps the line's word spacing; where the pack is missing it says why it skips."""
    import importlib.util
    import shutil
    import subprocess

    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    tesseract = shutil.which("tesseract")
    packs = subprocess.run([tesseract, "--list-langs"], capture_output=True, text=True).stdout
    if not tesseract or "kor" not in packs.split():
        pytest.skip("tesseract with its Korean pack is not installed (make setup installs it)")
    spec = importlib.util.find_spec("koreanize_matplotlib")
    assert spec and spec.submodule_search_locations, "make setup installs the Korean font"
    nanum = Path(next(iter(spec.submodule_search_locations))) / "fonts" / "NanumGothic.ttf"
    lines = [
        "도림시 공공도서관의 장서는 모두 284,000권이다.",
        "열람실은 평일 오전 7시부터 오후 11시까지 운영한다.",
        "Deck officer Paulo Vanterpool signs the safety log.",
    ]
    font = ImageFont.truetype(str(nanum), 30)
    page = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
    draw = ImageDraw.Draw(page)
    for number, line in enumerate(lines):
        draw.text((120, 120 + 70 * number), line, fill=20, font=font)
    page = page.rotate(-0.5, fillcolor=255, resample=Image.BICUBIC).filter(
        ImageFilter.GaussianBlur(0.6)
    )
    path = tmp_path / "scan.pdf"
    page.convert("RGB").save(path, format="PDF", resolution=150)
    process = ParserProcess(ParserOptions("auto", ["en", "ko"], 120))
    try:
        total, pages = parse(process, path)
    finally:
        process.close()
    assert total == 1 and pages[0].ocr
    words = pages[0].text.split()
    expected = " ".join(lines).split()
    assert sum(1 for w in expected if w in words) >= 0.8 * len(expected), pages[0].text
    assert {"장서는", "284,000권이다.", "Vanterpool"} <= set(words), pages[0].text
