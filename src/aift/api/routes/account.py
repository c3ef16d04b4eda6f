"""The signed-in user's own account: who am I, password, API tokens, signing out
everywhere."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from aift.api.deps import get_principal, get_runtime
from aift.auth.schemas import NewToken, PasswordChange, Principal, TokenCreate, TokenInfo
from aift.errors import InvalidInput
from aift.runtime import Runtime

router = APIRouter(prefix="/api/v1/account", tags=["account"])


def _user_id(principal: Principal) -> str:
    if principal.user_id is None:
        raise InvalidInput(
            "This request speaks with the server's API key (or in single-user mode), not as a "
            "user: sign in with an account to manage a password or tokens."
        )
    return principal.user_id


@router.get("")
async def me(
    principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Who this request is: the user (none for the API key or single-user mode), the
    role, the scopes and how it signed in."""
    user = (
        await run_in_threadpool(rt.accounts.users.get, principal.user_id)
        if principal.user_id
        else None
    )
    return {
        "user": user.model_dump(mode="json") if user else None,
        "role": principal.role.value,
        "scopes": sorted(s.value for s in principal.scopes),
        "via": principal.via,
    }


@router.post("/password", status_code=204)
async def change_password(
    change: PasswordChange,
    principal: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> Response:
    """A new password (the current one required); every session of the user ends, this
    browser's included."""
    user_id = _user_id(principal)
    await run_in_threadpool(
        lambda: rt.accounts.users.set_password(user_id, change.new, current=change.current)
    )
    return Response(status_code=204)


@router.get("/tokens", response_model=list[TokenInfo])
async def list_tokens(
    principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> list[TokenInfo]:
    """The user's tokens (never the tokens themselves): scopes, expiry, last use."""
    return await run_in_threadpool(rt.accounts.tokens.list, _user_id(principal))


@router.post("/tokens", response_model=NewToken, status_code=201)
async def create_token(
    request: TokenCreate,
    principal: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> NewToken:
    """A new token, shown this once: use it as `Authorization: Bearer` or as the OpenAI
    and Ollama clients' api_key."""
    user_id = _user_id(principal)
    return await run_in_threadpool(rt.accounts.tokens.create, user_id, principal.role, request)


@router.delete("/tokens/{token_id}", response_model=TokenInfo)
async def revoke_token(
    token_id: str, principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> TokenInfo:
    """Revoke a token at once."""
    return await run_in_threadpool(rt.accounts.tokens.revoke, _user_id(principal), token_id)


@router.post("/logout-everywhere")
async def logout_everywhere(
    principal: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> dict[str, int]:
    """End every browser session of the user (tokens stay: revoke them one by one)."""
    ended = await run_in_threadpool(rt.accounts.sessions.end_user, _user_id(principal))
    return {"ended": ended}
