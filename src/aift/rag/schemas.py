"""Schemas of knowledge bases and their documents, shared by the API, the CLI and the jobs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ChunkingSettings(BaseModel):
    """How documents are cut: by tokens of the knowledge base's embedding model."""

    model_config = ConfigDict(extra="forbid")

    chunk_tokens: int = Field(512, ge=32, le=8192, description="Tokens per chunk (upper bound).")
    overlap_tokens: int = Field(128, ge=0, le=4096, description="Tokens shared by neighbours.")

    @model_validator(mode="after")
    def _overlap_smaller(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError("overlap_tokens must be smaller than chunk_tokens")
        return self


class KnowledgeBaseCreate(BaseModel):
    """What a user gives to create a knowledge base."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=80)
    description: str = Field("", max_length=2000)
    embedding_model: str | None = Field(
        None, description="Default: AIFT_DEFAULT_EMBEDDING_MODEL (or its offline stand-in)."
    )
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)


class KnowledgeBaseInfo(BaseModel):
    """A knowledge base, bound to one embedding model (name + dimension)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str
    embedding_model: str = Field(..., description="The model actually used.")
    embedding_requested: str = Field(..., description="What was asked for.")
    dimension: int
    chunking: ChunkingSettings
    effective_chunk_tokens: int = Field(
        ..., description="Chunk size after the model's limit, prefix and special tokens."
    )
    generation: int = Field(..., description="Bumped by each re-index.")
    status: str = Field(..., description="ready or reindexing")
    documents: int = 0
    chunks: int = 0
    points: int | None = Field(None, description="Points in the active index generation.")
    warning: str | None = None
    created_at: datetime
    updated_at: datetime


class DocumentStatus(StrEnum):
    queued = "queued"
    parsing = "parsing"
    embedding = "embedding"
    indexing = "indexing"  # chunks stored, waiting for the vector index owner
    indexed = "indexed"
    failed = "failed"
    needs_password = "needs_password"


class DocumentInfo(BaseModel):
    """One uploaded file of a knowledge base and how its ingestion went."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kb_id: str
    name: str
    content_type: str
    sha256: str
    size_bytes: int
    pages: int | None = None
    ocr_pages: int = 0
    chunks: int = 0
    status: DocumentStatus
    error: str | None = None
    job_id: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class RejectedFile(BaseModel):
    """A file of an upload that was not accepted, and why."""

    name: str
    reason: str


class UploadResult(BaseModel):
    """What happened to each file of an upload batch."""

    accepted: list[DocumentInfo] = Field(default_factory=list)
    duplicates: list[DocumentInfo] = Field(
        default_factory=list, description="Already in the knowledge base (same content)."
    )
    rejected: list[RejectedFile] = Field(default_factory=list)
    job_id: str | None = Field(None, description="The ingestion job of the accepted files.")


class ReindexRequest(BaseModel):
    """Re-embed every document (e.g. with another embedding model or chunking)."""

    model_config = ConfigDict(extra="forbid")

    embedding_model: str | None = Field(None, description="Default: keep the current model.")
    chunking: ChunkingSettings | None = None


class IngestJobConfig(BaseModel):
    """The job `rag.ingest`: these documents of this knowledge base."""

    kb_id: str
    document_ids: list[str] = Field(..., min_length=1)
    password: str | None = Field(None, description="For encrypted PDFs of this batch.")


class ReindexJobConfig(BaseModel):
    """The job `rag.reindex`: build generation `generation` with these settings."""

    kb_id: str
    generation: int
    embedding_model: str
    embedding_requested: str
    dimension: int
    chunking: ChunkingSettings
