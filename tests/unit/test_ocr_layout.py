"""Tesseract's language order, word spacing and column check (no tesseract needed)."""

from __future__ import annotations

from aift.rag.ocr import tesseract


def test_non_latin_packs_come_first_and_duplicates_go() -> None:
    assert tesseract.pack_order(["en", "ko"]) == ["kor", "eng"]
    assert tesseract.pack_order(["de", "ja", "en", "ru"]) == ["jpn", "rus", "deu", "eng"]
    assert tesseract.pack_order(["en", "en"]) == ["eng"]
    assert tesseract.pack_order([]) == ["eng"]


def tsv(*words: tuple[int, int, int, int, int, int, str]) -> str:
    """TSV rows of level-5 words: (block, line, left, top, width, height, text)."""
    header = "level page_num block_num par_num line_num word_num left top width height conf text"
    rows = [
        "\t".join(map(str, (5, 1, block, 1, line, n, left, top, width, height, 95, text)))
        for n, (block, line, left, top, width, height, text) in enumerate(words)
    ]
    header = header.replace(" ", "\t")
    return "\n".join([header, *rows])


def test_syllable_pieces_join_without_spaces_and_words_keep_theirs() -> None:
    # tesseract cuts "방문객은 안내" into pieces; only the wide gap is a word gap
    line = tsv(
        (1, 1, 100, 10, 30, 30, "방문"),
        (1, 1, 131, 10, 15, 30, "객"),
        (1, 1, 147, 10, 15, 30, "은"),
        (1, 1, 180, 10, 30, 30, "안내"),
    )
    (words,) = tesseract._parse_tsv(line).values()
    assert tesseract._join(words) == "방문객은 안내"


def test_columns_need_side_by_side_blocks_of_several_lines() -> None:
    left = [(1, n, 100, 100 + 40 * n, 400, 30, "left") for n in range(5)]
    right = [(2, n, 700, 100 + 40 * n, 400, 30, "right") for n in range(5)]
    assert tesseract._has_columns(tsv(*left, *right))
    stray = [(2, 0, 20, 100, 40, 30, "Ho")]  # a misread word beside the first line
    assert not tesseract._has_columns(tsv(*left, *stray))
    below = [(2, n, 100, 400 + 40 * n, 400, 30, "below") for n in range(5)]
    assert not tesseract._has_columns(tsv(*left, *below))


def test_auto_falls_back_to_rapidocr_and_names_what_it_cannot_read(monkeypatch, caplog) -> None:
    from aift.rag.ocr import load_ocr

    monkeypatch.setattr(tesseract.shutil, "which", lambda program: None)
    with caplog.at_level("WARNING"):
        engine = load_ocr("auto", ["en", "ko"])
    assert engine.name == "rapidocr"
    assert "cannot read ko" in caplog.text and "tesseract" in caplog.text


def test_a_gutter_down_the_page_means_columns_read_across() -> None:
    across = [
        word
        for n in range(5)
        for word in (
            (1, n, 100, 100 + 40 * n, 300, 30, "left"),
            (1, n, 420, 100 + 40 * n, 300, 30, "text"),  # a 20 px word space
            (1, n, 760, 100 + 40 * n, 300, 30, "right"),  # a 40 px gutter at x 740
        )
    ]
    assert tesseract._has_gutter(tsv(*across), 1240)
    spaced = [
        word
        for n in range(5)
        for word in (
            (1, n, 100, 100 + 40 * n, 300, 30, "one"),
            (1, n, 420 + 120 * n, 100 + 40 * n, 300, 30, "line"),  # gaps, not aligned
        )
    ]
    assert not tesseract._has_gutter(tsv(*spaced), 1240)
