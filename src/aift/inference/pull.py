"""Fetching models: from a model hub into the cache, or into a remote Ollama server.

Runs as the `models.pull` job (API, UI) or in the foreground (`aift models pull`); both
report progress through the same callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aift.config import Settings
from aift.errors import InvalidInput, ModelUnavailable, ServiceUnavailable
from aift.inference.schemas import PullRequest
from aift.jobs.context import JobContext
from aift.jobs.kinds import job_kind

if TYPE_CHECKING:
    from aift.models.registry import ModelRegistry

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


def pull(registry: ModelRegistry, ref: str, progress: Progress) -> dict[str, Any]:
    """Fetch `ref`; return where it landed. Raise a user error saying what went wrong."""
    from aift.inference.engines.ollama import PREFIX

    if ref.startswith(PREFIX):
        return _pull_ollama(registry.settings, ref.removeprefix(PREFIX), progress)
    return _pull_hub(registry, ref, progress)


def _pull_ollama(settings: Settings, name: str, progress: Progress) -> dict[str, Any]:
    import ollama

    from aift.inference.engines.ollama import client_for

    if not settings.ollama_url:
        raise InvalidInput("No Ollama server is configured: set AIFT_OLLAMA_URL.")
    name = name or settings.ollama_default_model
    status = "starting"
    try:
        for update in client_for(settings.ollama_url).pull(name, stream=True):
            status = update.status or status
            fraction = (update.completed or 0) / update.total if update.total else 0.0
            progress(min(fraction, 0.99), status)
    except ollama.ResponseError as exc:
        raise ModelUnavailable(f"Ollama could not pull {name!r}: {exc.error}") from None
    except (ConnectionError, OSError) as exc:
        raise ServiceUnavailable(f"Cannot reach Ollama at {settings.ollama_url}: {exc}") from None
    progress(1.0, "success")
    return {"model": f"ollama/{name}", "source": "ollama", "status": status}


def _pull_hub(registry: ModelRegistry, ref: str, progress: Progress) -> dict[str, Any]:
    progress(0.0, f"fetching {ref}")
    resolved = registry.resolver.resolve(ref, allow_download=True)
    progress(0.95, f"found {resolved.name} ({resolved.source.value})")
    registry.scan()
    progress(1.0, "success")
    return {"model": resolved.name, "source": resolved.source.value, "path": resolved.path}


@job_kind("models.pull", config=PullRequest, resumable=True)
def pull_job(ctx: JobContext, config: PullRequest) -> dict[str, Any]:
    """Pull a model."""
    return pull(ctx.runtime.models, config.model, lambda f, m: ctx.progress(f, m))
