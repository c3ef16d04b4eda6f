"""Training in a real browser: a dataset added on its page, a LoRA run started from the
generated form (fields that do not apply hidden, the estimate shown), its loss chart
gaining points live, cancel and resume, then a chat with the adapter it produced."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AXE, serious_violations
from tests.integration.conftest import LiveServer, start_server

pytestmark = pytest.mark.e2e

FACTS = [
    {
        "instruction": f"What is the code of item {i}?",
        "output": f"The code of item {i} is X{i * 7}.",
    }
    for i in range(20)
]


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, tiny_chat_model_dir: Path
) -> Iterator[LiveServer]:
    """A server whose workspace holds a tiny chat model to fine-tune."""
    workspace = tmp_path_factory.mktemp("e2e-training") / "ws"
    shutil.copytree(tiny_chat_model_dir, workspace / "models" / "tiny-chat")
    # No configured grace at all: the run's own stop budget (its step and save times) is
    # what keeps the supervisor from killing it before the cancel's checkpoint is written.
    server = start_server(workspace, AIFT_JOB_CANCEL_GRACE_SECONDS="0")
    yield server
    server.stop()


def points(page: Page) -> int:
    return int(page.locator("#loss-chart .uplot").get_attribute("data-points") or 0)


def test_train_watch_cancel_resume_and_chat(page: Page, live: LiveServer, tmp_path: Path) -> None:
    data = tmp_path / "facts.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in FACTS))
    page.goto("/training")
    expect(page.locator("#runs")).to_contain_text("No runs yet")
    expect(page.get_by_role("button", name="Start run")).to_be_disabled()  # no dataset yet

    page.goto("/datasets")
    page.set_input_files("#ds-file", str(data))
    page.get_by_label("Base model (for previews and token counts)").fill("tiny-chat")
    page.get_by_role("button", name="Check and add").click()
    expect(page.locator("#dataset-report")).to_contain_text("18 train", timeout=120_000)
    page.locator('tr[data-dataset="facts"]').get_by_role("link", name="facts").click()
    page.get_by_role("link", name="Train on this dataset").click()

    expect(page.locator("h1")).to_have_text("Training")
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)
    form = page.locator("#run-form")
    expect(form.get_by_label("Dataset")).to_have_value(re.compile(".+"))
    form.get_by_label("Base model").select_option("tiny-chat")
    rank = form.get_by_label("Rank")
    expect(rank).to_be_visible()
    form.get_by_label("Method").select_option("full")
    expect(rank).to_be_hidden()  # LoRA settings do not apply to full fine-tuning
    form.get_by_label("Method").select_option("lora")
    expect(rank).to_be_visible()
    form.get_by_label("Max steps").fill("24")
    form.get_by_label("Learning rate").fill("0.002")
    form.get_by_label("Eval steps").fill("10")
    page.get_by_text("Advanced settings").click()
    form.get_by_label("Save steps").fill("1000")  # only the cancel saves a checkpoint
    expect(page.locator("#estimate")).to_contain_text("24 steps", timeout=60_000)
    expect(page.locator("#estimate")).to_contain_text("GiB")
    form.get_by_role("button", name="Start run").click()

    expect(page).to_have_url(re.compile(r"/training/[0-9a-f]{32}$"), timeout=30_000)
    expect(page.locator("#run-status")).to_have_text("running", timeout=180_000)
    expect(page.locator("#loss-chart .uplot")).to_have_attribute(
        "data-points", re.compile(r"^([3-9]|\d\d+)$"), timeout=180_000
    )
    before = points(page)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#run-status")).to_have_text("cancelled", timeout=180_000)
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#run-status")).to_have_text(re.compile("queued|running"), timeout=30_000)
    chat_link = page.get_by_role("link", name="Chat with this model")
    expect(chat_link).to_be_visible(timeout=600_000)  # the page reloads when the run succeeds
    # the reloaded page draws its curve once the curve request returns: wait for it
    page.wait_for_function(
        "(n) => Number(document.querySelector('#loss-chart .uplot')?.dataset.points || 0) > n",
        arg=before,
        timeout=60_000,
    )
    expect(page.locator("#result")).to_contain_text("train loss")
    job_id = page.url.rsplit("/", 1)[1]
    result = httpx.get(f"{live.url}/api/v1/jobs/{job_id}", timeout=60).json()["result"]
    assert result["steps"] == 24 and result["resumed_from"].startswith("checkpoint-"), result
    assert 3 <= int(result["resumed_from"].split("-")[1]) < 24, "resumed from the cancel's save"
    log = httpx.get(f"{live.url}/api/v1/jobs/{job_id}/log", timeout=60).json()["lines"]
    assert any("cancel requested — saving checkpoint at step" in line for line in log)
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)

    chat_link.click()
    expect(page.locator("h1")).to_have_text("Chat")
    model = page.locator("#chat-model").input_value()
    assert model.startswith("lora_"), model  # the adapter the run registered
    page.get_by_label("Max tokens").fill("8")
    page.get_by_label("Message").fill("What is the code of item 3?")
    page.get_by_role("button", name="Send").click()
    answer = page.locator(".message.assistant .body").last
    expect(answer).not_to_be_empty(timeout=180_000)
    expect(page.get_by_role("button", name="Send")).to_be_enabled(timeout=180_000)


def test_a_dpo_run_from_the_form_charts_its_preference_figures(
    page: Page, live: LiveServer, tmp_path: Path
) -> None:
    pairs = [
        {"prompt": f"What is {i} plus {i}?", "chosen": f"{2 * i}.", "rejected": f"Hmm, maybe {i}."}
        for i in range(12)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in pairs))
    page.goto("/datasets")
    page.set_input_files("#ds-file", str(data))
    page.get_by_role("button", name="Check and add").click()
    expect(page.locator("#dataset-report")).to_contain_text("preference", timeout=120_000)
    expect(page.locator("#dataset-report")).to_contain_text("[rejected]")

    page.goto("/training")
    form = page.locator("#run-form")
    form.get_by_label("Base model").select_option("tiny-chat")
    dataset = form.get_by_label("Dataset")
    dataset.select_option(dataset.locator("option", has_text="pairs").get_attribute("value"))
    loss_type = page.locator("#f-preference-loss-type")
    rewards = form.get_by_label("Rewards", exact=True)
    expect(loss_type).to_be_hidden()  # sft: no preference settings
    form.get_by_label("Objective").select_option("grpo")
    expect(rewards).to_be_visible()
    expect(loss_type).to_be_hidden()
    rewards.fill("[{not json")
    form.get_by_role("button", name="Start run").click()
    expect(page.locator("#run-error")).to_contain_text("grpo.rewards is not valid JSON")
    form.get_by_label("Objective").select_option("dpo")
    expect(rewards).to_be_hidden()
    expect(loss_type).to_have_value("sigmoid")
    loss_type.fill("sigmoid, sft")
    form.get_by_label("Max steps").fill("4")
    form.get_by_label("Learning rate").fill("0.005")
    page.get_by_text("Advanced settings").click()
    examples = page.locator("#f-evaluation-examples")
    expect(examples).to_be_hidden()  # the before/after scoring is off until switched on
    form.get_by_label("Score the model before and after training").check()
    expect(examples).to_be_visible()
    examples.fill("4")
    page.locator("#f-evaluation-exact-match").uncheck()
    form.get_by_role("button", name="Start run").click()

    expect(page).to_have_url(re.compile(r"/training/[0-9a-f]{32}$"), timeout=30_000)
    expect(page.locator("h1")).to_contain_text("lora dpo")
    expect(page.get_by_role("link", name="Chat with this model")).to_be_visible(timeout=600_000)
    page.wait_for_function(
        "() => Number(document.querySelector('#loss-chart .uplot')?.dataset.points || 0) >= 4",
        timeout=60_000,
    )
    expect(page.locator("#objective-chart .uplot")).to_be_visible()
    expect(page.locator("#result")).to_contain_text("rewards/accuracies")
    job_id = page.url.rsplit("/", 1)[1]
    config = httpx.get(f"{live.url}/api/v1/jobs/{job_id}", timeout=60).json()["config"]
    assert config["preference"]["loss_type"] == ["sigmoid", "sft"]
    assert config["evaluation"] == {"dataset": None, "exact_match": False, "examples": 4}
    expect(page.locator("#run-evaluation")).to_contain_text("preference rate")
    assert config["objective"] == "dpo" and "grpo" not in {
        k for k, v in config.items() if v is None
    }
