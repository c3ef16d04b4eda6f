"""Answering a question from a knowledge base, token by token.

`prepare` does everything that can fail on the user's input (knowledge base, model,
search) before anything is streamed, so errors are plain 4xx; `events` then streams the
sources, the answer's tokens, and finally the checked answer with its citations (and
records the exchange in the search history).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aift.inference.schemas import SamplingParams
from aift.models.schemas import Purpose
from aift.rag.answer import (
    NOT_FOUND,
    AskRequest,
    AskResponse,
    build_messages,
    citations_of,
    default_min_score,
    relevance,
)
from aift.rag.citations import check_citations
from aift.rag.history import SearchHistory, hit_summary
from aift.rag.search import SearchHit, SearchResponse, search_knowledge_base


@dataclass
class Prepared:
    request: AskRequest
    search: SearchResponse
    sources: list[SearchHit]
    model: str | None
    floor: float
    kb_id: str
    started: float


def prepare(knowledge, kb_ref: str, request: AskRequest) -> Prepared:  # noqa: ANN001
    """Search and pick the sources; check the model exists (raises user errors)."""
    started = time.perf_counter()
    kb = knowledge.store.kb_row(kb_ref)
    model = request.model or knowledge.resolver.resolve_default(Purpose.llm).name
    knowledge.serving.describe(model)  # unknown model: 404 before anything streams
    found = search_knowledge_base(knowledge, kb.id, request)
    floor = (
        request.min_score
        if request.min_score is not None
        else default_min_score(found.embedding_model, found.reranked)
    )
    sources = [hit for hit in found.hits if relevance(hit) >= floor]
    return Prepared(request, found, sources, model, floor, kb.id, started)


async def events(knowledge, prepared: Prepared) -> AsyncIterator[dict[str, Any]]:  # noqa: ANN001
    """sources → token… → done (the checked answer); the history row is written at the end."""
    request, sources = prepared.request, prepared.sources
    notes = list(prepared.search.notes)
    generation = None
    if sources:
        params = SamplingParams(max_tokens=request.max_tokens, temperature=request.temperature)
        generation, used = await asyncio.to_thread(
            knowledge.serving.chat_trimmed,
            prepared.model,
            lambda n: build_messages(request.query, sources[:n]),
            len(sources),
            params,
        )
        if used < len(sources):
            notes.append(
                f"only the best {used} of {len(sources)} sources fit {prepared.model}'s "
                f"context of {generation.lease.engine.context_length} tokens with max_tokens "
                f"{request.max_tokens}"
            )
            sources = sources[:used]
    try:
        yield {
            "event": "sources",
            "data": {
                "sources": [{"number": n, **h.model_dump()} for n, h in enumerate(sources, 1)],
                "notes": notes,
                "min_score": prepared.floor,
            },
        }
        text, first_token_ms = "", None
        if generation is not None:
            async for event in generation.events():
                if event.text:
                    if first_token_ms is None:
                        first_token_ms = (time.perf_counter() - prepared.started) * 1000
                    text += event.text
                    yield {"event": "token", "data": {"text": event.text}}
        else:
            text = NOT_FOUND
            yield {"event": "token", "data": {"text": text}}
    finally:  # a client gone before the tokens leaves no model lease behind
        if generation is not None:
            generation.close()
    check = check_citations(text, len(sources))
    cited, uncited = citations_of(check, sources)
    total_ms = (time.perf_counter() - prepared.started) * 1000
    if check.invalid:
        notes.append(
            "removed citations of sources that do not exist: "
            + ", ".join(f"[{n}]" for n in check.invalid)
        )
    history = SearchHistory(knowledge.store.db)
    entry = history.record(
        kind="ask",
        kb_id=prepared.kb_id,
        kb_name=prepared.search.knowledge_base,
        query=request.query,
        request=request.model_dump(mode="json"),
        hits=[hit_summary(h) for h in prepared.search.hits],
        answer=check.answer,
        model=prepared.model if sources else None,
        citations={"cited": check.cited, "invalid": check.invalid, "uncited": check.uncited},
        latency_ms=total_ms,
    )
    response = AskResponse(
        id=entry,
        question=request.query,
        knowledge_base=prepared.search.knowledge_base,
        model=prepared.model if sources else None,
        answer=check.answer,
        found=bool(sources),
        citations=cited,
        invalid_citations=check.invalid,
        uncited_sources=uncited,
        notes=notes,
        search_ms=prepared.search.latency_ms,
        first_token_ms=first_token_ms,
        total_ms=total_ms,
    )
    yield {"event": "done", "data": response.model_dump(mode="json")}
