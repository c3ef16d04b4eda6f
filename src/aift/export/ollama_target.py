"""Models created through Ollama's API: content-addressed blobs and `create` from them.

`ollama create` (and `aift export --ollama`) uploads a GGUF as a blob named by its
SHA-256, then asks to create a model from it with a template, system prompt and
parameters. aift keeps blobs under `models/.blobs/` (written aside and renamed only
when the digest matches) and makes each created model a folder in `models/` — the GGUF
(hard-linked from its blob when the file system allows) and the Modelfile — registered
at once, so aift can stand in for Ollama as the target of a hand-off.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from aift.errors import AiftError, InvalidInput, NotFound
from aift.export.modelfile import modelfile_text
from aift.models.registry import ModelRegistry
from aift.models.schemas import ModelFormat, ModelInfo, ModelKind, ModelSource
from aift.workspace import Workspace, safe_name

_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
DISK_MARGIN_BYTES = 256 * 1024 * 1024


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


class BlobStore:
    """Content-addressed files under `models/.blobs/`."""

    def __init__(self, workspace: Workspace) -> None:
        self.root = workspace.models / ".blobs"

    def path(self, digest: str) -> Path:
        return self.root / f"sha256-{parse_digest(digest)}"

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    async def put(self, digest: str, chunks: AsyncIterator[bytes], size: int | None) -> Path:
        """Store a blob from a stream of chunks; refused when the digest does not match
        or the disk cannot hold it (the partial file is removed either way)."""
        target = self.path(digest)
        self.root.mkdir(parents=True, exist_ok=True)
        if size is not None and shutil.disk_usage(self.root).free < size + DISK_MARGIN_BYTES:
            raise InsufficientStorage(
                f"Not enough disk space for a {size / 1e9:.2f} GB blob in {self.root}."
            )
        partial = target.with_name(target.name + f".{os.getpid()}.partial")
        hasher = hashlib.sha256()
        try:
            with open(partial, "wb") as handle:
                async for chunk in chunks:
                    hasher.update(chunk)
                    handle.write(chunk)
            if hasher.hexdigest() != parse_digest(digest):
                raise InvalidInput(
                    f"The uploaded data has digest sha256:{hasher.hexdigest()}, not {digest}."
                )
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target


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
    if target.exists():
        raise InvalidInput(f"A model folder named {name} already exists in {workspace.models}.")
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
        kind=ModelKind.gguf,
        fmt=ModelFormat.gguf,
        extra={"ollama_name": request.model, "system": request.system},
    )


def _modelfile(gguf_name: str, request: CreateRequest) -> str:
    return modelfile_text(
        gguf_name,
        request.template,
        [],
        system=request.system,
        parameters=dict(request.parameters or {}),
    )
