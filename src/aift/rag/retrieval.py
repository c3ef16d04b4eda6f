"""Retrieval: the hybrid ranking over one index collection, and the Retriever that runs it
for a knowledge base.

Dense + keyword (BM25) candidates from Qdrant, fused (weighted sum of per-query
normalised scores by default, reciprocal rank fusion as an option), re-ranked by a
cross-encoder when one can be had. Every hit carries each score so a user can see why it
ranked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aift.errors import InvalidInput, ServiceUnavailable
from aift.monitoring import metrics
from aift.rag import fusion, keywords
from aift.rag.attribution import Passage, Scorer, quotes, source_sentences
from aift.rag.cache import CachedQueryEmbedder, SearchCache
from aift.rag.history import SearchHistory, hit_summary
from aift.rag.index import IndexHit, VectorIndex, chunk_filter, collection_name
from aift.rag.rerank import Reranker, Rerankers
from aift.rag.schemas import SearchHit, SearchRequest, SearchResponse, SupportSpan
from aift.rag.store import KnowledgeStore
from aift.store.tables import KnowledgeBaseRow

if TYPE_CHECKING:
    from aift.inference.service import ServingService


class QueryEmbedder(Protocol):
    """What a search needs of an embedding model: query vectors."""

    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]: ...


@dataclass
class Corpus:
    """What a search runs against: one index collection and its embedding model."""

    index: VectorIndex
    collection: str
    embedder: QueryEmbedder
    document_names: dict[str, str]


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


def _scores(hits: list[IndexHit]) -> dict[str, float]:
    return {h.id: h.score for h in hits}


def rank(
    corpus: Corpus, request: SearchRequest, reranker: Reranker | None = None
) -> list[SearchHit]:
    """The best chunks for the request, each with its dense, keyword, fused and re-rank
    scores (the one ranking the server, the evaluation and the benchmark share)."""
    where = chunk_filter(request.documents, request.page_from, request.page_to)
    vector = corpus.embedder.embed([request.query], is_query=True)[0]
    indices, values = keywords.query_vector(request.query)
    dense: dict[str, float] = {}
    keyword: dict[str, float] = {}
    payloads: dict[str, dict[str, Any]] = {}
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
            page_breaks=payloads[key].get("page_breaks") or [],
            section=payloads[key].get("section"),
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
    hits = hits[: request.limit]
    for hit in hits:
        hit.relevance = relevance(hit)
        hit.match = best_match(request.query, hit)
    return hits


def best_match(query: str, hit: SearchHit) -> SupportSpan | None:
    """The hit's sentence that shares most of the query's words, with its page (lexical:
    instant, no model)."""
    passage = Passage(1, hit.text, hit.page_start, list(hit.page_breaks))
    found = quotes(query, Scorer(source_sentences([passage]), None), 1, 0.0)
    if not found or found[0].score <= 0:
        return None
    s = found[0].sentence
    return SupportSpan(
        text=s.text, char_start=s.start, char_end=s.end, page=s.page, score=found[0].score
    )


class Retriever:
    """Searches knowledge bases, each with its own embedding model; needs the vector
    index, so it answers only in the process that owns it (the server)."""

    def __init__(
        self,
        store: KnowledgeStore,
        index: VectorIndex | None,
        serving: ServingService,
        rerankers: Rerankers,
        history: SearchHistory,
        cache: SearchCache | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.serving = serving
        self.rerankers = rerankers
        self.history = history
        self.cache = cache

    def search(
        self, kb_ref: str, request: SearchRequest, *, record: bool = False
    ) -> SearchResponse:
        """The best chunks of one knowledge base; `record` writes the search to the history.
        Repeated searches of an unchanged knowledge base come from the cache."""
        started = time.perf_counter()
        if self.index is None:
            raise ServiceUnavailable("Search runs in the aift server (it owns the vector index).")
        kb = self.store.kb_row(kb_ref)
        names = {d.id: d.name for d in self.store.documents(kb.id)}
        if request.documents:
            unknown = [d for d in request.documents if d not in names]
            if unknown:
                raise InvalidInput(f"Not documents of {kb.name}: {', '.join(unknown)}.")
        fresh: list[SearchResponse] = []

        def compute() -> dict[str, Any]:
            fresh.append(self._search(kb, names, request))
            return fresh[0].model_dump(mode="json")

        if self.cache is None:
            compute()
        else:
            # documents added or deleted bump the knowledge base's cache generation
            depends_on = {
                "kb": [kb.id, kb.generation, kb.embedding_model],
                "request": request.model_dump(mode="json"),
            }
            data, _ = self.cache.search(kb.id, depends_on, compute)
        # a miss keeps the response it computed; only a hit is read back from the cache
        response = fresh[0] if fresh else SearchResponse.model_validate(data)
        response.cached = not fresh
        response.latency_ms = (time.perf_counter() - started) * 1000
        metrics.search_duration.labels(request.mode, str(response.cached).lower()).observe(
            response.latency_ms / 1000
        )
        if record:
            self.history.record(
                kind="search",
                kb_id=kb.id,
                kb_name=kb.name,
                query=request.query,
                request=request.model_dump(mode="json"),
                hits=[hit_summary(h) for h in response.hits],
                latency_ms=response.latency_ms,
            )
        return response

    def _search(
        self, kb: KnowledgeBaseRow, names: dict[str, str], request: SearchRequest
    ) -> SearchResponse:
        """Embed, search the index, fuse and re-rank: the uncached search."""
        assert self.index is not None
        notes = []
        if not names:
            notes.append(f"{kb.name} has no documents yet.")
        index_note = self.index.status().note()
        if index_note:
            notes.append(index_note)
        embedder = self.serving.embedder(kb.embedding_model)
        if embedder.dimension != kb.dimension:
            raise InvalidInput(
                f"{kb.embedding_model} gives {embedder.dimension} dimensions but "
                f"{kb.name} holds {kb.dimension}; re-index the knowledge base."
            )
        queries: QueryEmbedder = embedder
        if self.cache is not None:
            queries = CachedQueryEmbedder(embedder, kb.embedding_model, self.cache)
        reranker, skipped = None, None
        if request.rerank:
            reranker, skipped = self.rerankers.get(request.reranker)
        corpus = Corpus(self.index, collection_name(kb.id, kb.generation), queries, names)
        hits = rank(corpus, request, reranker)
        if request.relevant_only:
            floor = (
                request.min_score
                if request.min_score is not None
                else default_min_score(kb.embedding_model, reranker is not None)
            )
            hits = [h for h in hits if h.relevance >= floor]
        return SearchResponse(
            query=request.query,
            knowledge_base=kb.name,
            embedding_model=kb.embedding_model,
            mode=request.mode,
            fusion=request.fusion if request.mode == "hybrid" else request.mode,
            reranked=reranker is not None,
            reranker=reranker.name if reranker is not None else None,
            rerank_skipped=skipped,
            notes=notes,
            hits=hits,
            latency_ms=0.0,
        )
