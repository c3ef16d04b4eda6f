"""The OpenAI API's request and response shapes (chat, completions, embeddings, models)."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aift.errors import InvalidInput
from aift.inference.schemas import (
    ChatMessage,
    GenerationStats,
    SamplingParams,
    Seed,
    StopSequence,
    StructuredOutput,
    TokenLogprob,
    ToolCall,
)

# OpenAI allows up to 4 stop sequences.
MAX_OPENAI_STOPS = 4
OpenAIStops = Annotated[list[StopSequence], Field(max_length=MAX_OPENAI_STOPS)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown OpenAI fields are accepted and ignored

    model: str = Field(..., min_length=1, max_length=300)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, le=131_072)
    stop: (
        StopSequence | Annotated[list[StopSequence], Field(max_length=MAX_OPENAI_STOPS)] | None
    ) = None
    seed: Seed | None = None
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int = Field(1, ge=1, le=1, description="Only one choice per request is supported.")

    def structured(self) -> StructuredOutput | None:
        """The output format asked for: OpenAI's response_format, or vLLM's extra
        fields (`structured_outputs`, and the older guided_json / guided_regex /
        guided_grammar / guided_choice) that vLLM clients send."""
        response_format = getattr(self, "response_format", None)
        if response_format is not None and response_format.type != "text":
            return response_format.structured()
        extra = dict(self.model_extra or {})
        found = extra.get("structured_outputs")
        vllm: dict[str, Any] = found if isinstance(found, dict) else {}
        wanted = {
            "json": vllm.get("json", extra.get("guided_json")),
            "regex": vllm.get("regex", extra.get("guided_regex")),
            "grammar": vllm.get("grammar", extra.get("guided_grammar")),
            "choice": vllm.get("choice", extra.get("guided_choice")),
        }
        if isinstance(wanted["json"], str):
            try:
                wanted["json"] = json.loads(wanted["json"])
            except ValueError:
                raise InvalidInput("guided_json / structured_outputs.json is not JSON.") from None
        if isinstance(wanted["json"], dict):
            return StructuredOutput(type="json_schema", json_schema=wanted["json"])
        if isinstance(wanted["regex"], str):
            return StructuredOutput(type="regex", pattern=wanted["regex"])
        if isinstance(wanted["grammar"], str):
            return StructuredOutput(type="lark", pattern=wanted["grammar"])
        if isinstance(wanted["choice"], list) and wanted["choice"]:
            choices = "|".join(re.escape(str(choice)) for choice in wanted["choice"])
            return StructuredOutput(type="regex", pattern=f"({choices})")
        return None

    def sampling(self) -> SamplingParams:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            structured=self.structured(),
            max_tokens=self.max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            stop=stop,
            seed=self.seed,
            frequency_penalty=self.frequency_penalty or 0.0,
            presence_penalty=self.presence_penalty or 0.0,
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.get("include_usage"))


IMAGE_PARTS = {"image_url", "input_image", "image"}


class Message(BaseModel):
    """A chat message as OpenAI clients send it: `developer` is `system` by another
    name, content may be a list of parts (Open WebUI, LangChain) or null (an assistant
    turn that only calls tools), `function` is the legacy `tool`."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = Field(None, max_length=200)
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = Field(None, max_length=200)

    def chat_message(self) -> ChatMessage:
        """The message as the engines read it; a part it cannot read is a clear error."""
        role = {"developer": "system", "function": "tool"}.get(self.role, self.role)
        return ChatMessage(
            role=role,
            content=self.text(),
            tool_calls=self.tool_calls or None,
            tool_call_id=self.tool_call_id,
            name=self.name,
        )

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        texts = []
        for part in self.content:
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind in IMAGE_PARTS:
                raise InvalidInput(
                    "This server's models read text only: image parts are not supported. "
                    "Send the message as text."
                )
            else:
                raise InvalidInput(
                    f"Unsupported content part type {kind!r}; send text parts "
                    '({"type": "text", "text": …}).'
                )
        return "\n".join(texts)


class ResponseFormat(BaseModel):
    """OpenAI's response_format: free text, any JSON object, or JSON of a schema."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = Field(
        None, description="{name, schema, strict} for type json_schema."
    )

    def structured(self) -> StructuredOutput | None:
        if self.type == "text":
            return None
        if self.type == "json_object":
            return StructuredOutput(type="json_object")
        schema = (self.json_schema or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidInput("response_format json_schema needs json_schema.schema (an object).")
        return StructuredOutput(type="json_schema", json_schema=schema)


class ChatCompletionRequest(_Request):
    messages: list[Message] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, le=131_072)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None

    def chat_messages(self) -> list[ChatMessage]:
        return [message.chat_message() for message in self.messages]

    def sampling(self) -> SamplingParams:
        params = super().sampling()
        if self.max_completion_tokens is not None:
            params = params.model_copy(update={"max_tokens": self.max_completion_tokens})
        if self.top_logprobs is not None and not self.logprobs:
            raise InvalidInput("top_logprobs needs logprobs: true.")
        if self.logprobs:
            params = params.model_copy(update={"logprobs": self.top_logprobs or 0})
        return params


class CompletionRequest(_Request):
    prompt: str | list[str]
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5, description="Alternatives per token.")

    def sampling(self) -> SamplingParams:
        params = super().sampling()
        if self.logprobs is not None:
            params = params.model_copy(update={"logprobs": self.logprobs})
        return params

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("send exactly one prompt per request")
        return value

    @property
    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class EmbeddingRequest(BaseModel):
    """OpenAI's embedding request: text, texts, or token ids (one list or a list of lists).

    Token ids are read in the embedding model's own vocabulary, as vLLM does (not
    OpenAI's tiktoken ids).
    """

    model_config = ConfigDict(extra="allow")

    model: str = Field(..., min_length=1, max_length=300)
    input: (
        Annotated[str, Field(min_length=1)]
        | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=2048)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=2048)]
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(
        None, ge=1, description="Shorter vectors, for models trained for it (Matryoshka)."
    )

    @property
    def texts(self) -> list[str] | None:
        """The inputs as texts, or None when they are token ids."""
        if isinstance(self.input, str):
            return [self.input]
        if all(isinstance(item, str) for item in self.input):
            return list(self.input)  # type: ignore[arg-type]
        return None

    @property
    def token_ids(self) -> list[list[int]]:
        """The inputs as lists of token ids (empty when they are texts)."""
        if self.texts is not None:
            return []
        if all(isinstance(item, int) for item in self.input):
            return [list(self.input)]  # type: ignore[arg-type]
        return [list(ids) for ids in self.input]  # type: ignore[arg-type]


def encode_embedding(vector: list[float], encoding_format: str) -> list[float] | str:
    """As OpenAI sends it: a list of floats, or base64 of little-endian float32."""
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(stats: GenerationStats | None) -> dict[str, Any]:
    """OpenAI's usage object; `cached_tokens` counts prompt tokens whose KV cache an
    earlier request had computed (as OpenAI reports its prompt caching)."""
    prompt = stats.prompt_tokens if stats else 0
    completion = stats.completion_tokens if stats else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": stats.cached_tokens if stats else 0},
    }


def chat_response(
    rid: str,
    model: str,
    text: str,
    finish: str,
    stats: GenerationStats,
    calls: list[ToolCall] | None = None,
) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message = {
            "role": "assistant",
            "content": text or None,
            "tool_calls": [call.model_dump() for call in calls],
        }
        finish = "tool_calls"
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage(stats),
    }


def chat_logprobs(found: list[TokenLogprob]) -> dict[str, Any]:
    """Chat log-probabilities as OpenAI sends them."""
    return {"content": [entry.wire() for entry in found], "refusal": None}


def completion_logprobs(found: list[TokenLogprob], offset: int) -> dict[str, Any]:
    """Legacy completions' log-probabilities: parallel lists, text offsets from `offset`."""
    offsets = []
    for entry in found:
        offsets.append(offset)
        offset += len(entry.token)
    return {
        "tokens": [entry.token for entry in found],
        "token_logprobs": [entry.logprob for entry in found],
        "top_logprobs": [{c.token: c.logprob for c in entry.top} for entry in found],
        "text_offset": offsets,
    }


def tool_call_deltas(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """The calls as one streamed delta (each whole, with its index)."""
    return [{"index": index, **call.model_dump()} for index, call in enumerate(calls)]


def chat_chunk(rid: str, model: str, *, delta: dict, finish: str | None = None) -> dict:
    return {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def completion_response(
    rid: str, model: str, text: str, finish: str, stats: GenerationStats
) -> dict:
    return {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
        "usage": usage(stats),
    }


def completion_chunk(rid: str, model: str, text: str, finish: str | None = None) -> dict:
    return {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
    }


def usage_chunk(rid: str, model: str, obj: str, stats: GenerationStats | None) -> dict:
    return {
        "id": rid,
        "object": obj,
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": usage(stats),
    }


def openai_finish(reason: str | None) -> str:
    """OpenAI knows 'stop' and 'length'; a cancelled stream never reaches the client."""
    return "length" if reason == "length" else "stop"
