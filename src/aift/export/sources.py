"""Which files an export or quantization reads for a registered model.

A full model (base or fine-tune) is its own transformers folder; a GGUF model is read
through its one-time transformers conversion; an adapter is its base's folder plus the
adapter, merged tensor by tensor while writing. The tokenizer (and chat template) is
the adapter's when it saved one, else the base's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aift.errors import InvalidInput
from aift.models.registry import ModelRegistry, resolved_entry
from aift.models.schemas import ModelInfo, ModelKind

EXPORTABLE_KINDS = {ModelKind.base, ModelKind.finetuned, ModelKind.adapter, ModelKind.gguf}


@dataclass(frozen=True)
class ExportSource:
    """The folders an export reads."""

    model: str
    weights_dir: Path
    tokenizer_dir: Path
    adapter_dir: Path | None


def exportable(registry: ModelRegistry, name: str) -> ModelInfo:
    """The registry entry of a model that can be exported (a user error otherwise)."""
    info = registry.get(name)
    if info.kind not in EXPORTABLE_KINDS:
        raise InvalidInput(
            f"{info.name} is a {info.kind.value} model; export takes language models "
            "(base, fine-tuned, adapter, GGUF)."
        )
    if info.kind == ModelKind.adapter:
        config = json.loads((Path(info.path) / "adapter_config.json").read_text())
        if config.get("use_dora"):
            raise InvalidInput(
                f"{info.name} is a DoRA adapter: merge it first (aift merge {info.name}) and "
                "export the merged model."
            )
        if not info.base_model:
            raise InvalidInput(f"Adapter {info.name} does not name its base model.")
    return info


def resolve_source(registry: ModelRegistry, info: ModelInfo) -> ExportSource:
    """The folders to read for `info` (converting a GGUF base to transformers once)."""
    resolver = registry.resolver
    adapter_dir = None
    if info.kind == ModelKind.adapter:
        assert info.base_model is not None
        weights_dir = resolver.transformers_dir(resolver.resolve(info.base_model))
        adapter_dir = Path(info.path)
    else:
        weights_dir = resolver.transformers_dir(resolved_entry(info))
    tokenizer_dir = weights_dir
    if adapter_dir is not None and (adapter_dir / "tokenizer.json").exists():
        tokenizer_dir = adapter_dir
    return ExportSource(info.name, weights_dir, tokenizer_dir, adapter_dir)
