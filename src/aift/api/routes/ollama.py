"""Ollama-compatible API, so tools built for Ollama work against aift unchanged.

Errors use Ollama's shape, {"error": "<message>"}, with the same status codes as the
rest of aift (404 unknown model, 400 prompt too long, 422 invalid parameters).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from aift.api.deps import get_jobs, get_runtime, get_serving
from aift.api.errors import unexpected_error_message
from aift.api.responses import NDJSON_RESPONSE
from aift.api.routes import ollama_wire as ol
from aift.errors import AiftError, InvalidInput, NotFound
from aift.inference.pull import check_pull_ref
from aift.inference.schemas import ChatMessage, TokenLogprob, ToolCall
from aift.inference.service import Generation, ServingService
from aift.jobs.service import JobService
from aift.keepalive import parse_keep_alive
from aift.runtime import Runtime
from aift.work.schemas import JobCreate, JobStatus

log = logging.getLogger(__name__)


class OllamaRoute(APIRoute):
    """Turns aift's errors into Ollama's {"error": "..."} bodies."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(_body_as_json(request))
            except AiftError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status_code)
            except HTTPException as exc:  # e.g. a body past its limit (413)
                return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)
            except RequestValidationError as exc:
                fields = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                return JSONResponse({"error": f"invalid request — {fields}"}, status_code=422)
            except Exception as exc:  # noqa: BLE001 - Ollama clients read {"error": ...}
                log.exception("unhandled error on %s: %s", request.url.path, exc)
                return JSONResponse({"error": unexpected_error_message()}, status_code=500)

        return route


def _body_as_json(request: Request) -> Request:
    """Ollama reads every body as JSON, whatever its content type: its documented
    `curl … -d '{…}'` sends form-urlencoded. Do the same."""
    content_type = request.headers.get("content-type", "")
    if request.method == "GET" or "json" in content_type:
        return request
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
    scope = {**request.scope, "headers": [*headers, (b"content-type", b"application/json")]}
    return Request(scope, request.receive)


router = APIRouter(prefix="/api", tags=["ollama"], route_class=OllamaRoute)


def _line(data: dict) -> str:
    return json.dumps(data) + "\n"


async def _guarded(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """NDJSON lines that end with Ollama's `{"error": ...}` line when generation fails
    after the response has started (the engine's process crashed)."""
    try:
        async for line in lines:
            yield line
    except AiftError as exc:
        yield _line({"error": exc.message})


@router.get("/version")
def version() -> dict:
    """The Ollama API version aift is compatible with."""
    return {"version": ol.COMPAT_VERSION}


@router.get("/tags")
async def tags(serving: ServingService = Depends(get_serving)) -> dict:
    """Local models, as `ollama list` shows them."""
    models = await run_in_threadpool(
        lambda: serving.manager.servable() + serving.embedding_models()
    )
    return {"models": [ol.tag(m) for m in models]}


@router.post("/show")
async def show(request: ol.NameRequest, serving: ServingService = Depends(get_serving)) -> dict:
    """Details of one model: format, family, size, template, capabilities."""
    info = await run_in_threadpool(serving.describe, request.ref)
    is_embedding = info.kind == "embedding"
    template = info.details.get("chat_template") or ""
    capabilities = ["embedding"] if is_embedding else ["completion"]
    if "tools" in template:  # the template shows tools to the model: it can call them
        capabilities.append("tools")
    return {
        # the file's name only: a client has no business with the server's folders
        "modelfile": f"FROM {PurePath(info.path).name or info.name}\n",
        "parameters": "",
        "template": info.details.get("chat_template") or "",
        "details": ol.details(info),
        "model_info": {
            "general.architecture": info.architecture,
            "general.parameter_count": info.parameter_count,
            **({"general.base_model": info.base_model} if info.base_model else {}),
        },
        "capabilities": capabilities,
        "modified_at": (info.updated_at or datetime.now(UTC)).isoformat(),
    }


@router.get("/ps")
async def ps(serving: ServingService = Depends(get_serving)) -> dict:
    """Models in memory and when they expire."""
    loaded = await run_in_threadpool(serving.manager.loaded)
    models = []
    for item in loaded:
        info = await run_in_threadpool(serving.manager.describe, item.name)
        models.append(
            {
                "name": item.name,
                "model": item.name,
                "size": item.memory_bytes,
                "digest": "",
                "details": ol.details(info),
                "expires_at": (
                    item.expires_at.isoformat() if item.expires_at else "2318-01-01T00:00:00Z"
                ),
                "size_vram": 0,
                "context_length": item.context_length,
            }
        )
    return {"models": models}


async def _load_or_unload(
    serving: ServingService, model: str, keep_alive: str | float | None, kind: str
) -> dict:
    """An empty prompt/messages request: load the model, or unload it with keep_alive 0."""
    if keep_alive != "default" and parse_keep_alive(keep_alive) == 0:
        await run_in_threadpool(
            serving.manager.unload, serving.describe(model).name, missing_ok=True
        )
        reason = "unload"
    else:
        await run_in_threadpool(serving.manager.load, model, keep_alive=keep_alive)
        reason = "load"
    body = {"model": model, "created_at": ol.now(), "done": True, "done_reason": reason}
    body.update(
        {"response": ""}
        if kind == "generate"
        else {"message": {"role": "assistant", "content": ""}}
    )
    return body


async def _respond(
    gen: Generation,
    model: str,
    stream: bool,
    shape: Callable[[str], dict[str, Any]],
    with_logprobs: bool = False,
) -> Response:
    """The generation as Ollama answers: an NDJSON stream, or one JSON object at the end.
    With tools, the model's calls come as `message.tool_calls` (a chunk of their own when
    streaming, before the last); with `logprobs`, each chunk carries its tokens'."""

    def chunk(
        text: str, calls: list[ToolCall] | None = None, found: list[TokenLogprob] | None = None
    ) -> dict:
        body = {"model": model, "created_at": ol.now(), **shape(text), "done": False}
        if calls:
            body["message"]["tool_calls"] = ol.tool_calls(calls)
        if with_logprobs:
            body["logprobs"] = ol.logprobs(found or [])
        return body

    async def lines() -> AsyncIterator[str]:
        async for piece in gen.pieces():
            if piece.text or piece.calls or (with_logprobs and piece.logprobs):
                yield _line(chunk(piece.text, piece.calls, piece.logprobs))
        yield _line(final(""))

    def final(
        text: str, calls: list[ToolCall] | None = None, found: list[TokenLogprob] | None = None
    ) -> dict:
        return {
            **chunk(text, calls, found),
            "done": True,
            "done_reason": gen.stream.finish_reason.value if gen.stream.finish_reason else "stop",
            **ol.timings(gen.stream.stats, gen.load_ms),
        }

    if stream:
        return StreamingResponse(_guarded(lines()), media_type="application/x-ndjson")

    whole = await gen.collect()
    return JSONResponse(final(whole.text, whole.calls, whole.logprobs))


@router.post("/generate", response_model=None, responses=NDJSON_RESPONSE)
async def generate(
    request: ol.GenerateRequest, serving: ServingService = Depends(get_serving)
) -> Response | dict[str, Any]:
    """Complete a prompt (templated as a user turn unless raw) — NDJSON stream by default."""
    if not request.prompt:
        return await _load_or_unload(serving, request.model, request.keep_alive, "generate")
    if request.images:
        raise InvalidInput("This server's models read text only: images are not supported.")
    params = request.sampling()
    if request.raw:
        gen = await run_in_threadpool(
            serving.complete, request.model, request.prompt, params, keep_alive=request.keep_alive
        )
    else:
        messages = (
            [ChatMessage(role="system", content=request.system)] if request.system else []
        ) + [ChatMessage(role="user", content=request.prompt)]
        gen = await run_in_threadpool(
            serving.chat, request.model, messages, params, keep_alive=request.keep_alive
        )
    return await _respond(
        gen, request.model, request.stream, lambda text: {"response": text}, request.logprobs
    )


@router.post("/chat", response_model=None, responses=NDJSON_RESPONSE)
async def chat(
    request: ol.ChatRequest, serving: ServingService = Depends(get_serving)
) -> Response | dict[str, Any]:
    """The assistant's reply to a conversation — NDJSON stream by default."""
    if not request.messages:
        return await _load_or_unload(serving, request.model, request.keep_alive, "chat")
    messages, params = request.chat_messages(), request.sampling()
    gen = await run_in_threadpool(
        lambda: serving.chat(
            request.model, messages, params, keep_alive=request.keep_alive, tools=request.tools
        )
    )
    return await _respond(
        gen,
        request.model,
        request.stream,
        lambda text: {"message": {"role": "assistant", "content": text}},
        request.logprobs,
    )


@router.post("/embed")
async def embed(request: ol.EmbedRequest, serving: ServingService = Depends(get_serving)) -> dict:
    """Embeddings of one or more inputs."""
    started = datetime.now(UTC)
    vectors, tokens = await run_in_threadpool(serving.embed, request.model, request.texts)
    elapsed_ns = int((datetime.now(UTC) - started).total_seconds() * 1e9)
    return {
        "model": request.model,
        "embeddings": vectors,
        "total_duration": elapsed_ns,
        "load_duration": 0,
        "prompt_eval_count": tokens,
    }


@router.post("/embeddings")
async def embeddings(
    request: ol.LegacyEmbeddingsRequest, serving: ServingService = Depends(get_serving)
) -> dict:
    """The older single-prompt embedding endpoint."""
    vectors, _ = await run_in_threadpool(serving.embed, request.model, [request.prompt])
    return {"embedding": vectors[0]}


@router.head("/blobs/{digest}")
async def blob_exists(digest: str, runtime: Runtime = Depends(get_runtime)) -> Response:
    """200 when the blob was uploaded, 404 when not (what `ollama create` asks first)."""
    from aift.export.ollama_target import BlobStore

    found = await run_in_threadpool(BlobStore(runtime.workspace).exists, digest)
    return Response(status_code=200 if found else 404)


@router.post("/blobs/{digest}", status_code=201)
async def upload_blob(
    digest: str, request: Request, runtime: Runtime = Depends(get_runtime)
) -> Response:
    """Store a file (a GGUF) under its SHA-256; refused when the data has another digest."""
    from aift.export.ollama_target import BlobStore

    store = BlobStore(runtime.workspace, max_bytes=runtime.settings.max_blob_mb * 1024 * 1024)
    length = request.headers.get("content-length")
    await store.put(digest, request.stream(), int(length) if length and length.isdigit() else None)
    return Response(status_code=201)


@router.post("/create", response_model=None, responses=NDJSON_RESPONSE)
async def create(request: Request, runtime: Runtime = Depends(get_runtime)) -> Response | dict:
    """Create a model from an uploaded GGUF blob, with its template, system prompt and
    parameters (kept in the model's Modelfile)."""
    from aift.export.ollama_target import BlobStore, CreateRequest, create_model

    try:
        body = CreateRequest.model_validate(await request.json())
    except ValueError as exc:
        raise InvalidInput(f"invalid create request: {exc}") from None
    info = await run_in_threadpool(
        create_model, body, BlobStore(runtime.workspace), runtime.models, runtime.workspace
    )
    done = {"status": "success", "model": info.name}
    if body.stream:
        lines = [_line({"status": "writing manifest"}), _line(done)]
        return StreamingResponse(iter(lines), media_type="application/x-ndjson")
    return done


@router.post("/pull", response_model=None, responses=NDJSON_RESPONSE)
async def pull(
    request: ol.PullRequest,
    http: Request,
    serving: ServingService = Depends(get_serving),
    jobs: JobService = Depends(get_jobs),
) -> Response | dict[str, Any]:
    """Make a model available: already local → success; else a `models.pull` job whose
    progress is streamed in Ollama's pull format."""
    try:
        await run_in_threadpool(serving.describe, request.model)
        done = {"status": "success"}
        return (
            StreamingResponse(iter([_line(done)]), media_type="application/x-ndjson")
            if request.stream
            else done
        )
    except NotFound:
        pass
    check_pull_ref(get_runtime(http).settings, request.model)
    job = await run_in_threadpool(
        jobs.submit,
        JobCreate(
            kind="models.pull", config={"model": request.model}, title=f"pull {request.model}"
        ),
        internal=True,
    )

    async def updates() -> AsyncIterator[dict]:
        last = None
        while True:
            info = await run_in_threadpool(jobs.get, job.id)
            if info.status == JobStatus.succeeded:
                yield {"status": "success"}
                return
            if info.status.is_terminal:
                yield {"error": info.error or f"pull {info.status.value}"}
                return
            if (info.message, info.progress) != last:
                last = (info.message, info.progress)
                yield {"status": info.message, "completed": int(info.progress * 100), "total": 100}
            await asyncio.sleep(0.5)

    if request.stream:

        async def lines() -> AsyncIterator[str]:
            async for update in updates():
                yield _line(update)

        return StreamingResponse(_guarded(lines()), media_type="application/x-ndjson")
    final: dict = {}
    async for update in updates():
        final = update
    if "error" in final:
        return JSONResponse(final, status_code=404)
    return final
