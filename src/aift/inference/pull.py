"""Fetching models: from a model hub into the cache, or into a remote Ollama server.

Runs as the `models.pull` job (`aift.tasks.models`: API, UI) or in the foreground
(`aift models pull`); both report progress through the same callback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aift.config import Settings, redact_url
from aift.errors import InvalidInput, ModelUnavailable, ServiceUnavailable

if TYPE_CHECKING:
    from aift.models.registry import ModelRegistry

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


_OLLAMA_PART = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
_OLLAMA_HOST = re.compile(r"^[a-z0-9][a-z0-9.-]{0,252}(:[0-9]{1,5})?$")
_OLLAMA_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,79}$")


def check_ollama_name(name: str, registries: list[str]) -> None:
    """Refuse an Ollama model name that would make the Ollama server fetch from a
    registry not allowed by AIFT_OLLAMA_REGISTRIES (`host/namespace/model:tag`), or that
    is no model name at all (a URL, credentials, path tricks)."""
    if not name:
        return
    head, _, last = name.rpartition("/")
    model, _, tag = last.partition(":")
    parts = [*head.split("/"), model] if head else [model]
    host_ok = len(parts) < 3 or bool(_OLLAMA_HOST.match(parts[0].lower()))
    names = parts[1:] if len(parts) == 3 else parts
    bad = (
        len(parts) > 3
        or not host_ok
        or (":" in last and not _OLLAMA_TAG.match(tag))
        or any(not _OLLAMA_PART.match(p.lower()) or p in {".", ".."} for p in names)
    )
    if "://" in name or "@" in name or bad:
        raise InvalidInput(
            f"{name[:100]!r} is not an Ollama model name ([registry/][namespace/]model[:tag])."
        )
    if len(parts) == 3 and parts[0].lower() not in {r.lower() for r in registries}:
        raise InvalidInput(
            f"Pulling from the registry {parts[0]!r} is not allowed; allowed: "
            f"{', '.join(registries) or 'none'} (AIFT_OLLAMA_REGISTRIES)."
        )


def check_pull_ref(settings: Settings, ref: str) -> None:
    """A user error for a pull reference that must not be fetched (before any job)."""
    from aift.inference.engines.ollama import PREFIX

    if ref.startswith(PREFIX):
        check_ollama_name(ref.removeprefix(PREFIX), settings.ollama_registries)


def pull(registry: ModelRegistry, ref: str, progress: Progress) -> dict[str, Any]:
    """Fetch `ref`; return where it landed. Raise a user error saying what went wrong."""
    from aift.inference.engines.ollama import PREFIX

    check_pull_ref(registry.settings, ref)
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
        url = settings.ollama_url
        raise ServiceUnavailable(redact_url(f"Cannot reach Ollama at {url}: {exc}", url)) from None
    progress(1.0, "success")
    return {"model": f"ollama/{name}", "source": "ollama", "status": status}


def _pull_hub(registry: ModelRegistry, ref: str, progress: Progress) -> dict[str, Any]:
    progress(0.0, f"fetching {ref}")
    resolved = registry.resolver.resolve(ref, allow_download=True)
    progress(0.95, f"found {resolved.name} ({resolved.source.value})")
    registry.scan()
    progress(1.0, "success")
    return {"model": resolved.name, "source": resolved.source.value, "path": resolved.path}
