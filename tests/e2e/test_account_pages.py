"""Accounts in a real browser: the first admin sets a password through the printed setup
link, adds a member on the Admin page (an invite link), makes and revokes an API token
on the Account page, signs out; the member's invite link signs them in, without the
Admin pages. Two members and a viewer, each in their own browser, see on every page
only what is theirs or shared with them, and share through the pages' Sharing panels."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AXE, serious_violations
from tests.integration.conftest import LiveServer, aift_env, start_server, wait_for

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
    expect(page.get_by_role("link", name="Create an account")).to_have_count(0)
    assert page.request.get("/signup").status == 404, "sign-up is off unless AIFT_SIGNUP opens it"
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


def _invite(live: LiveServer, email: str, role: str) -> str:
    """A user made from the shell (`aift users create`), and their one-time link."""
    made = subprocess.run(
        [sys.executable, "-m", "aift.cli", "users", "create", email, "--role", role],
        env=aift_env(live.workspace),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return re.search(r"(/setup/\S+)", made.stdout).group(1)


def _browser_of(browser, live: LiveServer, email: str, role: str) -> Page:  # noqa: ANN001
    """A browser of its own, signed in as a new user through their invite link."""
    page = browser.new_context(base_url=live.url).new_page()
    page.goto(_invite(live, email, role))
    page.get_by_label("New password").fill(f"the password of {email}")
    page.get_by_role("button", name="Set password and sign in").click()
    expect(page.locator("#account-link")).to_have_text(email, timeout=30_000)
    return page


UPLOAD_DATASET = """async () => {
  const rows = '{"instruction": "Say hi", "output": "hi"}\\n'.repeat(8);
  const form = new FormData();
  form.append("file", new Blob([rows]), "ann-greetings.jsonl");
  const response = await fetch("/api/v1/datasets", {method: "POST", body: form});
  return (await response.json()).dataset;
}"""
UPLOAD_DOCUMENT = """async (kb) => {
  const form = new FormData();
  form.append("files", new Blob(["Ann's handbook: the vault code is 4711."]), "vault.txt");
  const response = await fetch(`/api/v1/kb/${kb}/documents`, {method: "POST", body: form});
  return response.status;
}"""


def test_two_members_and_a_viewer_see_only_theirs_and_what_is_shared(browser, live) -> None:  # noqa: ANN001
    ann = _browser_of(browser, live, "ann@example.com", "member")
    bob = _browser_of(browser, live, "bob@example.com", "member")
    vic = _browser_of(browser, live, "vic@example.com", "viewer")
    create = "{method: 'POST', body: JSON.stringify({name: 'ann-handbook'})}"
    kb = ann.evaluate(f"async () => await api('/api/v1/kb', {create})")
    assert ann.evaluate(UPLOAD_DOCUMENT, kb["id"]) == 202
    dataset = ann.evaluate(UPLOAD_DATASET)
    ann.goto("/jobs")
    expect(ann.locator("main")).to_contain_text("ann-handbook", timeout=30_000)

    for other in (bob, vic):  # not in any list, and a 404 page when named
        for path in ("/kb", "/datasets", "/jobs", "/history"):
            other.goto(path)
            expect(other.locator("main")).not_to_contain_text("ann-handbook")
            expect(other.locator("main")).not_to_contain_text("ann-greetings")
        response = other.goto(f"/kb/{kb['id']}")
        assert response.status == 404
        expect(other.locator("main")).not_to_contain_text("ann-handbook")
        assert other.goto(f"/datasets/{dataset['id']}").status == 404

    ann.goto(f"/kb/{kb['id']}")  # shared with the viewer, to read
    ann.locator("#sharing").get_by_label("Email or group").fill("vic@example.com")
    ann.locator("#sharing").get_by_role("button", name="Share").click()
    expect(ann.locator("#share-list")).to_contain_text("vic@example.com (user): read")
    ann.goto(f"/datasets/{dataset['id']}")  # shared with the other member, to train on
    expect(ann.locator("#dataset-owner")).to_have_text("ann@example.com")
    ann.locator("#sharing").get_by_label("Email or group").fill("bob@example.com")
    ann.locator("#sharing").get_by_label("Access").select_option("write")
    ann.locator("#sharing").get_by_role("button", name="Share").click()
    expect(ann.locator("#share-list")).to_contain_text("bob@example.com (user): write")
    if AXE.exists():
        assert not serious_violations(ann), serious_violations(ann)

    vic.goto("/kb")
    expect(vic.get_by_role("row", name=re.compile("ann-handbook"))).to_contain_text(
        "ann@example.com"
    )
    vic.goto(f"/kb/{kb['id']}")
    expect(vic.locator("h1")).to_have_text("ann-handbook")
    expect(vic.locator("#sharing")).to_have_count(0)  # only the owner shares
    vic.goto("/datasets")
    expect(vic.locator("main")).not_to_contain_text("ann-greetings")
    bob.goto("/datasets")
    row = bob.get_by_role("row", name=re.compile("ann-greetings"))
    expect(row).to_contain_text("ann@example.com")
    bob.goto(f"/datasets/{dataset['id']}")
    expect(bob.locator("#sharing")).to_have_count(0)
    bob.goto("/kb")
    expect(bob.locator("main")).not_to_contain_text("ann-handbook")

    ann.goto("/models")  # packaged models are everyone's; the owner column says so
    packaged = ann.get_by_role("row", name=re.compile("SmolLM2-135M-Instruct")).first
    expect(packaged).to_contain_text("everyone")
    expect(packaged.get_by_role("button", name=re.compile("^Share"))).to_have_count(0)
    for page in (ann, bob, vic):
        page.context.close()
