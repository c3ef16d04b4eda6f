"""The MCP server through the official SDK's client, over both transports: streamable
HTTP at `/mcp` of a real server, and stdio (`aift mcp` started by the client). Members'
tokens see only their own knowledge bases; a read-only token gets no `add_document`;
bad arguments and unknown names are clear tool errors; no token gets nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.integration.conftest import LiveServer, start_server, wait_for
from tests.integration.test_accounts import (
    ADMIN,
    _first_admin,
    _members,
    _token_of,
    bearer,
    sign_in,
)

MANUAL = (
    "# Zorvex pump manual\n\n## 3 Maintenance\n\n"
    "The zorvex pump is serviced every 41 days by the night shift.\n\n"
    "## 4 Storage\n\nSpare impellers are kept on shelf K7 of the east store.\n"
)
READ_TOOLS = {"list_knowledge_bases", "search", "ask", "get_page"}


def finished(job: dict[str, Any]) -> bool:
    return job["status"] not in ("queued", "running")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with accounts: alice owns a knowledge base holding the manual; bob is
    another member; alice also has a read-only token."""
    server = start_server(tmp_path_factory.mktemp("mcp") / "ws", AIFT_ADMIN_EMAIL=ADMIN)
    server, root = _first_admin(server)
    _members(server, root, "alice@example.com", "bob@example.com")
    alice, bob = _token_of(server, "alice@example.com"), _token_of(server, "bob@example.com")
    browser, csrf = sign_in(server, "alice@example.com", "a-better-password")
    made = browser.post(
        "/api/v1/account/tokens",
        json={"name": "ro", "scopes": ["read"]},
        headers={"X-CSRF-Token": csrf},
    )
    with server.client(headers=bearer(alice)) as client:
        kb = client.post(
            "/api/v1/kb", json={"name": "pumps", "embedding_model": "multilingual-e5-small"}
        )
        assert kb.status_code == 201, kb.text
        up = client.post(
            f"/api/v1/kb/{kb.json()['id']}/documents", files=[("files", ("manual.md", MANUAL))]
        )
        assert up.status_code == 202, up.text
        job = up.json()["job_id"]
        done = wait_for(lambda: client.get(f"/api/v1/jobs/{job}").json(), finished, 300)
        assert done["status"] == "succeeded", done
    yield {
        "server": server,
        "alice": alice,
        "bob": bob,
        "alice_ro": made.json()["token"],
        "kb": kb.json(),
    }
    server.stop()


def over_http(
    server: LiveServer, token: str | None, work: Callable[[Client], Awaitable[Any]]
) -> Any:
    """Run `work` with an SDK client connected to `/mcp` with `token`."""

    async def main() -> Any:
        headers = bearer(token) if token else {}
        async with httpx2.AsyncClient(headers=headers, timeout=300) as http:
            async with Client(
                streamable_http_client(f"{server.url}/mcp", http_client=http)
            ) as client:
                return await work(client)

    return anyio.run(main)


def over_stdio(server: LiveServer, token: str, work: Callable[[Client], Awaitable[Any]]) -> Any:
    """Run `work` with an SDK client that starts `aift mcp` on the server's workspace."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "aift.cli", "mcp", "--workspace", str(server.workspace)],
        env={**os.environ, "AIFT_TOKEN": token},
    )

    async def main() -> Any:
        async with Client(params, read_timeout_seconds=300) as client:
            return await work(client)

    return anyio.run(main)


def payload(result: Any) -> Any:
    """A tool result's structured content, or its text as JSON/plain text."""
    assert not result.is_error, result.content
    if result.structured_content is not None:
        found = result.structured_content
        return (
            found.get("result", found)
            if isinstance(found, dict) and set(found) == {"result"}
            else found
        )
    text = "".join(part.text for part in result.content)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


async def tour(client: Client) -> dict[str, Any]:
    """Every read tool and resource, and two bad calls."""
    tools = {tool.name for tool in (await client.list_tools()).tools}
    kbs = payload(await client.call_tool("list_knowledge_bases", {}))
    hits = payload(
        await client.call_tool(
            "search", {"knowledge_base": "pumps", "query": "how often is the pump serviced"}
        )
    )
    answer = payload(
        await client.call_tool(
            "ask",
            {
                "knowledge_base": "pumps",
                "question": "Where are spare impellers kept?",
                "answer_mode": "extractive",
            },
        )  # fmt: skip
    )
    page = payload(
        await client.call_tool(
            "get_page", {"knowledge_base": "pumps", "document": "manual.md", "page": 1}
        )
    )
    documents = await client.read_resource("aift://kb/pumps/documents")
    text = await client.read_resource("aift://kb/pumps/documents/manual.md/pages/1")
    unknown = await client.call_tool("search", {"knowledge_base": "nope", "query": "pump"})
    invalid = await client.call_tool(
        "search", {"knowledge_base": "pumps", "query": "pump", "limit": 0}
    )
    return {
        "tools": tools, "kbs": kbs, "hits": hits, "answer": answer, "page": page,
        "documents": documents, "text": text, "unknown": unknown, "invalid": invalid,
    }  # fmt: skip


def check_tour(seen: dict[str, Any]) -> None:
    assert READ_TOOLS <= seen["tools"]
    assert [kb["name"] for kb in seen["kbs"]] == ["pumps"]
    top = seen["hits"][0]
    assert "41 days" in top["text"] and top["document"] == "manual.md" and top["page_start"] == 1
    assert top["section"] == "Zorvex pump manual › 3 Maintenance"
    assert top["dense_score"] is not None and top["fused_score"] is not None
    assert "K7" in seen["answer"]["answer"] and seen["answer"]["found"]
    assert seen["answer"]["citations"][0]["document"] == "manual.md" and seen["answer"]["quotes"]
    assert "shelf K7" in seen["page"]
    assert json.loads(seen["documents"].contents[0].text)[0]["name"] == "manual.md"
    assert "41 days" in seen["text"].contents[0].text
    assert seen["unknown"].is_error and "nope" in seen["unknown"].content[0].text
    assert seen["invalid"].is_error and "limit" in seen["invalid"].content[0].text


def test_http_a_member_searches_asks_and_reads_pages_of_their_own(site: dict[str, Any]) -> None:
    seen = over_http(site["server"], site["alice"], tour)
    check_tour(seen)
    assert "add_document" in seen["tools"], "a write token may add documents"


def test_stdio_the_same_tools_for_the_tokens_user(site: dict[str, Any]) -> None:
    seen = over_stdio(site["server"], site["alice"], tour)
    check_tour(seen)
    assert "add_document" in seen["tools"]


def test_another_member_sees_nothing_of_it_not_even_its_name(site: dict[str, Any]) -> None:
    async def look(client: Client) -> tuple[Any, Any, Any]:
        kbs = payload(await client.call_tool("list_knowledge_bases", {}))
        search = await client.call_tool(
            "search", {"knowledge_base": site["kb"]["id"], "query": "pump"}
        )
        page = await client.call_tool(
            "get_page", {"knowledge_base": "pumps", "document": "manual.md", "page": 1}
        )
        return kbs, search, page

    for run in (over_http, over_stdio):
        kbs, search, page = run(site["server"], site["bob"], look)
        assert kbs == []
        assert search.is_error and page.is_error
        assert "41 days" not in search.content[0].text + page.content[0].text


def test_a_read_only_token_reads_but_cannot_add_documents(site: dict[str, Any]) -> None:
    async def look(client: Client) -> tuple[set[str], Any]:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        added = await client.call_tool(
            "add_document", {"knowledge_base": "pumps", "filename": "x.md", "content": "x"}
        )
        return tools, added

    tools, added = over_http(site["server"], site["alice_ro"], look)
    assert tools == READ_TOOLS
    assert added.is_error


def test_a_write_token_adds_a_document_that_is_then_found(site: dict[str, Any]) -> None:
    server = site["server"]

    async def add(client: Client) -> Any:
        note = "The backup generator runs on diesel and is tested each Friday at noon."
        return payload(
            await client.call_tool(
                "add_document",
                {"knowledge_base": "pumps", "filename": "generator.txt", "content": note},
            )
        )

    result = over_http(server, site["alice"], add)
    assert [d["name"] for d in result["accepted"]] == ["generator.txt"]
    with server.client(headers=bearer(site["alice"])) as client:
        job = result["job_id"]
        done = wait_for(lambda: client.get(f"/api/v1/jobs/{job}").json(), finished, 300)
        assert done["status"] == "succeeded", done
        events = client.get("/api/v1/admin/audit").status_code
        assert events == 403, "a member cannot read the audit trail"

    async def find(client: Client) -> Any:
        return payload(
            await client.call_tool(
                "search", {"knowledge_base": "pumps", "query": "when is the generator tested"}
            )
        )

    assert over_http(server, site["alice"], find)[0]["document"] == "generator.txt"
    garbled = {
        "knowledge_base": "pumps",
        "filename": "b.pdf",
        "content": "%%",
        "base64_encoded": True,
    }
    bad = over_http(server, site["alice"], lambda c: c.call_tool("add_document", garbled))
    assert bad.is_error and "base64" in bad.content[0].text


def test_without_a_token_mcp_answers_401_and_from_another_site_403(site: dict[str, Any]) -> None:
    server = site["server"]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    assert httpx.post(f"{server.url}/mcp", json=body, headers=headers).status_code == 401
    browser, csrf = sign_in(server, "alice@example.com", "a-better-password")
    evil = browser.post("/mcp", json=body, headers={**headers, "Origin": "https://evil.example"})
    assert evil.status_code == 403


def test_a_path_trick_is_an_unknown_document_without_the_workspace_path(
    site: dict[str, Any],
) -> None:
    tricky = {"knowledge_base": "pumps", "document": "../../etc/passwd", "page": 1}
    result = over_http(site["server"], site["alice"], lambda c: c.call_tool("get_page", tricky))
    assert result.is_error
    assert str(site["server"].workspace) not in result.content[0].text


def test_an_unknown_token_is_refused_over_both_transports(site: dict[str, Any]) -> None:
    server, bogus = site["server"], "aift_not-a-real-token"
    with pytest.raises(BaseExceptionGroup) as over_web:
        over_http(server, bogus, lambda c: c.list_tools())
    assert over_web.group_contains(MCPError, match="error response", depth=None)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream", **bearer(bogus)}
    assert httpx.post(f"{server.url}/mcp", json=body, headers=headers).status_code == 401
    with pytest.raises(BaseExceptionGroup) as over_pipe:  # `aift mcp` refuses to start
        over_stdio(server, bogus, lambda c: c.list_tools())
    assert over_pipe.group_contains(MCPError, match="Connection closed", depth=None)
    done = subprocess.run(
        [sys.executable, "-m", "aift.cli", "mcp", "--workspace", str(server.workspace)],
        env={**os.environ, "AIFT_TOKEN": bogus},
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "unknown, expired or revoked" in done.stderr
