"""Knowledge bases in a real browser: create one, upload several files at once (each with
its own result), watch them reach "indexed", unlock an encrypted PDF with its password,
search with every score shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import SHARED_DATA
from tests.e2e.conftest import AXE, serious_violations
from tests.integration.test_ingestion import scanned_pdf

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (SHARED_DATA / "pdfs").exists(), reason="../shared/data is absent"),
]

PDFS = SHARED_DATA / "pdfs"


def test_create_upload_unlock_and_search(page: Page, tmp_path: Path) -> None:
    notes = tmp_path / "gulls.txt"
    notes.write_text("Herring gulls nest on the cliffs of the northern island every spring.\n")
    scan = tmp_path / "scan.pdf"  # a picture of a page: no text layer, read by OCR
    scan.write_bytes(scanned_pdf(PDFS / "google-doc-document.pdf", 0))
    junk = tmp_path / "setup.exe"
    junk.write_bytes(b"MZ\x90\x00" + bytes(range(256)) * 8)

    page.goto("/kb")
    expect(page.locator("h1")).to_have_text("Knowledge bases")
    page.get_by_label("Name").fill("field notes")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("h1")).to_have_text("field notes", timeout=120_000)
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)

    page.set_input_files(
        "#files",
        [
            str(notes),
            str(PDFS / "libreoffice-writer-password.pdf"),
            str(PDFS / "pdflatex-4-pages.pdf"),
            str(scan),
            str(junk),
        ],
    )
    page.get_by_role("button", name="Upload").click()
    results = page.locator("#upload-results")
    expect(results.locator('li[data-file="setup.exe"]')).to_contain_text("rejected", timeout=60_000)
    expect(results.locator('li[data-file="gulls.txt"]')).to_contain_text("accepted")

    documents = page.locator("#documents")
    expect(documents.locator('tr[data-document="gulls.txt"]')).to_contain_text(
        "indexed", timeout=240_000
    )
    for name in ("pdflatex-4-pages.pdf", "scan.pdf"):
        expect(documents.locator(f'tr[data-document="{name}"]')).to_contain_text(
            "indexed", timeout=240_000
        )
    scan_row = documents.locator('tr[data-document="scan.pdf"] td')
    assert scan_row.nth(2).inner_text() == "1" and scan_row.nth(3).inner_text() == "1", (
        "one page, read by OCR"
    )
    locked = documents.locator('tr[data-document="libreoffice-writer-password.pdf"]')
    expect(locked).to_contain_text("needs password", timeout=240_000)
    locked.get_by_label("Password", exact=True).fill("openpassword")
    locked.get_by_role("button", name="Retry").click()
    expect(
        documents.locator('tr[data-document="libreoffice-writer-password.pdf"]')
    ).to_contain_text("indexed", timeout=240_000)

    page.get_by_label("Query").fill("where do gulls nest")
    page.get_by_role("button", name="Search").click()
    first = page.locator("#hits ol li").first
    expect(first).to_contain_text("gulls.txt", timeout=120_000)
    expect(first).to_contain_text(re.compile(r"dense \d\.\d{3} · keyword"))

    page.get_by_label("Query").fill("Beautiful is better than ugly")  # on the scan
    page.get_by_role("button", name="Search").click()
    scanned = page.locator("#hits ol li").filter(has_text="scan.pdf").first
    expect(scanned).to_be_visible(timeout=120_000)
    expect(scanned).to_contain_text(re.compile("beautiful", re.I))  # OCR found the words
    scanned.get_by_role("button", name="Show on the page").click()
    dialog = page.locator("#source-dialog")
    expect(dialog.locator("#source-caption")).to_contain_text("highlighted (ocr)", timeout=120_000)
    assert dialog.locator("#source-marks .mark").count() >= 1
    page.keyboard.press("Escape")

    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        '{"question": "Where do herring gulls nest?", "document": "gulls.txt"}\n'
        '{"question": "Beautiful is better than ugly", "document": "scan.pdf", "page": 1}\n'
        '{"question": "What does the cafeteria serve?", "answer": "no such text anywhere"}\n'
    )
    page.set_input_files("#eval-file", str(questions))
    page.get_by_role("button", name="Evaluate").click()
    table = page.locator("#eval-table")
    expect(table).to_contain_text("not in top 10", timeout=120_000)
    expect(page.locator("#eval-result")).to_contain_text("recall@10")
    ranks = table.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert ranks[:2] == ["1", "1"] and ranks[2] == "not in top 10", ranks
    questions.write_text('{"question": "no target given"}\n')
    page.set_input_files("#eval-file", str(questions))
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#eval-status")).to_contain_text("row 1", timeout=60_000)

    page.goto("/history")  # the search is in the history, with its hits, until deleted
    entry = page.locator("#history-table tbody tr").first
    expect(page.locator("#history-table")).to_contain_text("where do gulls nest")
    page.get_by_label("Kind").select_option("ask")
    expect(page.locator("#history-empty")).to_be_visible()
    page.get_by_label("Kind").select_option("search")
    page.get_by_label("Query contains").fill("gulls")
    expect(entry).to_contain_text("field notes")
    entry.get_by_role("button", name="Details").click()
    expect(page.locator("#history-detail-hits")).to_contain_text("gulls.txt")
    entry.get_by_role("button", name="Delete").click()
    expect(page.locator("#history-empty")).to_be_visible()

    page.goto("/kb/no-such-kb")
    expect(page.get_by_role("alert")).to_contain_text("no-such-kb")
