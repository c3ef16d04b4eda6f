"""The chat page in a real browser: a streamed answer from a served model, Stop, and a
cited answer from a knowledge base with its sources."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AXE, serious_violations
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.e2e


def indexed_kb(live: LiveServer) -> str:
    """A knowledge base with one small text document, indexed."""
    api = f"{live.url}/api/v1"
    kb = httpx.post(f"{api}/kb", json={"name": "birds"}, timeout=120).json()["id"]
    text = "Herring gulls nest on the cliffs of the northern island every spring.\n"
    upload = httpx.post(
        f"{api}/kb/{kb}/documents", files=[("files", ("gulls.txt", text.encode()))], timeout=120
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
    page.get_by_label("Message").fill("What is the capital of France?")
    page.get_by_role("button", name="Send").click()
    answer = page.locator(".message.assistant .body").last
    expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=120_000)
    assert answer.inner_text().strip(), "an answer streamed in"

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


def test_a_knowledge_base_answer_lists_its_sources(page: Page, live: LiveServer) -> None:
    kb = indexed_kb(live)
    page.goto("/chat")
    page.get_by_label("Knowledge base").select_option(kb)
    page.get_by_label("Message").fill("Where do herring gulls nest?")
    page.get_by_role("button", name="Send").click()
    sources = page.get_by_role("list", name="Sources")
    expect(sources).to_contain_text("gulls.txt", timeout=180_000)
    sources.locator("summary").first.click()
    expect(sources.locator("details").first).to_contain_text("northern island")
