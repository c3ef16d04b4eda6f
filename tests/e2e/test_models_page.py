"""The models page in a real browser: the registry, load with an engine and keep-alive,
unload, and an error shown where the user acted."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

MODEL = "SmolLM2-135M-Instruct"


def test_load_and_unload_a_model_and_see_a_bad_keep_alive_refused(page: Page) -> None:
    page.goto("/models")
    expect(page.locator("h1")).to_have_text("Models")
    row = page.locator(f'tr[data-model="{MODEL}"]')
    expect(row).to_contain_text("gguf")
    expect(page.locator("#models")).to_contain_text("No model is loaded.")

    row.get_by_label("Keep").fill("banana")
    row.get_by_role("button", name="Load").click()
    expect(page.locator("#models-status")).to_contain_text("keep_alive", timeout=60_000)

    row = page.locator(f'tr[data-model="{MODEL}"]')  # the tables were not re-rendered
    row.get_by_label("Keep").fill("10m")
    row.get_by_label("Engine").select_option("llamacpp")
    row.get_by_role("button", name="Load").click()
    loaded = page.locator(f'tr[data-loaded="{MODEL}"]')
    expect(loaded).to_contain_text("llamacpp", timeout=120_000)
    expect(page.locator("#models-status")).to_have_text("")

    loaded.get_by_role("button", name="Unload").click()
    expect(page.locator("#models")).to_contain_text("No model is loaded.", timeout=60_000)
