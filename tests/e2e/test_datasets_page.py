"""The datasets page in a real browser: a broken row is reported in place with its row
number, keeping the valid rows adds the dataset, its preview renders, delete removes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AXE, serious_violations

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
