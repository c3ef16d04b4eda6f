"""Capture the README's screenshots of the web UI from a real server with sample data.

Run from the repository root: `.venv/bin/python docs/screenshots/capture.py`. Starts
`aift serve` on a free port with a fresh workspace, adds a knowledge base with a document
and a finished job, asks one question, and saves each page at 1280 and 390 px wide here.
"""

from __future__ import annotations

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


def seed(url: str) -> str:
    api = f"{url}/api/v1"
    kb = httpx.post(f"{api}/kb", json={"name": "field notes"}, timeout=120).json()["id"]
    files = [("files", ("gulls.txt", TEXT.encode()))]
    httpx.post(f"{api}/kb/{kb}/documents", files=files, timeout=120).raise_for_status()
    job = {"kind": "system.benchmark", "config": {"steps": 2, "seconds_per_step": 0.3}}
    httpx.post(f"{api}/jobs", json=job, timeout=60).raise_for_status()
    for _ in range(600):
        docs = httpx.get(f"{api}/kb/{kb}/documents", timeout=60).json()
        if docs and docs[0]["status"] == "indexed":
            break
        time.sleep(0.5)
    return kb


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder) / "ws")
        try:
            kb = seed(server.url)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                for width in (1280, 390):
                    page = browser.new_page(viewport={"width": width, "height": 800})
                    page.goto(f"{server.url}/chat")
                    page.get_by_label("Knowledge base").select_option(kb)
                    page.get_by_label("Message").fill("How many gull nests were counted in 2025?")
                    page.get_by_role("button", name="Send").click()
                    page.get_by_role("list", name="Sources").wait_for(timeout=180_000)
                    page.locator(".sources summary").first.click()
                    page.screenshot(path=str(OUT / f"chat-{width}.png"), full_page=True)
                    for name, path in (("dashboard", "/"), ("knowledge-base", f"/kb/{kb}")):
                        page.goto(f"{server.url}{path}")
                        page.screenshot(path=str(OUT / f"{name}-{width}.png"), full_page=True)
                    page.close()
                browser.close()
        finally:
            server.stop()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
