"""Training datasets: upload (multipart), list, show with preview, delete."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.api.routes import sharing
from aift.api.uploads import save_upload
from aift.auth.schemas import ShareGrant, ShareInfo
from aift.errors import InvalidInput
from aift.runtime import Runtime
from aift.training.schemas import (
    DatasetFormat,
    DatasetInfo,
    DatasetOptions,
    DatasetReport,
    DocumentDatasetRequest,
    DocumentDatasetStarted,
    DraftCounts,
    DraftEdit,
    DraftPage,
    DraftReview,
    DraftRow,
    DraftStatus,
)

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


def _options(**values: object) -> DatasetOptions:
    try:
        return DatasetOptions(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        details = [
            {"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()
        ]
        raise InvalidInput(
            "Invalid dataset options — "
            + "; ".join(f"{d['field']}: {d['message']}" for d in details),
            details=details,
        ) from None


@router.post("", response_model=DatasetReport, status_code=201)
async def upload_dataset(
    request: Request,
    file: UploadFile = File(..., description="JSONL, JSON, CSV or Parquet."),
    val_file: UploadFile | None = File(None, description="Validation rows (instead of a split)."),
    name: str | None = Form(None),
    format: DatasetFormat | None = Form(None),
    val_ratio: float | None = Form(None),
    seed: int | None = Form(None),
    skip_invalid: bool | None = Form(None),
    base_model: str | None = Form(None),
    max_length: int | None = Form(None),
) -> DatasetReport:
    """Validate every row, split train/validation, and store the dataset."""
    runtime: Runtime = get_runtime(request)
    options = _options(
        name=name,
        format=format,
        val_ratio=val_ratio,
        seed=seed,
        skip_invalid=skip_invalid,
        base_model=base_model,
        max_length=max_length,
    )
    limit = runtime.settings.max_upload_mb * 1024 * 1024
    temp = runtime.workspace.temp_uploads
    saved = await save_upload(file, temp, limit)
    val_saved = await save_upload(val_file, temp, limit) if val_file is not None else None
    try:
        return await run_in_threadpool(
            runtime.datasets.add, saved, file.filename or "dataset", options, val_saved
        )
    finally:
        saved.unlink(missing_ok=True)
        if val_saved is not None:
            val_saved.unlink(missing_ok=True)


@router.post("/from-documents", response_model=DocumentDatasetStarted, status_code=202)
async def from_documents(
    request: DocumentDatasetRequest, runtime: Runtime = Depends(get_runtime)
) -> DocumentDatasetStarted:
    """Write a dataset from a knowledge base's documents: a job writes questions with a
    served model and keeps the answers their passages support; the rows wait for review
    (`GET /{id}/rows`), and only accepted rows train."""
    return await run_in_threadpool(runtime.document_datasets.submit, request)


@router.get("", response_model=list[DatasetInfo])
async def list_datasets(runtime: Runtime = Depends(get_runtime)) -> list[DatasetInfo]:
    return await run_in_threadpool(runtime.datasets.list)


@router.get("/{dataset_id}", response_model=DatasetReport)
async def get_dataset(
    dataset_id: str,
    base_model: str | None = Query(None, description="Render the preview for this model."),
    runtime: Runtime = Depends(get_runtime),
) -> DatasetReport:
    """The dataset with its first examples rendered by the model's chat template."""
    info = await run_in_threadpool(runtime.datasets.get, dataset_id)
    preview = await run_in_threadpool(runtime.datasets.preview, dataset_id, base_model)
    return DatasetReport(dataset=info, preview=preview)


@router.delete("/{dataset_id}", status_code=204)
async def delete_dataset(dataset_id: str, runtime: Runtime = Depends(get_runtime)) -> None:
    await run_in_threadpool(runtime.datasets.delete, dataset_id)


@router.get("/{dataset_id}/rows", response_model=DraftPage)
async def list_rows(
    dataset_id: str,
    status: DraftStatus | None = Query(None, description="Only rows with this status."),
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=500),
    runtime: Runtime = Depends(get_runtime),
) -> DraftPage:
    """The generated rows of a dataset written from documents, each with its passage."""
    return await run_in_threadpool(runtime.drafts.page, dataset_id, status, offset, limit)


@router.post("/{dataset_id}/rows/review", response_model=DraftCounts)
async def review_rows(
    dataset_id: str, review: DraftReview, runtime: Runtime = Depends(get_runtime)
) -> DraftCounts:
    """Accept or reject rows (listed, or all of a status); the dataset's files then
    hold the accepted rows."""
    return await run_in_threadpool(runtime.drafts.review, dataset_id, review)


@router.patch("/{dataset_id}/rows/{row_id}", response_model=DraftRow)
async def edit_row(
    dataset_id: str, row_id: int, edit: DraftEdit, runtime: Runtime = Depends(get_runtime)
) -> DraftRow:
    """Correct a row's question or answer (it is then accepted unless `status` says)."""
    return await run_in_threadpool(runtime.drafts.edit, dataset_id, row_id, edit)


@router.get("/{dataset_id}/shares", response_model=list[ShareInfo])
async def list_shares(dataset_id: str, runtime: Runtime = Depends(get_runtime)) -> list[ShareInfo]:
    """Who the dataset is shared with (its owner and admins may look)."""
    return await sharing.shares_of(runtime, "dataset", runtime.datasets.owned, dataset_id)


@router.put("/{dataset_id}/shares", response_model=ShareInfo)
async def share(
    dataset_id: str, grant: ShareGrant, runtime: Runtime = Depends(get_runtime)
) -> ShareInfo:
    """Share with a user (by email) or a group (by name), to read (preview, evaluate) or
    to write (train on it, delete it)."""
    return await sharing.grant(runtime, "dataset", runtime.datasets.owned, dataset_id, grant)


@router.delete("/{dataset_id}/shares/{grantee_type}/{grantee_id}", status_code=204)
async def unshare(
    dataset_id: str,
    grantee_type: Literal["user", "group"],
    grantee_id: str,
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Stop sharing with a user or group."""
    owned = runtime.datasets.owned
    return await sharing.revoke(runtime, "dataset", owned, dataset_id, grantee_type, grantee_id)
