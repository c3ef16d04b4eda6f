"""Registry of job kinds: name → handler, config schema, resumability, services.

The job tasks (`aift.tasks`, one module per domain) register their kinds with
`@job_kind(...)`; every process that submits or runs jobs imports `aift.tasks` once
(the API, the CLI, the job process). A handler is `handler(ctx, config, **services)`:
each parameter after the config names a service of the process's composition root
(`Runtime.<name>`), which the job process hands in; a handler so declares what it uses
and never sees the rest.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from aift.errors import InvalidInput, NotFound

Handler = Callable[..., dict[str, Any] | None]


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Handler
    config_model: type[BaseModel]
    resumable: bool
    submittable: bool
    description: str
    services: tuple[str, ...] = ()

    def run(self, ctx: Any, config: BaseModel, provider: object) -> dict[str, Any]:
        """Call the handler with the services it declares, taken from `provider`."""
        missing = [name for name in self.services if not hasattr(provider, name)]
        if missing:
            raise NotFound(f"Job kind {self.name!r} needs services this process lacks: {missing}")
        services = {name: getattr(provider, name) for name in self.services}
        return self.handler(ctx, config, **services) or {}

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
            services=tuple(list(inspect.signature(handler).parameters)[2:]),
        )
        return handler

    return register


def get_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        known = ", ".join(sorted(_KINDS)) or "none (this process did not import aift.tasks)"
        raise NotFound(f"Unknown job kind {name!r}. Known kinds: {known}.") from None


def all_kinds() -> list[JobKind]:
    return [_KINDS[name] for name in sorted(_KINDS)]
