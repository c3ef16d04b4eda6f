"""Administration: users, groups and the audit trail (admin scope only, enforced for the
whole prefix by the authentication middleware's policy)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_runtime
from aift.auth.schemas import (
    AuditEvent,
    CreatedUser,
    GroupCreate,
    GroupInfo,
    UserCreate,
    UserInfo,
    UserUpdate,
)
from aift.runtime import Runtime

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


def link_url(request: Request, token: str) -> str:
    """The page that sets a password with a one-time token."""
    return str(request.base_url).rstrip("/") + f"/setup/{token}"


@router.get("/users", response_model=list[UserInfo])
async def list_users(rt: Runtime = Depends(get_runtime)) -> list[UserInfo]:
    return await run_in_threadpool(rt.accounts.users.users)


@router.post("/users", response_model=CreatedUser, status_code=201)
async def create_user(
    body: UserCreate, request: Request, rt: Runtime = Depends(get_runtime)
) -> CreatedUser:
    """A new user: with an initial password (to be changed at the first sign-in), or an
    invite link (valid 7 days) that sets it."""
    user, token = await run_in_threadpool(rt.accounts.users.create, body)
    return CreatedUser(user=user, link=link_url(request, token) if token else None)


@router.patch("/users/{user_id}", response_model=UserInfo)
async def update_user(
    user_id: str, body: UserUpdate, rt: Runtime = Depends(get_runtime)
) -> UserInfo:
    """Rename, change the role, disable (signing the user out) or enable."""
    return await run_in_threadpool(rt.accounts.users.update, user_id, body)


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(user_id: str, rt: Runtime = Depends(get_runtime)) -> Response:
    await run_in_threadpool(rt.accounts.users.delete, user_id)
    return Response(status_code=204)


@router.post("/users/{user_id}/link")
async def new_link(
    user_id: str, request: Request, rt: Runtime = Depends(get_runtime)
) -> dict[str, str]:
    """A new one-time link that sets the user's password (a forgotten password)."""
    await run_in_threadpool(rt.accounts.users.get, user_id)
    token = await run_in_threadpool(rt.accounts.users.new_link, user_id)
    return {"link": link_url(request, token)}


@router.get("/groups", response_model=list[GroupInfo])
async def list_groups(rt: Runtime = Depends(get_runtime)) -> list[GroupInfo]:
    return await run_in_threadpool(rt.accounts.users.groups)


@router.post("/groups", response_model=GroupInfo, status_code=201)
async def create_group(body: GroupCreate, rt: Runtime = Depends(get_runtime)) -> GroupInfo:
    return await run_in_threadpool(rt.accounts.users.create_group, body)


@router.put("/groups/{group_id}/members", response_model=GroupInfo)
async def set_members(
    group_id: str, members: list[str], rt: Runtime = Depends(get_runtime)
) -> GroupInfo:
    return await run_in_threadpool(rt.accounts.users.set_members, group_id, members)


@router.delete("/groups/{group_id}", status_code=204)
async def delete_group(group_id: str, rt: Runtime = Depends(get_runtime)) -> Response:
    await run_in_threadpool(rt.accounts.users.delete_group, group_id)
    return Response(status_code=204)


@router.get("/audit", response_model=list[AuditEvent])
async def audit(
    actor: str | None = Query(None, description="An email or user id."),
    action: str | None = Query(None, max_length=200, description="Part of the action."),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(100, ge=1, le=10_000),
    rt: Runtime = Depends(get_runtime),
) -> list[AuditEvent]:
    """State changes, newest first, filtered."""
    return await run_in_threadpool(
        lambda: rt.accounts.audit.query(
            actor=actor, action=action, since=since, until=until, limit=limit
        )
    )
