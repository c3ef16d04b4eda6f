"""Searching a knowledge base's active index generation: dense (the knowledge base's
own embedding model, query prefix applied) or keyword (BM25 through the sparse vector).
Runs in the process that owns the vector index."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from aift.errors import InvalidInput, ServiceUnavailable
from aift.rag import keywords
from aift.rag.index import collection_name

MAX_QUERY_CHARS = 2000


class SearchHit(BaseModel):
    chunk_id: str
    document_id: str
    document: str
    page_start: int
    page_end: int
    chunk_index: int
    text: str
    score: float


class SearchRequest(BaseModel):
    query: str = Field(..., max_length=MAX_QUERY_CHARS)
    mode: Literal["dense", "keywords"] = "dense"
    limit: int = Field(10, ge=1, le=100)


def search(knowledge, kb_ref: str, request: SearchRequest) -> list[SearchHit]:  # noqa: ANN001
    """The best chunks for a query in one knowledge base."""
    query = request.query.strip()
    if not query:
        raise InvalidInput("The query is empty.")
    if knowledge.syncer is None:
        raise ServiceUnavailable("Search runs in the aift server (it owns the vector index).")
    kb = knowledge.store.kb_row(kb_ref)
    name = collection_name(kb.id, kb.generation)
    index = knowledge.syncer.index
    if request.mode == "dense":
        vector = knowledge.serving.embedder(kb.embedding_model).embed([query], is_query=True)[0]
        if len(vector) != kb.dimension:
            raise InvalidInput(
                f"{kb.embedding_model} gave {len(vector)} dimensions; {kb.name} holds "
                f"{kb.dimension}. Re-index the knowledge base."
            )
        hits = index.search_dense(name, vector, request.limit)
    else:
        indices, values = keywords.query_vector(query)
        hits = index.search_keywords(name, indices, values, request.limit)
    names = {d.id: d.name for d in knowledge.store.documents(kb.id)}
    return [
        SearchHit(
            chunk_id=h.id,
            document_id=h.payload["document_id"],
            document=names.get(h.payload["document_id"], "?"),
            page_start=h.payload["page_start"],
            page_end=h.payload["page_end"],
            chunk_index=h.payload["chunk_index"],
            text=h.payload["text"],
            score=h.score,
        )
        for h in hits
        if h.payload.get("document_id") in names
    ]
