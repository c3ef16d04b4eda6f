"""`/mcp`: the MCP server over streamable HTTP, behind the API's own authentication.

The request has passed the API's middleware (Host and Origin checks, the bearer token or
session, the policy) before it reaches this endpoint, which hands it to one of two MCP
servers: with `add_document` for a caller whose credential may write, without it for a
read-only one. Stateless mode with JSON responses: every POST is answered on its own,
so nothing about a caller outlives their request.

Who the call is for travels in a context variable set here, inside the request; a tool
that finds none refuses (it never falls back to seeing everything).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings

from aift.auth.schemas import Principal, Scope
from aift.mcp_server.tools import Caller, build
from aift.work.actor import current_actor

if TYPE_CHECKING:
    from aift.runtime import Runtime

PATH = "/mcp"
_caller: ContextVar[Caller | None] = ContextVar("aift_mcp_caller", default=None)


def _request_caller(_ctx: Context) -> Caller:
    caller = _caller.get()
    if caller is None:
        raise ToolError("This call did not come through an authenticated request.")
    return caller


class McpEndpoint:
    """The ASGI endpoint at `/mcp` (its servers' session managers run in the app's
    lifespan, `running()`)."""

    def __init__(self, runtime: Runtime) -> None:
        self._servers = {
            writable: build(runtime, _request_caller, writable) for writable in (False, True)
        }
        # Host and Origin are checked by the API's middleware, for every route alike.
        unchecked = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        self._apps = {}
        for writable, server in self._servers.items():
            server.streamable_http_app(
                streamable_http_path=PATH,
                stateless_http=True,
                json_response=True,
                transport_security=unchecked,
            )
            self._apps[writable] = StreamableHTTPASGIApp(server.session_manager)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with (
            self._servers[False].session_manager.run(),
            self._servers[True].session_manager.run(),
        ):
            yield

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        principal = scope.get("state", {}).get("principal")
        writable = isinstance(principal, Principal) and principal.can(Scope.write)
        caller = Caller(
            current_actor.get(), writable, principal if isinstance(principal, Principal) else None
        )
        token = _caller.set(caller)
        try:
            await self._apps[writable](scope, receive, send)
        finally:
            _caller.reset(token)
