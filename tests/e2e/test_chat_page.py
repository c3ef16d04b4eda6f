"""The chat page in a real browser: a streamed answer from a served model, Stop, copy and
regenerate, conversations kept across reloads and deleted, and a cited answer from a
knowledge base whose source opens the page image with the passage highlighted."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import SHARED_DATA
from tests.e2e.conftest import AXE, serious_violations
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.e2e


def indexed_kb(live: LiveServer) -> str:
    """A knowledge base with one real PDF (a text layer), indexed."""
    api = f"{live.url}/api/v1"
    kb = httpx.post(f"{api}/kb", json={"name": "birds"}, timeout=120).json()["id"]
    pdf = (SHARED_DATA / "pdfs" / "pdflatex-4-pages.pdf").read_bytes()
    upload = httpx.post(
        f"{api}/kb/{kb}/documents", files=[("files", ("blind.pdf", pdf))], timeout=120
    )
    assert upload.status_code == 202, upload.text
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        docs = httpx.get(f"{api}/kb/{kb}/documents", timeout=60).json()
        if docs and docs[0]["status"] == "indexed":
            return kb
        time.sleep(0.5)
    raise AssertionError(f"not indexed in time: {docs}")


def test_a_streamed_answer_then_stop(page: Page) -> None:
    page.goto("/chat")
    expect(page.locator("h1")).to_have_text("Chat")
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)
    expect(page.get_by_label("Model")).to_have_value("SmolLM2-135M-Instruct")
    page.get_by_label("Max tokens").fill("32")
    page.get_by_label("Message").fill("What is the capital of France?")
    page.get_by_role("button", name="Send").click()
    answer = page.locator(".message.assistant .body").last
    expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=120_000)
    assert answer.inner_text().strip(), "an answer streamed in"
    kept = page.locator("#conversation-list li").first
    expect(kept).to_contain_text("What is the capital of France?", timeout=30_000)
    expect(page).to_have_url(re.compile(r"/chat\?c=[0-9a-f]{32}$"))
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#toast")).to_contain_text(re.compile("copied|copying"))

    page.get_by_label("Temperature").fill("1.5")
    first = answer.inner_text()
    page.get_by_role("button", name="Regenerate").click()
    expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=120_000)
    expect(page.locator(".message.assistant")).to_have_count(1)  # replaced, not added
    page.reload()  # the conversation comes back from the store, with the new answer
    expect(page.locator(".message.user .body")).to_have_text("What is the capital of France?")
    expect(page.locator(".message.assistant")).to_have_count(1, timeout=30_000)
    regenerated = page.locator(".message.assistant .body").inner_text()
    assert regenerated.strip() and (regenerated != first or len(first) < 3), (first, regenerated)
    expect(page.get_by_label("Temperature")).to_have_value("1.5")
    page.get_by_role("button", name=re.compile("Delete conversation")).first.click()
    expect(page.locator("#conversation-list")).to_contain_text("None kept yet", timeout=30_000)
    expect(page.locator(".message")).to_have_count(0)
    page.get_by_label("Temperature").fill("0.7")

    page.get_by_label("Max tokens").fill("1500")  # ~20 s of story on 2 cores: stopped early
    page.get_by_label("Message").fill("Write a very long story about a gull, at least 2000 words.")
    page.get_by_role("button", name="Send").click()
    streaming = page.locator(".message.assistant .body").last
    expect(streaming).not_to_have_text("", timeout=120_000)
    page.get_by_role("button", name="Stop").click()
    expect(streaming).to_contain_text("[stopped]", timeout=60_000)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    page.get_by_label("Max tokens").fill("4000")  # more than the model's context holds
    page.get_by_label("Message").fill("Hello again")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat-status")).to_contain_text("lower max_tokens", timeout=60_000)


def test_a_cited_answer_opens_its_page_with_the_passage_highlighted(
    page: Page, live: LiveServer
) -> None:
    kb = indexed_kb(live)
    page.goto("/chat")
    page.get_by_label("Knowledge base").select_option(kb)
    expect(page.get_by_label("Temperature")).to_have_value("0")  # grounded: greedy
    page.get_by_label("Max tokens").fill("48")
    page.get_by_label("Message").fill("What should the length of words match?")
    page.get_by_role("button", name="Send").click()
    sources = page.get_by_role("list", name="Sources")
    expect(sources).to_contain_text("blind.pdf", timeout=180_000)
    sources.get_by_role("button").first.click()
    dialog = page.locator("#source-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#source-title")).to_contain_text("blind.pdf")
    expect(dialog.locator("#source-scores")).to_contain_text("dense")
    image = dialog.get_by_role("img", name=re.compile("Page \\d of blind.pdf"))
    expect(image).to_be_visible(timeout=60_000)
    page.wait_for_function("() => document.getElementById('source-image').naturalWidth > 0")
    marks = dialog.locator("#source-marks .mark")
    assert marks.count() >= 1, "the passage is highlighted on the page image"
    expect(dialog.locator("#source-caption")).to_contain_text("highlighted (text layer)")
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
