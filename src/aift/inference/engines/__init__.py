"""Registry of serving engines: name → the model formats it loads, whether it can run on
this machine, and how to build it.

Each engine module registers itself with `@register_engine(...)` on its factory (the way
job kinds register with `@job_kind`); the model manager asks the registry which engine
serves a format and builds engines through it. Engine modules import their heavy
libraries only when a model loads, so reading the registry stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aift.errors import CapabilityMissing, InvalidInput
from aift.models.schemas import ModelFormat

if TYPE_CHECKING:
    from aift.config import Settings
    from aift.inference.engines.base import Engine
    from aift.models.resolver import ModelResolver
    from aift.models.schemas import ModelInfo, ResolvedModel

ENGINE_MODULES = (
    "aift.inference.engines.transformers",
    "aift.inference.engines.llamacpp",
    "aift.inference.engines.vllm",
    "aift.inference.engines.ollama",
)


_FORMAT_NAMES = {
    ModelFormat.hf: "a transformers folder",
    ModelFormat.gguf: "a GGUF file",
    ModelFormat.ollama: "a model of a remote Ollama server",
}


@dataclass(frozen=True)
class EngineSource:
    """What an engine factory builds from: the model, where it is, and the serving settings."""

    info: ModelInfo
    resolved: ResolvedModel
    settings: Settings
    resolver: ModelResolver

    def transformers_dir(self) -> Path:
        """The model as a transformers folder (a GGUF file is converted once)."""
        return self.resolver.transformers_dir(self.resolved)


Factory = Callable[[EngineSource], "Engine"]


def _always() -> None:
    """No requirement beyond the base install."""


@dataclass(frozen=True)
class EngineSpec:
    """One engine: the formats it loads, what it needs, how it is built.

    `requirement` raises CapabilityMissing (saying what to install or which hardware is
    missing) when the engine cannot run here. Among engines that load a format and can
    run, the highest `preference` is the default; `serves_adapters` engines can apply
    LoRA adapters per request.
    """

    name: str
    formats: frozenset[ModelFormat]
    factory: Factory
    requirement: Callable[[], None] = _always
    preference: int = 0
    serves_adapters: bool = False

    def available(self) -> bool:
        try:
            self.requirement()
        except CapabilityMissing:
            return False
        return True

    def check_loads(self, info: ModelInfo) -> None:
        """Refuse a model of a format this engine does not load, naming the ones it does."""
        fmt = ModelFormat(info.format)
        if fmt not in self.formats:
            loads = " or ".join(sorted(_FORMAT_NAMES.get(f, f.value) for f in self.formats))
            raise InvalidInput(
                f"The {self.name} engine cannot load {info.name}: it is "
                f"{_FORMAT_NAMES.get(fmt, fmt.value)}, and {self.name} loads {loads}. Leave "
                "the engine out to use the default one for this model."
            )


_ENGINES: dict[str, EngineSpec] = {}


def register_engine(
    name: str,
    *,
    formats: Iterable[ModelFormat],
    requirement: Callable[[], None] = _always,
    preference: int = 0,
    serves_adapters: bool = False,
) -> Callable[[Factory], Factory]:
    """Declare an engine; decorates its factory."""

    def decorate(factory: Factory) -> Factory:
        _ENGINES[name] = EngineSpec(
            name, frozenset(formats), factory, requirement, preference, serves_adapters
        )
        return factory

    return decorate


def engines() -> dict[str, EngineSpec]:
    """Every registered engine (importing the engine modules once)."""
    for module in ENGINE_MODULES:
        importlib.import_module(module)
    return dict(_ENGINES)


def engine_names() -> tuple[str, ...]:
    return tuple(engines())


def engine_spec(name: str) -> EngineSpec:
    """The engine called `name`, or a user error listing the known ones."""
    known = engines()
    if name not in known:
        raise InvalidInput(f"Unknown engine {name!r}; choose one of {', '.join(known)}.")
    return known[name]


def default_engine(fmt: ModelFormat) -> str:
    """The preferred engine that loads `fmt` and can run here (e.g. GGUF → llama.cpp;
    transformers folders → vLLM on a GPU with vLLM installed, else transformers)."""
    candidates = [s for s in engines().values() if fmt in s.formats and s.available()]
    if not candidates:
        raise InvalidInput(f"No engine here loads {fmt.value} models.")
    return max(candidates, key=lambda s: s.preference).name


def adapter_engine(fmt: ModelFormat = ModelFormat.hf) -> str:
    """The preferred engine that can apply LoRA adapters to a base of format `fmt` here
    (a GGUF base: llama.cpp, which applies them as GGUF adapters)."""
    candidates = [
        s for s in engines().values() if s.serves_adapters and fmt in s.formats and s.available()
    ]
    if not candidates:
        raise InvalidInput(f"No engine here applies adapters to {fmt.value} models.")
    return max(candidates, key=lambda s: s.preference).name
