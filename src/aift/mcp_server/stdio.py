"""`aift mcp`: the MCP server on stdin/stdout, for desktop assistants and IDEs that start
their servers as child processes.

It opens the workspace in this process (as the CLI's workspace commands do; searches
read the running server's vector index through its index process) and acts for the
user of the API token it is started with — the same tokens, scopes and ownership as the
REST API and `/mcp`. Without accounts (a single-user install) no token is needed.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from aift.auth.accounts import BOOTSTRAP, OPEN
from aift.auth.schemas import Principal, Scope
from aift.errors import AiftError
from aift.mcp_server.tools import Caller, build
from aift.work.actor import Actor

if TYPE_CHECKING:
    from aift.runtime import Runtime


class NotAuthorized(AiftError):
    status_code = 401
    code = "unauthorized"


def caller_for(runtime: Runtime, token: str | None) -> Caller:
    """Who a stdio session acts for: the token's user (an admin token or the API key sees
    everything), or everyone in a single-user install; refused otherwise."""
    principal = _principal(runtime, token)
    if not principal.can(Scope.read):
        raise NotAuthorized("This token cannot read.")
    if principal.user_id is None or principal.can(Scope.admin):
        actor = Actor(principal.user_id, admin=True)
    else:
        actor = runtime.accounts.users.actor_of(principal.user_id)
    return Caller(actor, principal.can(Scope.write), principal)


def _principal(runtime: Runtime, token: str | None) -> Principal:
    key = runtime.settings.api_key.get_secret_value() if runtime.settings.api_key else None
    if not token:
        if key or runtime.accounts.exist():
            raise NotAuthorized(
                "This workspace has accounts (or an API key): start `aift mcp` with --token "
                "(or AIFT_TOKEN) set to an API token."
            )
        return OPEN
    if key and hmac.compare_digest(token.encode(), key.encode()):
        return BOOTSTRAP
    principal = runtime.accounts.tokens.principal(token)
    if principal is None:
        raise NotAuthorized("The token is unknown, expired or revoked.")
    return principal


def serve(runtime: Runtime, token: str | None) -> None:
    """Answer MCP on stdin/stdout until the client closes them."""
    caller = caller_for(runtime, token)
    build(runtime, lambda _ctx: caller, caller.can_write).run("stdio")
