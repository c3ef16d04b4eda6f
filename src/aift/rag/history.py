"""Search history: every search and question with its hits, answer, model and latency."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, select

from aift.errors import NotFound
from aift.rag.store import now
from aift.store import Database
from aift.store.tables import SearchHistoryRow


class HistoryEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    kb_id: str
    kb_name: str
    query: str
    request: dict[str, Any]
    hits: list[dict[str, Any]]
    answer: str | None = None
    model: str | None = None
    citations: dict[str, Any] | None = None
    latency_ms: float
    created_at: datetime


class SearchHistory:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, **values: Any) -> str:
        entry_id = uuid.uuid4().hex
        with self.db.session() as session:
            session.add(SearchHistoryRow(id=entry_id, created_at=now(), **values))
            session.commit()
        return entry_id

    def list(self, kb_id: str | None = None, limit: int = 50) -> list[HistoryEntry]:
        with self.db.session() as session:
            query = select(SearchHistoryRow).order_by(SearchHistoryRow.created_at.desc())
            if kb_id:
                query = query.where(SearchHistoryRow.kb_id == kb_id)
            rows = session.scalars(query.limit(limit)).all()
            return [HistoryEntry.model_validate(r) for r in rows]

    def get(self, entry_id: str) -> HistoryEntry:
        with self.db.session() as session:
            row = session.get(SearchHistoryRow, entry_id)
            if row is None:
                raise NotFound(f"No history entry {entry_id!r}.")
            return HistoryEntry.model_validate(row)

    def delete(self, entry_id: str) -> None:
        self.get(entry_id)
        with self.db.session() as session:
            session.execute(delete(SearchHistoryRow).where(SearchHistoryRow.id == entry_id))
            session.commit()


def hit_summary(hit: Any) -> dict[str, Any]:
    """What history keeps of a hit: where it is and how it scored (not the whole text)."""
    return {
        "chunk_id": hit.chunk_id,
        "document_id": hit.document_id,
        "document": hit.document,
        "page_start": hit.page_start,
        "page_end": hit.page_end,
        "dense_score": hit.dense_score,
        "keyword_score": hit.keyword_score,
        "fused_score": hit.fused_score,
        "rerank_score": hit.rerank_score,
        "preview": hit.text[:200],
    }
