"""Schemas of generation shared by the engines, the OpenAI and Ollama routes and the CLI."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOP_SEQUENCES = 8


class ChatMessage(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""


class SamplingParams(BaseModel):
    """How to pick tokens; the same knobs OpenAI and Ollama clients send."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = Field(None, ge=1, le=131_072, description="None: up to the context.")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 means greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 disables top-k.")
    stop: list[str] = Field(default_factory=list, max_length=MAX_STOP_SEQUENCES)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, value: list[str]) -> list[str]:
        if any(not s for s in value):
            raise ValueError("stop sequences must not be empty strings")
        return value


class FinishReason(StrEnum):
    stop = "stop"  # end-of-sequence token or a stop sequence
    length = "length"  # max_tokens or the context was reached
    cancelled = "cancelled"  # the client went away


class GenerationStats(BaseModel):
    """Counts and timings of one generation (Ollama reports them; OpenAI reports usage)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    queue_ms: float = 0.0
    prompt_ms: float = 0.0
    decode_ms: float = 0.0
    total_ms: float = 0.0


class TokenEvent(BaseModel):
    """A piece of generated text; the last event carries the finish reason and stats."""

    text: str = ""
    finish_reason: FinishReason | None = None
    stats: GenerationStats | None = None
