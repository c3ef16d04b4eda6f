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
from aift.inference.schemas import GenerationStats
from aift.inference.service import Generation, ServingService

router = APIRouter(prefix="/v1", tags=["openai"])


def _sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


@router.get("/models")
async def list_models(serving: ServingService = Depends(get_serving)) -> dict:
    """Every servable model (language models, adapters) and embedding model."""
    models = await run_in_threadpool(
        lambda: serving.manager.servable() + serving.embedding_models()
    )
    return {
        "object": "list",
        "data": [
            {
                "id": m.name,
                "object": "model",
                "created": int(m.created_at.timestamp() if m.created_at else time.time()),
                "owned_by": "aift",
            }
            for m in models
        ],
    }


async def _collect(gen: Generation) -> tuple[str, str, GenerationStats]:
    parts = [event.text async for event in gen.events()]
    return (
        "".join(parts),
        oa.openai_finish(gen.stream.finish_reason),
        gen.stream.stats or GenerationStats(),
    )


@router.post("/chat/completions", response_model=None, responses=SSE_RESPONSE)
async def chat_completions(
    request: oa.ChatCompletionRequest, serving: ServingService = Depends(get_serving)
) -> Response | dict[str, Any]:
    gen = await run_in_threadpool(serving.chat, request.model, request.messages, request.sampling())
    rid = oa.new_id("chatcmpl")
    if not request.stream:
        text, finish, stats = await _collect(gen)
        return oa.chat_response(rid, request.model, text, finish, stats)

    async def stream() -> AsyncIterator[str]:
        yield _sse(oa.chat_chunk(rid, request.model, delta={"role": "assistant", "content": ""}))
        async for event in gen.events():
            if event.text:
                yield _sse(oa.chat_chunk(rid, request.model, delta={"content": event.text}))
        finish = oa.openai_finish(gen.stream.finish_reason)
        yield _sse(oa.chat_chunk(rid, request.model, delta={}, finish=finish))
        if request.include_usage:
            yield _sse(
                oa.usage_chunk(rid, request.model, "chat.completion.chunk", gen.stream.stats)
            )
        yield _sse("[DONE]")

    return StreamingResponse(stream(), media_type="text/event-stream")


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
        text, finish, stats = await _collect(gen)
        return oa.completion_response(rid, request.model, prefix + text, finish, stats)

    async def stream() -> AsyncIterator[str]:
        if prefix:
            yield _sse(oa.completion_chunk(rid, request.model, prefix))
        async for event in gen.events():
            if event.text:
                yield _sse(oa.completion_chunk(rid, request.model, event.text))
        finish = oa.openai_finish(gen.stream.finish_reason)
        yield _sse(oa.completion_chunk(rid, request.model, "", finish))
        if request.include_usage:
            yield _sse(oa.usage_chunk(rid, request.model, "text_completion", gen.stream.stats))
        yield _sse("[DONE]")

    return StreamingResponse(stream(), media_type="text/event-stream")


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
    oa.check_dimensions(request.model, request.dimensions, vectors)
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
