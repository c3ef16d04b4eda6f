"""Knowledge bases, documents and chunks in the metadata database."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from aift.errors import Conflict, Forbidden, NotFound
from aift.rag.schemas import ChunkingSettings, DocumentInfo, DocumentStatus, KnowledgeBaseInfo
from aift.store import Database, rows_changed
from aift.store.access import access_of, visible
from aift.store.tables import ChunkRow, DocumentRow, KnowledgeBaseRow, ShareRow
from aift.work.actor import Actor, current_actor

# Point ids derive from content: the same chunk of the same file in the same knowledge
# base generation is the same point, so a re-run never duplicates anything.
_POINTS = uuid.UUID("5d1c6f8e-3b4a-4c1e-9a8e-2f6d7b9c0a11")


def point_id(kb_id: str, generation: int, sha256: str, index: int, text: str) -> str:
    return str(uuid.uuid5(_POINTS, f"{kb_id}/{generation}/{sha256}/{index}/{text}"))


def pack_vector(vector: list[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def unpack_vector(blob: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


def now() -> datetime:
    return datetime.now(UTC)


class KnowledgeStore:
    """Reads and writes the rows of knowledge bases, documents and chunks."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # knowledge bases -------------------------------------------------------------------

    def kb_row(self, ref: str, *, write: bool = False) -> KnowledgeBaseRow:
        """A knowledge base by id or name that the current user may see (and, with
        `write`, change); one they may not see is as unknown as one that does not exist."""
        actor = current_actor.get()
        with self.db.session() as session:
            row = session.get(KnowledgeBaseRow, ref) or self._by_name(session, ref, actor)
            access = access_of(session, "kb", row.id, row.owner_id, actor) if row else None
            if row is None or access is None:
                names = session.scalars(
                    select(KnowledgeBaseRow.name).where(self._visible(actor))
                ).all()
                known = ", ".join(names) or "none yet (aift kb create NAME)"
                raise NotFound(f"Knowledge base {ref!r} does not exist. Known: {known}.")
            if write and access != "write":
                raise Forbidden(f"Knowledge base {row.name} is shared with you to read only.")
            session.expunge(row)
            return row

    def _by_name(self, session: Session, name: str, actor: Actor) -> KnowledgeBaseRow | None:
        """The knowledge base named `name` among those `actor` may see: their own first
        (names are unique per owner); of several others, the caller must name one by id."""
        rows = session.scalars(
            select(KnowledgeBaseRow).where(KnowledgeBaseRow.name == name, self._visible(actor))
        ).all()
        own = [row for row in rows if row.owner_id == actor.user_id]
        if own or len(rows) <= 1:
            return next(iter(own or rows), None)
        ids = ", ".join(sorted(row.id for row in rows))
        raise Conflict(f"{len(rows)} knowledge bases are named {name!r}: name one by id ({ids}).")

    def name_taken(self, name: str) -> bool:
        """Whether the current user already owns a knowledge base named `name`."""
        owner = current_actor.get().user_id
        mine = (
            KnowledgeBaseRow.owner_id.is_(None)
            if owner is None
            else KnowledgeBaseRow.owner_id == owner
        )
        query = select(func.count()).where(KnowledgeBaseRow.name == name, mine)
        with self.db.session() as session:
            return bool(session.scalar(query))

    @staticmethod
    def _visible(actor: Actor) -> Any:
        return visible(KnowledgeBaseRow.owner_id, KnowledgeBaseRow.id, "kb", actor)

    def kb_info(self, row: KnowledgeBaseRow) -> KnowledgeBaseInfo:
        with self.db.session() as session:
            documents = session.scalar(
                select(func.count()).select_from(DocumentRow).where(DocumentRow.kb_id == row.id)
            )
            chunks = session.scalar(
                select(func.coalesce(func.sum(DocumentRow.chunks), 0)).where(
                    DocumentRow.kb_id == row.id
                )
            )
        return KnowledgeBaseInfo(
            id=row.id,
            name=row.name,
            description=row.description,
            embedding_model=row.embedding_model,
            embedding_requested=row.embedding_requested,
            dimension=row.dimension,
            chunking=ChunkingSettings(**row.chunking),
            effective_chunk_tokens=row.effective_chunk_tokens,
            generation=row.generation,
            status=row.status,
            documents=documents or 0,
            chunks=chunks or 0,
            warning=row.warning,
            owner_id=row.owner_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def document_counts(self) -> list[tuple[str, str, str, int, int]]:
        """(knowledge base id, name, document status, documents, chunks) over every
        knowledge base, in one query (what monitoring reports)."""
        query = (
            select(
                KnowledgeBaseRow.id,
                KnowledgeBaseRow.name,
                DocumentRow.status,
                func.count(),
                func.coalesce(func.sum(DocumentRow.chunks), 0),
            )
            .join(DocumentRow, DocumentRow.kb_id == KnowledgeBaseRow.id)
            .group_by(KnowledgeBaseRow.id, KnowledgeBaseRow.name, DocumentRow.status)
        )
        with self.db.session() as session:
            return [
                (i, name, status, n, chunks)
                for i, name, status, n, chunks in session.execute(query)
            ]

    def list_kbs(self, *, everyone: bool = False) -> list[KnowledgeBaseRow]:
        """The knowledge bases the current user may see (`everyone`: all of them, for
        the server's own housekeeping)."""
        query = select(KnowledgeBaseRow).order_by(KnowledgeBaseRow.name)
        if not everyone:
            query = query.where(self._visible(current_actor.get()))
        with self.db.session() as session:
            rows = session.scalars(query).all()
            session.expunge_all()
            return list(rows)

    def add_kb(self, row: KnowledgeBaseRow) -> None:
        with self.db.session() as session:
            session.add(row)
            session.commit()

    def update_kb(self, kb_id: str, **values: Any) -> None:
        with self.db.session() as session:
            session.execute(
                update(KnowledgeBaseRow)
                .where(KnowledgeBaseRow.id == kb_id)
                .values(**values, updated_at=now())
            )
            session.commit()

    def delete_kb(self, kb_id: str) -> None:
        with self.db.session() as session:
            doc_ids = select(DocumentRow.id).where(DocumentRow.kb_id == kb_id)
            session.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(doc_ids)))
            session.execute(delete(DocumentRow).where(DocumentRow.kb_id == kb_id))
            session.execute(delete(KnowledgeBaseRow).where(KnowledgeBaseRow.id == kb_id))
            session.execute(
                delete(ShareRow).where(
                    ShareRow.resource_type == "kb", ShareRow.resource_id == kb_id
                )
            )
            session.commit()

    # documents -------------------------------------------------------------------------

    def document(self, doc_id: str, kb_id: str | None = None) -> DocumentRow:
        with self.db.session() as session:
            row = session.get(DocumentRow, doc_id)
            if row is None or (kb_id is not None and row.kb_id != kb_id):
                raise NotFound(f"Document {doc_id!r} is not in this knowledge base.")
            session.expunge(row)
            return row

    def chunk(self, chunk_id: str, doc_id: str) -> ChunkRow:
        with self.db.session() as session:
            row = session.get(ChunkRow, chunk_id)
            if row is None or row.document_id != doc_id:
                raise NotFound(f"Chunk {chunk_id!r} is not part of document {doc_id!r}.")
            session.expunge(row)
            return row

    def chunks_of(self, kb_id: str, generation: int, doc_ids: list[str]) -> list[ChunkRow]:
        """The chunks of these documents in one index generation (the caller orders
        them)."""
        query = select(ChunkRow).where(*_chunks_of(kb_id, generation, doc_ids))
        with self.db.session() as session:
            rows = list(session.scalars(query))
            session.expunge_all()
            return rows

    def count_chunks(self, kb_id: str, generation: int, doc_ids: list[str]) -> int:
        """How many chunks `chunks_of` returns."""
        query = select(func.count()).select_from(ChunkRow)
        with self.db.session() as session:
            return int(session.scalar(query.where(*_chunks_of(kb_id, generation, doc_ids))) or 0)

    def find_document_by_id(self, doc_id: str) -> DocumentRow | None:
        """The document, or None when it does not exist (any more)."""
        with self.db.session() as session:
            row = session.get(DocumentRow, doc_id)
            if row is not None:
                session.expunge(row)
            return row

    def find_document(self, kb_id: str, sha256: str) -> DocumentRow | None:
        with self.db.session() as session:
            row = session.scalars(
                select(DocumentRow).where(DocumentRow.kb_id == kb_id, DocumentRow.sha256 == sha256)
            ).first()
            if row is not None:
                session.expunge(row)
            return row

    def documents(self, kb_id: str, status: str | None = None) -> list[DocumentRow]:
        with self.db.session() as session:
            query = select(DocumentRow).where(DocumentRow.kb_id == kb_id)
            if status:
                query = query.where(DocumentRow.status == status)
            rows = session.scalars(query.order_by(DocumentRow.created_at)).all()
            session.expunge_all()
            return list(rows)

    def add_document(self, row: DocumentRow) -> None:
        with self.db.session() as session:
            session.add(row)
            session.commit()

    def update_document(self, doc_id: str, **values: Any) -> bool:
        """Update a document; False when it was deleted meanwhile."""
        with self.db.session() as session:
            done = session.execute(
                update(DocumentRow)
                .where(DocumentRow.id == doc_id)
                .values(**values, updated_at=now())
            )
            session.commit()
            return bool(rows_changed(done))

    def delete_document(self, doc_id: str) -> None:
        with self.db.session() as session:
            session.execute(delete(ChunkRow).where(ChunkRow.document_id == doc_id))
            session.execute(delete(DocumentRow).where(DocumentRow.id == doc_id))
            session.commit()

    @staticmethod
    def info(row: DocumentRow) -> DocumentInfo:
        return DocumentInfo.model_validate(row)

    # chunks ----------------------------------------------------------------------------

    def replace_chunks(self, doc_id: str, generation: int, rows: list[ChunkRow]) -> bool:
        """Store a document's chunks of one generation (replacing earlier ones) in one
        transaction; False when the document was deleted meanwhile."""
        with self.db.session() as session:
            if session.get(DocumentRow, doc_id) is None:
                return False
            session.execute(
                delete(ChunkRow).where(
                    ChunkRow.document_id == doc_id, ChunkRow.generation == generation
                )
            )
            session.add_all(rows)
            session.commit()
            return True

    def pending_chunks(self, limit: int) -> list[ChunkRow]:
        """Chunks with vectors waiting for the index (a restored chunk waits for its
        vectors first)."""
        with self.db.session() as session:
            rows = session.scalars(
                select(ChunkRow)
                .where(ChunkRow.indexed.is_(False), ChunkRow.dense.is_not(None))
                .limit(limit)
            ).all()
            session.expunge_all()
            return list(rows)

    def mark_indexed(self, chunk_ids: list[str]) -> None:
        with self.db.session() as session:
            session.execute(
                update(ChunkRow)
                .where(ChunkRow.id.in_(chunk_ids))
                .values(indexed=True, dense=None, sparse=None)
            )
            session.commit()

    def finish_indexed_documents(self) -> int:
        """Documents waiting for the index whose chunks are all written → indexed."""
        with self.db.session() as session:
            waiting = session.scalars(
                select(DocumentRow.id).where(DocumentRow.status == DocumentStatus.indexing.value)
            ).all()
            done = 0
            for doc_id in waiting:
                pending = session.scalar(
                    select(func.count())
                    .select_from(ChunkRow)
                    .where(ChunkRow.document_id == doc_id, ChunkRow.indexed.is_(False))
                )
                if not pending:
                    session.execute(
                        update(DocumentRow)
                        .where(DocumentRow.id == doc_id)
                        .values(status=DocumentStatus.indexed.value, updated_at=now())
                    )
                    done += 1
            session.commit()
            return done

    def unindexed_chunks(self, kb_id: str, generation: int) -> int:
        with self.db.session() as session:
            count = session.scalar(
                select(func.count())
                .select_from(ChunkRow)
                .where(
                    ChunkRow.kb_id == kb_id,
                    ChunkRow.generation == generation,
                    ChunkRow.indexed.is_(False),
                )
            )
            return count or 0

    def chunks_without_vectors(
        self, kb_id: str, generation: int, limit: int
    ) -> list[tuple[str, str]]:
        """(id, text) of chunks waiting for the index that have no vectors (a restored
        workspace's), in a stable order."""
        query = (
            select(ChunkRow.id, ChunkRow.text)
            .where(
                ChunkRow.kb_id == kb_id,
                ChunkRow.generation == generation,
                ChunkRow.indexed.is_(False),
                ChunkRow.dense.is_(None),
            )
            .order_by(ChunkRow.id)
            .limit(limit)
        )
        with self.db.session() as session:
            return [(row_id, text) for row_id, text in session.execute(query).all()]

    def set_vectors(self, vectors: list[tuple[str, bytes, dict[str, Any]]]) -> None:
        """Store (id, packed dense vector, sparse keyword vector) of chunks, one
        transaction; the index owner then writes them."""
        with self.db.session() as session:
            for chunk_id, dense, sparse in vectors:
                session.execute(
                    update(ChunkRow)
                    .where(ChunkRow.id == chunk_id)
                    .values(dense=dense, sparse=sparse, indexed=False)
                )
            session.commit()

    def delete_generation(self, kb_id: str, generation: int) -> None:
        with self.db.session() as session:
            session.execute(
                delete(ChunkRow).where(ChunkRow.kb_id == kb_id, ChunkRow.generation == generation)
            )
            session.commit()


def _chunks_of(kb_id: str, generation: int, doc_ids: list[str]) -> tuple[Any, ...]:
    """The conditions selecting these documents' chunks in one index generation."""
    return (
        ChunkRow.kb_id == kb_id,
        ChunkRow.generation == generation,
        ChunkRow.document_id.in_(doc_ids),
    )
