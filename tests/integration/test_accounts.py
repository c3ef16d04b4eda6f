"""Accounts through the real server: the first admin from AIFT_ADMIN_EMAIL and its
printed setup link, sign-in with email and password, an initial password that must
change first, invite links, scoped API tokens used by the official OpenAI and Ollama
clients, roles, revocation, disabling, and the audit trail of each change."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import ollama
import openai
import pytest

from tests.integration.conftest import LiveServer, start_server, wait_for

ADMIN = "admin@example.com"
PASSWORD = "correct horse battery"


def setup_link(server: LiveServer) -> str:
    found = wait_for(server.log, lambda text: "/setup/" in text, 60)
    return re.search(r"http://\S+/setup/(\S+)", found).group(1)


def sign_in(server: LiveServer, email: str, password: str) -> tuple[httpx.Client, str]:
    """A browser-like client signed in with an account, and its page's CSRF token."""
    client = server.client(follow_redirects=False)
    done = client.post("/login", data={"email": email, "password": password})
    assert done.status_code == 303, done.text
    page = client.get(done.headers["location"], headers={"Accept": "text/html"})
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    return client, csrf


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A server whose first admin set a password through the setup link, and an admin
    API token (shared by the module: each test makes users of its own)."""
    workspace = tmp_path_factory.mktemp("accounts") / "ws"
    server = start_server(
        workspace, AIFT_ADMIN_EMAIL=ADMIN, AIFT_MAX_JOBS_PER_USER="1", AIFT_SIGNUP="viewer"
    )
    yield _first_admin(server)
    server.stop()


def _first_admin(server: LiveServer) -> tuple[LiveServer, str]:
    token = setup_link(server)
    with server.client(follow_redirects=False) as client:
        assert client.get("/api/v1/jobs").status_code == 401, "accounts exist: say who you are"
        assert client.get(f"/setup/{token}").status_code == 200
        assert client.post(f"/setup/{token}", data={"password": "short"}).status_code == 422
        done = client.post(f"/setup/{token}", data={"password": PASSWORD})
        assert done.status_code == 303 and "aift_session" in done.headers["set-cookie"]
        assert client.get(f"/setup/{token}").status_code == 404, "the link works once"
    browser, csrf = sign_in(server, ADMIN, PASSWORD)
    made = browser.post(
        "/api/v1/account/tokens",
        json={"name": "ops", "scopes": ["read", "write", "admin"]},
        headers={"X-CSRF-Token": csrf},
    )
    assert made.status_code == 201, made.text
    assert made.json()["token"].startswith("aift_")
    return server, made.json()["token"]


def test_members_and_viewers_get_what_their_role_and_token_scopes_allow(admin) -> None:  # noqa: ANN001
    server, root = admin
    with server.client(headers=bearer(root)) as client:
        member = client.post(
            "/api/v1/admin/users",
            json={"email": "Mia@Example.com", "role": "member", "password": "initial-pass-1"},
        )
        assert member.status_code == 201, member.text
        assert member.json()["user"]["email"] == "mia@example.com" and member.json()["link"] is None
        viewer = client.post(
            "/api/v1/admin/users", json={"email": "vic@example.com", "role": "viewer"}
        )
        invite = viewer.json()["link"]
        assert "/setup/" in invite
        again = client.post("/api/v1/admin/users", json={"email": "mia@example.com"})
        assert again.status_code == 409
        demote = client.patch(f"/api/v1/admin/users/{_id(client, ADMIN)}", json={"role": "member"})
        assert demote.status_code == 422 and "last active admin" in demote.text

    # an initial password must change before anything else
    mia, csrf = sign_in(server, "mia@example.com", "initial-pass-1")
    first = mia.get("/api/v1/jobs")
    assert first.status_code == 403 and "password" in first.text
    changed = mia.post(
        "/api/v1/account/password",
        json={"current": "initial-pass-1", "new": "mias-own-password"},
        headers={"X-CSRF-Token": csrf},
    )
    assert changed.status_code == 204
    assert mia.get("/api/v1/account").status_code == 401, "a new password ends every session"
    mia, csrf = sign_in(server, "mia@example.com", "mias-own-password")
    tokens = {}
    for scopes in (["read"], ["read", "write"]):
        made = mia.post(
            "/api/v1/account/tokens",
            json={"name": "+".join(scopes), "scopes": scopes, "expires_days": 30},
            headers={"X-CSRF-Token": csrf},
        )
        tokens[made.json()["info"]["name"]] = made.json()["token"]
    beyond = mia.post(
        "/api/v1/account/tokens",
        json={"name": "root", "scopes": ["admin"]},
        headers={"X-CSRF-Token": csrf},
    )
    assert beyond.status_code == 422, "a member cannot mint an admin token"

    read, write = tokens["read"], tokens["read+write"]
    with server.client(headers=bearer(read)) as client:
        assert client.get("/api/v1/kb").status_code == 200
        refused = client.post("/api/v1/kb", json={"name": "nope"})
        assert refused.status_code == 403 and "only read" in refused.text
        assert client.get("/api/v1/admin/users").status_code == 403
    chat = openai.OpenAI(base_url=f"{server.url}/v1", api_key=read).chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert chat.choices[0].message.content is not None, "a read token chats"
    tags = ollama.Client(host=server.url, headers=bearer(read)).list()
    assert any(m.model.startswith("SmolLM2") for m in tags.models)
    with server.client(headers=bearer(write)) as client:
        created = client.post("/api/v1/kb", json={"name": "mias-notes"})
        assert created.status_code == 201, created.text
        request_id = created.headers["x-request-id"]
        assert client.get("/api/v1/admin/audit").status_code == 403
    bad = openai.OpenAI(base_url=f"{server.url}/v1", api_key="aift_forged")
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()

    # the viewer's invite link sets a password; a viewer reads and chats, never writes
    token = invite.rsplit("/", 1)[1]
    with server.client(follow_redirects=False) as client:
        assert (
            client.post(f"/setup/{token}", data={"password": "viewer-password"}).status_code == 303
        )
    vic, vcsrf = sign_in(server, "vic@example.com", "viewer-password")
    assert vic.get("/api/v1/kb").status_code == 200
    kept = vic.post("/api/v1/kb", json={"name": "x"}, headers={"X-CSRF-Token": vcsrf})
    assert kept.status_code == 403
    own = vic.post("/api/v1/conversations", json={"title": "mine"}, headers={"X-CSRF-Token": vcsrf})
    assert own.status_code == 201, "a viewer keeps their own chats"
    no_write = vic.post(
        "/api/v1/account/tokens",
        json={"name": "w", "scopes": ["write"]},
        headers={"X-CSRF-Token": vcsrf},
    )
    assert no_write.status_code == 422

    # revocation and disabling take effect at once; the audit trail saw it all
    listed = mia.get("/api/v1/account/tokens").json()
    read_id = next(t["id"] for t in listed if t["name"] == "read")
    assert next(t for t in listed if t["name"] == "read")["last_used_at"] is not None
    revoked = mia.delete(f"/api/v1/account/tokens/{read_id}", headers={"X-CSRF-Token": csrf})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert httpx.get(f"{server.url}/api/v1/kb", headers=bearer(read)).status_code == 401
    with server.client(headers=bearer(root)) as client:
        mia_id = _id(client, "mia@example.com")
        assert (
            client.patch(f"/api/v1/admin/users/{mia_id}", json={"disabled": True}).status_code
            == 200
        )
        assert httpx.get(f"{server.url}/api/v1/kb", headers=bearer(write)).status_code == 401
        assert mia.get("/api/v1/account").status_code == 401, "disabled: signed out"
        wrong = server.client().post(
            "/login", data={"email": "vic@example.com", "password": "nope"}
        )
        assert wrong.status_code == 401
        trail = client.get("/api/v1/admin/audit", params={"actor": "mia@example.com"}).json()
        actions = [e["action"] for e in trail]
        assert "POST /api/v1/kb" in actions and "sign in" in actions
        made = next(e for e in trail if e["action"] == "POST /api/v1/kb" and e["status"] == 201)
        assert made["request_id"] == request_id and made["client"] == "127.0.0.1"
        assert "DELETE /api/v1/account/tokens/{token_id}" in actions
        assert "POST /api/v1/account/password" in actions
        failed = client.get("/api/v1/admin/audit", params={"action": "sign in failed"}).json()
        assert failed and failed[0]["actor"] == "vic@example.com" and failed[0]["status"] == 401
        by_admin = client.get("/api/v1/admin/audit", params={"actor": ADMIN}).json()
        assert "PATCH /api/v1/admin/users/{user_id}" in [e["action"] for e in by_admin]
    log = server.log()
    assert read not in log and write not in log and PASSWORD not in log, "no secret in the log"


def _id(client: httpx.Client, email: str) -> str:
    return next(u["id"] for u in client.get("/api/v1/admin/users").json() if u["email"] == email)


def test_the_cli_makes_users_and_links_on_the_workspace(tmp_path) -> None:  # noqa: ANN001
    import json
    import subprocess
    import sys

    from tests.integration.conftest import aift_env

    env = aift_env(tmp_path / "ws")

    def aift(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "aift.cli", "users", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    made = aift("create", "ops@example.com", "--role", "admin", "--url", "http://aift.lan:8050")
    assert made.returncode == 0, made.stderr
    assert re.search(r"http://aift\.lan:8050/setup/\S{40,}", made.stdout)
    assert aift("create", "dev@example.com", "--password", "initial-password").returncode == 0
    listed = json.loads(aift("list", "--json").stdout)
    assert {(u["email"], u["role"], u["must_change_password"]) for u in listed} == {
        ("ops@example.com", "admin", False),
        ("dev@example.com", "member", True),
    }
    last = aift("update", "ops@example.com", "--role", "viewer")
    assert last.returncode == 2 and "last active admin" in last.stderr
    assert aift("update", "dev@example.com", "--disable").returncode == 0
    missing = aift("link", "nobody@example.com")
    assert missing.returncode == 2 and "No user" in missing.stderr


def test_audit_events_past_their_retention_are_dropped(settings) -> None:  # noqa: ANN001
    from datetime import timedelta

    from sqlalchemy import update

    from aift.runtime import Runtime
    from aift.store import utcnow
    from aift.store.tables import AuditEventRow

    audit = Runtime.start(settings).accounts.audit
    audit.record(None, "DELETE /api/v1/kb/{kb}", "/api/v1/kb/old", status=204, actor="a@x")
    audit.record(None, "POST /api/v1/kb", "/api/v1/kb", status=201, actor="a@x")
    with audit.db.session() as session:
        old = utcnow() - audit.retention - timedelta(days=1)
        session.execute(
            update(AuditEventRow).where(AuditEventRow.target == "/api/v1/kb/old").values(at=old)
        )
    assert audit.prune() == 1
    assert [e.action for e in audit.query()] == ["POST /api/v1/kb"]
    assert audit.query(action="DELETE") == [] and len(audit.query(actor="a@x")) == 1


def test_jobs_belong_to_who_started_them_and_each_user_has_a_limit(admin) -> None:  # noqa: ANN001
    from websockets.sync.client import connect

    server, root = admin
    tokens = {}
    with server.client(headers=bearer(root)) as client:
        for email in ("ann1@example.com", "bob1@example.com"):
            made = client.post(
                "/api/v1/admin/users",
                json={"email": email, "role": "member", "password": "initial-pass-1"},
            )
            assert made.status_code == 201, made.text
            tokens[email] = _token_of(server, email)
    ann, bob = (bearer(tokens[e]) for e in ("ann1@example.com", "bob1@example.com"))
    slow = {"kind": "system.benchmark", "config": {"steps": 60, "seconds_per_step": 1.0}}
    with server.client(headers=ann) as client:
        job = client.post("/api/v1/jobs", json=slow)
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
        assert job.json()["owner_id"] == _id(
            server.client(headers=bearer(root)), "ann1@example.com"
        )
        second = client.post("/api/v1/jobs", json=slow)
        assert second.status_code == 429 and "AIFT_MAX_JOBS_PER_USER" in second.text
    with server.client(headers=bob) as client:
        assert client.get("/api/v1/jobs").json()["items"] == [], "not even its name"
        assert client.get(f"/api/v1/jobs/{job_id}").status_code == 404
        assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 404
        with connect(
            f"{server.ws_url}/ws/jobs/{job_id}?token={tokens['bob1@example.com']}", open_timeout=60
        ) as ws:
            assert '"not_found"' in ws.recv(timeout=30)
        own = client.post("/api/v1/jobs", json=slow)
        assert own.status_code == 202, "the limit is per user"
        assert client.post(f"/api/v1/jobs/{own.json()['id']}/cancel").status_code == 200
    with server.client(headers=bearer(root)) as client:
        listed = [j["id"] for j in client.get("/api/v1/jobs").json()["items"]]
        assert job_id in listed, "an admin sees every job"
        assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200


def _token_of(server: LiveServer, email: str) -> str:
    """Sign the user in, replace their initial password, and make a write token."""
    browser, csrf = sign_in(server, email, "initial-pass-1")
    changed = browser.post(
        "/api/v1/account/password",
        json={"current": "initial-pass-1", "new": "a-better-password"},
        headers={"X-CSRF-Token": csrf},
    )
    assert changed.status_code == 204
    browser, csrf = sign_in(server, email, "a-better-password")
    made = browser.post(
        "/api/v1/account/tokens",
        json={"name": "t", "scopes": ["read", "write"]},
        headers={"X-CSRF-Token": csrf},
    )
    return made.json()["token"]


def _members(server: LiveServer, root: str, *emails: str) -> None:
    """Members made by the admin, each with the initial password `_token_of` replaces."""
    with server.client(headers=bearer(root)) as client:
        for email in emails:
            body = {"email": email, "role": "member", "password": "initial-pass-1"}
            assert client.post("/api/v1/admin/users", json=body).status_code == 201


def test_a_knowledge_base_is_its_owners_until_shared_and_then_as_shared(admin) -> None:  # noqa: ANN001
    server, root = admin
    _members(server, root, "ann2@example.com", "bob2@example.com")
    with server.client(headers=bearer(root)) as client:
        bob_id = _id(client, "bob2@example.com")
        team = client.post("/api/v1/admin/groups", json={"name": "team", "members": [bob_id]})
        assert team.status_code == 201
    ann = server.client(headers=bearer(_token_of(server, "ann2@example.com")))
    bob = server.client(headers=bearer(_token_of(server, "bob2@example.com")))
    assert ann.post("/api/v1/kb", json={"name": "ann-notes"}).status_code == 201
    assert bob.post("/api/v1/kb", json={"name": "bob-notes"}).status_code == 201
    search = {"query": "anything"}

    assert [k["name"] for k in bob.get("/api/v1/kb").json()] == ["bob-notes"]
    hidden = bob.get("/api/v1/kb/ann-notes")
    assert hidden.status_code == 404 and "Known: bob-notes." in hidden.text, "not even its name"
    assert bob.post("/api/v1/kb/ann-notes/search", json=search).status_code == 404
    assert bob.delete("/api/v1/kb/ann-notes").status_code == 404
    assert bob.put("/api/v1/kb/bob-notes/shares", json={"grantee": "nobody@x.y"}).status_code == 404

    shared = ann.put("/api/v1/kb/ann-notes/shares", json={"grantee": "bob2@example.com"})
    assert shared.status_code == 200 and shared.json()["access"] == "read", shared.text
    assert sorted(k["name"] for k in bob.get("/api/v1/kb").json()) == ["ann-notes", "bob-notes"]
    assert bob.post("/api/v1/kb/ann-notes/search", json=search).status_code == 200
    upload = {"files": ("x.txt", b"Some text.", "text/plain")}
    read_only = bob.post("/api/v1/kb/ann-notes/documents", files=upload)
    assert read_only.status_code == 403 and "read only" in read_only.text
    assert bob.delete("/api/v1/kb/ann-notes").status_code == 403
    assert (
        bob.put("/api/v1/kb/ann-notes/shares", json={"grantee": "bob2@example.com"}).status_code
        == 403
    )

    group = {"grantee": "team", "kind": "group", "access": "write"}
    assert ann.put("/api/v1/kb/ann-notes/shares", json=group).status_code == 200
    assert bob.post("/api/v1/kb/ann-notes/documents", files=upload).status_code == 202
    listed = ann.get("/api/v1/kb/ann-notes/shares").json()
    assert {(s["grantee"], s["access"]) for s in listed} == {
        ("bob2@example.com", "read"),
        ("team", "write"),
    }
    for s in listed:
        gone = ann.delete(f"/api/v1/kb/ann-notes/shares/{s['grantee_type']}/{s['grantee_id']}")
        assert gone.status_code == 204
    assert bob.get("/api/v1/kb/ann-notes").status_code == 404, "revoked at once"

    # conversations and search history are their owner's alone
    chat = ann.post("/api/v1/conversations", json={"title": "ann's secret plans"})
    assert chat.status_code == 201
    assert ann.post("/api/v1/kb/ann-notes/search", json={"query": "ann's query"}).status_code == 200
    assert [c["title"] for c in ann.get("/api/v1/conversations").json()] == ["ann's secret plans"]
    assert bob.get("/api/v1/conversations").json() == []
    assert bob.get(f"/api/v1/conversations/{chat.json()['id']}").status_code == 404
    assert bob.delete(f"/api/v1/conversations/{chat.json()['id']}").status_code == 404
    assert "ann's query" in [h["query"] for h in ann.get("/api/v1/history").json()]
    assert "ann's query" not in [h["query"] for h in bob.get("/api/v1/history").json()]
    entry = ann.get("/api/v1/history").json()[0]["id"]
    assert bob.get(f"/api/v1/history/{entry}").status_code == 404
    with server.client(headers=bearer(root)) as client:
        assert {"ann-notes", "bob-notes"} <= {k["name"] for k in client.get("/api/v1/kb").json()}
    ann.close()
    bob.close()


def test_a_dataset_is_trained_on_only_by_its_owner_or_a_write_share(admin) -> None:  # noqa: ANN001
    server, root = admin
    _members(server, root, "ann3@example.com", "bob3@example.com")
    ann = server.client(headers=bearer(_token_of(server, "ann3@example.com")))
    bob = server.client(headers=bearer(_token_of(server, "bob3@example.com")))
    rows = b'{"instruction": "Say hi", "output": "hi"}\n' * 8
    made = ann.post("/api/v1/datasets", files={"file": ("hi.jsonl", rows)})
    assert made.status_code == 201, made.text
    dataset = made.json()["dataset"]["id"]
    assert bob.get("/api/v1/datasets").json() == []
    assert bob.get(f"/api/v1/datasets/{dataset}").status_code == 404
    again = bob.post("/api/v1/datasets", files={"file": ("hi.jsonl", rows)})
    assert again.json()["dataset"]["id"] != dataset, "the same file is bob's own dataset"
    run = {"base_model": "SmolLM2-135M-Instruct", "dataset": dataset, "max_steps": 1}
    assert bob.post("/api/v1/training", json=run).status_code == 404

    share = {"grantee": "bob3@example.com", "access": "read"}
    assert ann.put(f"/api/v1/datasets/{dataset}/shares", json=share).status_code == 200
    assert bob.get(f"/api/v1/datasets/{dataset}").status_code == 200
    trains = bob.post("/api/v1/training", json=run)
    assert trains.status_code == 403 and "read only" in trains.text
    assert bob.delete(f"/api/v1/datasets/{dataset}").status_code == 403
    assert ann.delete(f"/api/v1/datasets/{dataset}").status_code == 204
    assert bob.get("/api/v1/datasets").json()[0]["id"] != dataset
    ann.close()
    bob.close()


def test_arena_battles_are_their_askers_and_the_standings_everyones(settings) -> None:  # noqa: ANN001
    from aift.errors import NotFound
    from aift.evaluation.arena import Arena
    from aift.evaluation.schemas import ArenaBattleCreate
    from aift.runtime import Runtime
    from aift.work.actor import Actor, acting_as

    arena = Arena(Runtime.start(settings).db, lambda: ["model-x", "model-y"], lambda n: n)
    with acting_as(Actor("ann", admin=False)):
        mine = arena.start(ArenaBattleCreate(prompt="Which is better?"))
        for side in ("a", "b"):
            arena.record(mine.id, side, f"answer {side}")
        arena.vote(mine.id, "a")
    with acting_as(Actor("bob", admin=False)):
        assert arena.list() == []
        with pytest.raises(NotFound):
            arena.get(mine.id)
        with pytest.raises(NotFound):
            arena.vote(mine.id, "b")
        assert arena.leaderboard().votes == 1, "the standings add up every user's votes"
    assert [b.id for b in arena.list()] == [mine.id], "an admin sees every battle"


def test_a_model_is_its_trainers_until_shared_in_every_api(admin, tiny_chat_model_dir) -> None:  # noqa: ANN001
    """A member's training run makes a model only they (and admins, and whom they share it
    with) see — in REST, the OpenAI and Ollama APIs, chat and metrics; packaged and
    installed models are everyone's; knowledge base names are per owner."""
    import shutil

    server, root = admin
    shutil.copytree(tiny_chat_model_dir, server.workspace / "models" / "tiny-chat")
    with server.client(headers=bearer(root)) as client:
        assert client.post("/api/v1/models/scan").status_code == 200
    _members(server, root, "ann4@example.com", "bob4@example.com")
    tokens = {e: _token_of(server, e) for e in ("ann4@example.com", "bob4@example.com")}
    ann = server.client(headers=bearer(tokens["ann4@example.com"]))
    bob = server.client(headers=bearer(tokens["bob4@example.com"]))
    rows = b'{"instruction": "Say hi", "output": "hi"}\n' * 8
    dataset = ann.post("/api/v1/datasets", files={"file": ("hi.jsonl", rows)}).json()["dataset"]
    run = {"name": "ann-tiny", "base_model": "tiny-chat", "dataset": dataset["id"], "max_steps": 1}
    job = ann.post("/api/v1/training", json=run)
    assert job.status_code == 202, job.text
    done = wait_for(
        lambda: ann.get(f"/api/v1/jobs/{job.json()['id']}").json(),
        lambda j: j["status"] in {"succeeded", "failed", "cancelled"},
        timeout=600,
    )
    assert done["status"] == "succeeded", done["error"]
    model = done["result"]["model"]
    assert ann.get(f"/api/v1/models/{model}").json()["owner_id"] == done["owner_id"]

    def sees(token: str) -> dict[str, bool]:
        """Whether each API names the model for the holder of `token`."""
        rest = model in [
            m["name"] for m in server.client(headers=bearer(token)).get("/api/v1/models").json()
        ]
        oai = openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0)
        olm = ollama.Client(host=server.url, headers=bearer(token))
        return {
            "rest": rest,
            "openai": model in [m.id for m in oai.models.list()],
            "ollama": model in [m.model for m in olm.list().models],
            "packaged": "SmolLM2-135M-Instruct" in [m.id for m in oai.models.list()],
            "installed": "tiny-chat" in [m.id for m in oai.models.list()],
        }

    ann_key, bob_key = tokens["ann4@example.com"], tokens["bob4@example.com"]
    assert sees(ann_key) == dict.fromkeys(
        ("rest", "openai", "ollama", "packaged", "installed"), True
    )
    assert sees(bob_key) == {
        "rest": False,
        "openai": False,
        "ollama": False,
        "packaged": True,
        "installed": True,
    }
    hidden = bob.get(f"/api/v1/models/{model}")
    assert hidden.status_code == 404 and model not in hidden.text.split("registry.")[1]
    bob_openai = openai.OpenAI(base_url=f"{server.url}/v1", api_key=bob_key, max_retries=0)
    say = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with pytest.raises(openai.NotFoundError):
        bob_openai.chat.completions.create(model=model, **say)
    with pytest.raises(ollama.ResponseError) as refused:
        ollama.Client(host=server.url, headers=bearer(bob_key)).chat(
            model=model, messages=say["messages"]
        )
    assert refused.value.status_code == 404
    assert bob.put(f"/api/v1/models/{model}/shares", json={"grantee": "x"}).status_code == 404

    # ann's use of it shows in her metrics, never in bob's; nor does her knowledge base
    ann_openai = openai.OpenAI(base_url=f"{server.url}/v1", api_key=ann_key, max_retries=0)
    assert ann_openai.chat.completions.create(model=model, **say).choices
    kb = ann.post("/api/v1/kb", json={"name": "same-name"}).json()
    assert (
        ann.post(
            "/api/v1/kb/same-name/documents",
            files={"files": ("a.txt", b"Ann's private text.", "text/plain")},
        ).status_code
        == 202
    )
    wait_for(lambda: ann.get("/api/v1/kb/same-name").json(), lambda k: k["documents"] == 1, 60)
    assert model in ann.get("/metrics").text and kb["id"] in ann.get("/metrics").text
    bob_metrics = bob.get("/metrics").text
    assert model not in bob_metrics and kb["id"] not in bob_metrics
    assert "aift_http_requests_total" in bob_metrics, "what names nobody's work stays"
    mine = bob.post("/api/v1/kb", json={"name": "same-name"})
    assert mine.status_code == 201, "a name another user took is free (and reveals nothing)"
    assert ann.get("/api/v1/kb/same-name").json()["id"] == kb["id"], "each finds their own"
    assert bob.get("/api/v1/kb/same-name").json()["id"] == mine.json()["id"]
    with server.client(headers=bearer(root)) as client:
        both = client.get("/api/v1/kb/same-name")
        assert both.status_code == 409 and kb["id"] in both.text, "an admin names one by id"

    forged = ann.put(
        f"/api/v1/models/{model}/shares",
        json={"grantee": "bob4@example.com"},
        headers={"Origin": "http://evil.example"},
    )
    assert forged.status_code == 403 and not sees(bob_key)["rest"], "another site shares nothing"
    shared = ann.put(f"/api/v1/models/{model}/shares", json={"grantee": "bob4@example.com"})
    assert shared.status_code == 200, shared.text
    assert sees(bob_key)["openai"] and sees(bob_key)["ollama"]
    assert bob_openai.chat.completions.create(model=model, **say).choices
    assert bob.put(f"/api/v1/models/{model}/shares", json={"grantee": "x"}).status_code == 403
    gone = ann.delete(f"/api/v1/models/{model}/shares/user/{shared.json()['grantee_id']}")
    assert gone.status_code == 204
    assert not sees(bob_key)["rest"], "revoked at once"
    ann.close()
    bob.close()


def test_what_was_made_before_accounts_becomes_the_first_admins(
    settings, tiny_chat_model_dir, tmp_path
) -> None:  # noqa: ANN001, E501
    """A single-user workspace's datasets, conversations, jobs and trained (workspace)
    models become the first admin's when accounts start; packaged models stay everyone's."""
    import shutil

    from aift.conversations.schemas import ConversationCreate
    from aift.runtime import Runtime
    from aift.training.schemas import DatasetOptions
    from aift.work.actor import Actor, acting_as
    from aift.work.schemas import JobCreate

    runtime = Runtime.start(settings)
    rows = tmp_path / "hi.jsonl"
    rows.write_text('{"instruction": "Say hi", "output": "hi"}\n' * 8)
    dataset = runtime.datasets.add(rows, "hi.jsonl", DatasetOptions()).dataset
    chat = runtime.conversations.create(ConversationCreate(title="before accounts"))
    job = runtime.jobs.submit(JobCreate(kind="system.benchmark", config={"steps": 1}))
    shutil.copytree(tiny_chat_model_dir, runtime.workspace.outputs / "my-finetune")
    runtime.models.scan()
    assert runtime.models.get("my-finetune").owner_id is None

    assert runtime.accounts.bootstrap("first@example.com") is not None
    admin = runtime.accounts.users.by_email("first@example.com").id
    assert runtime.datasets.get(dataset.id).owner_id == admin
    assert runtime.jobs.get(job.id).owner_id == admin
    assert runtime.models.get("my-finetune").owner_id == admin
    assert runtime.models.get("SmolLM2-135M-Instruct").owner_id is None
    member = Actor("someone-else", admin=False)
    with acting_as(member):
        assert runtime.datasets.list() == [] and runtime.conversations.list() == []
        assert runtime.jobs.list().items == []
        names = [m.name for m in runtime.models.list()]
        assert "my-finetune" not in names and "SmolLM2-135M-Instruct" in names
    with acting_as(Actor(admin, admin=True)):
        assert [c.id for c in runtime.conversations.list()] == [chat.id]
    runtime.close()


def test_sign_up_where_allowed_makes_an_account_of_the_configured_role(admin) -> None:  # noqa: ANN001
    server, root = admin
    with server.client(follow_redirects=False) as browser:
        page = browser.get("/signup")
        assert page.status_code == 200 and "viewers" in page.text
        assert "/signup" in browser.get("/login").text
        forged = browser.post(
            "/signup",
            data={"email": "eve@example.com", "password": PASSWORD},
            headers={"Origin": "http://evil.example"},
        )
        assert forged.status_code == 403, "another site's page cannot sign anyone up"
        spoofed = browser.post(
            "/signup",
            data={"email": "eve@example.com", "password": PASSWORD},
            headers={"Host": "evil.example"},
        )
        assert spoofed.status_code in (400, 403, 421), "nor can a rebinding name"
        short = browser.post("/signup", data={"email": "sam@example.com", "password": "short"})
        assert short.status_code == 422 and "at least" in short.text
        made = browser.post(
            "/signup", data={"email": "Sam@Example.com", "name": "Sam", "password": PASSWORD}
        )
        assert made.status_code == 303 and "aift_session" in made.headers["set-cookie"]
        assert browser.get("/api/v1/kb").status_code == 200, "signed in"
        token = re.search(
            r'name="csrf-token" content="([^"]+)"',
            browser.get("/", headers={"Accept": "text/html"}).text,
        ).group(1)
        refused = browser.post("/api/v1/kb", json={"name": "x"}, headers={"X-CSRF-Token": token})
        assert refused.status_code == 403, "a viewer, as AIFT_SIGNUP says"
    with server.client(follow_redirects=False) as browser:
        again = browser.post("/signup", data={"email": "sam@example.com", "password": PASSWORD})
        assert again.status_code == 409
    with server.client(headers=bearer(root)) as client:
        emails = [u["email"] for u in client.get("/api/v1/admin/users").json()]
        assert "eve@example.com" not in emails, "the refused sign-ups made nothing"
        sam = next(
            u for u in client.get("/api/v1/admin/users").json() if u["email"] == "sam@example.com"
        )
        assert sam["role"] == "viewer" and not sam["must_change_password"]
        trail = client.get("/api/v1/admin/audit", params={"actor": "sam@example.com"}).json()
        assert "sign up" in [e["action"] for e in trail]
