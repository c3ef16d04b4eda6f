"""Schemas of kept conversations, shared by the API, the UI and the service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_MESSAGE_CHARS = 200_000


class ChatSettings(BaseModel):
    """The generation settings a conversation was held with."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(256, ge=1, le=32_768)
    system: str | None = Field(None, max_length=20_000, description="System prompt.")
    sources: int = Field(5, ge=1, le=20, description="Retrieval: chunks given to the model.")
    mode: Literal["hybrid", "dense", "keywords"] = Field("hybrid", description="Retrieval.")
    rerank: bool = Field(True, description="Retrieval: re-rank with a cross-encoder.")
    answer: Literal["generate", "quotes", "extractive"] = Field(
        "generate", description="Knowledge-base answers: generated, with quotes, or quotes only."
    )
    unsupported: Literal["flag", "not_found"] = Field(
        "flag", description="Knowledge-base answers the sources do not support: flag or replace."
    )


class MessageIn(BaseModel):
    """A turn to keep; an assistant answer from a knowledge base keeps its citations."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system"]
    content: str = Field(..., max_length=MAX_MESSAGE_CHARS)
    model: str | None = Field(None, max_length=200)
    citations: list[dict[str, Any]] = Field(default_factory=list, max_length=100)


class Message(MessageIn):
    model_config = ConfigDict(from_attributes=True)

    position: int
    created_at: datetime


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=200, description="Default: the first message.")
    model: str | None = Field(None, max_length=200)
    kb_id: str | None = Field(None, max_length=80, description="Knowledge base id or name.")
    settings: ChatSettings = Field(default_factory=ChatSettings)


class ConversationUpdate(BaseModel):
    """Fields to change; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=200)
    model: str | None = Field(None, max_length=200)
    kb_id: str | None = Field(None, max_length=80)
    settings: ChatSettings | None = None


class MessagesAppend(BaseModel):
    """New turns; `replace_from` first drops the turns from that position on (regenerate)."""

    model_config = ConfigDict(extra="forbid")

    messages: list[MessageIn] = Field(..., min_length=1, max_length=50)
    replace_from: int | None = Field(None, ge=0)


class ConversationSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    model: str | None
    kb_id: str | None
    settings: ChatSettings
    messages: int = 0
    created_at: datetime
    updated_at: datetime


class Conversation(ConversationSummary):
    turns: list[Message] = Field(default_factory=list)
