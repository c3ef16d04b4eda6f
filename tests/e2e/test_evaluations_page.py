"""The Evaluations page in a real browser: two evaluations of the packaged SmolLM2 started
from the form, watched to the end, one run's answers read (misses first), and the two
compared question by question; an lm-eval run's results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AXE, serious_violations
from tests.integration.conftest import LiveServer
from tests.integration.test_evaluation import write_tasks

pytestmark = pytest.mark.e2e


def sums_dataset(live: LiveServer) -> str:
    rows = [
        {"instruction": f"What is {a} + {b}? Reply with the number only.", "output": str(a + b)}
        for a, b in zip(range(2, 6), range(3, 7), strict=True)
    ]
    body = "\n".join(json.dumps(r) for r in rows).encode()
    response = httpx.post(
        f"{live.url}/api/v1/datasets",
        files={"file": ("sums.jsonl", body), "val_file": ("held.jsonl", body)},
        timeout=120,
    )
    assert response.status_code == 201, response.text
    return response.json()["dataset"]["id"]


def test_start_watch_read_and_compare_evaluations(page: Page, live: LiveServer) -> None:
    sums_dataset(live)
    page.goto("/evaluations")
    form = page.locator("#eval-form")
    form.get_by_label("Model").select_option("SmolLM2-135M-Instruct")
    form.get_by_label("Questions (the first)").fill("4")
    form.get_by_label("Max tokens per answer").fill("8")
    form.get_by_role("button", name="Start evaluation").click()
    rows = page.locator("#eval-table tbody tr")
    expect(rows.first).to_contain_text("succeeded", timeout=300_000)
    form.get_by_label("Max tokens per answer").fill("1")
    form.get_by_role("button", name="Start evaluation").click()
    expect(rows).to_have_count(2, timeout=30_000)
    expect(rows.nth(0)).to_contain_text("succeeded", timeout=300_000)

    rows.nth(1).get_by_role("button", name="Answers").click()  # the first run (8 tokens)
    answers = page.locator("#eval-answers tbody tr")
    expect(answers).to_have_count(4, timeout=30_000)  # generous: a loaded machine
    expect(page.locator("#eval-summary")).to_contain_text("4 questions")
    expect(page.get_by_role("img", name="Exact match, contains and F1")).to_contain_text("F1")

    rows.nth(1).get_by_role("checkbox").check()  # baseline: the 8-token run
    rows.nth(0).get_by_role("checkbox").check()
    page.get_by_role("button", name="Compare selected").click()
    comparison = page.locator("#eval-comparison")
    expect(comparison).to_be_visible(timeout=30_000)
    expect(comparison.get_by_role("table")).to_contain_text("exact_match")
    expect(comparison.get_by_role("table")).to_contain_text("95% interval")
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)

    tokens = form.get_by_label("Max tokens per answer")
    tokens.fill("0")  # the form refuses it before any request
    form.get_by_role("button", name="Start evaluation").click()
    assert tokens.evaluate("input => !input.validity.valid && input.validationMessage !== ''")
    expect(rows).to_have_count(2)


def test_an_lm_eval_run_shows_its_results(
    page: Page, live: LiveServer, tiny_chat_model_dir: Path
) -> None:
    write_tasks(live.workspace / "data" / "eval_tasks")
    shutil.copytree(tiny_chat_model_dir, live.workspace / "models" / "tiny-chat")
    assert httpx.post(f"{live.url}/api/v1/models/scan", timeout=120).status_code == 200
    page.goto("/evaluations")
    form = page.locator("#harness-form")
    form.get_by_label("Model").select_option("tiny-chat")
    form.get_by_label("Tasks (comma-separated)").fill("aift_sums_mc")
    form.get_by_label("Documents per task").fill("3")
    form.get_by_role("button", name="Start lm-eval").click()
    run = page.locator("#eval-table tbody tr", has_text="aift_sums_mc")
    expect(run).to_contain_text("succeeded", timeout=300_000)
    expect(run.get_by_role("checkbox")).to_be_disabled()  # lm-eval runs do not compare
    run.get_by_role("button", name="Results").click()
    results = page.locator("#eval-harness-results")
    expect(results).to_contain_text("aift_sums_mc", timeout=30_000)
    expect(results).to_contain_text("acc,none")


def test_a_knowledge_bases_answers_evaluated_from_the_page(
    page: Page, live: LiveServer, tmp_path: Path
) -> None:
    created = httpx.post(f"{live.url}/api/v1/kb", json={"name": "facts"}, timeout=60)
    assert created.status_code == 201, created.text
    kb = created.json()["id"]
    text = b"The Zorblax reactor is cooled by liquid argon. It was built in 1987 in Oslo."
    upload = httpx.post(
        f"{live.url}/api/v1/kb/{kb}/documents",
        files=[("files", ("zorblax.txt", text))],
        timeout=120,
    )
    assert upload.status_code == 202, upload.text
    job = upload.json()["job_id"]
    for _ in range(600):
        if httpx.get(f"{live.url}/api/v1/jobs/{job}", timeout=60).json()["status"] == "succeeded":
            break
        page.wait_for_timeout(500)
    questions = tmp_path / "questions.jsonl"
    rows = [
        {
            "question": "What cools the Zorblax reactor?",
            "answer": "liquid argon",
            "document": "zorblax.txt",
        },
        {"question": "Who won the 1950 chess olympiad?", "unanswerable": True},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows))
    page.goto("/evaluations")
    form = page.locator("#kb-eval-form")
    form.get_by_label("Knowledge base").select_option(kb)
    form.get_by_label("Question file (JSONL, JSON or CSV)").set_input_files(str(questions))
    form.get_by_label("generate", exact=True).uncheck()
    form.get_by_role("button", name="Evaluate answers").click()
    settings = page.locator("#kb-eval-settings tbody tr")
    expect(settings).to_have_count(1, timeout=120_000)
    expect(settings.first).to_contain_text("extractive")
    expect(page.locator("#kb-eval-rows tbody tr")).to_have_count(2)
    expect(page.locator("#kb-eval-rows")).to_contain_text("liquid argon")

    form.get_by_label("Run as a job").check()
    form.get_by_role("button", name="Evaluate answers").click()
    run = page.locator("#eval-table tbody tr", has_text="facts")
    expect(run).to_contain_text("succeeded", timeout=300_000)
    page.locator("#kb-eval-result").evaluate("panel => { panel.hidden = true; }")
    run.get_by_role("button", name="Answers").click()
    expect(page.locator("#kb-eval-result")).to_be_visible(timeout=30_000)
    expect(page.locator("#kb-eval-rows tbody tr")).to_have_count(2)
