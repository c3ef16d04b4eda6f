"""Knowledge bases and their documents: create, list, show, delete, upload, re-index,
search. Ingestion runs as a job; watch it through /api/v1/jobs and /ws/jobs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any, Literal

from fastapi import (
    APIRouter,
    Body,
    Depends,
    File,
    Form,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
)
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.api.responses import SSE_RESPONSE
from aift.api.routes import sharing
from aift.api.uploads import save_upload
from aift.auth.schemas import ShareGrant, ShareInfo
from aift.errors import AiftError, InvalidInput
from aift.rag.schemas import (
    AnswerEvaluation,
    AskRequest,
    AskResponse,
    DocumentInfo,
    HistoryEntry,
    KbEvaluation,
    KnowledgeBaseCreate,
    KnowledgeBaseInfo,
    PageView,
    ReindexRequest,
    SearchRequest,
    SearchResponse,
    UploadResult,
)
from aift.runtime import Runtime
from aift.work.schemas import JobInfo

router = APIRouter(prefix="/api/v1/kb", tags=["knowledge bases"])


@router.post("", response_model=KnowledgeBaseInfo, status_code=201)
async def create_kb(
    request: KnowledgeBaseCreate, runtime: Runtime = Depends(get_runtime)
) -> KnowledgeBaseInfo:
    """A knowledge base bound to an embedding model and chunking settings."""
    return await run_in_threadpool(runtime.knowledge.create, request)


@router.get("", response_model=list[KnowledgeBaseInfo])
async def list_kbs(runtime: Runtime = Depends(get_runtime)) -> list[KnowledgeBaseInfo]:
    return await run_in_threadpool(runtime.knowledge.list)


@router.get("/{kb}", response_model=KnowledgeBaseInfo)
async def get_kb(kb: str, runtime: Runtime = Depends(get_runtime)) -> KnowledgeBaseInfo:
    return await run_in_threadpool(runtime.knowledge.get, kb)


@router.delete("/{kb}", status_code=204)
async def delete_kb(kb: str, runtime: Runtime = Depends(get_runtime)) -> Response:
    """The knowledge base with its documents, files, chunks and vectors."""
    await run_in_threadpool(runtime.knowledge.delete, kb)
    return Response(status_code=204)


@router.post("/{kb}/documents", response_model=UploadResult, status_code=202)
async def upload_documents(
    kb: str,
    request: Request,
    files: list[UploadFile] = File(..., description="PDF, plain text or Markdown files."),
    password: str | None = Form(None, description="For encrypted PDFs in this upload."),
) -> UploadResult:
    """Validate each file (type by content, size, duplicates) and queue their ingestion."""
    runtime: Runtime = get_runtime(request)
    await run_in_threadpool(runtime.knowledge.get, kb)  # unknown knowledge base: 404 first
    if len(files) > runtime.settings.max_upload_files:
        raise InvalidInput(
            f"{len(files)} files in one upload; the limit is "
            f"{runtime.settings.max_upload_files} (AIFT_MAX_UPLOAD_FILES)."
        )
    limit = runtime.settings.max_upload_mb * 1024 * 1024
    saved = []
    try:
        for upload in files:
            saved.append(
                (
                    await save_upload(upload, runtime.workspace.temp_uploads, limit),
                    upload.filename or "document",
                )
            )
        return await run_in_threadpool(runtime.knowledge.add_files, kb, saved, password)
    finally:
        for path, _ in saved:
            path.unlink(missing_ok=True)  # accepted files were moved to data/ already


@router.get("/{kb}/documents", response_model=list[DocumentInfo])
async def list_documents(
    kb: str,
    status: str | None = Query(None, description="Only documents with this status."),
    runtime: Runtime = Depends(get_runtime),
) -> list[DocumentInfo]:
    return await run_in_threadpool(runtime.knowledge.documents, kb, status)


@router.get("/{kb}/documents/{doc_id}", response_model=DocumentInfo)
async def get_document(
    kb: str, doc_id: str, runtime: Runtime = Depends(get_runtime)
) -> DocumentInfo:
    return await run_in_threadpool(runtime.knowledge.document, kb, doc_id)


@router.delete("/{kb}/documents/{doc_id}", status_code=204)
async def delete_document(
    kb: str, doc_id: str, runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The document's rows, vectors and files."""
    await run_in_threadpool(runtime.knowledge.delete_document, kb, doc_id)
    return Response(status_code=204)


@router.get("/{kb}/documents/{doc_id}/pages/{page}", response_model=PageView)
async def page_view(
    kb: str,
    doc_id: str,
    page: int = Path(..., ge=1, le=100_000),
    chunk_id: str | None = Query(None, max_length=64, description="Highlight this chunk."),
    runtime: Runtime = Depends(get_runtime),
) -> PageView:
    """A page as a citation opens it: its image URL and the boxes of the chunk's passage."""
    return await run_in_threadpool(runtime.knowledge.page_view, kb, doc_id, page, chunk_id)


@router.get(
    "/{kb}/documents/{doc_id}/pages/{page}/image",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}},
)
async def page_image(
    kb: str,
    doc_id: str,
    page: int = Path(..., ge=1, le=100_000),
    runtime: Runtime = Depends(get_runtime),
) -> FileResponse:
    """The page rendered as a PNG (110 dpi)."""
    image = await run_in_threadpool(runtime.knowledge.page_image, kb, doc_id, page)
    return FileResponse(
        image, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )


@router.post("/{kb}/documents/{doc_id}/retry", response_model=DocumentInfo, status_code=202)
async def retry_document(
    kb: str,
    doc_id: str,
    password: str | None = Body(None, embed=True),
    runtime: Runtime = Depends(get_runtime),
) -> DocumentInfo:
    """Ingest a failed document again, e.g. with the password of an encrypted PDF."""
    return await run_in_threadpool(runtime.knowledge.retry, kb, doc_id, password)


@router.post("/{kb}/evaluate", response_model=KbEvaluation)
async def evaluate_retrieval(
    kb: str,
    request: Request,
    file: UploadFile = File(
        ..., description="JSONL, JSON or CSV: question, document, page, answer."
    ),
    mode: Literal["hybrid", "dense", "keywords"] = Form("hybrid"),
    rerank: bool = Form(True),
) -> KbEvaluation:
    """Search each question of the file (at most 200) and report recall@k, MRR and nDCG
    with the rank of each question's first relevant chunk."""
    runtime: Runtime = get_runtime(request)
    await run_in_threadpool(runtime.knowledge.get, kb)
    saved = await save_upload(file, runtime.workspace.temp_uploads, 5 * 1024 * 1024)
    try:
        settings = SearchRequest(query="-", mode=mode, rerank=rerank)
        name = file.filename or "questions.jsonl"
        return await run_in_threadpool(runtime.knowledge.evaluate, kb, saved, name, settings)
    finally:
        saved.unlink(missing_ok=True)


@router.get("/{kb}/shares", response_model=list[ShareInfo])
async def list_shares(kb: str, runtime: Runtime = Depends(get_runtime)) -> list[ShareInfo]:
    """Who the knowledge base is shared with (its owner and admins may look)."""
    return await sharing.shares_of(runtime, "kb", runtime.knowledge.owned, kb)


@router.put("/{kb}/shares", response_model=ShareInfo)
async def share(kb: str, grant: ShareGrant, runtime: Runtime = Depends(get_runtime)) -> ShareInfo:
    """Share with a user (by email) or a group (by name), to read (search, ask, chat)
    or to write (upload, delete); sharing again changes the access."""
    return await sharing.grant(runtime, "kb", runtime.knowledge.owned, kb, grant)


@router.delete("/{kb}/shares/{grantee_type}/{grantee_id}", status_code=204)
async def unshare(
    kb: str,
    grantee_type: Literal["user", "group"],
    grantee_id: str,
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Stop sharing with a user or group: they lose it at once."""
    owned = runtime.knowledge.owned
    return await sharing.revoke(runtime, "kb", owned, kb, grantee_type, grantee_id)


@router.post(
    "/{kb}/evaluate-answers",
    response_model=AnswerEvaluation | JobInfo,
    responses={202: {"model": JobInfo, "description": "A large file: queued as a job."}},
)
async def evaluate_answers(
    kb: str,
    request: Request,
    file: UploadFile = File(
        ..., description="JSONL, JSON or CSV: question, answer(s), document, page, unanswerable."
    ),
    modes: str = Form("generate,extractive", description="Answer modes, comma-separated."),
    model: str | None = Form(None),
    context: Literal["sentences", "excerpts", "chunks"] = Form("sentences"),
    unsupported: Literal["flag", "not_found"] = Form("flag"),
    background: bool = Form(False, description="Queue as a job even when small."),
) -> AnswerEvaluation | JobInfo | JSONResponse:
    """Ask each question of the file in each answer mode and score the answers:
    contains/F1, first citation on the expected page, citation recall, citations on
    target, not-found handling, first-token and total time. Up to 50 questions (500 when
    every mode is extractive) are answered in the request; a larger file (up to 5,000)
    or `background` is queued as a job (202, its result is the same evaluation)."""
    runtime: Runtime = get_runtime(request)
    settings = _answer_settings(modes, model, context, unsupported)
    await run_in_threadpool(runtime.knowledge.get, kb)
    saved = await save_upload(file, runtime.workspace.temp_uploads, 20 * 1024 * 1024)
    try:
        name = file.filename or "questions.jsonl"
        result = await runtime.knowledge.evaluate_answers(
            kb, saved, name, settings, background=background
        )
    finally:
        saved.unlink(missing_ok=True)
    if isinstance(result, JobInfo):
        return JSONResponse(result.model_dump(mode="json"), status_code=202)
    return result


def _answer_settings(
    modes: str, model: str | None, context: str, unsupported: str
) -> dict[str, AskRequest]:
    """One ask request per answer mode named (the query is each question's)."""
    names = [m.strip() for m in modes.split(",") if m.strip()]
    if not names or len(names) > 3 or len(set(names)) != len(names):
        raise InvalidInput("modes: name one to three answer modes once each.")
    try:
        return {
            name: AskRequest.model_validate(
                {
                    "query": "-",
                    "answer_mode": name,
                    "model": model,
                    "context": context,
                    "unsupported": unsupported,
                }
            )
            for name in names
        }
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(f"modes: {first['msg']} ({first.get('input')!r})") from None


@router.post("/{kb}/reindex", response_model=JobInfo, status_code=202)
async def reindex(
    kb: str, request: ReindexRequest, runtime: Runtime = Depends(get_runtime)
) -> JobInfo:
    """Re-embed every document into a new generation (search uses the old one meanwhile)."""
    return await run_in_threadpool(runtime.knowledge.reindex, kb, request)


@router.post("/{kb}/search", response_model=SearchResponse)
async def search_kb(
    kb: str, request: SearchRequest, runtime: Runtime = Depends(get_runtime)
) -> SearchResponse:
    """Hybrid (or dense / keyword) search, fused and re-ranked; every score shown."""
    return await run_in_threadpool(lambda: runtime.knowledge.search(kb, request, record=True))


@router.post("/{kb}/ask", response_model=AskResponse, responses=SSE_RESPONSE)
async def ask_kb(
    kb: str, request: AskRequest, runtime: Runtime = Depends(get_runtime)
) -> AskResponse | StreamingResponse:
    """An answer from the knowledge base citing its sources as [n]; with `stream: true`
    server-sent events: `sources`, `token`…, `done` (the checked answer)."""
    if not request.stream:
        return await runtime.knowledge.ask(kb, request)
    prepared = await run_in_threadpool(runtime.knowledge.prepare_answer, kb, request)
    stream = runtime.knowledge.answer_events(prepared)
    return StreamingResponse(_sse(stream), media_type="text/event-stream")


async def _sse(stream: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    try:
        async for item in stream:
            yield f"event: {item['event']}\ndata: {json.dumps(item['data'])}\n\n"
    except AiftError as exc:
        yield f"event: error\ndata: {json.dumps({'message': str(exc)})}\n\n"


history_router = APIRouter(prefix="/api/v1/history", tags=["search history"])


@history_router.get("", response_model=list[HistoryEntry])
async def list_history(
    kb: str | None = Query(None, description="Only this knowledge base (id or name)."),
    kind: Literal["search", "ask"] | None = Query(None, description="Searches or questions."),
    q: str | None = Query(None, max_length=200, description="Only queries containing this."),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    runtime: Runtime = Depends(get_runtime),
) -> list[HistoryEntry]:
    """Searches and questions, newest first."""
    return await run_in_threadpool(
        partial(runtime.knowledge.history_of, kb, limit, kind=kind, query=q, offset=offset)
    )


@history_router.get("/{entry_id}", response_model=HistoryEntry)
async def get_history(entry_id: str, runtime: Runtime = Depends(get_runtime)) -> HistoryEntry:
    return await run_in_threadpool(runtime.knowledge.history.get, entry_id)


@history_router.delete("/{entry_id}", status_code=204)
async def delete_history(entry_id: str, runtime: Runtime = Depends(get_runtime)) -> Response:
    await run_in_threadpool(runtime.knowledge.history.delete, entry_id)
    return Response(status_code=204)
