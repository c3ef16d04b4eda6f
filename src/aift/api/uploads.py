"""Receiving uploaded files: streamed to temp_uploads/ under a size limit."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import UploadFile

from aift.errors import AiftError

CHUNK = 1 << 20


class UploadTooLarge(AiftError):
    status_code = 413
    code = "too_large"


async def save_upload(upload: UploadFile, folder: Path, limit_bytes: int) -> Path:
    """Copy an upload to a fresh file in `folder`, refusing it past `limit_bytes`."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"upload-{uuid.uuid4().hex}"
    written = 0
    try:
        with open(target, "wb") as out:
            while chunk := await upload.read(CHUNK):
                written += len(chunk)
                if written > limit_bytes:
                    raise UploadTooLarge(
                        f"{upload.filename or 'The file'} is larger than the "
                        f"{limit_bytes // (1024 * 1024)} MB limit (AIFT_MAX_UPLOAD_MB)."
                    )
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
