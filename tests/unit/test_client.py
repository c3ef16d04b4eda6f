"""The typed API client: server errors keep the server's words; streams end cleanly."""

from __future__ import annotations

import httpx
import pytest

from aift.client import AiftClient, ServerError
from aift.errors import AiftError, ServiceUnavailable
from aift.rag.schemas import AskRequest


def client_answering(handler) -> AiftClient:  # noqa: ANN001
    return AiftClient("http://aift.test", "k" * 20, transport=httpx.MockTransport(handler))


def test_an_error_answer_carries_the_servers_message_and_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer " + "k" * 20
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "No job x."}})

    with client_answering(handler) as client, pytest.raises(ServerError) as caught:
        client.job("x")
    assert caught.value.status == 404 and caught.value.message == "No job x. (HTTP 404)"


def test_ollama_style_and_non_json_errors_are_read_too() -> None:
    answers = iter(
        [httpx.Response(400, json={"error": "bad model"}), httpx.Response(502, text="gateway")]
    )
    with client_answering(lambda request: next(answers)) as client:
        with pytest.raises(ServerError, match="bad model"):
            client.loaded_models()
        with pytest.raises(ServerError, match="gateway"):
            client.loaded_models()


def test_a_stream_yields_its_events_and_an_error_event_raises() -> None:
    body = (
        'event: sources\ndata: {"sources": []}\n\n'
        'event: token\ndata: {"text": "Hi"}\n\n'
        'event: error\ndata: {"message": "model crashed"}\n\n'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    seen = []
    with client_answering(handler) as client, pytest.raises(AiftError, match="model crashed"):
        for event, data in client.ask("kb", AskRequest(query="q")):
            seen.append((event, data))
    assert seen == [("sources", {"sources": []}), ("token", {"text": "Hi"})]


def test_an_unreachable_server_says_how_to_start_one() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with client_answering(handler) as client, pytest.raises(ServiceUnavailable, match="aift serve"):
        client.kbs()
