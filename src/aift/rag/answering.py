"""Answers grounded in a knowledge base: numbered sources in the prompt, [n] citations in
the answer, checked against the sources; no generation when nothing relevant was found.

`Answerer.prepare` does everything that can fail on the user's input (knowledge base,
model, search) before anything is streamed, so errors are plain 4xx; `Answerer.events`
then streams the sources, the answer's tokens, and finally the checked answer with its
citations (and records the exchange in the search history).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aift.inference.schemas import ChatMessage, SamplingParams
from aift.models.schemas import Purpose
from aift.rag.citations import CitationCheck, check_citations
from aift.rag.history import SearchHistory, hit_summary
from aift.rag.retrieval import Retriever
from aift.rag.schemas import AskRequest, AskResponse, Citation, SearchHit, SearchResponse
from aift.rag.store import KnowledgeStore

if TYPE_CHECKING:
    from aift.inference.service import ServingService
    from aift.models.resolver import ModelResolver

NOT_FOUND = (
    "I could not find anything relevant enough in the knowledge base to answer this question."
)
SYSTEM = (
    "You answer questions using only the numbered sources below. After each statement, "
    "cite the source it comes from as [n]. If the sources do not contain the answer, say "
    "you do not know."
)


def default_min_score(embedding_model: str, reranked: bool) -> float:
    """Relevance floor by what the score means: a cross-encoder probability, an e5 cosine
    (compressed around 0.7–1.0), or another model's cosine."""
    if reranked:
        return 0.05
    return 0.78 if "e5" in embedding_model.lower() else 0.3


def relevance(hit: SearchHit) -> float:
    """What the relevance floor is compared with: the re-rank score, else the cosine."""
    if hit.rerank_score is not None:
        return hit.rerank_score
    return hit.dense_score if hit.dense_score is not None else 0.0


def build_messages(question: str, hits: list[SearchHit]) -> list[ChatMessage]:
    """The numbered sources and the question, for any chat model."""
    sources = "\n\n".join(
        f"[{number}] {hit.document}, {_pages(hit)}:\n{hit.text}"
        for number, hit in enumerate(hits, start=1)
    )
    return [
        ChatMessage(role="system", content=SYSTEM),
        ChatMessage(role="user", content=f"Sources:\n\n{sources}\n\nQuestion: {question}"),
    ]


def _pages(hit: SearchHit) -> str:
    if hit.page_start == hit.page_end:
        return f"page {hit.page_start}"
    return f"pages {hit.page_start}–{hit.page_end}"


def citations_of(
    check: CitationCheck, hits: list[SearchHit]
) -> tuple[list[Citation], list[Citation]]:
    """(cited sources, uncited sources) as Citation objects."""

    def citation(number: int) -> Citation:
        return Citation(number=number, **hits[number - 1].model_dump())

    return [citation(n) for n in check.cited], [citation(n) for n in check.uncited]


@dataclass
class PreparedAnswer:
    """Everything checked before an answer streams: the search and the sources kept."""

    request: AskRequest
    search: SearchResponse
    sources: list[SearchHit]
    model: str
    floor: float
    kb_id: str
    started: float


class Answerer:
    """Answers questions from a knowledge base: searches with the Retriever, keeps the
    sources relevant enough, streams a served model's answer and checks its citations."""

    def __init__(
        self,
        store: KnowledgeStore,
        retriever: Retriever,
        serving: ServingService,
        resolver: ModelResolver,
        history: SearchHistory,
    ) -> None:
        self.store = store
        self.retriever = retriever
        self.serving = serving
        self.resolver = resolver
        self.history = history

    def prepare(self, kb_ref: str, request: AskRequest) -> PreparedAnswer:
        """Search and pick the sources; check the model exists (raises user errors)."""
        started = time.perf_counter()
        kb = self.store.kb_row(kb_ref)
        model = request.model or self.resolver.resolve_default(Purpose.llm).name
        self.serving.describe(model)  # unknown model: 404 before anything streams
        found = self.retriever.search(kb.id, request)
        floor = (
            request.min_score
            if request.min_score is not None
            else default_min_score(found.embedding_model, found.reranked)
        )
        sources = [hit for hit in found.hits if relevance(hit) >= floor]
        return PreparedAnswer(request, found, sources, model, floor, kb.id, started)

    async def events(self, prepared: PreparedAnswer) -> AsyncIterator[dict[str, Any]]:
        """sources → token… → done (the checked answer); the history row is written at the end."""
        request, sources = prepared.request, prepared.sources
        notes = list(prepared.search.notes)
        generation = None
        if sources:
            params = SamplingParams(max_tokens=request.max_tokens, temperature=request.temperature)
            generation, used = await asyncio.to_thread(
                self.serving.chat_trimmed,
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
        entry = self.history.record(
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
