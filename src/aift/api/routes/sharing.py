"""What the share routes of every owned resource (knowledge bases, datasets) do: find
the resource as its owner or an admin, then list, grant or revoke its shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from aift.auth.schemas import ShareGrant, ShareInfo
from aift.runtime import Runtime

Owned = Callable[[str], Any]  # the resource (with its `id`) for its owner or an admin


async def shares_of(rt: Runtime, kind: str, owned: Owned, ref: str) -> list[ShareInfo]:
    info = await run_in_threadpool(owned, ref)
    return await run_in_threadpool(rt.accounts.shares.of, kind, info.id)


async def grant(rt: Runtime, kind: str, owned: Owned, ref: str, body: ShareGrant) -> ShareInfo:
    info = await run_in_threadpool(owned, ref)
    return await run_in_threadpool(rt.accounts.shares.grant, kind, info.id, body)


async def revoke(
    rt: Runtime, kind: str, owned: Owned, ref: str, grantee_type: str, grantee_id: str
) -> Response:
    info = await run_in_threadpool(owned, ref)
    await run_in_threadpool(rt.accounts.shares.revoke, kind, info.id, grantee_type, grantee_id)
    return Response(status_code=204)
