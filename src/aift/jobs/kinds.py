"""Registry of job kinds: name → handler, config schema, resumability.

A capability registers its kinds with `@job_kind(...)` in a module listed in
`BUILTIN_KIND_MODULES`; the worker and the API import those modules once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from aift.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from aift.jobs.context import JobContext

Handler = Callable[["JobContext", Any], dict[str, Any] | None]

BUILTIN_KIND_MODULES = (
    "aift.jobs.builtin",
    "aift.inference.pull",
    "aift.training.trainer",
    "aift.training.merge",
    "aift.training.moe",
    "aift.rag.ingest",
    "aift.rag.revector",
    "aift.export.gguf_export",
    "aift.export.awq",
)


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Handler
    config_model: type[BaseModel]
    resumable: bool
    submittable: bool
    description: str

    def parse_config(self, config: dict[str, Any]) -> BaseModel:
        """Validate a config for this kind; errors name the fields."""
        try:
            return self.config_model.model_validate(config)
        except ValidationError as exc:
            details = [
                {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
                for err in exc.errors()
            ]
            fields = ", ".join(f"{d['field']}: {d['message']}" for d in details)
            raise InvalidInput(
                f"Invalid config for job kind {self.name!r}: {fields}", details=details
            ) from None


_KINDS: dict[str, JobKind] = {}


def job_kind(
    name: str,
    *,
    config: type[BaseModel],
    resumable: bool = False,
    submittable: bool = False,
) -> Callable[[Handler], Handler]:
    """Register a function as the handler of job kind `name`.

    `submittable` kinds may be created through the generic jobs API; the others are
    created by their own capability (training, ingestion) after its own checks.
    """

    def register(handler: Handler) -> Handler:
        _KINDS[name] = JobKind(
            name=name,
            handler=handler,
            config_model=config,
            resumable=resumable,
            submittable=submittable,
            description=(handler.__doc__ or "").strip().split("\n")[0],
        )
        return handler

    return register


def load_builtin_kinds() -> None:
    """Import the modules that register job kinds (idempotent)."""
    for module in BUILTIN_KIND_MODULES:
        importlib.import_module(module)


def get_kind(name: str) -> JobKind:
    load_builtin_kinds()
    try:
        return _KINDS[name]
    except KeyError:
        known = ", ".join(sorted(_KINDS)) or "none"
        raise NotFound(f"Unknown job kind {name!r}. Known kinds: {known}.") from None


def all_kinds() -> list[JobKind]:
    load_builtin_kinds()
    return [_KINDS[name] for name in sorted(_KINDS)]
