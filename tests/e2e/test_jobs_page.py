"""The jobs page: start a job, watch it progress live, cancel and resume from the UI."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_start_watch_cancel_and_resume_from_the_jobs_page(page: Page, tmp_path) -> None:  # noqa: ANN001
    page.goto("/jobs")
    expect(page.locator("h1")).to_have_text("Jobs")
    expect(page.locator("#empty")).to_be_visible()

    page.fill("input[name=steps]", "3")
    page.fill("input[name=seconds_per_step]", "0.3")
    page.click("#benchmark-form button")
    first = page.locator("#jobs-table tbody tr").first
    expect(first.locator(".status")).to_have_text("succeeded", timeout=120_000)
    expect(first).to_contain_text("100%")

    page.fill("input[name=steps]", "200")
    page.click("#benchmark-form button")
    long_job = page.locator("#jobs-table tbody tr").first
    expect(long_job.locator(".status")).to_have_text("running", timeout=120_000)
    expect(long_job).to_contain_text(re.compile(r"step \d+/200"), timeout=120_000)
    long_job.get_by_role("button", name="Cancel").click()
    expect(long_job.locator(".status")).to_have_text("cancelled", timeout=120_000)
    page.screenshot(path=str(tmp_path / "jobs.png"), full_page=True)

    long_job.get_by_role("button", name="Resume").click()
    expect(long_job.locator(".status")).to_have_text("running", timeout=120_000)
    # the resumed attempt has done a step of its own (its message was reset on resume)
    expect(long_job).to_contain_text(re.compile(r"step \d+/200"), timeout=120_000)
    long_job.get_by_role("button", name="Cancel").click()
    expect(long_job.locator(".status")).to_have_text("cancelled", timeout=120_000)

    long_job.get_by_role("button", name="Details").click()
    expect(page.locator("#log-lines")).to_contain_text("resuming at step")
    expect(page.locator("#detail-facts")).to_contain_text("Attempt")
    expect(page.locator("#detail-config")).to_contain_text('"steps": 200')

    page.get_by_label("Status").select_option("succeeded")
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_label("Kind").select_option("rag.ingest")
    expect(page.locator("#empty")).to_be_visible()
    page.get_by_label("Kind").select_option("system.benchmark")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("button", name="Delete").click()
    expect(page.locator("#toast")).to_contain_text("deleted", timeout=30_000)
    page.get_by_label("Status").select_option("")
    expect(rows).to_have_count(1)  # the cancelled one is left
    expect(rows.first.locator(".status")).to_have_text("cancelled")


def test_errors_show_the_server_message(page: Page) -> None:
    page.goto("/jobs")
    page.fill("input[name=steps]", "0")
    page.evaluate("document.querySelector('input[name=steps]').removeAttribute('min')")
    page.click("#benchmark-form button")
    expect(page.locator("#toast")).to_contain_text("steps", timeout=30_000)  # a loaded machine
