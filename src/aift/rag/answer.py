"""Answers grounded in a knowledge base: numbered sources in the prompt, [n] citations in
the answer, checked against the sources; no generation when nothing relevant was found."""

from __future__ import annotations

from pydantic import BaseModel, Field

from aift.inference.schemas import ChatMessage
from aift.rag.citations import CitationCheck
from aift.rag.search import SearchHit, SearchRequest

NOT_FOUND = (
    "I could not find anything relevant enough in the knowledge base to answer this question."
)
SYSTEM = (
    "You answer questions using only the numbered sources below. After each statement, "
    "cite the source it comes from as [n]. If the sources do not contain the answer, say "
    "you do not know."
)


class AskRequest(SearchRequest):
    """A question: how to search (as for search), and how to answer."""

    model: str | None = Field(None, description="Any served model; default AIFT_DEFAULT_LLM.")
    max_tokens: int = Field(512, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    min_score: float | None = Field(
        None,
        description="Least relevance of the best source (re-rank score if re-ranked, else "
        "dense cosine). Default depends on the models (see docs/rag.md).",
    )
    stream: bool = False


class Citation(SearchHit):
    number: int


class AskResponse(BaseModel):
    """The checked answer, what it cites and what it was given."""

    id: str = Field(..., description="History id.")
    question: str
    knowledge_base: str
    model: str | None
    answer: str
    found: bool = Field(..., description="False when nothing relevant enough was found.")
    citations: list[Citation] = Field(default_factory=list)
    invalid_citations: list[int] = Field(default_factory=list)
    uncited_sources: list[Citation] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    search_ms: float
    first_token_ms: float | None = None
    total_ms: float


def default_min_score(embedding_model: str, reranked: bool) -> float:
    """Relevance floor by what the score means: a cross-encoder probability, an e5 cosine
    (compressed around 0.7–1.0), or another model's cosine."""
    if reranked:
        return 0.05
    return 0.78 if "e5" in embedding_model.lower() else 0.3


def relevance(hit: SearchHit) -> float:
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


def citations_of(check: CitationCheck, hits: list[SearchHit]) -> tuple[list, list]:
    """(cited sources, uncited sources) as Citation objects."""

    def citation(number: int) -> Citation:
        return Citation(number=number, **hits[number - 1].model_dump())

    return [citation(n) for n in check.cited], [citation(n) for n in check.uncited]
