"""A typed client of a running aift server's REST API.

The CLI's server commands, the web UI's server-side code and the tests call the server
through `AiftClient`: requests and answers are the same pydantic schemas the server
uses, server errors become `AiftError`s carrying the server's own message, and streams
(server-sent events) are read with httpx-sse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_sse import connect_sse
from pydantic import BaseModel, TypeAdapter

from aift.config import Settings
from aift.errors import AiftError, ServiceUnavailable
from aift.inference.schemas import LoadedModelInfo, LoadRequest
from aift.rag.schemas import (
    AnswerEvaluation,
    AskRequest,
    DocumentInfo,
    HistoryEntry,
    KnowledgeBaseCreate,
    KnowledgeBaseInfo,
    ReindexRequest,
    SearchRequest,
    SearchResponse,
    UploadResult,
)
from aift.work.schemas import JobInfo, JobList

T = TypeVar("T")
TIMEOUT_SECONDS = 600.0  # loading a model or ingesting a large upload takes a while


class ServerError(AiftError):
    """The server answered with an error; `status` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status


def _error_message(response: httpx.Response) -> str:
    """The server's own words: `{"error": {"message"}}` (aift, OpenAI) or `{"error"}`."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return response.text or response.reason_phrase
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


class AiftClient:
    """One connection to an aift server (`with AiftClient.from_settings(s) as client:`)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url
        self.http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> AiftClient:
        """The server of AIFT_SERVER_URL, with AIFT_API_KEY when one is set."""
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return cls(settings.server_url, key)

    def __enter__(self) -> AiftClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- transport ------------------------------------------------------------------
    def _unreachable(self, exc: Exception) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"Cannot reach the aift server at {self.base_url} ({exc}). Start it with "
            "`aift serve` or set AIFT_SERVER_URL."
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; an error answer raises ServerError with the server's message."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            raise ServerError(_error_message(response), response.status_code)
        return response

    def _get(self, path: str, schema: type[T], **kwargs: Any) -> T:
        return TypeAdapter(schema).validate_json(self.request("GET", path, **kwargs).content)

    def _send(self, method: str, path: str, schema: type[T], body: BaseModel | None = None) -> T:
        payload = body.model_dump(mode="json") if body is not None else None
        response = self.request(method, path, json=payload)
        return TypeAdapter(schema).validate_json(response.content)

    def events(self, path: str, body: dict[str, Any]) -> Iterator[tuple[str, str]]:
        """(event, data) of a server-sent event stream, until the server ends it."""
        try:
            with connect_sse(self.http, "POST", path, json=body) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise ServerError(_error_message(source.response), source.response.status_code)
                for event in source.iter_sse():
                    yield event.event, event.data
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    # -- jobs -------------------------------------------------------------------------
    def job(self, job_id: str) -> JobInfo:
        return self._get(f"/api/v1/jobs/{job_id}", JobInfo)

    def jobs(self, limit: int = 50) -> JobList:
        return self._get("/api/v1/jobs", JobList, params={"limit": limit})

    def cancel_job(self, job_id: str) -> JobInfo:
        return self._send("POST", f"/api/v1/jobs/{job_id}/cancel", JobInfo)

    # -- models in memory ---------------------------------------------------------------
    def load_model(self, name: str, request: LoadRequest) -> LoadedModelInfo:
        return self._send("POST", f"/api/v1/models/{name}/load", LoadedModelInfo, request)

    def unload_model(self, name: str) -> None:
        self.request("POST", f"/api/v1/models/{name}/unload")

    def loaded_models(self) -> list[LoadedModelInfo]:
        return self._get("/api/v1/models/loaded", list[LoadedModelInfo])

    def chat(self, body: dict[str, Any]) -> Iterator[str]:
        """The text deltas of a streamed OpenAI-style chat completion."""
        for _, data in self.events("/v1/chat/completions", {**body, "stream": True}):
            if data == "[DONE]":
                return
            choices = json.loads(data).get("choices") or [{}]
            yield choices[0].get("delta", {}).get("content") or ""

    # -- knowledge bases ---------------------------------------------------------------
    def create_kb(self, request: KnowledgeBaseCreate) -> KnowledgeBaseInfo:
        return self._send("POST", "/api/v1/kb", KnowledgeBaseInfo, request)

    def kbs(self) -> list[KnowledgeBaseInfo]:
        return self._get("/api/v1/kb", list[KnowledgeBaseInfo])

    def kb(self, ref: str) -> KnowledgeBaseInfo:
        return self._get(f"/api/v1/kb/{ref}", KnowledgeBaseInfo)

    def delete_kb(self, ref: str) -> None:
        self.request("DELETE", f"/api/v1/kb/{ref}")

    def documents(self, ref: str) -> list[DocumentInfo]:
        return self._get(f"/api/v1/kb/{ref}/documents", list[DocumentInfo])

    def delete_document(self, ref: str, document_id: str) -> None:
        self.request("DELETE", f"/api/v1/kb/{ref}/documents/{document_id}")

    def reindex(self, ref: str, request: ReindexRequest) -> JobInfo:
        return self._send("POST", f"/api/v1/kb/{ref}/reindex", JobInfo, request)

    def upload(self, ref: str, files: list[Path], password: str | None = None) -> UploadResult:
        """Send files to a knowledge base; the server validates and queues them."""
        handles = [path.open("rb") for path in files]
        try:
            response = self.request(
                "POST",
                f"/api/v1/kb/{ref}/documents",
                files=[("files", (str(p), h)) for p, h in zip(files, handles, strict=True)],
                data={"password": password} if password else {},
            )
        finally:
            for handle in handles:
                handle.close()
        return UploadResult.model_validate_json(response.content)

    def evaluate_answers(
        self, ref: str, questions: Path, form: dict[str, str]
    ) -> AnswerEvaluation | JobInfo:
        """Score a knowledge base's answers to a question file (per answer mode): the
        evaluation, or the job it was queued as (a large file, or `background`)."""
        with questions.open("rb") as handle:
            response = self.request(
                "POST",
                f"/api/v1/kb/{ref}/evaluate-answers",
                files={"file": (questions.name, handle)},
                data=form,
                timeout=3600,
            )
        if response.status_code == 202:
            return JobInfo.model_validate_json(response.content)
        return AnswerEvaluation.model_validate_json(response.content)

    def search(self, ref: str, request: SearchRequest) -> SearchResponse:
        return self._send("POST", f"/api/v1/kb/{ref}/search", SearchResponse, request)

    def ask(self, ref: str, request: AskRequest) -> Iterator[tuple[str, dict[str, Any]]]:
        """The answer's events: `sources`, `token`…, then `done` (the checked answer)."""
        body = {**request.model_dump(mode="json"), "stream": True}
        for event, data in self.events(f"/api/v1/kb/{ref}/ask", body):
            payload = json.loads(data)
            if event == "error":
                raise AiftError(payload.get("message", data))
            yield event, payload

    # -- history ------------------------------------------------------------------------
    def history(self, kb: str | None = None, limit: int = 20) -> list[HistoryEntry]:
        params: dict[str, Any] = {"limit": limit, **({"kb": kb} if kb else {})}
        return self._get("/api/v1/history", list[HistoryEntry], params=params)

    def history_entry(self, entry_id: str) -> HistoryEntry:
        return self._get(f"/api/v1/history/{entry_id}", HistoryEntry)

    def delete_history(self, entry_id: str) -> None:
        self.request("DELETE", f"/api/v1/history/{entry_id}")
