"""OpenAI-compatible API: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_serving
from aift.api.responses import SSE_RESPONSE
from aift.api.routes import openai_wire as oa
from aift.errors import AiftError, NotFound
from aift.inference.matryoshka import shorten
from aift.inference.schemas import GenerationStats, ToolCall
from aift.inference.service import ServingService
from aift.models.schemas import ModelInfo

router = APIRouter(prefix="/v1", tags=["openai"])


def _sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


async def _guarded(events: AsyncIterator[str]) -> AsyncIterator[str]:
    """A stream that, when generation fails after the response has started (the
    engine's process crashed), ends with an error event the OpenAI clients raise, instead
    of a connection cut mid-chunk."""
    try:
        async for line in events:
            yield line
    except AiftError as exc:
        yield _sse({"error": {"message": exc.message, "type": exc.code, "code": exc.code}})


@router.get("/models")
async def list_models(serving: ServingService = Depends(get_serving)) -> dict:
    """Every servable model (language models, adapters) and embedding model."""
    models = await run_in_threadpool(
        lambda: serving.manager.servable() + serving.embedding_models()
    )
    return {
        "object": "list",
        "data": [_model_entry(m) for m in models],
    }


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, serving: ServingService = Depends(get_serving)) -> dict:
    """One model by name (the client's models.retrieve); 404 with the known names."""
    models = await run_in_threadpool(
        lambda: serving.manager.servable() + serving.embedding_models()
    )
    for model in models:
        if model.name == model_id:
            return _model_entry(model)
    known = ", ".join(m.name for m in models) or "none"
    raise NotFound(f"Model {model_id!r} is not available. Available: {known}.")


def _model_entry(model: ModelInfo) -> dict:
    created = model.created_at.timestamp() if model.created_at else time.time()
    return {"id": model.name, "object": "model", "created": int(created), "owned_by": "aift"}


@router.post("/chat/completions", response_model=None, responses=SSE_RESPONSE)
async def chat_completions(
    request: oa.ChatCompletionRequest, serving: ServingService = Depends(get_serving)
) -> Response | dict[str, Any]:
    """A chat reply; with `tools`, the model's calls come back as `tool_calls`."""
    messages, params = request.chat_messages(), request.sampling()
    gen = await run_in_threadpool(
        lambda: serving.chat(
            request.model, messages, params, tools=request.tools, tool_choice=request.tool_choice
        )
    )
    rid = oa.new_id("chatcmpl")
    if not request.stream:
        whole = await gen.collect()
        finish = oa.openai_finish(gen.stream.finish_reason)
        stats = gen.stream.stats or GenerationStats()
        response = oa.chat_response(rid, request.model, whole.text, finish, stats, whole.calls)
        if request.logprobs:
            response["choices"][0]["logprobs"] = oa.chat_logprobs(whole.logprobs)
        return response

    async def stream() -> AsyncIterator[str]:
        yield _sse(oa.chat_chunk(rid, request.model, delta={"role": "assistant", "content": ""}))
        calls: list[ToolCall] = []
        async for piece in gen.pieces():
            if piece.text or (request.logprobs and piece.logprobs):
                chunk = oa.chat_chunk(rid, request.model, delta={"content": piece.text})
                if request.logprobs:
                    chunk["choices"][0]["logprobs"] = oa.chat_logprobs(piece.logprobs)
                yield _sse(chunk)
            if piece.calls:
                calls = piece.calls
                delta = {"tool_calls": oa.tool_call_deltas(calls)}
                yield _sse(oa.chat_chunk(rid, request.model, delta=delta))
        finish = "tool_calls" if calls else oa.openai_finish(gen.stream.finish_reason)
        yield _sse(oa.chat_chunk(rid, request.model, delta={}, finish=finish))
        if request.include_usage:
            yield _sse(
                oa.usage_chunk(rid, request.model, "chat.completion.chunk", gen.stream.stats)
            )
        yield _sse("[DONE]")

    return StreamingResponse(_guarded(stream()), media_type="text/event-stream")


@router.post("/completions", response_model=None, responses=SSE_RESPONSE)
async def completions(
    request: oa.CompletionRequest, serving: ServingService = Depends(get_serving)
) -> Response | dict[str, Any]:
    gen = await run_in_threadpool(
        serving.complete, request.model, request.prompt_text, request.sampling()
    )
    rid = oa.new_id("cmpl")
    prefix = request.prompt_text if request.echo else ""
    if not request.stream:
        whole = await gen.collect()
        finish = oa.openai_finish(gen.stream.finish_reason)
        stats = gen.stream.stats or GenerationStats()
        logprobs = whole.logprobs
        response = oa.completion_response(rid, request.model, prefix + whole.text, finish, stats)
        if request.logprobs is not None:
            response["choices"][0]["logprobs"] = oa.completion_logprobs(logprobs, len(prefix))
        return response

    async def stream() -> AsyncIterator[str]:
        if prefix:
            yield _sse(oa.completion_chunk(rid, request.model, prefix))
        offset = len(prefix)
        async for event in gen.events():
            if event.text or (request.logprobs is not None and event.logprobs):
                chunk = oa.completion_chunk(rid, request.model, event.text)
                if request.logprobs is not None:
                    found = event.logprobs or []
                    chunk["choices"][0]["logprobs"] = oa.completion_logprobs(found, offset)
                offset += len(event.text)
                yield _sse(chunk)
        finish = oa.openai_finish(gen.stream.finish_reason)
        yield _sse(oa.completion_chunk(rid, request.model, "", finish))
        if request.include_usage:
            yield _sse(oa.usage_chunk(rid, request.model, "text_completion", gen.stream.stats))
        yield _sse("[DONE]")

    return StreamingResponse(_guarded(stream()), media_type="text/event-stream")


@router.post("/embeddings")
async def embeddings(
    request: oa.EmbeddingRequest, serving: ServingService = Depends(get_serving)
) -> dict:
    """Vectors of texts or token ids; `encoding_format: base64` as OpenAI sends it
    (little-endian float32), which openai-node asks for by default."""
    texts = request.texts
    if texts is not None:
        vectors, tokens = await run_in_threadpool(serving.embed, request.model, texts)
    else:
        vectors, tokens = await run_in_threadpool(
            serving.embed_token_ids, request.model, request.token_ids
        )
    vectors = shorten(request.model, vectors, request.dimensions)
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": oa.encode_embedding(v, request.encoding_format),
            }
            for i, v in enumerate(vectors)
        ],
        "model": request.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
