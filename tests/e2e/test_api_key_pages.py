"""With an API key set, the browser signs in once on /login and then every page works:
its API calls, its WebSocket (live job progress) and its forms, on the cookie."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_dashboard import PAGES
from tests.integration.conftest import LiveServer, start_server

pytestmark = pytest.mark.e2e

KEY = "sk-browser-test-key-0123456789"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("e2e-key") / "ws", AIFT_API_KEY=KEY)
    yield server
    server.stop()


def test_sign_in_once_then_every_page_and_live_updates_work(page: Page) -> None:
    page.goto("/jobs")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("API key").fill("not the key")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("h1")).to_have_text("Dashboard")

    for path in PAGES:
        page.goto(path)
        expect(page.locator("h1")).to_be_visible()
        assert not page.url.endswith("/login") or path == "/login", path

    page.goto("/jobs")  # the list comes from the API, progress over the WebSocket
    page.fill("input[name=steps]", "2")
    page.fill("input[name=seconds_per_step]", "0.5")
    page.click("#benchmark-form button")
    row = page.locator("#jobs-table tbody tr").first
    expect(row.locator(".status")).to_have_text("succeeded", timeout=120_000)

    page.get_by_role("button", name="Sign out").click()  # ends the session on the server
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/jobs")
    expect(page).to_have_url(re.compile(r"/login$"))
