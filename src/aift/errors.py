"""The project's own exceptions for errors a user can cause.

Each carries a message that says what went wrong and what to do. The API maps them to
a 4xx status (`status_code`) with one JSON shape; the CLI prints the message and exits
non-zero. Anything not derived from `AiftError` is a bug and becomes a 500.
"""

from __future__ import annotations

import errno
from typing import Any


class AiftError(Exception):
    """Base class: an error the user can fix, with a stable machine-readable code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(AiftError):
    """Settings or a configuration file are invalid."""

    code = "invalid_config"


class InvalidInput(AiftError):
    """A request or command argument is well-formed but not acceptable."""

    status_code = 422
    code = "invalid_input"


class NotFound(AiftError):
    """The named object (job, model, …) does not exist."""

    status_code = 404
    code = "not_found"


class Conflict(AiftError):
    """The request is valid but clashes with the current state (e.g. cancel a done job)."""

    status_code = 409
    code = "conflict"


class Forbidden(AiftError):
    """The user may see this but not change it (e.g. shared with them to read only)."""

    status_code = 403
    code = "forbidden"


class TooMany(AiftError):
    """A per-user limit is reached (queued or running jobs); retry once one ends."""

    status_code = 429
    code = "too_many"


class ModelUnavailable(AiftError):
    """A model reference cannot be resolved to local files."""

    status_code = 404
    code = "model_unavailable"


class CapabilityMissing(AiftError):
    """The feature needs hardware or an optional extra this machine does not have."""

    status_code = 501
    code = "capability_missing"


class ServiceUnavailable(AiftError):
    """A backing service (job queue, database, model hub) cannot be reached right now."""

    status_code = 503
    code = "service_unavailable"


class StorageUnavailable(AiftError):
    """The workspace's disk is full or read-only: nothing can be written until it is fixed."""

    status_code = 507
    code = "insufficient_storage"


_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_FULL_TEXT = ("database or disk is full", "no space left", "disk quota exceeded")
_READ_ONLY_TEXT = ("readonly database", "read-only file system")


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, what it wraps (SQLAlchemy's `orig`) and what caused it."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen) or len(seen) > 16:
            continue
        seen.append(item)
        todo += [getattr(item, "orig", None), item.__cause__, item.__context__]
    return seen


def storage_problem(exc: BaseException) -> StorageUnavailable | None:
    """A failed write because the disk is full or the workspace read-only, as an error
    that says so and what to do; None when `exc` is something else."""
    for cause in _causes(exc):
        text = str(cause).lower()
        number = cause.errno if isinstance(cause, OSError) else None
        if number in _FULL_ERRNOS or any(t in text for t in _FULL_TEXT):
            return StorageUnavailable(
                "The workspace's disk is full (or its quota is used up): free space, then "
                "try again. Nothing already stored was changed."
            )
        if number == errno.EROFS or any(t in text for t in _READ_ONLY_TEXT):
            return StorageUnavailable(
                "The workspace is read-only: nothing can be saved until it is writable "
                "again (check the mount or the folder's permissions). Reading still works."
            )
    return None
