"""Engines: one module each behind the `Engine` interface, found through `ENGINES`."""

from __future__ import annotations

ENGINES = ("transformers", "llamacpp", "vllm", "ollama")


def engine_names() -> tuple[str, ...]:
    return ENGINES
