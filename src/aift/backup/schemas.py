"""What a backup holds and what a restore did."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

BACKUP_FORMAT = 1
MANIFEST = "aift-backup.json"


class BackupManifest(BaseModel):
    """The description written into every backup folder (`aift-backup.json`)."""

    format: int = BACKUP_FORMAT
    aift_version: str
    created_at: datetime
    workspace: str = Field(..., description="The workspace the backup was taken from.")
    database_revision: str | None = Field(
        None, description="The schema migration the database was at (restores migrate up)."
    )
    counts: dict[str, int] = Field(
        default_factory=dict, description="Models, datasets, knowledge bases, documents, chunks."
    )
    files: int = 0
    bytes: int = 0
    missing: list[str] = Field(
        default_factory=list,
        description="Files deleted while the backup ran (their rows may point at nothing).",
    )
    vectors: str = Field(
        "re-embed",
        description="How the vector index comes back: chunks are kept in the database and "
        "embedded again after a restore (job rag.restore_vectors).",
    )


class RestoreResult(BaseModel):
    """What `aift restore` did to the new workspace."""

    workspace: str
    manifest: BackupManifest
    database_revision: str | None
    paths_rewritten: int
    jobs_interrupted: int
    chunks_to_embed: int
    job_id: str | None = Field(None, description="The rag.restore_vectors job, when queued.")
