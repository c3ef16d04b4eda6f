"""Fictional documents with known facts, written as PDFs (a text layer, or scanned: page
images only) for the answer-quality benchmark. Nobody has seen them, no model was
trained on them, and every question's answer and page are known.

Text PDFs are written with fpdf2; scans are the same pages rendered to images with
Pillow (a little noise and tilt, like a scanner) and saved as an image-only PDF. Korean
needs a font with Hangul: NanumGothic (OFL), installed by `make` from the
koreanize-matplotlib wheel.
"""

from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Question:
    question: str
    answer: str  # the expected fact, as it must appear in a right answer
    page: int
    also: tuple[str, ...] = ()  # the same fact written otherwise ("9 days" for "nine")

    def answered_by(self, text: str) -> bool:
        """Whether `text` states the expected fact in one of its accepted forms."""
        said = " ".join(text.split()).lower()
        return any(form.lower() in said for form in (self.answer, *self.also))


@dataclass
class Document:
    name: str
    pages: list[list[str]]  # paragraphs per page
    questions: list[Question]
    scanned: bool = False
    korean: bool = False


FILLER_EN = [
    "The committee reviewed the minutes of the previous meeting and approved them without changes.",
    "Staff are reminded that all visitors must sign in at the front desk.",
    "Further details are available from the records office on request.",
    "This section is provided for information only and does not change any procedure.",
]
FILLER_KO = [
    "위원회는 지난 회의록을 검토하고 수정 없이 승인하였다.",
    "모든 방문객은 안내 데스크에서 방문 기록을 작성해야 한다.",
    "자세한 내용은 기록 보관실에 요청하면 받을 수 있다.",
]

DOCUMENTS = [
    Document(
        "varn-water-report.pdf",
        [
            [
                "Varn Basin Water Authority — Annual Report 2031.",
                "The authority supplies drinking water to 412,000 residents in the Varn basin.",
                FILLER_EN[0],
                "Chief engineer Odile Marchetti leads the treatment division since March 2029.",
            ],
            [
                FILLER_EN[1],
                "The Keldby treatment plant processes 58 million litres of water per day.",
                "Chlorine dosing at the plant is kept between 0.6 and 1.1 mg/L.",
                FILLER_EN[2],
            ],
            [
                "In 2031 the authority replaced 37 kilometres of cast-iron mains.",
                FILLER_EN[3],
                "The emergency reservoir at Tessel Hill holds a reserve for nine days.",
            ],
        ],
        [
            Question(
                "How many residents does the Varn Basin Water Authority supply?", "412,000", 1
            ),
            Question("Who leads the treatment division?", "Odile Marchetti", 1),
            Question("How much water does the Keldby plant process each day?", "58 million", 2),
            Question(
                "What range is chlorine dosing kept within?",
                "0.6 and 1.1",
                2,
                also=("0.6 to 1.1", "0.6-1.1", "0.6–1.1"),
            ),
            Question("How many kilometres of mains were replaced in 2031?", "37", 3),
            Question(
                "For how many days does the Tessel Hill reservoir hold a reserve?",
                "nine",
                3,
                also=("9 days",),
            ),
        ],
    ),
    Document(
        "halvard-ferry-sop.pdf",
        [
            [
                "Halvard Ferry Company — Standard Operating Procedure 14.",
                "Boarding closes exactly 12 minutes before each departure.",
                FILLER_EN[1],
                "The night ferry to Orsund leaves the north pier at 23:40.",
            ],
            [
                FILLER_EN[2],
                "Each vessel carries 18 life rafts and a rescue boat.",
                "Deck officer Paulo Vanterpool signs the safety log after every crossing.",
            ],
        ],
        [
            Question("When does boarding close before a departure?", "12 minutes", 1),
            Question("At what time does the night ferry to Orsund leave?", "23:40", 1),
            Question("How many life rafts does each vessel carry?", "18", 2),
            Question("Who signs the safety log after every crossing?", "Paulo Vanterpool", 2),
        ],
        scanned=True,
    ),
    Document(
        "dorim-library-report.pdf",
        [
            [
                "도림시 공공도서관 운영 보고서 2031.",
                "도림시 공공도서관의 장서는 모두 284,000권이다.",
                FILLER_KO[0],
                "관장 한서윤은 2030년 1월에 취임하였다.",
            ],
            [
                FILLER_KO[1],
                "열람실은 평일 오전 7시부터 오후 11시까지 운영한다.",
                "2031년에 새로 등록한 회원은 15,600명이었다.",
            ],
        ],
        [
            Question("도림시 공공도서관의 장서는 몇 권인가?", "284,000", 1),
            Question("도서관 관장은 누구인가?", "한서윤", 1),
            Question("열람실은 평일 몇 시에 문을 여는가?", "7시", 2),
            Question("2031년에 새로 등록한 회원은 몇 명인가?", "15,600", 2),
        ],
        korean=True,
    ),
    Document(
        "seoha-farm-notice.pdf",
        [
            [
                "서하 농업협동조합 공지.",
                "올해 배 수확은 9월 22일에 시작한다.",
                FILLER_KO[2],
                "조합의 저온 창고는 영하 2도로 유지된다.",
            ],
            [
                "조합원 총회는 10월 5일 서하 마을회관에서 열린다.",
                FILLER_KO[0],
                "조합은 올해 트랙터 6대를 새로 구입하였다.",
            ],
        ],
        [
            Question("배 수확은 언제 시작하는가?", "9월 22일", 1),
            Question("저온 창고는 몇 도로 유지되는가?", "영하 2도", 1),
            Question("조합원 총회는 어디에서 열리는가?", "마을회관", 2),
            Question("조합이 올해 새로 구입한 트랙터는 몇 대인가?", "6대", 2),
        ],
        scanned=True,
        korean=True,
    ),
]


def korean_font() -> Path:
    """NanumGothic from the koreanize-matplotlib wheel (not imported: it needs matplotlib)."""
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Korean documents need `pip install --no-deps koreanize-matplotlib`.")
    return Path(next(iter(spec.submodule_search_locations))) / "fonts" / "NanumGothic.ttf"


def write_text_pdf(document: Document, path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    if document.korean:
        pdf.add_font("Nanum", fname=str(korean_font()))
        pdf.set_font("Nanum", size=12)
    else:
        pdf.set_font("Helvetica", size=12)
    for paragraphs in document.pages:
        pdf.add_page()
        for paragraph in paragraphs:
            pdf.multi_cell(0, 7, paragraph.replace("—", "-"))
            pdf.ln(3)
    pdf.output(str(path))


def write_scanned_pdf(document: Document, path: Path, seed: int = 0, dpi: int = 150) -> None:
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    rng = random.Random(seed)
    font_path = (
        korean_font()
        if document.korean
        else Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    )
    scale = dpi / 150
    font = (
        ImageFont.truetype(str(font_path), round(30 * scale))
        if font_path.exists()
        else ImageFont.load_default(30)
    )
    images = []
    for paragraphs in document.pages:
        page = Image.new("L", (round(1240 * scale), round(1754 * scale)), 255)  # A4
        draw = ImageDraw.Draw(page)
        y = round(120 * scale)
        for paragraph in paragraphs:
            for line in _wrap(paragraph, draw, font, round(1000 * scale)):
                draw.text((round(120 * scale), y), line, fill=rng.randint(0, 40), font=font)
                y += round(46 * scale)
            y += round(24 * scale)
        page = page.rotate(rng.uniform(-0.8, 0.8), fillcolor=255, resample=Image.BICUBIC)
        page = page.filter(ImageFilter.GaussianBlur(0.6))
        images.append(page.convert("RGB"))
    images[0].save(path, save_all=True, append_images=images[1:], resolution=dpi)


def _wrap(text: str, draw: object, font: object, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if draw.textlength(candidate, font=font) > width and current:  # type: ignore[attr-defined]
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current else lines


def write_all(folder: Path) -> list[tuple[Document, Path]]:
    """Every fictional document written into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for number, document in enumerate(DOCUMENTS):
        path = folder / document.name
        if document.scanned:
            write_scanned_pdf(document, path, seed=number)
        else:
            write_text_pdf(document, path)
        out.append((document, path))
    return out
