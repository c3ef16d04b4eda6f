"""The Ollama API's request and response shapes (generate, chat, embed, tags, show, ps)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aift.errors import InvalidInput
from aift.inference.schemas import (
    MAX_SEED,
    MAX_STOP_SEQUENCES,
    ChatMessage,
    FunctionCall,
    GenerationStats,
    SamplingParams,
    StopSequence,
    StructuredOutput,
    TokenLogprob,
    ToolCall,
)
from aift.keepalive import KeepAlive
from aift.models.schemas import ModelInfo

# Ollama's own defaults when a request sets no option.
DEFAULTS = {"temperature": 0.8, "top_p": 0.9, "top_k": 40}
COMPAT_VERSION = "0.12.0"


class Options(BaseModel):
    """The `options` object; unknown Ollama options are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0)
    num_predict: int | None = Field(None, ge=-2, le=131_072)
    stop: Annotated[list[StopSequence], Field(max_length=MAX_STOP_SEQUENCES)] | None = None
    seed: int | None = Field(
        None, ge=-MAX_SEED - 1, le=MAX_SEED, description="Negative: a random seed."
    )
    num_ctx: int | None = Field(None, ge=1, le=1_048_576)
    repeat_penalty: float | None = Field(None, ge=1.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)

    def sampling(self) -> SamplingParams:
        max_tokens = self.num_predict if self.num_predict and self.num_predict > 0 else None
        return SamplingParams(
            temperature=DEFAULTS["temperature"] if self.temperature is None else self.temperature,
            top_p=DEFAULTS["top_p"] if self.top_p is None else self.top_p,
            top_k=DEFAULTS["top_k"] if self.top_k is None else self.top_k,
            max_tokens=max_tokens,
            stop=list(self.stop or []),
            seed=self.seed if self.seed is None or self.seed >= 0 else None,
            repetition_penalty=self.repeat_penalty or 1.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            presence_penalty=self.presence_penalty or 0.0,
        )


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(..., min_length=1, max_length=300)
    options: Options = Field(default_factory=Options)
    stream: bool = True
    keep_alive: KeepAlive = "default"
    format: Literal["json", ""] | dict[str, Any] | None = Field(
        None, description='"json" for any JSON, or a JSON schema the output must follow.'
    )
    images: list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)

    def sampling(self) -> SamplingParams:
        """The options, the output format when `format` is set, log-probabilities when
        asked for."""
        params = self.options.sampling()
        if self.logprobs:
            params = params.model_copy(update={"logprobs": self.top_logprobs or 0})
        if isinstance(self.format, dict):
            structured = StructuredOutput(type="json_schema", json_schema=self.format)
            return params.model_copy(update={"structured": structured})
        if self.format == "json":
            return params.model_copy(update={"structured": StructuredOutput(type="json_object")})
        return params

    @field_validator("keep_alive")
    @classmethod
    def _null_is_default(cls, value: str | float | None) -> str | float:
        """Ollama treats a null keep_alive as the server default."""
        return "default" if value is None else value


class GenerateRequest(_Request):
    prompt: str = ""
    system: str | None = None
    raw: bool = False


class Message(BaseModel):
    """A message as Ollama clients send it: tool calls carry their arguments as an
    object, a tool's answer names its function (`tool_name`)."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = ""
    images: list[str] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_name: str | None = None

    def chat_message(self, index: int) -> ChatMessage:
        if self.images:
            raise InvalidInput(
                "This server's models read text only: images are not supported. "
                "Send the message as text."
            )
        calls = [
            ToolCall(
                id=f"call_{index}_{number}",
                function=FunctionCall(
                    name=str((call.get("function") or {}).get("name") or "unknown"),
                    arguments=json.dumps((call.get("function") or {}).get("arguments") or {}),
                ),
            )
            for number, call in enumerate(self.tool_calls or [])
        ]
        return ChatMessage(
            role=self.role,
            content=self.content or "",
            tool_calls=calls or None,
            name=self.tool_name,
        )


class ChatRequest(_Request):
    messages: list[Message] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None

    def chat_messages(self) -> list[ChatMessage]:
        return [message.chat_message(index) for index, message in enumerate(self.messages)]


class EmbedRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(..., min_length=1, max_length=300)
    input: str | list[str]
    keep_alive: KeepAlive = "default"

    @field_validator("input")
    @classmethod
    def _inputs(cls, value: str | list[str]) -> str | list[str]:
        items = [value] if isinstance(value, str) else value
        if not items or any(not t for t in items):
            raise ValueError("input must be a non-empty string or list of non-empty strings")
        return value

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class LegacyEmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(..., min_length=1, max_length=300)
    prompt: str = Field(..., min_length=1)


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(..., min_length=1, max_length=300)
    stream: bool = True


class NameRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    name: str | None = None

    @property
    def ref(self) -> str:
        return self.model or self.name or ""


def logprobs(found: list[TokenLogprob]) -> list[dict[str, Any]]:
    """Log-probabilities as Ollama sends them."""
    return [entry.wire() for entry in found]


def tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Calls as Ollama sends them: arguments as an object."""
    return [
        {"function": {"name": c.function.name, "arguments": json.loads(c.function.arguments)}}
        for c in calls
    ]


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _ns(ms: float) -> int:
    return int(ms * 1_000_000)


def timings(stats: GenerationStats | None, load_ms: float) -> dict[str, int]:
    stats = stats or GenerationStats()
    return {
        "total_duration": _ns(stats.total_ms + load_ms),
        "load_duration": _ns(load_ms),
        "prompt_eval_count": stats.prompt_tokens,
        "prompt_eval_duration": _ns(stats.prompt_ms),
        "eval_count": stats.completion_tokens,
        "eval_duration": _ns(stats.decode_ms),
    }


def _size_label(count: int | None) -> str:
    if not count:
        return ""
    if count >= 1e9:
        return f"{count / 1e9:.1f}B"
    return f"{count / 1e6:.0f}M"


def details(model: ModelInfo) -> dict[str, Any]:
    family = (model.architecture or "").lower().removesuffix("forcausallm") or None
    return {
        "parent_model": model.base_model or "",
        "format": "gguf" if model.format == "gguf" else "safetensors",
        "family": family,
        "families": [family] if family else None,
        "parameter_size": _size_label(model.parameter_count),
        "quantization_level": model.dtype or "",
    }


def tag(model: ModelInfo) -> dict[str, Any]:
    modified = model.updated_at or model.created_at or datetime.now(UTC)
    return {
        "name": model.name,
        "model": model.name,
        "modified_at": modified.isoformat(),
        "size": model.size_bytes,
        "digest": "",
        "details": details(model),
    }
