"""Schemas of generation shared by the engines, the OpenAI and Ollama routes and the CLI."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aift.keepalive import KeepAlive

MAX_STOP_SEQUENCES = 8
MAX_SEED = 2**63 - 1

StopSequence = Annotated[
    str, Field(min_length=1, max_length=500, description="Text that ends the generation.")
]
"""A stop sequence: never empty (an empty stop would end every generation at once)."""

Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="Same seed, same sampled tokens.")]
"""A sampling seed, in the range every engine accepts (64-bit signed, non-negative)."""


class FunctionCall(BaseModel):
    name: str = Field(..., min_length=1, max_length=200)
    arguments: str = Field("{}", description="The arguments as a JSON object text.")


class ToolCall(BaseModel):
    """A call of one of the request's tools, as the assistant made it (OpenAI's shape)."""

    id: str = Field(..., min_length=1, max_length=200)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] | None = Field(None, description="An assistant turn's calls.")
    tool_call_id: str | None = Field(None, description="The call a tool turn answers.")
    name: str | None = Field(None, max_length=200, description="A tool turn's function.")

    def template_view(self) -> dict[str, Any]:
        """The message as chat templates read it (tool-call arguments as objects, as
        Hugging Face templates expect)."""
        view: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            view["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": _object(call)},
                }
                for call in self.tool_calls
            ]
        if self.tool_call_id:
            view["tool_call_id"] = self.tool_call_id
        if self.name:
            view["name"] = self.name
        return view


def _object(call: ToolCall) -> Any:
    import json

    try:
        return json.loads(call.function.arguments)
    except ValueError:
        return call.function.arguments


class StructuredOutput(BaseModel):
    """What the generated text must be, enforced token by token while decoding: any JSON
    object, JSON valid against a schema, a regular expression or a Lark grammar."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["json_object", "json_schema", "regex", "lark"]
    json_schema: dict[str, Any] | None = Field(None, description="For json_schema.")
    pattern: str | None = Field(None, max_length=100_000, description="For regex and lark.")


class SamplingParams(BaseModel):
    """How to pick tokens; the same knobs OpenAI and Ollama clients send."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = Field(None, ge=1, le=131_072, description="None: up to the context.")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 means greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, description="0 disables top-k.")
    repetition_penalty: float = Field(
        1.0,
        ge=1.0,
        le=2.0,
        description="Divides the positive logits (multiplies the negative ones) of tokens "
        "already generated, as transformers and llama.cpp do; 1 disables it.",
    )
    frequency_penalty: float = Field(
        0.0, ge=-2.0, le=2.0, description="Subtracted from a token's logit per earlier use."
    )
    presence_penalty: float = Field(
        0.0, ge=-2.0, le=2.0, description="Subtracted from a token's logit once it was used."
    )
    stop: list[StopSequence] = Field(default_factory=list, max_length=MAX_STOP_SEQUENCES)
    seed: Seed | None = None
    structured: StructuredOutput | None = Field(
        None, description="Constrain the output (JSON, a schema, a grammar)."
    )
    logprobs: int | None = Field(
        None,
        ge=0,
        le=20,
        description="Report each generated token's log-probability and this many most "
        "likely alternatives (None: none).",
    )


class FinishReason(StrEnum):
    stop = "stop"  # end-of-sequence token or a stop sequence
    length = "length"  # max_tokens or the context was reached
    cancelled = "cancelled"  # the client went away


class GenerationStats(BaseModel):
    """Counts and timings of one generation (Ollama reports them; OpenAI reports usage)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from an earlier request's KV cache
    drafted_tokens: int = 0  # tokens drafted by prompt lookup and checked by the model
    accepted_tokens: int = 0  # drafted tokens the model chose too (output tokens it gained)
    queue_ms: float = 0.0
    prompt_ms: float = 0.0
    decode_ms: float = 0.0
    total_ms: float = 0.0


class TokenChoice(BaseModel):
    """A token and its log-probability under the model (before sampling settings)."""

    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TokenChoice):
    """A generated token, with the most likely alternatives at its place."""

    top: list[TokenChoice] = Field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        """As OpenAI's chat and Ollama send it (the same shape in both)."""
        return {
            "token": self.token,
            "logprob": self.logprob,
            "bytes": self.bytes,
            "top_logprobs": [choice.model_dump() for choice in self.top],
        }


class TokenEvent(BaseModel):
    """A piece of generated text; the last event carries the finish reason and stats."""

    text: str = ""
    logprobs: list[TokenLogprob] | None = Field(
        None, description="The tokens generated since the last event (when asked for)."
    )
    finish_reason: FinishReason | None = None
    stats: GenerationStats | None = None


class LoadedModelInfo(BaseModel):
    """A model in memory, as /api/ps and /api/v1/models/loaded report it."""

    name: str
    engine: str
    memory_bytes: int
    context_length: int
    adapters: list[str]
    loaded_at: datetime
    last_used_at: datetime
    expires_at: datetime | None
    busy: int
    state: Literal["ready", "failed"] = Field(
        "ready", description="failed: the engine's process crashed; the next request reloads it."
    )
    error: str | None = Field(None, description="Why the model failed (engine, signal).")
    pid: int | None = Field(None, description="The process running the model's native code.")


class LoadRequest(BaseModel):
    """How to load a model now: which engine, and how long to keep it."""

    model_config = ConfigDict(extra="forbid")

    engine: str | None = Field(None, description="transformers or llamacpp; default by format.")
    keep_alive: KeepAlive = "default"


class PullRequest(BaseModel):
    """What to fetch: a hub repo id (`org/name`) or a remote Ollama model (`ollama/NAME`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1, max_length=300, examples=["ollama/llama3.2:3b"])


class RewardScoreRequest(BaseModel):
    """Replies to score with a reward model, after the conversation that asked for them."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(
        ..., min_length=1, max_length=200, description="The conversation the replies answer."
    )
    replies: list[str] = Field(..., min_length=1, max_length=64, description="Replies to score.")


class RewardScores(BaseModel):
    """A reward model's score of each reply (higher is better; a logit, about 0 for an
    average reply when the model was trained with centred rewards)."""

    model: str
    scores: list[float]
