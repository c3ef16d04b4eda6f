"""Every job kind declares services the composition root has, of the types it names."""

from __future__ import annotations

import dataclasses
import inspect
from functools import cached_property

import pytest

import aift.tasks  # noqa: F401 - registers the kinds
from aift.errors import NotFound
from aift.jobs.kinds import JobKind, all_kinds
from aift.runtime import Runtime


def _runtime_annotation(name: str) -> str:
    """The annotation (as written) of `Runtime.<name>`: a field's type or a property's
    return type."""
    fields = {f.name: f.type for f in dataclasses.fields(Runtime)}
    if name in fields:
        return str(fields[name])
    attribute = inspect.getattr_static(Runtime, name)
    assert isinstance(attribute, cached_property), f"Runtime.{name} is not a service"
    return str(attribute.func.__annotations__["return"])


@pytest.mark.parametrize("kind", all_kinds(), ids=lambda k: k.name)
def test_a_kind_declares_services_the_runtime_provides(kind: JobKind) -> None:
    annotations = inspect.get_annotations(kind.handler)
    fields = {f.name for f in dataclasses.fields(Runtime)}
    for name in kind.services:
        provided = name in fields or hasattr(Runtime, name)
        assert provided, f"{kind.name} asks for {name!r}, which Runtime lacks"
        assert str(annotations[name]) == _runtime_annotation(name), (kind.name, name)


def test_the_kinds_of_every_capability_are_registered() -> None:
    names = {kind.name for kind in all_kinds()}
    assert {
        "system.benchmark",
        "models.pull",
        "training.run",
        "training.merge",
        "training.moe",
        "rag.ingest",
        "rag.reindex",
        "rag.restore_vectors",
        "export.gguf",
        "export.awq",
    } <= names


def test_a_handler_gets_exactly_the_services_it_declares() -> None:
    """The job process hands in the declared services by name and nothing else; a
    provider without one is a clear error, not an AttributeError deep in the handler."""
    seen: dict[str, object] = {}

    def handler(ctx: object, config: object, models: object, settings: object) -> dict:
        seen.update(models=models, settings=settings)
        return {"ok": True}

    kind = JobKind("t", handler, object, False, False, "", services=("models", "settings"))

    class Provider:
        models, settings, jobs = "registry", "settings", "not handed in"

    assert kind.run(None, None, Provider()) == {"ok": True}  # type: ignore[arg-type]
    assert seen == {"models": "registry", "settings": "settings"}

    class Lacking:
        models = "registry"

    with pytest.raises(NotFound, match="settings"):
        kind.run(None, None, Lacking())  # type: ignore[arg-type]
