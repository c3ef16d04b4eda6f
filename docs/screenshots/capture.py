"""Capture the README's screenshots of the web UI from a real server with sample data.

Run from the repository root: `.venv/bin/python docs/screenshots/capture.py`. Starts
`aift serve` on a free port with a fresh workspace, adds a knowledge base with a note and
a PDF, fine-tunes the packaged SmolLM2 for a few steps on a small dataset, asks one
question and opens its source, and saves each page at 1280 and 390 px wide here.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.integration.conftest import start_server  # noqa: E402

OUT = Path(__file__).resolve().parent
TEXT = (
    "Herring gulls nest on the cliffs of the northern island every spring. "
    "The colony counted 412 nests in 2025, up from 380 the year before.\n"
)


PDF = ROOT.parent / "shared" / "data" / "pdfs" / "pdflatex-4-pages.pdf"
FACTS = [
    {
        "instruction": f"What is the code of item {i}?",
        "output": f"The code of item {i} is X{i * 7}.",
    }
    for i in range(24)
]


def seed(url: str) -> tuple[str, str]:
    """A knowledge base (a note and a PDF, indexed) and a short finished LoRA run."""
    api = f"{url}/api/v1"
    kb = httpx.post(f"{api}/kb", json={"name": "field notes"}, timeout=120).json()["id"]
    files = [("files", ("gulls.txt", TEXT.encode())), ("files", (PDF.name, PDF.read_bytes()))]
    httpx.post(f"{api}/kb/{kb}/documents", files=files, timeout=120).raise_for_status()
    rows = "\n".join(json.dumps(r) for r in FACTS).encode()
    dataset = httpx.post(
        f"{api}/datasets", files={"file": ("facts.jsonl", rows)}, timeout=300
    ).json()["dataset"]["id"]
    config = {
        "base_model": "SmolLM2-135M-Instruct",
        "dataset": dataset,
        "max_steps": 12,
        "eval_steps": 4,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "name": "codes",
    }
    run = httpx.post(f"{api}/training", json=config, timeout=300).json()["id"]
    for _ in range(3000):
        docs = httpx.get(f"{api}/kb/{kb}/documents", timeout=60).json()
        status = httpx.get(f"{api}/jobs/{run}", timeout=60).json()["status"]
        if all(d["status"] == "indexed" for d in docs) and status in ("succeeded", "failed"):
            break
        time.sleep(1)
    return kb, run


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder) / "ws")
        try:
            kb, run = seed(server.url)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                for width in (1280, 390):
                    page = browser.new_page(viewport={"width": width, "height": 800})
                    page.goto(f"{server.url}/chat")
                    page.get_by_label("Knowledge base").select_option(kb)
                    page.get_by_label("Message").fill("What should the length of words match?")
                    page.get_by_role("button", name="Send").click()
                    sources = page.get_by_role("list", name="Sources")
                    sources.wait_for(timeout=180_000)
                    page.wait_for_selector("#send:not([disabled])")
                    page.screenshot(path=str(OUT / f"chat-{width}.png"), full_page=True)
                    sources.get_by_role("button").first.click()
                    page.wait_for_selector("#source-marks .mark", timeout=60_000)
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(OUT / f"citation-{width}.png"))
                    page.keyboard.press("Escape")
                    for name, path in (
                        ("dashboard", "/"),
                        ("knowledge-base", f"/kb/{kb}"),
                        ("training", "/training"),
                        ("training-run", f"/training/{run}"),
                    ):
                        page.goto(f"{server.url}{path}")
                        page.wait_for_timeout(800)  # charts draw after the curve loads
                        page.screenshot(path=str(OUT / f"{name}-{width}.png"), full_page=True)
                    page.close()
                browser.close()
        finally:
            server.stop()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
