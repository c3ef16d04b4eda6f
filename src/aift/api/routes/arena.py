"""The arena: start a battle (one question, two models on hidden sides), stream each
side's answer, vote, and read the standings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.api.responses import SSE_RESPONSE
from aift.errors import AiftError
from aift.evaluation.schemas import (
    ArenaBattle,
    ArenaBattleCreate,
    ArenaLeaderboard,
    ArenaVote,
    Side,
)
from aift.inference.schemas import ChatMessage, SamplingParams
from aift.runtime import Runtime

router = APIRouter(prefix="/api/v1/arena", tags=["arena"])


@router.post("/battles", response_model=ArenaBattle, status_code=201)
async def start_battle(
    request: ArenaBattleCreate, rt: Runtime = Depends(get_runtime)
) -> ArenaBattle:
    """A new battle: the two models named, or two chat models drawn at random; which
    answers on side a and which on b is drawn too, and named only after the vote."""
    return await run_in_threadpool(rt.arena.start, request)


@router.get("/battles", response_model=list[ArenaBattle])
async def list_battles(
    limit: int = Query(50, ge=1, le=500), rt: Runtime = Depends(get_runtime)
) -> list[ArenaBattle]:
    """Battles, newest first (models named where voted)."""
    return await run_in_threadpool(rt.arena.list, limit)


@router.get("/battles/{battle_id}", response_model=ArenaBattle)
async def get_battle(battle_id: str, rt: Runtime = Depends(get_runtime)) -> ArenaBattle:
    return await run_in_threadpool(rt.arena.get, battle_id)


@router.post("/battles/{battle_id}/answers/{side}", responses=SSE_RESPONSE)
async def answer_side(
    battle_id: str, side: Side, rt: Runtime = Depends(get_runtime)
) -> StreamingResponse:
    """One side's answer as server-sent events: `token`… then `done` (kept with the
    battle); `error` when its model fails — without naming the model."""
    model, prompt, settings = await run_in_threadpool(rt.arena.side, battle_id, side)
    params = SamplingParams(
        temperature=settings.get("temperature", 0.7), max_tokens=settings.get("max_tokens", 512)
    )
    messages = [ChatMessage(role="user", content=prompt)]

    def hidden(exc: AiftError) -> dict[str, Any]:
        return {"message": exc.message.replace(model, f"the model of side {side}")}

    try:
        generation = await run_in_threadpool(rt.serving.chat, model, messages, params)
    except AiftError as exc:
        failed = hidden(exc)

        async def refused() -> AsyncIterator[str]:
            yield _event("error", failed)

        return StreamingResponse(refused(), media_type="text/event-stream")

    async def events() -> AsyncIterator[str]:
        parts: list[str] = []
        try:
            async for piece in generation.pieces():
                if piece.text:
                    parts.append(piece.text)
                    yield _event("token", {"text": piece.text})
        except AiftError as exc:
            yield _event("error", hidden(exc))
            return
        answer = "".join(parts).strip()
        await run_in_threadpool(rt.arena.record, battle_id, side, answer)
        yield _event("done", {"answer": answer})

    return StreamingResponse(events(), media_type="text/event-stream")


@router.post("/battles/{battle_id}/vote", response_model=ArenaBattle)
async def vote(
    battle_id: str, request: ArenaVote, rt: Runtime = Depends(get_runtime)
) -> ArenaBattle:
    """The verdict (a, b, tie, both_bad), once both sides have answered; the battle comes
    back with its models named."""
    return await run_in_threadpool(rt.arena.vote, battle_id, request.winner)


@router.get("/leaderboard", response_model=ArenaLeaderboard)
async def leaderboard(rt: Runtime = Depends(get_runtime)) -> ArenaLeaderboard:
    """Each model's wins, losses, ties, win rate and Bradley–Terry rating over all votes."""
    return await run_in_threadpool(rt.arena.leaderboard)


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"
