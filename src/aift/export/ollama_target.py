"""Models created through Ollama's API: content-addressed blobs and `create` from them.

`ollama create` (and `aift export --ollama`) uploads a GGUF as a blob named by its
SHA-256, then asks to create a model from it with a template, system prompt and
parameters. aift keeps blobs under `models/.blobs/` (written aside and renamed only
when the digest matches) and makes each created model a folder in `models/` — the GGUF
(hard-linked from its blob when the file system allows) and the Modelfile — registered
at once, so aift can stand in for Ollama as the target of a hand-off.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from aift.errors import AiftError, Conflict, InvalidInput, NotFound
from aift.export.modelfile import modelfile_text
from aift.models.registry import ModelRegistry
from aift.models.schemas import ModelFormat, ModelInfo, ModelKind, ModelSource
from aift.work.actor import current_actor
from aift.workspace import Workspace, file_sha256, safe_name

_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
DISK_MARGIN_BYTES = 256 * 1024 * 1024
CREATED_BY = "ollama_create"  # marks models made by /api/create (the only ones it replaces)


class InsufficientStorage(AiftError):
    status_code = 507
    code = "insufficient_storage"


class CreateRequest(BaseModel):
    """Ollama's /api/create body (the fields aift uses)."""

    model: str = Field(..., min_length=1, max_length=200)
    files: dict[str, str] = Field(default_factory=dict)
    adapters: dict[str, str] = Field(default_factory=dict)
    template: str | None = None
    system: str | None = None
    parameters: dict[str, Any] | None = None
    from_: str | None = Field(None, alias="from")
    quantize: str | None = None
    stream: bool = True
    replace: bool = Field(
        False,
        description="aift's addition: replace a model of this name that /api/create made "
        "before (any other model of the name is never replaced).",
    )

    model_config = {"populate_by_name": True}


def parse_digest(digest: str) -> str:
    """The hex of a `sha256:<64 hex>` digest (a user error otherwise)."""
    match = _DIGEST.match(digest.strip())
    if not match:
        raise InvalidInput(f"{digest!r} is not a digest; expected sha256:<64 hex digits>.")
    return match.group(1)


def folder_name(model: str) -> str:
    """The folder (and registry name) of an Ollama model name: `:latest` dropped, other
    tags joined with '-' (`smol:v2` → `smol-v2`)."""
    name = model.strip().removesuffix(":latest").replace(":", "-").replace("/", "-")
    return safe_name(re.sub(r"\.{2,}", "", name).strip("-"))


class BlobTooLarge(AiftError):
    status_code = 413
    code = "too_large"


class BlobStore:
    """Content-addressed files under `models/.blobs/`.

    Each upload writes its own exclusively created temp file, hashes what is on disk
    once it is complete, and links it into place only if no blob of that digest exists:
    two uploads under one digest can neither share a file nor replace a good blob.
    """

    def __init__(self, workspace: Workspace, max_bytes: int | None = None) -> None:
        self.root = workspace.models / ".blobs"
        self.max_bytes = max_bytes

    def path(self, digest: str) -> Path:
        return self.root / f"sha256-{parse_digest(digest)}"

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def _check_room(self, size: int | None) -> None:
        if size is None:
            return
        if self.max_bytes is not None and size > self.max_bytes:
            raise BlobTooLarge(self._too_large())
        if shutil.disk_usage(self.root).free < size + DISK_MARGIN_BYTES:
            raise InsufficientStorage(
                f"Not enough disk space for a {size / 1e9:.2f} GB blob in {self.root}."
            )

    def _too_large(self) -> str:
        limit = (self.max_bytes or 0) // (1024 * 1024)
        return f"The blob is larger than the {limit} MB limit (AIFT_MAX_BLOB_MB)."

    async def put(self, digest: str, chunks: AsyncIterator[bytes], size: int | None) -> Path:
        """Store a blob from a stream of chunks; refused when the data on disk has
        another digest, passes the size cap or does not fit the disk (its temp file is
        removed either way). A digest already stored is kept as it is."""
        hex_digest = parse_digest(digest)
        target = self.path(digest)
        self.root.mkdir(parents=True, exist_ok=True)
        self.sweep_partials()
        self._check_room(size)
        handle, name = tempfile.mkstemp(dir=self.root, prefix=f".{target.name}.", suffix=".partial")
        partial = Path(name)
        try:
            written = 0
            with os.fdopen(handle, "wb") as out:
                async for chunk in chunks:
                    written += len(chunk)
                    if self.max_bytes is not None and written > self.max_bytes:
                        raise BlobTooLarge(self._too_large())
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = file_sha256(partial)
            if actual != hex_digest:
                raise InvalidInput(f"The uploaded data has digest sha256:{actual}, not {digest}.")
            _link_exclusive(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    def sweep_partials(self, older_than_seconds: float = 3600.0) -> int:
        """Remove temp files of uploads that died mid-way (a crash, a killed server)."""
        removed = 0
        cutoff = time.time() - older_than_seconds
        for stale in self.root.glob(".*.partial"):
            try:
                if stale.stat().st_mtime < cutoff:
                    stale.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def _link_exclusive(source: Path, target: Path) -> None:
    """Put `source` at `target` unless a file is there already (then keep that one:
    it was verified against the same digest)."""
    try:
        os.link(source, target)
    except FileExistsError:
        return
    except OSError:  # no hard links on this file system: an exclusive rename instead
        if not target.exists():
            os.replace(source, target)


def create_model(
    request: CreateRequest, blobs: BlobStore, registry: ModelRegistry, workspace: Workspace
) -> ModelInfo:
    """Make a GGUF model from uploaded blobs (with its Modelfile) and register it."""
    if request.from_ and not request.files:
        raise InvalidInput(
            "aift creates models from uploaded GGUF files; `from` another model is not supported."
        )
    if request.adapters:
        raise InvalidInput("Creating a model with adapters is not supported; merge them first.")
    if request.quantize:
        raise InvalidInput("Quantize while exporting instead (aift export --quant).")
    ggufs = {name: digest for name, digest in request.files.items() if name.endswith(".gguf")}
    if len(ggufs) != 1:
        raise InvalidInput("Send exactly one .gguf file in `files`.")
    ((file_name, digest),) = ggufs.items()
    source = blobs.path(digest)
    if not source.is_file():
        raise NotFound(f"Blob {digest} was not uploaded; POST it to /api/blobs/{digest} first.")
    name = folder_name(request.model)
    target = workspace.models / name
    _make_room(name, target, request.replace, registry)
    staging = workspace.models / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        gguf = staging / safe_name(Path(file_name).name)
        try:
            os.link(source, gguf)
        except OSError:
            shutil.copy(source, gguf)
        (staging / "Modelfile").write_text(_modelfile(gguf.name, request))
        staging.replace(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return registry.register(
        name,
        target,
        source=ModelSource.workspace,
        owner=current_actor.get().user_id,
        kind=ModelKind.gguf,
        fmt=ModelFormat.gguf,
        extra={"ollama_name": request.model, "system": request.system, "created_by": CREATED_BY},
    )


def _make_room(name: str, target: Path, replace: bool, registry: ModelRegistry) -> None:
    """Refuse a name that is taken (409), unless the caller asks to replace a model
    that /api/create made: the packaged models, fine-tunes and exports are never
    replaced through this door."""
    try:
        existing = registry.get(name)
    except NotFound:
        existing = None
    if existing is None and not target.exists():
        return
    created_here = existing is not None and existing.details.get("created_by") == CREATED_BY
    if not (replace and created_here):
        hint = ' Send "replace": true to replace it.' if created_here else ""
        raise Conflict(f"A model named {name!r} already exists.{hint}")
    registry.forget(name)
    shutil.rmtree(target, ignore_errors=True)


def _modelfile(gguf_name: str, request: CreateRequest) -> str:
    return modelfile_text(
        gguf_name,
        request.template,
        [],
        system=request.system,
        parameters=dict(request.parameters or {}),
    )
