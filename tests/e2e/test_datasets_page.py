"""The datasets page in a real browser: a broken row is reported in place with its row
number, keeping the valid rows adds the dataset, its preview renders, delete removes it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AXE, serious_violations
from tests.integration.conftest import LiveServer, wait_for
from tests.integration.test_document_datasets import MANUAL

pytestmark = pytest.mark.e2e


def test_validate_add_preview_and_delete(page: Page, tmp_path: Path) -> None:
    rows = [{"instruction": f"What is {i} + {i}?", "output": f"{2 * i}"} for i in range(10)]
    rows.append({"instruction": "a row without its answer"})
    data = tmp_path / "sums.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))

    page.goto("/datasets")
    expect(page.locator("h1")).to_have_text("Datasets")
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)
    page.set_input_files("#ds-file", str(data))
    page.get_by_label("Validation share").fill("0")
    page.get_by_role("button", name="Check and add").click()
    report = page.locator("#dataset-report")
    expect(report.get_by_role("alert")).to_be_visible(timeout=120_000)
    expect(report).to_contain_text("11", timeout=5_000)  # the bad row, by number

    page.set_input_files("#ds-file", str(data))
    page.get_by_label("Validation share").fill("0")
    page.get_by_label("Keep only the valid rows").check()
    page.get_by_role("button", name="Check and add").click()
    expect(report).to_contain_text("10 train, 0 validation, 1 skipped", timeout=120_000)
    row = page.locator('tr[data-dataset="sums"]')
    expect(row).to_contain_text("alpaca")

    row.get_by_role("link", name="sums").click()
    expect(page.locator("h1")).to_have_text("sums")
    expect(page.locator("pre").first).to_contain_text("What is 0 + 0?")
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)
    page.goto("/datasets")
    page.locator('tr[data-dataset="sums"]').get_by_role("button", name="Delete").click()
    expect(page.locator("#datasets")).to_contain_text("No datasets yet.", timeout=60_000)


def test_write_a_dataset_from_documents_and_review_it(page: Page, live: LiveServer) -> None:
    with live.client() as client:
        kb = client.post(
            "/api/v1/kb", json={"name": "pumps", "embedding_model": "multilingual-e5-small"}
        ).json()
        up = client.post(
            f"/api/v1/kb/{kb['id']}/documents", files=[("files", ("manual.md", MANUAL))]
        ).json()
        job = wait_for(
            lambda: client.get(f"/api/v1/jobs/{up['job_id']}").json(),
            lambda j: j["status"] not in ("queued", "running"),
        )
        assert job["status"] == "succeeded", job

    page.goto("/datasets")
    page.get_by_label("Knowledge base").select_option(label="pumps (1 documents)")
    page.get_by_label("Question writer").select_option("SmolLM2-135M-Instruct")
    page.get_by_label("Name", exact=True).last.fill("pump-facts")
    page.get_by_role("button", name="Write dataset").click()
    expect(page.locator("h1")).to_have_text("pump-facts", timeout=60_000)
    state = page.locator("#review-state")
    written = re.compile(r"^\d+ pending, 0 accepted, 0 rejected$")  # no note: writing ended
    expect(state).to_have_text(written, timeout=240_000)
    rows = page.locator("#review-rows tr")
    expect(rows.first.locator("details summary")).to_have_text("passage")
    count = rows.count()
    assert count >= 2, page.locator("#review-rows").inner_text()
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)

    first_question = rows.nth(0).get_by_role("textbox").first.input_value()
    rows.nth(0).get_by_role("button", name="Accept").click()
    expect(state).to_contain_text("1 accepted")
    expect(page.locator("#review-rows")).not_to_contain_text(first_question)  # pending only
    edited = page.locator("#review-rows tr").nth(0)
    edited.get_by_label("Answer of row", exact=False).fill("Every 41 days.")
    edited.get_by_role("button", name="Save edit").click()
    expect(state).to_contain_text("2 accepted")
    page.get_by_role("button", name="Reject all pending").click()
    expect(state).to_contain_text(f"0 pending, 2 accepted, {count - 2} rejected")
    page.get_by_label("Show", exact=True).select_option("accepted")
    expect(page.locator("#review-rows")).to_contain_text("(edited)")
    dataset_id = page.url.rsplit("/", 1)[1]
    with live.client() as client:
        info = client.get(f"/api/v1/datasets/{dataset_id}").json()["dataset"]
    assert info["rows_train"] + info["rows_val"] == 2, "only the accepted rows train"
