"""Engines: one module each behind the `Engine` interface, found through `ENGINES`."""

from __future__ import annotations

ENGINES = ("transformers", "llamacpp")


def engine_names() -> tuple[str, ...]:
    return ENGINES
