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


def test_export_a_model_to_gguf_from_the_models_page(page: Page, live) -> None:  # noqa: ANN001
    import httpx

    page.goto("/models")
    form = page.locator("#export-form")
    form.get_by_label("Model").select_option(MODEL)
    form.get_by_label("GGUF type").select_option("q8_0")
    form.get_by_label("Also create in Ollama as (optional)").fill("../bad name")
    form.get_by_role("button", name="Start").click()
    expect(page.locator("#export-status")).to_contain_text(
        "not a valid Ollama model name", timeout=60_000
    )

    form.get_by_label("Also create in Ollama as (optional)").fill("")
    form.get_by_label("Name (optional)").fill("smol-page-q8")
    form.get_by_label("Format").select_option("awq")
    expect(form.get_by_label("GGUF type")).to_be_disabled()
    form.get_by_label("Format").select_option("gguf")
    form.get_by_role("button", name="Start").click()
    status = page.locator("#export-status")
    expect(status).to_contain_text("export SmolLM2-135M-Instruct → GGUF q8_0: job", timeout=60_000)
    # The export itself is tested in tests/integration/test_export.py: here the page
    # queued the job the form describes; it is cancelled to leave the machine alone.
    job = httpx.get(f"{live.url}/api/v1/jobs", params={"kind": "export.gguf"}).json()["items"][0]
    assert job["config"]["name"] == "smol-page-q8" and job["config"]["quant"] == "q8_0"
    assert httpx.post(f"{live.url}/api/v1/jobs/{job['id']}/cancel").status_code < 300
