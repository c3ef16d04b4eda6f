"""The on-disk layout of an aift workspace, created on start.

data/          accepted uploads (documents, datasets); eval_tasks/: lm-eval task YAMLs
outputs/       training runs, exports
temp_uploads/  uploads being checked, before they are accepted
vector_index/  the embedded vector index (one qdrant-edge shard per collection)
metadata/      the SQLite database, the job queue, per-job state
logs/          server, worker and per-job logs
models/        converted and cached models
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from aift.config import Settings
from aift.errors import InvalidInput, StorageUnavailable, storage_problem

SUBDIRS = ("data", "outputs", "temp_uploads", "vector_index", "metadata", "logs", "models")

_SAFE_NAME = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace; `ensure()` creates the folders."""

    root: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> Workspace:
        return cls(settings.workspace)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def temp_uploads(self) -> Path:
        return self.root / "temp_uploads"

    @property
    def vector_index(self) -> Path:
        return self.root / "vector_index"

    @property
    def metadata(self) -> Path:
        return self.root / "metadata"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def eval_tasks(self) -> Path:
        """lm-evaluation-harness task YAMLs of this workspace (`data/eval_tasks/`)."""
        return self.data / "eval_tasks"

    def job_dir(self, job_id: str) -> Path:
        """Private state folder of one job (checkpoints of resumable work)."""
        return self.metadata / "jobs" / safe_name(job_id)

    def job_log(self, job_id: str) -> Path:
        """Log file of one job."""
        return self.logs / "jobs" / f"{safe_name(job_id)}.log"

    def ensure(self) -> Workspace:
        """Create every folder of the layout (idempotent); a workspace that cannot be
        written is refused here, saying so, before anything opens its database."""
        try:
            for name in SUBDIRS:
                (self.root / name).mkdir(parents=True, exist_ok=True)
            (self.logs / "jobs").mkdir(exist_ok=True)
            (self.metadata / "jobs").mkdir(exist_ok=True)
            probe = self.metadata / f".write-check-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            problem = storage_problem(exc)
            if problem is not None:
                raise StorageUnavailable(f"{self.root}: {problem.message}") from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise StorageUnavailable(
                    f"aift cannot write to the workspace {self.root} ({exc.strerror}): it "
                    "keeps its database, logs and index there. Make it writable for this "
                    "user or point AIFT_WORKSPACE elsewhere."
                ) from None
            raise
        return self

    def inside(self, path: Path) -> Path:
        """Resolve `path` and refuse it when it escapes the workspace (path tricks)."""
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise InvalidInput(f"Path {path} is outside the workspace {self.root}.")
        return resolved


def safe_name(name: str) -> str:
    """A file-system safe version of a user-given name: no separators, no dot-dot."""
    cleaned = _SAFE_NAME.sub("_", name).strip("._")
    if not cleaned:
        raise InvalidInput(
            f"Name {name!r} has no usable characters; use letters, digits, . _ or -."
        )
    return cleaned[:120]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
