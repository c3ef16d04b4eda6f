"""The Arena page in a real browser: one question to the packaged SmolLM2 and a tiny
transformers model, both answers streamed side by side with the models hidden, a vote,
the models named, the standings updated."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AXE, serious_violations
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.e2e


def test_ask_both_vote_and_see_the_standings(
    page: Page, live: LiveServer, tiny_chat_model_dir: Path
) -> None:
    target = live.workspace / "models" / "tiny-chat"
    if not target.exists():
        shutil.copytree(tiny_chat_model_dir, target)
    assert httpx.post(f"{live.url}/api/v1/models/scan", timeout=120).status_code == 200
    page.goto("/arena")
    expect(page.locator("#arena-no-votes")).to_be_visible(timeout=30_000)
    form = page.locator("#arena-form")
    form.get_by_label("Question").fill("What is 2 + 3?")
    form.get_by_label("First model").select_option("SmolLM2-135M-Instruct")
    form.get_by_label("Max tokens").fill("8")
    form.get_by_role("button", name="Ask both").click()
    vote = page.get_by_role("button", name="A is better")
    expect(page.locator("#arena-error")).to_have_text("Pick both models, or leave both random.")
    expect(page.locator("#arena-battle")).to_be_hidden()

    form.get_by_label("Second model").select_option("tiny-chat")
    form.get_by_role("button", name="Ask both").click()
    expect(vote).to_be_enabled(timeout=300_000)
    expect(page.locator("#side-a-heading")).to_have_text("Model A")
    assert page.locator("#answer-a").text_content() or page.locator("#answer-b").text_content()
    vote.click()
    expect(page.locator("#arena-verdict")).to_contain_text("won", timeout=30_000)
    expect(page.locator("#side-a-heading")).to_contain_text("Model A: ")
    standings = page.locator("#arena-standings tbody tr")
    expect(standings).to_have_count(2, timeout=30_000)
    expect(page.locator("#arena-standings")).to_contain_text("tiny-chat")
    expect(page.locator("#arena-no-votes")).to_be_hidden()
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)
