"""Issue 31 in a real browser: a page from another local origin fires every request a
hostile page can make without a CORS preflight at a default aift (loopback, no key),
and a rebinding host name is pointed at it — nothing changes, nothing is read."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from functools import partial

import httpx
import pytest

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.integration.conftest import LiveServer, free_port, wait_for

pytestmark = pytest.mark.e2e

DIGEST = "sha256:" + "ab" * 32
ATTACK = """<!doctype html>
<html><body>
<form id="form" method="post" enctype="multipart/form-data" target="sink">
  <input type="file" name="files" id="file"></form>
<iframe name="sink"></iframe>
<script>
async function attack(target) {
  const calls = [];
  const send = (path, init) =>
    calls.push(fetch(target + path, { mode: "no-cors", credentials: "include", ...init })
      .then(() => "sent", () => "blocked"));
  const upload = new FormData();
  const planted = new Blob(["The vault code is 0000."], { type: "text/plain" });
  upload.append("files", planted, "planted.txt");
  send("/api/v1/kb/victim/documents", { method: "POST", body: upload });
  const dataset = new FormData();
  dataset.append("file", new Blob(['{"text": "x"}\\n']), "d.jsonl");
  send("/api/v1/datasets", { method: "POST", body: dataset });
  send("/api/v1/models/scan", { method: "POST" });
  const plain = { "Content-Type": "text/plain" };
  send("/api/pull", { method: "POST", headers: plain, body: '{"model": "ollama/x"}' });
  send("/api/create", { method: "POST", headers: plain, body: '{"model": "m", "files": {}}' });
  send("/api/blobs/DIGEST", { method: "POST", body: "GGUF" });
  send("/api/chat", { method: "POST", headers: plain, body: '{"model": "x", "messages": []}' });
  // a classic form post (no script needed by the attacker): a file in a multipart form
  const file = new File(["Planted by a form."], "form.txt", { type: "text/plain" });
  const picked = new DataTransfer();
  picked.items.add(file);
  document.getElementById("file").files = picked.files;
  const form = document.getElementById("form");
  form.action = target + "/api/v1/kb/victim/documents";
  form.submit();
  return Promise.all(calls);
}
</script>
</body></html>
""".replace("DIGEST", DIGEST)
# What the hostile page sends (method and path as in the access log).
ATTACKS = [
    ("POST", "/api/v1/kb/victim/documents"),
    ("POST", "/api/v1/datasets"),
    ("POST", "/api/v1/models/scan"),
    ("POST", "/api/pull"),
    ("POST", "/api/create"),
    ("POST", f"/api/blobs/{DIGEST}"),
    ("POST", "/api/chat"),
]


@pytest.fixture(scope="module")
def attacker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second local web server (another origin: same host, other port) serving the
    hostile page."""
    root = tmp_path_factory.mktemp("attacker")
    (root / "index.html").write_text(ATTACK)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def refused_in_log(live: LiveServer) -> set[tuple[str, str]]:
    found = re.findall(r"\] (POST|DELETE) (\S+) 403 ", live.log())
    return set(found)


def test_a_page_from_another_origin_changes_nothing(
    browser, live: LiveServer, attacker: str
) -> None:  # noqa: ANN001
    with httpx.Client(base_url=live.url, timeout=60) as client:
        assert client.post("/api/v1/kb", json={"name": "victim"}).status_code == 201
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{attacker}/index.html")
    outcomes = page.evaluate("target => attack(target)", live.url)
    assert outcomes and all(o == "sent" for o in outcomes), outcomes  # they reached aift
    wanted = set(ATTACKS)
    wait_for(lambda: {"seen": refused_in_log(live)}, lambda v: wanted <= v["seen"], timeout=60)
    context.close()
    with httpx.Client(base_url=live.url, timeout=60) as client:
        assert client.get("/api/v1/kb/victim/documents").json() == []
        assert client.get("/api/v1/datasets").json() == []
        assert client.get("/api/v1/jobs").json()["total"] == 0
    assert not (live.workspace / "models" / ".blobs").exists()


def test_a_rebinding_name_cannot_open_aift(browser, live: LiveServer) -> None:  # noqa: ANN001
    """DNS rebinding: the browser resolves the attacker's name to 127.0.0.1 (Chromium's
    host resolver rules stand in for the attacker's DNS). aift refuses that Host."""
    rules = "--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1"
    rebound = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, rules]
    )
    try:  # one browser whose DNS answers like the attacker's
        page = rebound.new_page()
        response = page.goto(f"http://rebind.attacker.test:{live.port}/")
        assert response is not None and response.status == 400
        assert "AIFT_ALLOWED_HOSTS" in page.content()
        read = page.evaluate("async () => (await fetch('/api/v1/conversations')).status")
        assert read == 400
        own = page.goto(f"{live.url}/")  # the same browser by aift's own name: works
        assert own is not None and own.status == 200
    finally:
        rebound.close()
