"""Knowledge bases: create, list, show, delete; upload documents; delete documents;
re-index. Validates everything a user sends before anything is stored or queued."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aift.errors import Conflict, Forbidden, InvalidInput, NotFound
from aift.models.resolver import ModelResolver
from aift.models.schemas import Purpose
from aift.rag import filetypes
from aift.rag.answering import Answerer, PreparedAnswer
from aift.rag.cache import SearchCache
from aift.rag.document_files import pages_file, password_file
from aift.rag.history import SearchHistory
from aift.rag.index import VectorIndex, collection_name
from aift.rag.kb_evaluation import evaluate_kb, load_questions
from aift.rag.page_views import PageViews, views_folder
from aift.rag.rerank import Rerankers
from aift.rag.retrieval import Retriever
from aift.rag.schemas import (
    ANSWER_EVAL_KIND,
    MAX_ANSWER_JOB_QUESTIONS,
    MAX_ANSWER_QUESTIONS,
    MAX_EXTRACTIVE_QUESTIONS,
    AnswerEvalJobConfig,
    AnswerEvaluation,
    AnswerQuestion,
    AskRequest,
    AskResponse,
    DocumentInfo,
    DocumentStatus,
    DuplicateFile,
    HistoryEntry,
    IngestJobConfig,
    KbEvaluation,
    KnowledgeBaseCreate,
    KnowledgeBaseInfo,
    PageView,
    ReindexJobConfig,
    ReindexRequest,
    RejectedFile,
    SearchRequest,
    SearchResponse,
    SourcePassage,
    UploadResult,
)
from aift.rag.store import KnowledgeStore, now
from aift.store.tables import DocumentRow, KnowledgeBaseRow
from aift.work.actor import current_actor
from aift.work.control import Work
from aift.work.queueing import JobQueueing
from aift.work.schemas import JobCreate, JobInfo
from aift.workspace import Workspace, file_sha256, safe_name

if TYPE_CHECKING:
    from aift.inference.embedders import Embedder
    from aift.inference.service import ServingService
    from aift.rag.syncer import IndexSyncer


class KnowledgeService:
    """The knowledge-base capability: knowledge bases, documents, search, answers and
    their history. `syncer` is the vector index's owner in this process (the server);
    other processes (jobs) get `index` to search (a reader of the server's index) and
    their deletions touch only the database."""

    def __init__(
        self,
        store: KnowledgeStore,
        workspace: Workspace,
        jobs: JobQueueing,
        resolver: ModelResolver,
        serving: ServingService,
        syncer: IndexSyncer | None,
        cache: SearchCache | None = None,
        *,
        index: VectorIndex | None = None,
    ) -> None:
        self.store = store
        self.cache = cache
        self.page_views = PageViews(store, resolver.settings)
        self.resolver = resolver
        self.workspace = workspace
        self.jobs = jobs
        self.serving = serving
        self.syncer = syncer
        self.history = SearchHistory(store.db)
        self.rerankers = Rerankers(resolver)
        self.retriever = Retriever(
            store,
            index if index is not None else syncer.index if syncer is not None else None,
            serving,
            self.rerankers,
            self.history,
            cache,
        )
        self.answerer = Answerer(store, self.retriever, serving, resolver, self.history)

    # search and answers ----------------------------------------------------------------

    def search(
        self, kb_ref: str, request: SearchRequest, *, record: bool = False
    ) -> SearchResponse:
        """The best chunks of a knowledge base, every score shown (see rag/retrieval.py)."""
        return self.retriever.search(kb_ref, request, record=record)

    def evaluate(
        self, kb_ref: str, questions_file: Path, name: str, settings: SearchRequest
    ) -> KbEvaluation:
        """Retrieval quality of this knowledge base on a file of questions (see
        rag/kb_evaluation.py); the searches are not written to the history."""
        questions = load_questions(questions_file, name)
        return evaluate_kb(lambda r: self.search(kb_ref, r), questions, settings)

    async def evaluate_answers(
        self,
        kb_ref: str,
        questions_file: Path,
        name: str,
        settings: dict[str, AskRequest],
        *,
        background: bool = False,
    ) -> AnswerEvaluation | JobInfo:
        """Answer quality of this knowledge base on a file of questions, per setting (see
        rag/answer_evaluation.py), answered here when the file is small (at most 50
        questions; 500 when every setting is extractive), else — or when `background`
        — queued as a job. The answers are not written to the history."""
        from aift.rag.answer_evaluation import evaluate_answers
        from aift.rag.kb_evaluation import load_rows

        extractive = all(r.answer_mode == "extractive" for r in settings.values())
        questions = await asyncio.to_thread(
            load_rows,
            questions_file,
            name,
            AnswerQuestion,
            MAX_ANSWER_JOB_QUESTIONS,
            "Each row needs a question and its accepted answers (answer or answers), the "
            "document to cite, or unanswerable: true.",
        )
        kb = await asyncio.to_thread(self.get, kb_ref)
        in_request = MAX_EXTRACTIVE_QUESTIONS if extractive else MAX_ANSWER_QUESTIONS
        if background or len(questions) > in_request:
            config = AnswerEvalJobConfig(
                knowledge_base=kb.id, questions=questions, settings=settings
            )
            job = JobCreate(
                kind=ANSWER_EVAL_KIND,
                config=config.model_dump(mode="json"),
                title=f"evaluate answers of {kb.name} ({len(questions)} questions)",
            )
            return await asyncio.to_thread(self.jobs.submit, job, internal=True)
        return await evaluate_answers(lambda r: self.ask(kb.id, r), kb.name, questions, settings)

    def run_answer_evaluation(self, work: Work, config: AnswerEvalJobConfig) -> AnswerEvaluation:
        """A queued answer evaluation, in its job (progress and cancel per answer)."""
        from aift.rag.answer_evaluation import evaluate_answers

        kb = self.get(config.knowledge_base)

        def progress(done: int, total: int) -> None:
            work.check_cancelled()
            work.progress(done / total, f"answer {done}/{total}")

        work.progress(0.0, f"asking {len(config.questions)} questions", force=True)
        return asyncio.run(
            evaluate_answers(
                lambda r: self.ask(kb.id, r), kb.name, config.questions, config.settings, progress
            )
        )

    def prepare_answer(self, kb_ref: str, request: AskRequest) -> PreparedAnswer:
        """Check and search for a question before its answer streams (user errors here)."""
        return self.answerer.prepare(kb_ref, request)

    def answer_events(self, prepared: PreparedAnswer) -> AsyncIterator[dict[str, Any]]:
        """The answer as events: sources, token…, done (see rag/answering.py)."""
        return self.answerer.events(prepared)

    async def ask(self, kb_ref: str, request: AskRequest) -> AskResponse:
        """The whole checked answer at once (the events' final `done`)."""
        prepared = await asyncio.to_thread(self.prepare_answer, kb_ref, request)
        async for item in self.answer_events(prepared):
            if item["event"] == "done":
                return AskResponse.model_validate(item["data"])
        raise RuntimeError("the answer stream ended without a result")

    def history_of(
        self,
        kb_ref: str | None = None,
        limit: int = 50,
        *,
        kind: str | None = None,
        query: str | None = None,
        offset: int = 0,
    ) -> list[HistoryEntry]:
        """Recent searches and questions, of one knowledge base or all, optionally filtered."""
        kb_id = self.store.kb_row(kb_ref).id if kb_ref else None
        return self.history.list(kb_id, limit, kind=kind, query=query, offset=offset)

    # knowledge bases -------------------------------------------------------------------

    def embedder_for(self, ref: str | None) -> tuple[Embedder, str, str | None]:
        """(embedder, requested name, warning) for a model reference or the configured
        default; only the default may fall back to a packaged stand-in."""
        requested = ref or self.resolver.default_ref(Purpose.embedding)
        # only the configured default may fall back to a packaged stand-in
        resolved = self.resolver.resolve(requested, purpose=Purpose.embedding, fallback=ref is None)
        return self.serving.embedder(resolved.name), requested, resolved.warning

    def create(self, request: KnowledgeBaseCreate) -> KnowledgeBaseInfo:
        """A new knowledge base bound to an embedding model (dimension recorded)."""
        name = request.name.strip()
        if not name:
            raise InvalidInput("The knowledge base name is empty.")
        if self.store.name_taken(name):
            raise Conflict(f"You already have a knowledge base named {name!r}.")
        embedder, requested, warning = self.embedder_for(request.embedding_model)
        budget = embedder.passage_token_budget()
        effective = min(request.chunking.chunk_tokens, budget)
        if effective < request.chunking.chunk_tokens:
            note = (
                f"{embedder.name} reads at most {budget} tokens per passage, so chunks hold "
                f"{effective} tokens instead of {request.chunking.chunk_tokens}."
            )
            warning = f"{warning} {note}" if warning else note
        row = KnowledgeBaseRow(
            id=uuid.uuid4().hex,
            name=name,
            description=request.description,
            embedding_model=embedder.name,
            embedding_requested=requested,
            dimension=embedder.dimension,
            chunking=request.chunking.model_dump(),
            effective_chunk_tokens=effective,
            generation=1,
            status="ready",
            warning=warning,
            created_at=now(),
            updated_at=now(),
            owner_id=current_actor.get().user_id,
        )
        self.store.add_kb(row)
        return self.store.kb_info(row)

    def owned(self, ref: str) -> KnowledgeBaseInfo:
        """A knowledge base the current user owns (or any, for an admin): who may share it."""
        row = self.store.kb_row(ref, write=True)
        actor = current_actor.get()
        if not actor.admin and row.owner_id != actor.user_id:
            raise Forbidden(f"Only the owner of {row.name} (or an admin) shares it.")
        return self.store.kb_info(row)

    def get(self, ref: str) -> KnowledgeBaseInfo:
        row = self.store.kb_row(ref)
        info = self.store.kb_info(row)
        if self.syncer is not None:
            name = collection_name(row.id, row.generation)
            info.points = self.syncer.index.count(name)
            status = self.syncer.index.status()
            info.index_backlog = status.backlog.get(name, 0)
            info.index_note = status.note()
        return info

    def list(self) -> list[KnowledgeBaseInfo]:
        return [self.store.kb_info(row) for row in self.store.list_kbs()]

    def delete(self, ref: str) -> None:
        """The knowledge base, its documents, files, chunks and vectors."""
        kb = self.store.kb_row(ref, write=True)
        with self._index_lock():
            self.store.delete_kb(kb.id)
            if self.syncer is not None:
                for generation in (kb.generation, kb.generation + 1):
                    self.syncer.index.drop(collection_name(kb.id, generation))
        self._changed(kb.id)
        shutil.rmtree(self._folder(kb.id), ignore_errors=True)

    # documents -------------------------------------------------------------------------

    def _folder(self, kb_id: str) -> Path:
        return self.workspace.data / "kb" / kb_id

    def add_files(
        self, ref: str, files: builtins.list[tuple[Path, str]], password: str | None = None
    ) -> UploadResult:
        """Accept the valid files of an upload (moved from temp_uploads/ to data/) and
        queue one ingestion job for them; report duplicates and rejected files."""
        kb = self.store.kb_row(ref, write=True)
        if kb.status == "reindexing":
            raise Conflict(f"{kb.name} is being re-indexed; upload when that job has finished.")
        result = UploadResult()
        folder = self._folder(kb.id)
        folder.mkdir(parents=True, exist_ok=True)
        seen: set[str] = set()
        for temp, original in files:
            name = _display_name(original)
            try:
                content_type = filetypes.detect(temp, name)
            except filetypes.UnsupportedFile as exc:
                result.rejected.append(RejectedFile(name=name, reason=str(exc)))
                continue
            digest = file_sha256(temp)
            existing = self.store.find_document(kb.id, digest)
            if existing is not None or digest in seen:
                if existing is not None:
                    result.duplicates.append(
                        DuplicateFile(file=name, **self.store.info(existing).model_dump())
                    )
                continue
            seen.add(digest)
            doc_id = uuid.uuid4().hex
            target = folder / f"{doc_id}{filetypes.suffix(content_type)}"
            shutil.move(temp, target)
            row = DocumentRow(
                id=doc_id,
                kb_id=kb.id,
                name=name,
                content_type=content_type,
                sha256=digest,
                size_bytes=target.stat().st_size,
                path=str(target),
                status=DocumentStatus.queued.value,
                timings={},
                created_at=now(),
                updated_at=now(),
            )
            if password and content_type == filetypes.PDF:
                _write_secret(password_file(row), password)
            self.store.add_document(row)
            result.accepted.append(self.store.info(row))
        if result.accepted:
            job = self._submit([d.id for d in result.accepted], kb)
            result.job_id = job.id
            for doc in result.accepted:
                self.store.update_document(doc.id, job_id=job.id)
                doc.job_id = job.id
        return result

    def _submit(self, doc_ids: builtins.list[str], kb: KnowledgeBaseRow) -> JobInfo:
        return self.jobs.submit(
            JobCreate(
                kind="rag.ingest",
                config=IngestJobConfig(kb_id=kb.id, document_ids=doc_ids).model_dump(),
                title=f"ingest {len(doc_ids)} document(s) into {kb.name}",
            ),
            internal=True,
        )

    def documents(self, ref: str, status: str | None = None) -> builtins.list[DocumentInfo]:
        kb = self.store.kb_row(ref)
        return [self.store.info(row) for row in self.store.documents(kb.id, status)]

    def passage_count(self, ref: str, doc_ids: builtins.list[str]) -> int:
        """How many passages `passages` returns (counted, not read)."""
        kb, documents = self._chunked_documents(ref, doc_ids)
        return self.store.count_chunks(kb.id, kb.generation, list(documents))

    def passages(self, ref: str, doc_ids: builtins.list[str]) -> builtins.list[SourcePassage]:
        """The indexed chunks of a knowledge base's documents (all that have chunks when
        `doc_ids` is empty), in the order of `doc_ids` (or of adding), each with its
        document and pages."""
        kb, by_id = self._chunked_documents(ref, doc_ids)
        wanted = list(by_id)
        chunks = self.store.chunks_of(kb.id, kb.generation, wanted)
        order = {doc_id: n for n, doc_id in enumerate(wanted)}
        chunks.sort(key=lambda c: (order[c.document_id], c.chunk_index))
        return [
            SourcePassage(
                chunk_id=c.id,
                document_id=c.document_id,
                document=by_id[c.document_id],
                page_start=c.page_start,
                page_end=c.page_end,
                page_breaks=c.page_breaks or [],
                section=c.section,
                text=c.text,
            )
            for c in chunks
        ]

    def _chunked_documents(
        self, ref: str, doc_ids: builtins.list[str]
    ) -> tuple[KnowledgeBaseRow, dict[str, str]]:
        """The knowledge base and its documents that have passages, id → file name: those
        named (in their order), or all of them in the order they were added. A named
        document that is not in the knowledge base, or has no text yet, is an error
        naming it."""
        kb = self.store.kb_row(ref)
        rows = self.store.documents(kb.id)
        chunked = (DocumentStatus.indexing.value, DocumentStatus.indexed.value)
        by_id = {row.id: row for row in rows}
        for doc_id in doc_ids:
            if doc_id not in by_id:
                raise NotFound(f"{kb.name} has no document {doc_id!r}.")
            if by_id[doc_id].status not in chunked:
                raise InvalidInput(
                    f"{by_id[doc_id].name} is {by_id[doc_id].status}: only ingested documents "
                    "have passages."
                )
        wanted = doc_ids or [row.id for row in rows if row.status in chunked]
        return kb, {doc_id: by_id[doc_id].name for doc_id in wanted}

    def document(self, ref: str, doc_id: str) -> DocumentInfo:
        kb = self.store.kb_row(ref)
        return self.store.info(self.store.document(doc_id, kb.id))

    def retry(self, ref: str, doc_id: str, password: str | None = None) -> DocumentInfo:
        """Ingest a failed document again (with a password for an encrypted PDF)."""
        kb = self.store.kb_row(ref, write=True)
        row = self.store.document(doc_id, kb.id)
        if row.status not in (DocumentStatus.failed.value, DocumentStatus.needs_password.value):
            raise Conflict(f"{row.name} is {row.status}; only failed documents can be retried.")
        if password:
            _write_secret(password_file(row), password)
        job = self._submit([row.id], kb)
        self.store.update_document(
            row.id, status=DocumentStatus.queued.value, error=None, job_id=job.id
        )
        return self.store.info(self.store.document(row.id))

    def delete_document(self, ref: str, doc_id: str) -> None:
        """The document's rows, vectors and files; other documents are untouched."""
        kb = self.store.kb_row(ref, write=True)
        row = self.store.document(doc_id, kb.id)
        with self._index_lock():
            self.store.delete_document(row.id)
            if self.syncer is not None:
                for generation in (kb.generation, kb.generation + 1):
                    self.syncer.index.delete_where(
                        collection_name(kb.id, generation), "document_id", row.id
                    )
        self._changed(kb.id)
        for path in (Path(row.path), pages_file(row), password_file(row)):
            path.unlink(missing_ok=True)
        shutil.rmtree(views_folder(row), ignore_errors=True)

    def _changed(self, kb_id: str) -> None:
        """What the knowledge base returns changed: cached searches of it are stale."""
        if self.cache is not None:
            self.cache.invalidate(kb_id)

    def page_texts(
        self, ref: str, wanted: builtins.list[tuple[str, int]]
    ) -> tuple[dict[tuple[str, int], str], dict[tuple[str, int], str]]:
        """The extracted text of each (document, page) wanted, a document named by its id
        or its file name; and why the others have none (no such document, page or text)."""
        kb = self.store.kb_row(ref)
        documents: dict[str, DocumentRow] = {}
        for row in self.store.documents(kb.id):
            documents.setdefault(row.id, row)
            documents.setdefault(row.name, row)
        texts: dict[tuple[str, int], str] = {}
        problems: dict[tuple[str, int], str] = {}
        loaded: dict[str, list[str]] = {}
        for name, page in wanted:
            found = documents.get(name)
            if found is None or not pages_file(found).is_file():
                problems[(name, page)] = f"{kb.name} has no readable document {name!r}"
                continue
            if found.id not in loaded:
                loaded[found.id] = json.loads(pages_file(found).read_text(encoding="utf-8"))
            pages = loaded[found.id]
            if not 1 <= page <= len(pages) or not pages[page - 1].strip():
                problems[(name, page)] = f"{name} has no text on page {page} ({len(pages)} pages)"
            else:
                texts[(name, page)] = pages[page - 1]
        return texts, problems

    def page_view(self, ref: str, doc_id: str, page: int, chunk_id: str | None) -> PageView:
        """A document page as a citation opens it (image URL, the passage's boxes)."""
        return self.page_views.view(self.store.kb_row(ref).id, doc_id, page, chunk_id)

    def page_image(self, ref: str, doc_id: str, page: int) -> Path:
        """The PNG file of a PDF page."""
        return self.page_views.image(self.store.kb_row(ref).id, doc_id, page)

    def reindex(self, ref: str, request: ReindexRequest) -> JobInfo:
        """Queue a re-index into a new generation; search keeps the old one meanwhile."""
        kb = self.store.kb_row(ref, write=True)
        if kb.status == "reindexing":
            raise Conflict(f"{kb.name} is already being re-indexed.")
        embedder, requested, _ = self.embedder_for(request.embedding_model or kb.embedding_model)
        config = ReindexJobConfig(
            kb_id=kb.id,
            generation=kb.generation + 1,
            embedding_model=embedder.name,
            embedding_requested=request.embedding_model or kb.embedding_requested,
            dimension=embedder.dimension,
            chunking=request.chunking or kb.chunking,
        )
        self.store.update_kb(kb.id, status="reindexing")
        return self.jobs.submit(
            JobCreate(kind="rag.reindex", config=config.model_dump(), title=f"re-index {kb.name}"),
            internal=True,
        )

    def _index_lock(self) -> contextlib.AbstractContextManager[Any]:
        return self.syncer.lock if self.syncer is not None else contextlib.nullcontext()


def _display_name(original: str) -> str:
    """The file's own name (no folders), made safe for display and the file system."""
    base = original.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        return safe_name(base)
    except InvalidInput:
        return "document"


def _write_secret(path: Path, secret: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(secret)
