"""Search history: every search and question with its hits, answer, model and latency."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import delete, select

from aift.errors import NotFound, storage_problem
from aift.rag.schemas import HistoryEntry, SearchHit
from aift.rag.store import now
from aift.store import Database
from aift.store.tables import SearchHistoryRow
from aift.work.actor import current_actor

log = logging.getLogger(__name__)


class SearchHistory:
    """Every search and question asked, newest first."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, **values: Any) -> str:
        """Store one search or question (columns of SearchHistoryRow); returns its id.
        A full or read-only disk skips the entry: the search itself still answers."""
        entry_id = uuid.uuid4().hex
        try:
            with self.db.session() as session:
                owner = current_actor.get().user_id
                row = SearchHistoryRow(id=entry_id, created_at=now(), owner_id=owner, **values)
                session.add(row)
                session.commit()
        except Exception as exc:
            problem = storage_problem(exc)
            if problem is None:
                raise
            log.warning("not saved to the search history: %s", problem.message)
        return entry_id

    def list(
        self,
        kb_id: str | None = None,
        limit: int = 50,
        *,
        kind: str | None = None,
        query: str | None = None,
        offset: int = 0,
    ) -> list[HistoryEntry]:
        """The current user's entries (an admin: all), newest first; filtered by knowledge
        base, kind (search | ask) and query text."""
        with self.db.session() as session:
            statement = select(SearchHistoryRow).order_by(SearchHistoryRow.created_at.desc())
            actor = current_actor.get()
            if not actor.admin:
                statement = statement.where(SearchHistoryRow.owner_id == actor.user_id)
            if kb_id:
                statement = statement.where(SearchHistoryRow.kb_id == kb_id)
            if kind:
                statement = statement.where(SearchHistoryRow.kind == kind)
            if query:
                statement = statement.where(SearchHistoryRow.query.ilike(f"%{query}%"))
            rows = session.scalars(statement.limit(limit).offset(offset)).all()
            return [HistoryEntry.model_validate(r) for r in rows]

    def get(self, entry_id: str) -> HistoryEntry:
        with self.db.session() as session:
            row = session.get(SearchHistoryRow, entry_id)
            if row is None or not current_actor.get().sees(row.owner_id):
                raise NotFound(f"No history entry {entry_id!r}.")
            return HistoryEntry.model_validate(row)

    def delete(self, entry_id: str) -> None:
        self.get(entry_id)
        with self.db.session() as session:
            session.execute(delete(SearchHistoryRow).where(SearchHistoryRow.id == entry_id))
            session.commit()


def hit_summary(hit: SearchHit) -> dict[str, Any]:
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
