"""Giving a restored workspace its vectors back (the `rag.restore_vectors` job).

A backup keeps every chunk (text, place, ids) in the database but not the vector index
(an embedded index cannot be copied consistently while the server writes it). After a
restore, this job embeds each chunk's text again with its knowledge base's model, and
the index owner writes the vectors under the same point ids: the same chunks, the same
vectors, the same search results. Resumable: only chunks still without vectors are done.
"""

from __future__ import annotations

import time
from typing import Any

from aift.config import Settings
from aift.inference.embedders import load_embedder
from aift.models.registry import ModelRegistry
from aift.rag import keywords
from aift.rag.schemas import RestoreVectorsJobConfig
from aift.rag.store import KnowledgeStore, pack_vector
from aift.work.control import Work

BATCH = 32


def restore_vectors(
    ctx: Work,
    config: RestoreVectorsJobConfig,
    settings: Settings,
    store: KnowledgeStore,
    models: ModelRegistry,
) -> dict[str, Any]:
    """Embed the chunks of restored knowledge bases again and wait for the index."""
    kbs = [
        kb for kb in store.list_kbs(everyone=True) if not config.kb_ids or kb.id in config.kb_ids
    ]
    pending = {kb.id: store.unindexed_chunks(kb.id, kb.generation) for kb in kbs}
    total = sum(pending.values())
    done = 0
    for kb in kbs:
        if not pending[kb.id]:
            continue  # nothing to embed: its model need not load
        ctx.progress(done / max(total, 1) * 0.95, f"{kb.name}: loading {kb.embedding_model}")
        embedder = load_embedder(models.get(kb.embedding_model))
        while batch := store.chunks_without_vectors(kb.id, kb.generation, BATCH):
            ctx.check_cancelled()
            vectors = embedder.embed([text for _, text in batch], is_query=False)
            rows = []
            for (chunk_id, text), vector in zip(batch, vectors, strict=True):
                indices, values = keywords.document_vector(text)
                rows.append((chunk_id, pack_vector(vector), {"indices": indices, "values": values}))
            store.set_vectors(rows)
            done += len(batch)
            ctx.progress(done / max(total, 1) * 0.95, f"{kb.name}: {done}/{total} chunks")
    deadline = time.monotonic() + settings.index_wait_seconds
    while any(store.unindexed_chunks(kb.id, kb.generation) for kb in kbs):
        if time.monotonic() > deadline:
            raise TimeoutError("The server did not index the restored vectors in time; resume.")
        ctx.progress(0.97, "waiting for the server to index the restored vectors")
        ctx.check_cancelled()
        time.sleep(0.3)
    return {"knowledge_bases": len(kbs), "chunks": done}
