"""Search in a knowledge base: dense + keyword (BM25) candidates from Qdrant, fused
(weighted sum of per-query normalised scores by default, reciprocal rank fusion as an
option), re-ranked by a cross-encoder when one can be had. Every hit carries each score
so a user can see why it ranked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from aift.errors import InvalidInput
from aift.rag import fusion, keywords
from aift.rag.index import VectorIndex, chunk_filter

MAX_QUERY_CHARS = 2000


class SearchRequest(BaseModel):
    """One query, shared by the search and ask endpoints, the CLI and the evaluation."""

    query: str = Field(..., max_length=MAX_QUERY_CHARS)
    mode: Literal["hybrid", "dense", "keywords"] = "hybrid"
    fusion: Literal["weighted", "rrf"] = "weighted"
    dense_weight: float = Field(0.7, ge=0.0, le=1.0)
    keyword_weight: float = Field(0.3, ge=0.0, le=1.0)
    limit: int = Field(5, ge=1, le=100, description="Hits returned.")
    candidates: int = Field(50, ge=1, le=1000, description="Taken from each method.")
    rerank: bool = Field(True, description="Re-rank with a cross-encoder when one is available.")
    reranker: str | None = Field(None, description="Default: AIFT_DEFAULT_RERANKER.")
    rerank_top: int = Field(20, ge=1, le=200, description="Fused candidates re-ranked.")
    documents: list[str] | None = Field(None, description="Only these document ids.")
    page_from: int | None = Field(None, ge=1)
    page_to: int | None = Field(None, ge=1)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is empty")
        return value.strip()

    @model_validator(mode="after")
    def _coherent(self) -> SearchRequest:
        if self.mode == "hybrid" and self.dense_weight + self.keyword_weight == 0:
            raise ValueError("dense_weight and keyword_weight cannot both be 0")
        if self.page_from and self.page_to and self.page_from > self.page_to:
            raise ValueError("page_from is after page_to")
        return self


class SearchHit(BaseModel):
    chunk_id: str
    document_id: str
    document: str
    page_start: int
    page_end: int
    chunk_index: int
    text: str
    dense_score: float | None = Field(None, description="Cosine similarity to the query.")
    keyword_score: float | None = Field(
        None,
        description="BM25 score; null when the chunk was not among the keyword candidates "
        "(no shared term, or below them: it counts as 0 in the fusion) or mode is dense.",
    )
    fused_score: float
    rerank_score: float | None = None


class SearchResponse(BaseModel):
    query: str
    knowledge_base: str
    embedding_model: str
    mode: str
    fusion: str
    reranked: bool
    reranker: str | None = None
    notes: list[str] = Field(default_factory=list)
    hits: list[SearchHit]
    latency_ms: float


@dataclass
class Corpus:
    """What a search runs against: one index collection and its embedding model."""

    index: VectorIndex
    collection: str
    embedder: Any
    document_names: dict[str, str]


def _scores(hits: list) -> dict[str, float]:
    return {h.id: h.score for h in hits}


def search(corpus: Corpus, request: SearchRequest, reranker: Any = None) -> list[SearchHit]:
    """The best chunks for the request, each with its dense, keyword, fused and re-rank
    scores."""
    where = chunk_filter(request.documents, request.page_from, request.page_to)
    vector = corpus.embedder.embed([request.query], is_query=True)[0]
    indices, values = keywords.query_vector(request.query)
    dense: dict[str, float] = {}
    keyword: dict[str, float] = {}
    payloads: dict[str, dict] = {}
    if request.mode != "keywords":
        found = corpus.index.search_dense(corpus.collection, vector, request.candidates, where)
        dense = _scores(found)
        payloads.update({h.id: h.payload for h in found})
    if request.mode != "dense":
        found = corpus.index.search_keywords(
            corpus.collection, indices, values, request.candidates, where
        )
        keyword = _scores(found)
        payloads.update({h.id: h.payload for h in found})
    if request.mode == "dense":
        fused = dict(dense)
    elif request.mode == "keywords":
        fused = dict(keyword)
    elif request.fusion == "rrf":
        fused = fusion.reciprocal_rank(
            dense, keyword, request.dense_weight or 1.0, request.keyword_weight or 1.0
        )
    else:
        # Keyword-only candidates get their real cosine (not 0); the scales start at the
        # query's floor in the searched chunks (see aift.rag.fusion).
        dense.update(corpus.index.cosines(corpus.collection, vector, keyword.keys() - dense))
        fused = fusion.weighted(
            dense,
            keyword,
            request.dense_weight,
            request.keyword_weight,
            dense_floor=corpus.index.lowest_dense(corpus.collection, vector, where),
            keyword_floor=0.0,
        )
    ranked = sorted(fused, key=lambda key: -fused[key])
    top = ranked[: max(request.limit, request.rerank_top if reranker is not None else 0)]
    dense.update(corpus.index.cosines(corpus.collection, vector, set(top) - dense.keys()))
    hits = [
        SearchHit(
            chunk_id=key,
            document_id=payloads[key]["document_id"],
            document=corpus.document_names.get(payloads[key]["document_id"], "?"),
            page_start=payloads[key]["page_start"],
            page_end=payloads[key]["page_end"],
            chunk_index=payloads[key]["chunk_index"],
            text=payloads[key]["text"],
            dense_score=dense.get(key),
            keyword_score=keyword.get(key),
            fused_score=fused[key],
        )
        for key in top
        if payloads[key]["document_id"] in corpus.document_names
    ]
    if reranker is not None and hits:
        for hit, score in zip(
            hits, reranker.score(request.query, [h.text for h in hits]), strict=True
        ):
            hit.rerank_score = score
        hits.sort(key=lambda h: -(h.rerank_score or 0.0))
    return hits[: request.limit]


def search_knowledge_base(
    knowledge,  # noqa: ANN001 - aift.rag.service.KnowledgeService
    kb_ref: str,
    request: SearchRequest,
    *,
    record: bool = False,
) -> SearchResponse:
    """Search one knowledge base with its own embedding model (in the index owner);
    `record` writes the search to the history."""
    from aift.errors import ServiceUnavailable
    from aift.rag.index import collection_name

    started = time.perf_counter()
    if knowledge.syncer is None:
        raise ServiceUnavailable("Search runs in the aift server (it owns the vector index).")
    kb = knowledge.store.kb_row(kb_ref)
    names = {d.id: d.name for d in knowledge.store.documents(kb.id)}
    if request.documents:
        unknown = [d for d in request.documents if d not in names]
        if unknown:
            raise InvalidInput(f"Not documents of {kb.name}: {', '.join(unknown)}.")
    notes = []
    if not names:
        notes.append(f"{kb.name} has no documents yet.")
    embedder = knowledge.serving.embedder(kb.embedding_model)
    if embedder.dimension != kb.dimension:
        raise InvalidInput(
            f"{kb.embedding_model} gives {embedder.dimension} dimensions but {kb.name} holds "
            f"{kb.dimension}; re-index the knowledge base."
        )
    reranker = None
    if request.rerank:
        reranker, why = knowledge.rerankers.get(request.reranker)
        if why:
            notes.append(why)
    corpus = Corpus(knowledge.syncer.index, collection_name(kb.id, kb.generation), embedder, names)
    hits = search(corpus, request, reranker)
    response = SearchResponse(
        query=request.query,
        knowledge_base=kb.name,
        embedding_model=kb.embedding_model,
        mode=request.mode,
        fusion=request.fusion if request.mode == "hybrid" else request.mode,
        reranked=reranker is not None,
        reranker=reranker.name if reranker is not None else None,
        notes=notes,
        hits=hits,
        latency_ms=(time.perf_counter() - started) * 1000,
    )
    if record:
        from aift.rag.history import SearchHistory, hit_summary

        SearchHistory(knowledge.store.db).record(
            kind="search",
            kb_id=kb.id,
            kb_name=kb.name,
            query=request.query,
            request=request.model_dump(mode="json"),
            hits=[hit_summary(h) for h in hits],
            latency_ms=response.latency_ms,
        )
    return response
