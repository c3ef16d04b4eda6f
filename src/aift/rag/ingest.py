"""Ingestion: a batch of uploaded documents (the `rag.ingest` job) and every document of
a knowledge base again, e.g. with another embedding model (the `rag.reindex` job).

Per document: pages (parser process, OCR where needed) → chunks by the embedding
model's tokens → dense vectors in batches + keyword vectors → one transaction of chunk
rows → `indexing`, then the index owner writes them to Qdrant → `indexed`. A document
that fails is marked with its reason and the batch goes on. A resumed job skips the
documents already done and redoes the rest; content-derived point ids and the
replace-in-one-transaction of chunk rows make every document indexed exactly once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from aift.config import Settings
from aift.errors import InvalidInput
from aift.inference.embedders import Embedder
from aift.models.registry import ModelRegistry
from aift.models.schemas import ModelInfo
from aift.rag import keywords
from aift.rag.chunking import chunk_pages
from aift.rag.document_files import pages_file, password_file
from aift.rag.extract import ExtractionError, PageText
from aift.rag.parser_process import ParserOptions, ParserProcess
from aift.rag.schemas import DocumentStatus, IngestJobConfig, ReindexJobConfig
from aift.rag.store import KnowledgeStore, pack_vector, point_id
from aift.store.tables import ChunkRow, DocumentRow, KnowledgeBaseRow
from aift.work.control import Work

EMBED_BATCH = 32
DONE = {DocumentStatus.indexing.value, DocumentStatus.indexed.value}


@dataclass
class Pipeline:
    """What one ingestion or re-index job works with. The embedding model loads on first
    use: a batch none of whose documents reaches embedding (all broken, deleted, or done
    by an earlier attempt) fails or finishes without paying for it."""

    settings: Settings
    store: KnowledgeStore
    model: ModelInfo
    kb_id: str
    generation: int
    requested_tokens: int
    requested_overlap: int

    @classmethod
    def open(
        cls,
        settings: Settings,
        store: KnowledgeStore,
        models: ModelRegistry,
        kb_id: str,
        embedding_model: str,
        generation: int,
        chunk_tokens: int,
        overlap: int,
    ) -> Pipeline:
        """The pipeline of a knowledge base's generation; an unknown embedding model is
        refused here, before any document is touched."""
        model = models.get(embedding_model)
        return cls(settings, store, model, kb_id, generation, chunk_tokens, overlap)

    @cached_property
    def embedder(self) -> Embedder:
        from aift.inference.embedders import load_embedder

        return load_embedder(self.model)

    @property
    def chunk_tokens(self) -> int:
        """The chunk size asked for, within what the embedding model reads."""
        return min(self.requested_tokens, self.embedder.passage_token_budget())

    @property
    def overlap_tokens(self) -> int:
        return min(self.requested_overlap, self.chunk_tokens // 2)

    def chunk_and_embed(
        self, ctx: Work, document: DocumentRow, pages: list[str], share: tuple[float, float]
    ) -> tuple[list[ChunkRow], dict[str, float]]:
        """Chunk rows (with vectors) of one document."""
        if "embedder" not in self.__dict__:
            ctx.progress(share[0] + share[1] * 0.5, f"loading {self.model.name}", force=True)
            self.embedder  # noqa: B018 - loaded now, so its time is not the chunking's
        started = time.perf_counter()
        ctx.progress(
            share[0] + share[1] * 0.5, f"{document.name}: chunking {len(pages)} pages", force=True
        )
        chunks = chunk_pages(
            pages,
            self.embedder.token_spans,
            self.chunk_tokens,
            self.overlap_tokens,
            measure=self.embedder.measure,
        )
        chunked = time.perf_counter()
        vectors: list[list[float]] = []
        for first in range(0, len(chunks), EMBED_BATCH):
            ctx.check_cancelled()
            batch = [c.text for c in chunks[first : first + EMBED_BATCH]]
            vectors += self.embedder.embed(batch, is_query=False)
            embedded = min(first + EMBED_BATCH, len(chunks))
            done = embedded / max(len(chunks), 1)
            ctx.progress(
                share[0] + share[1] * (0.5 + 0.5 * done),
                f"{document.name}: embedding {embedded}/{len(chunks)} chunks"
                + _eta(time.perf_counter() - chunked, embedded, len(chunks)),
            )
        rows = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            indices, values = keywords.document_vector(chunk.text)
            rows.append(
                ChunkRow(
                    id=point_id(
                        self.kb_id, self.generation, document.sha256, chunk.index, chunk.text
                    ),
                    document_id=document.id,
                    kb_id=self.kb_id,
                    generation=self.generation,
                    chunk_index=chunk.index,
                    text=chunk.text,
                    page_start=chunk.page_start,
                    page_end=chunk.page_end,
                    page_breaks=chunk.page_breaks,
                    section=chunk.section,
                    char_start=chunk.char_start,
                    char_end=chunk.char_end,
                    token_count=chunk.tokens,
                    dense=pack_vector(vector),
                    sparse={"indices": indices, "values": values},
                    indexed=False,
                )
            )
        return rows, {
            "chunk_seconds": chunked - started,
            "embed_seconds": time.perf_counter() - chunked,
        }


def _extract(
    ctx: Work,
    parser: ParserProcess,
    document: DocumentRow,
    password: str | None,
    share: tuple[float, float],
) -> list[PageText]:
    pages: list[PageText] = []
    total = 1
    for item in parser.parse(Path(document.path), document.content_type, password):
        if isinstance(item, int):
            total = max(item, 1)
            continue
        pages.append(item)
        ctx.progress(
            share[0] + share[1] * 0.5 * len(pages) / total,
            f"{document.name}: page {len(pages)}/{total}" + (" (OCR)" if item.ocr else ""),
        )
        if ctx.cancelled():
            parser.close()
            ctx.check_cancelled()
    return pages


def ingest_document(
    ctx: Work,
    pipeline: Pipeline,
    parser: ParserProcess,
    document: DocumentRow,
    share: tuple[float, float],
) -> str:
    """Take one document from its file to chunk rows; returns its final status."""
    store = pipeline.store
    secret = password_file(document)
    password = secret.read_text() if secret.exists() else None
    if not store.update_document(document.id, status=DocumentStatus.parsing.value, error=None):
        return "deleted"
    started = time.perf_counter()
    try:
        pages = _extract(ctx, parser, document, password, share)
    except ExtractionError as exc:
        status = (
            DocumentStatus.needs_password if exc.kind == "needs_password" else DocumentStatus.failed
        )
        store.update_document(document.id, status=status.value, error=str(exc))
        ctx.log.warning("%s: %s", document.name, exc)
        return status.value
    parse_seconds = time.perf_counter() - started
    secret.unlink(missing_ok=True)
    texts = [p.text for p in pages]
    pages_file(document).write_text(json.dumps(texts, ensure_ascii=False))
    ocr_pages = sum(p.ocr for p in pages)
    if not any(t.strip() for t in texts):
        store.update_document(
            document.id,
            status=DocumentStatus.failed.value,
            pages=len(pages),
            ocr_pages=ocr_pages,
            error="No text found on any page, even with OCR.",
        )
        return DocumentStatus.failed.value
    store.update_document(
        document.id, status=DocumentStatus.embedding.value, pages=len(pages), ocr_pages=ocr_pages
    )
    rows, timings = pipeline.chunk_and_embed(ctx, document, texts, share)
    if not store.replace_chunks(document.id, pipeline.generation, rows):
        return "deleted"
    store.update_document(
        document.id,
        status=DocumentStatus.indexing.value,
        chunks=len(rows),
        timings={"parse_seconds": parse_seconds, **timings},
    )
    return DocumentStatus.indexing.value


def _sync_directly(pipeline: Pipeline) -> None:
    """With a Qdrant server, the job writes its own chunks (no owner to wait for)."""
    if not pipeline.settings.qdrant_url:
        return
    from aift.rag.open_index import open_index
    from aift.rag.syncer import IndexSyncer

    index = open_index(pipeline.settings)
    try:
        syncer = IndexSyncer(pipeline.store, index)
        while syncer.sync_once():
            pass
    finally:
        index.close()


def _eta(spent: float, done: int, total: int) -> str:
    """' (about 3 min left)' from the rate so far; empty until there is a rate."""
    if not done or done >= total or spent < 2:
        return ""
    left = spent / done * (total - done)
    return f" (about {left / 60:.0f} min left)" if left >= 90 else f" (about {left:.0f} s left)"


def _by_size(store: KnowledgeStore, kb_id: str, doc_ids: list[str]) -> list[str]:
    """The documents smallest file first, so one huge file does not hold the rest back
    (each document is indexed as soon as it is done); one query for all of them."""
    sizes = {row.id: row.size_bytes for row in store.documents(kb_id)}
    return sorted(doc_ids, key=lambda doc_id: sizes.get(doc_id, 0))


def _wait_for_index(ctx: Work, pipeline: Pipeline, doc_ids: list[str]) -> list[str]:
    """Wait until the index owner has written the documents; returns those still waiting."""
    deadline = time.monotonic() + pipeline.settings.index_wait_seconds
    while True:
        waiting = []
        for doc_id in doc_ids:
            try:
                if pipeline.store.document(doc_id).status == DocumentStatus.indexing.value:
                    waiting.append(doc_id)
            except Exception:  # noqa: BLE001 - deleted meanwhile
                continue
        if not waiting or time.monotonic() > deadline:
            return waiting
        ctx.progress(0.99, f"waiting for the server to index {len(waiting)} document(s)")
        ctx.check_cancelled()
        time.sleep(0.3)


def ingest_documents(
    ctx: Work,
    config: IngestJobConfig,
    settings: Settings,
    store: KnowledgeStore,
    models: ModelRegistry,
) -> dict[str, Any]:
    """Ingest documents into a knowledge base."""
    kb = store.kb_row(config.kb_id)
    ctx.progress(0.0, f"{len(config.document_ids)} document(s) to ingest", force=True)
    pipeline = Pipeline.open(
        settings,
        store,
        models,
        kb.id,
        kb.embedding_model,
        kb.generation,
        kb.chunking["chunk_tokens"],
        kb.chunking["overlap_tokens"],
    )
    parser = ParserProcess(
        ParserOptions(
            settings.ocr_engine,
            settings.ocr_languages,
            settings.parse_page_timeout_seconds,
            settings.max_pdf_pages,
        )
    )
    outcome: dict[str, str] = {}
    try:
        total = len(config.document_ids)
        for number, doc_id in enumerate(_by_size(store, kb.id, config.document_ids)):
            ctx.check_cancelled()
            try:
                document = store.document(doc_id, kb.id)
            except Exception:  # noqa: BLE001 - deleted since the upload
                outcome[doc_id] = "deleted"
                continue
            if document.status in DONE:  # finished by an earlier attempt
                outcome[doc_id] = document.status
                continue
            share = (number / total, 1 / total)
            outcome[doc_id] = ingest_document(ctx, pipeline, parser, document, share)
    finally:
        parser.close()
    _sync_directly(pipeline)
    waiting = _wait_for_index(
        ctx, pipeline, [d for d, s in outcome.items() if s == DocumentStatus.indexing.value]
    )
    final, failures = {}, []
    for doc_id, status in outcome.items():
        row = store.find_document_by_id(doc_id) if status != "deleted" else None
        if row is None:  # deleted while the batch ran: skipped, the others carry on
            outcome[doc_id] = "deleted"
            continue
        final[doc_id] = row.status
        if row.status == DocumentStatus.failed.value:
            failures.append(f"{row.name}: {row.error}")
    counts: dict[str, int] = {}
    for status in final.values():
        counts[status] = counts.get(status, 0) + 1
    deleted = sum(1 for status in outcome.values() if status == "deleted")
    if deleted:
        counts["deleted"] = deleted
    ctx.progress(1.0, ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), force=True)
    if final and len(failures) == len(final):
        raise InvalidInput(
            f"No document of this job could be ingested — {'; '.join(failures)}"[:2000]
        )
    return {"documents": final, "counts": counts, "waiting_for_index": waiting}


def reindex(
    ctx: Work,
    config: ReindexJobConfig,
    settings: Settings,
    store: KnowledgeStore,
    models: ModelRegistry,
) -> dict[str, Any]:
    """Re-embed every document of a knowledge base into a new index generation."""
    kb = store.kb_row(config.kb_id)
    store.update_kb(kb.id, status="reindexing")
    try:
        return _reindex(
            ctx,
            Pipeline.open(
                settings,
                store,
                models,
                kb.id,
                config.embedding_model,
                config.generation,
                config.chunking.chunk_tokens,
                config.chunking.overlap_tokens,
            ),
            kb,
            config,
        )
    except BaseException:
        store.update_kb(kb.id, status="ready")  # the old generation keeps serving
        store.delete_generation(kb.id, config.generation)
        raise


def _reindex(ctx: Work, pipeline: Pipeline, kb: KnowledgeBaseRow, config: ReindexJobConfig) -> dict:
    settings, store = pipeline.settings, pipeline.store
    documents = [d for d in store.documents(kb.id) if pages_file(d).exists()]
    counts: dict[str, int] = {}
    for number, document in enumerate(documents):
        ctx.check_cancelled()
        texts = json.loads(pages_file(document).read_text())
        rows, _ = pipeline.chunk_and_embed(
            ctx, document, texts, (number / max(len(documents), 1), 1 / max(len(documents), 1))
        )
        if store.replace_chunks(document.id, config.generation, rows):
            counts[document.id] = len(rows)
    _sync_directly(pipeline)
    deadline = time.monotonic() + settings.index_wait_seconds
    while store.unindexed_chunks(kb.id, config.generation):
        if time.monotonic() > deadline:
            raise TimeoutError("The server did not index the new generation in time; resume.")
        ctx.progress(0.99, "waiting for the server to index the new generation")
        ctx.check_cancelled()
        time.sleep(0.3)
    store.update_kb(
        kb.id,
        generation=config.generation,
        embedding_model=config.embedding_model,
        embedding_requested=config.embedding_requested,
        dimension=config.dimension,
        chunking=config.chunking.model_dump(),
        effective_chunk_tokens=pipeline.chunk_tokens,
        status="ready",
    )
    for doc_id, chunks in counts.items():
        store.update_document(doc_id, chunks=chunks)
    store.delete_generation(kb.id, config.generation - 1)
    return {
        "generation": config.generation,
        "documents": len(counts),
        "chunks": sum(counts.values()),
    }
