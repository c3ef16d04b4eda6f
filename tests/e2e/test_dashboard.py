"""The dashboard in a real browser: first-run guidance, the machine, jobs appearing on
their own (htmx refresh); on every page no serious accessibility violations (axe-core),
visible keyboard focus on every control, and a layout that fits a laptop and a phone."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AXE, serious_violations
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.e2e

PAGES = (
    "/",
    "/chat",
    "/kb",
    "/datasets",
    "/training",
    "/evaluations",
    "/models",
    "/jobs",
    "/history",
    "/login",
)


def test_first_run_guidance_then_jobs_appear_without_a_reload(page: Page, live: LiveServer) -> None:
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.get_by_role("heading", name="Getting started")).to_be_visible()
    expect(page.get_by_role("heading", name="Machine")).to_be_visible()
    expect(page.locator("#dashboard")).to_contain_text("cores")
    assert page.evaluate("() => typeof window.htmx") == "object", "htmx from npm is served"
    job = httpx.post(
        f"{live.url}/api/v1/jobs",
        json={"kind": "system.benchmark", "config": {"steps": 1, "seconds_per_step": 0.2}},
        timeout=60,
    )
    assert job.status_code == 202, job.text
    title = job.json()["title"]
    # the page refreshes its body every few seconds: the job shows up, guidance goes
    expect(page.locator("#dashboard table").first).to_contain_text(title, timeout=60_000)
    expect(page.get_by_role("heading", name="Getting started")).to_have_count(0)


def test_no_page_logs_a_console_error_or_fails_a_request(page: Page) -> None:
    """Issue 32: every page logged an error (`/favicon.ico` was a 404)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    for path in PAGES:
        page.goto(path)
        page.wait_for_load_state("networkidle")
    favicon = page.request.get("/favicon.ico")
    assert favicon.status == 200 and "svg" in favicon.headers["content-type"]
    assert errors == []


# Every visible control takes the keyboard focus and shows it (after a Tab, as a keyboard
# user would), so every action is reachable without a mouse.
UNFOCUSABLE = """() => {
  const selector = "a[href], button, input, select, textarea, summary";
  const controls = [...document.querySelectorAll(selector)]
    .filter((el) => el.checkVisibility() && !el.disabled);  // not in a closed <details>
  const bad = [];
  for (const el of controls) {
    el.focus();
    const style = getComputedStyle(el);
    const html = el.outerHTML.slice(0, 80);
    if (document.activeElement !== el || el.tabIndex < 0) bad.push(`not focusable: ${html}`);
    else if (!el.matches(":focus-visible") || style.outlineStyle === "none") {
      bad.push(`no visible focus: ${html}`);
    }
  }
  return [controls.length, bad];
}"""


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_accessible_keyboard_ready_and_fits_laptop_and_phone(
    page: Page, path: str, tmp_path: Path
) -> None:
    """axe-core finds nothing serious; every control takes visible keyboard focus; the
    page fits 1280 and 390 px without sideways scrolling (screenshots of both kept)."""
    page.goto(path)
    expect(page.locator("h1")).to_be_visible()
    if AXE.exists():
        found = serious_violations(page)
        assert not found, json.dumps(found, indent=2, ensure_ascii=False)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    count, bad = page.evaluate(UNFOCUSABLE)
    assert count > 3 and not bad, bad
    name = path.strip("/") or "dashboard"
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 800})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"
        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
