"""Moves chunks from the database into the vector index, in the process that owns it.

Ingestion jobs store each chunk (text, place, dense and keyword vectors) in the database
and mark the document `indexing`; the IndexSyncer, running in the server (the only
process allowed to open embedded Qdrant), upserts them, marks them indexed, and flips
documents whose chunks are all written to `indexed`. It also drops collections no
knowledge base uses any more. Idempotent by construction: point ids derive from content.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

from aift.rag.cache import SearchCache
from aift.rag.index import IndexPoint, VectorIndex, collection_name, parse_collection
from aift.rag.store import KnowledgeStore, unpack_vector
from aift.store.tables import ChunkRow

log = logging.getLogger(__name__)

BATCH = 256


class IndexSyncer:
    def __init__(
        self, store: KnowledgeStore, index: VectorIndex, cache: SearchCache | None = None
    ) -> None:
        self.store = store
        self.index = index
        self.cache = cache
        self.lock = threading.RLock()  # held by deletions so nothing is written back
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync_once(self) -> int:
        """Index one batch of pending chunks; returns how many were written."""
        with self.lock:
            pending = self.store.pending_chunks(BATCH)
            groups: dict[tuple[str, int], list[ChunkRow]] = defaultdict(list)
            for row in pending:
                if row.dense is not None:
                    groups[(row.kb_id, row.generation)].append(row)
            for (kb_id, generation), rows in groups.items():
                name = collection_name(kb_id, generation)
                self.index.ensure(name, len(rows[0].dense or b"") // 4)
                self.index.upsert(name, [_point(r) for r in rows])
                if self.cache is not None:
                    self.cache.invalidate(kb_id)
            if pending:
                self.store.mark_indexed([r.id for r in pending])
            self.store.finish_indexed_documents()
            return len(pending)

    def collect_garbage(self) -> list[str]:
        """Drop collections of deleted knowledge bases and of replaced generations."""
        with self.lock:
            live = set()
            for kb in self.store.list_kbs(everyone=True):
                live.add((kb.id, kb.generation))
                if kb.status == "reindexing":
                    live.add((kb.id, kb.generation + 1))
            dropped = []
            for name in self.index.collections():
                parsed = parse_collection(name)
                if parsed is not None and parsed not in live:
                    self.index.drop(name)
                    dropped.append(name)
            return dropped

    def run(self, idle_seconds: float = 0.3) -> None:
        """Sync until stopped (the server's background thread)."""
        rounds = 0
        while not self._stop.is_set():
            try:
                written = self.sync_once()
                rounds += 1
                if rounds % 100 == 1:
                    self.collect_garbage()
            except Exception:  # noqa: BLE001 - keep the owner alive; retried next round
                log.exception("index sync failed; retrying")
                written = 0
            if not written:
                self._stop.wait(idle_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="aift-index-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _point(row: ChunkRow) -> IndexPoint:
    assert row.dense is not None, "only embedded chunks are indexed"
    sparse = row.sparse or {"indices": [], "values": []}
    return IndexPoint(
        id=row.id,
        dense=unpack_vector(row.dense),
        keyword_indices=sparse["indices"],
        keyword_values=sparse["values"],
        payload={
            "kb_id": row.kb_id,
            "document_id": row.document_id,
            "chunk_index": row.chunk_index,
            "page_start": row.page_start,
            "page_end": row.page_end,
            "page_breaks": row.page_breaks or [],
            "section": row.section,
            "char_start": row.char_start,
            "char_end": row.char_end,
            "text": row.text,
        },
    )
