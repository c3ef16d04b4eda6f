"""Answers grounded in a knowledge base, with citations that do not depend on the model.

`Answerer.prepare` does everything that can fail on the user's input (knowledge base,
model, search) before anything is streamed, so errors are plain 4xx; `Answerer.events`
then streams the sources, the answer's tokens, and finally the checked answer with its
citations and supporting quotes (and records the exchange in the search history).

Three answer modes:
- `generate`: a served model answers from the sources; afterwards every answer sentence
  is attributed to the source sentence that supports it (`attribution.py`), so the [n]
  markers are right even when a small model forgets or invents them;
- `quotes`: the same, plus the source sentences that answer the question, verbatim;
- `extractive`: those quotes alone — instant, no model, only the sources' own words.

The prompt carries only what the answer needs (`context`): by default the few source
sentences that best answer the question, after one worked example in the question's
language — measured on unseen documents, the packaged 135M model answers far more
often from that than from excerpts or whole chunks, and the prefill is a fraction.
A looping generation is stopped (`repeating`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aift.inference.schemas import ChatMessage, SamplingParams
from aift.models.schemas import Purpose
from aift.rag.attribution import (
    AttributedAnswer,
    Passage,
    Scorer,
    SentenceEmbedder,
    Support,
    attribute,
    quotes,
    source_sentences,
)
from aift.rag.citations import CitationCheck, check_citations
from aift.rag.history import SearchHistory, hit_summary
from aift.rag.retrieval import Retriever, default_min_score, relevance
from aift.rag.schemas import (
    AskRequest,
    AskResponse,
    Citation,
    CitationChanges,
    Quote,
    SearchHit,
    SearchResponse,
    SupportSpan,
)
from aift.rag.sentences import sentence_spans
from aift.rag.store import KnowledgeStore

if TYPE_CHECKING:
    from aift.inference.service import Generation, ServingService
    from aift.models.resolver import ModelResolver

NOT_FOUND = (
    "I could not find anything relevant enough in the knowledge base to answer this question."
)
NO_QUOTE = "None of the sources has a sentence that answers this question closely enough."
SYSTEM = (
    "Answer the question in one or two short sentences, in the language of the question, "
    "using only the context. If the context does not say, answer that you do not know."
)
EXCERPT_CHARACTERS = 600  # per source in the prompt, `excerpts` context
# One worked example before the question, in its language: small models then answer
# with the context's sentence instead of repeating the question.
EXAMPLE = {
    "en": (
        "The old bridge at Marrow Ford was rebuilt in 1994 after the flood.",
        "When was the bridge at Marrow Ford rebuilt?",
        "The bridge at Marrow Ford was rebuilt in 1994.",
    ),
    "ko": (
        "마로 다리는 홍수 이후 1994년에 다시 지어졌다.",
        "마로 다리는 언제 다시 지어졌는가?",
        "마로 다리는 1994년에 다시 지어졌다.",
    ),
}
QUOTE_THRESHOLD = 0.3


def passages_of(hits: list[SearchHit]) -> list[Passage]:
    return [
        Passage(number, hit.text, hit.page_start, list(hit.page_breaks))
        for number, hit in enumerate(hits, start=1)
    ]


def excerpt(text: str, best: tuple[int, int] | None, budget: int) -> str:
    """The best sentence of a source with its neighbours, within `budget` characters
    (the whole text when it fits, its start when no sentence stands out)."""
    if len(text) <= budget:
        return text
    spans = sentence_spans(text)
    if not spans:
        return text[:budget]
    index = next((k for k, span in enumerate(spans) if span == best), 0)
    first = last = index
    while True:
        grew = False
        for candidate in (last + 1, first - 1):
            if 0 <= candidate < len(spans):
                lo, hi = min(first, candidate), max(last, candidate)
                if spans[hi][1] - spans[lo][0] <= budget:
                    first, last, grew = lo, hi, True
        if not grew:
            break
    start, end = spans[first][0], spans[last][1]
    if end - start > budget:  # one very long sentence
        end = start + budget
    return ("… " if start > 0 else "") + text[start:end] + (" …" if end < len(text) else "")


def build_messages(
    question: str,
    hits: list[SearchHit],
    context: str = "chunks",
    best: dict[int, Support] | None = None,
    sentences: list[Support] | None = None,
) -> list[ChatMessage]:
    """A worked example, then the context (`sentences`, `excerpts` around each source's
    `best` sentence, or whole `chunks`) and the question.

    The model is not asked to cite: citations are attributed to its sentences afterwards
    (which small models cannot do reliably themselves), so the prompt stays as plain as a
    small model needs: context, question."""
    numbers = range(1, len(hits) + 1)
    chosen = [s for s in sentences or [] if s.sentence.number in numbers]
    if context == "sentences" and chosen:
        text = "\n".join(" ".join(s.sentence.text.split()) for s in chosen)
    else:
        parts = []
        for number, hit in zip(numbers, hits, strict=True):
            support = (best or {}).get(number)
            if context == "chunks" or best is None:
                body, page = hit.text, _pages(hit)
            else:
                span = (support.sentence.start, support.sentence.end) if support else None
                body = excerpt(hit.text, span, EXCERPT_CHARACTERS)
                page = f"page {support.sentence.page}" if support else _pages(hit)
            parts.append(f"{hit.document}, {page}:\n{body}")
        text = "\n\n".join(parts)
    shown, asked, answered = EXAMPLE["ko" if _is_korean(question) else "en"]
    return [
        ChatMessage(role="system", content=SYSTEM),
        ChatMessage(role="user", content=f"Context:\n\n{shown}\n\nQuestion: {asked}"),
        ChatMessage(role="assistant", content=answered),
        ChatMessage(role="user", content=f"Context:\n\n{text}\n\nQuestion: {question}"),
    ]


def _is_korean(text: str) -> bool:
    return any("\uac00" <= character <= "\ud7a3" for character in text)


def _pages(hit: SearchHit) -> str:
    """Where a source is, as the prompt names it: its pages, and its section when known."""
    pages = (
        f"page {hit.page_start}"
        if hit.page_start == hit.page_end
        else f"pages {hit.page_start}–{hit.page_end}"
    )
    return f"{pages}, {hit.section}" if hit.section else pages


def repeating(text: str) -> bool:
    """Whether the text ends in one block written over and over (a generation stuck in a
    loop): a block of 20–200 characters three times in a row, or of 6–19 four times."""
    for size in range(6, 201):
        times = 4 if size < 20 else 3
        if len(text) < size * times:
            break
        block = text[-size:]
        if block.strip() and all(
            text[len(text) - (k + 1) * size : len(text) - k * size] == block
            for k in range(1, times)
        ):
            return True
    return False


def _span(support: Support) -> SupportSpan:
    return SupportSpan(
        text=support.sentence.text,
        char_start=support.sentence.start,
        char_end=support.sentence.end,
        page=support.sentence.page,
        score=round(support.score, 4),
    )


def _quote(support: Support, hits: list[SearchHit]) -> Quote:
    hit = hits[support.sentence.number - 1]
    return Quote(
        number=support.sentence.number,
        chunk_id=hit.chunk_id,
        document_id=hit.document_id,
        document=hit.document,
        **_span(support).model_dump(),
    )


@dataclass
class PreparedAnswer:
    """Everything checked before an answer streams: the search, the sources kept, and
    what scores sentences against them."""

    request: AskRequest
    search: SearchResponse
    sources: list[SearchHit]
    model: str | None
    floor: float
    kb_id: str
    started: float
    embedder: SentenceEmbedder | None


@dataclass
class AnswerDraft:
    """One answer while it is built: the sources kept, what scores their sentences, the
    quotes found, the model's generation and what it has said so far."""

    sources: list[SearchHit]
    scorer: Scorer
    notes: list[str]
    found_quotes: list[Support] = field(default_factory=list)
    generation: Generation | None = None
    text: str = ""
    first_token_ms: float | None = None
    stopped: bool = False


class Answerer:
    """Answers questions from a knowledge base: searches with the Retriever, keeps the
    sources relevant enough, answers (generated or extracted) and attributes citations."""

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
        model = None
        if request.answer_mode != "extractive":
            model = request.model or self.resolver.resolve_default(Purpose.llm).name
            self.serving.describe(model)  # unknown model: 404 before anything streams
        found = self.retriever.search(kb.id, request)
        floor = (
            request.min_score
            if request.min_score is not None
            else default_min_score(found.embedding_model, found.reranked)
        )
        sources = [hit for hit in found.hits if relevance(hit) >= floor]
        embedder = self.serving.embedder(kb.embedding_model) if sources else None
        return PreparedAnswer(request, found, sources, model, floor, kb.id, started, embedder)

    async def events(self, prepared: PreparedAnswer) -> AsyncIterator[dict[str, Any]]:
        """sources → token… → done (the checked answer); the history row is written at
        the end. Three steps: gather the evidence and start the generation, stream, then
        check and attribute what was said."""
        draft = await self._draft(prepared)
        async for event in self._stream(prepared, draft):
            yield event
        response = await asyncio.to_thread(self._finish, prepared, draft)
        yield {"event": "done", "data": response.model_dump(mode="json")}

    async def _draft(self, prepared: PreparedAnswer) -> AnswerDraft:
        """The sources' sentences scored, the quotes found, and the model's generation
        started on the context the request asked for (sources that do not fit the
        model's context are dropped, saying so)."""
        request, sources = prepared.request, prepared.sources
        draft = AnswerDraft(
            sources=sources,
            scorer=Scorer(source_sentences(passages_of(sources)), prepared.embedder),
            notes=list(prepared.search.notes),
        )
        if sources and request.answer_mode != "generate":
            draft.found_quotes = await asyncio.to_thread(
                quotes, request.query, draft.scorer, request.max_quotes, QUOTE_THRESHOLD
            )
        if sources and request.answer_mode != "extractive":
            await self._start_generation(prepared, draft)
        return draft

    async def _start_generation(self, prepared: PreparedAnswer, draft: AnswerDraft) -> None:
        request, sources = prepared.request, draft.sources
        assert prepared.model is not None
        best, evidence = await asyncio.to_thread(_context_sentences, request, draft)
        params = SamplingParams(
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            repetition_penalty=request.repetition_penalty,
        )
        generation, used = await asyncio.to_thread(
            self.serving.chat_trimmed,
            prepared.model,
            lambda n: build_messages(request.query, sources[:n], request.context, best, evidence),
            len(sources),
            params,
        )
        draft.generation = generation
        if used < len(sources):
            draft.notes.append(
                f"only the best {used} of {len(sources)} sources fit {prepared.model}'s "
                f"context of {generation.lease.engine.context_length} tokens with "
                f"max_tokens {request.max_tokens}"
            )
            draft.sources = sources[:used]
            draft.scorer = Scorer(source_sentences(passages_of(draft.sources)), prepared.embedder)

    async def _stream(
        self, prepared: PreparedAnswer, draft: AnswerDraft
    ) -> AsyncIterator[dict[str, Any]]:
        """The sources, then the answer's tokens (the model's, or the extracted quotes at
        once); a looping generation is cut. A client gone mid-way leaves no model lease."""
        generation = draft.generation
        try:
            yield {
                "event": "sources",
                "data": {
                    "sources": [
                        {"number": n, **h.model_dump()} for n, h in enumerate(draft.sources, 1)
                    ],
                    "notes": draft.notes,
                    "min_score": prepared.floor,
                },
            }
            if generation is None:
                draft.text = _extracted(draft.found_quotes) if draft.sources else NOT_FOUND
                draft.first_token_ms = (time.perf_counter() - prepared.started) * 1000
                yield {"event": "token", "data": {"text": draft.text}}
                return
            async for event in generation.events():
                if not event.text:
                    continue
                if draft.first_token_ms is None:
                    draft.first_token_ms = (time.perf_counter() - prepared.started) * 1000
                draft.text += event.text
                yield {"event": "token", "data": {"text": event.text}}
                if repeating(draft.text):
                    draft.stopped = True
                    draft.notes.append("stopped the answer: it had begun repeating itself")
                    break
        finally:
            if generation is not None:
                generation.close()

    def _record(self, keep: bool, **entry: Any) -> str:
        """The history entry of an answer (its id), unless it is kept out of it."""
        return self.history.record(**entry) if keep else f"unrecorded-{uuid.uuid4().hex}"

    def _finish(self, prepared: PreparedAnswer, draft: AnswerDraft) -> AskResponse:
        """Check the answer's citations, attribute each sentence to its source sentence,
        record the exchange in the history and build the response."""
        request, sources, generated = prepared.request, draft.sources, draft.generation is not None
        # our own extracted text is quoted verbatim, never cleaned
        check = (
            check_citations(draft.text, len(sources)) if generated else CitationCheck(draft.text)
        )
        if check.invalid:
            draft.notes.append(
                "removed citations of sources that do not exist: "
                + ", ".join(f"[{n}]" for n in check.invalid)
            )
        attributed = (
            attribute(check.answer, draft.scorer, request.support_threshold, request.query)
            if sources and generated
            else _quoted(check.answer, draft.found_quotes)
        )
        attributed = _supported_or_not(attributed, request, draft.notes)
        cited = [
            Citation(number=n, support=_span(s), **sources[n - 1].model_dump())
            for n, s in sorted(attributed.supports.items())
        ]
        uncited = [
            Citation(number=n, **hit.model_dump())
            for n, hit in enumerate(sources, 1)
            if n not in attributed.supports
        ]
        model = prepared.model if generated else None
        total_ms = (time.perf_counter() - prepared.started) * 1000
        entry = self._record(
            request.history,
            kind="ask",
            kb_id=prepared.kb_id,
            kb_name=prepared.search.knowledge_base,
            query=request.query,
            request=request.model_dump(mode="json"),
            hits=[hit_summary(h) for h in prepared.search.hits],
            answer=attributed.answer,
            model=model,
            citations={
                "cited": [c.number for c in cited],
                "invalid": check.invalid,
                "uncited": [c.number for c in uncited],
            },
            latency_ms=total_ms,
        )
        return AskResponse(
            id=entry,
            question=request.query,
            knowledge_base=prepared.search.knowledge_base,
            model=model,
            answer_mode=request.answer_mode,
            rerank_skipped=prepared.search.rerank_skipped,
            answer=attributed.answer,
            found=bool(sources) and attributed.answer != NOT_FOUND,
            citations=cited,
            invalid_citations=check.invalid,
            citation_changes=CitationChanges(
                kept=attributed.kept, replaced=attributed.replaced, inserted=attributed.inserted
            ),
            uncited_sources=uncited,
            quotes=[_quote(q, sources) for q in draft.found_quotes],
            stopped_repeating=draft.stopped,
            supported=attributed.supported > 0,
            statements=attributed.statements,
            supported_statements=attributed.supported,
            notes=draft.notes,
            search_ms=prepared.search.latency_ms,
            first_token_ms=draft.first_token_ms,
            total_ms=total_ms,
        )


def _context_sentences(
    request: AskRequest, draft: AnswerDraft
) -> tuple[dict[int, Support] | None, list[Support]]:
    """What the prompt shows of the sources: each source's best sentence (`excerpts`),
    the sentences that best answer the question (`sentences`; the quotes mode ranked them
    already), or neither (`chunks`)."""
    if request.context == "excerpts":
        return _best_per_source(draft.scorer, request.query), []
    if request.context != "sentences":
        return None, []
    evidence = (
        draft.found_quotes[: request.context_sentences]
        if request.answer_mode == "quotes"
        else quotes(request.query, draft.scorer, request.context_sentences, QUOTE_THRESHOLD)
    )
    if not evidence:  # no sentence stands out: each source's best, excerpted
        return _best_per_source(draft.scorer, request.query), []
    return None, evidence


def _best_per_source(scorer: Scorer, question: str) -> dict[int, Support]:
    """Each source's sentence that best answers the question."""
    best: dict[int, Support] = {}
    for support in scorer.rank([question], as_query=True)[0]:
        best.setdefault(support.sentence.number, support)
    return best


def _extracted(found: list[Support]) -> str:
    """The extractive answer: the quotes, each with its source marker."""
    if not found:
        return NO_QUOTE
    return "\n".join(f"{q.sentence.text} [{q.sentence.number}]" for q in found)


def _quoted(answer: str, found: list[Support]) -> AttributedAnswer:
    """Citations of an extractive answer: the quotes it consists of (each supported)."""
    supports: dict[int, Support] = {}
    for quote in found:
        supports.setdefault(quote.sentence.number, quote)
    return AttributedAnswer(
        answer, supports, sorted(supports), [], [], statements=len(found), supported=len(found)
    )


def _supported_or_not(
    attributed: AttributedAnswer, request: AskRequest, notes: list[str]
) -> AttributedAnswer:
    """A generated answer the sources support nowhere, flagged with a note or replaced by
    the not-found answer (`request.unsupported`); any other answer as it is."""
    if not attributed.unsupported:
        return attributed
    if request.unsupported == "not_found":
        notes.append(
            "answered that nothing was found: the sources support none of the model's "
            "statements (unsupported: not_found)"
        )
        return AttributedAnswer(
            NOT_FOUND, {}, [], attributed.kept + attributed.replaced, [], attributed.statements, 0
        )
    notes.append(
        "the sources support none of this answer's statements: it comes from the model's "
        "own knowledge, not from the knowledge base"
    )
    return attributed
