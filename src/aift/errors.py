"""The project's own exceptions for errors a user can cause.

Each carries a message that says what went wrong and what to do. The API maps them to
a 4xx status (`status_code`) with one JSON shape; the CLI prints the message and exits
non-zero. Anything not derived from `AiftError` is a bug and becomes a 500.
"""

from __future__ import annotations

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
