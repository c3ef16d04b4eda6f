"""Conversations kept by the chat page: list, read, create, rename, append turns, delete."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.conversations.schemas import (
    Conversation,
    ConversationCreate,
    ConversationSummary,
    ConversationUpdate,
    MessagesAppend,
)
from aift.runtime import Runtime

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])


@router.get("", response_model=list[ConversationSummary])
async def list_conversations(
    q: str | None = Query(None, max_length=200, description="Only titles containing this."),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    runtime: Runtime = Depends(get_runtime),
) -> list[ConversationSummary]:
    """Conversations, the most recently active first."""
    return await run_in_threadpool(runtime.conversations.list, limit, offset, q)


@router.post("", response_model=Conversation, status_code=201)
async def create_conversation(
    request: ConversationCreate, runtime: Runtime = Depends(get_runtime)
) -> Conversation:
    return await run_in_threadpool(runtime.conversations.create, request)


@router.get("/{conversation_id}", response_model=Conversation)
async def get_conversation(
    conversation_id: str, runtime: Runtime = Depends(get_runtime)
) -> Conversation:
    return await run_in_threadpool(runtime.conversations.get, conversation_id)


@router.patch("/{conversation_id}", response_model=Conversation)
async def update_conversation(
    conversation_id: str, request: ConversationUpdate, runtime: Runtime = Depends(get_runtime)
) -> Conversation:
    """Rename it, or change its model, knowledge base or settings."""
    return await run_in_threadpool(runtime.conversations.update, conversation_id, request)


@router.post("/{conversation_id}/messages", response_model=Conversation)
async def append_messages(
    conversation_id: str, request: MessagesAppend, runtime: Runtime = Depends(get_runtime)
) -> Conversation:
    """Keep new turns; with replace_from, the turns from there on are replaced (regenerate)."""
    return await run_in_threadpool(runtime.conversations.append, conversation_id, request)


@router.delete("/{conversation_id}", status_code=204)
async def delete_conversation(
    conversation_id: str, runtime: Runtime = Depends(get_runtime)
) -> Response:
    await run_in_threadpool(runtime.conversations.delete, conversation_id)
    return Response(status_code=204)
