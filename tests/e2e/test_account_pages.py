"""Accounts in a real browser: the first admin sets a password through the printed setup
link, adds a member on the Admin page (an invite link), makes and revokes an API token
on the Account page, signs out; the member's invite link signs them in, without the
Admin pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AXE, serious_violations
from tests.integration.conftest import LiveServer, start_server, wait_for

pytestmark = pytest.mark.e2e
ADMIN = "root@example.com"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("accounts") / "ws", AIFT_ADMIN_EMAIL=ADMIN)
    yield server
    server.stop()


def test_setup_admin_invite_token_and_sign_out(page: Page, live: LiveServer) -> None:
    log = wait_for(live.log, lambda text: "/setup/" in text, 60)
    link = re.search(r"http://\S+(/setup/\S+)", log).group(1)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(link)
    expect(page.get_by_text(ADMIN)).to_be_visible()
    page.get_by_label("New password").fill("the admins password")
    page.get_by_role("button", name="Set password and sign in").click()
    expect(page.locator("#account-link")).to_have_text(ADMIN, timeout=30_000)

    page.get_by_role("link", name="Admin").click()
    page.get_by_label("Email").fill("member@example.com")
    page.get_by_role("button", name="Add user").click()
    invite = page.locator("#user-link code")
    expect(invite).to_contain_text("/setup/", timeout=30_000)
    member_link = re.search(r"(/setup/\S+)", invite.text_content()).group(1)
    expect(page.locator("#user-table")).to_contain_text("invited")
    expect(page.locator("#audit-table")).to_contain_text("POST /api/v1/admin/users")
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)

    create = "{method: 'POST', body: JSON.stringify({name: 'handbook'})}"
    made = page.evaluate(f"async () => await api('/api/v1/kb', {create})")
    page.goto(f"/kb/{made['id']}")
    sharing = page.locator("#sharing")
    sharing.get_by_label("Email or group").fill("member@example.com")
    sharing.get_by_role("button", name="Share").click()
    expect(page.locator("#share-list")).to_contain_text("member@example.com (user): read")
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)

    page.goto("/account")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#token-new code")).to_contain_text("aift_", timeout=30_000)
    row = page.locator("#token-table tbody tr", has_text="laptop")
    expect(row).to_contain_text("read")
    row.get_by_role("button", name="Revoke laptop").click()
    expect(row).to_contain_text("revoked", timeout=30_000)
    if AXE.exists():
        assert not serious_violations(page), serious_violations(page)
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login$"))

    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")

    page.goto(member_link)
    page.get_by_label("New password").fill("the members password")
    page.get_by_role("button", name="Set password and sign in").click()
    expect(page.locator("#account-link")).to_have_text("member@example.com", timeout=30_000)
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    page.goto("/kb")
    shared = page.get_by_role("row", name=re.compile("handbook"))
    expect(shared).to_contain_text(ADMIN)  # shared with the member; its owner shown
    shared.get_by_role("link", name="handbook").click()
    expect(page.locator("h1")).to_have_text("handbook")
    expect(page.locator("#sharing")).to_have_count(0)  # only the owner shares
    assert page.request.get("/api/v1/admin/users").status == 403
