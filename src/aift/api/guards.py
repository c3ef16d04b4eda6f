"""ASGI guards in front of every route: the Host allow-list, the cross-site check of
state-changing browser requests, and request body limits enforced while reading.

Plain ASGI, so WebSocket handshakes pass the same checks as HTTP requests.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aift.api.errors import error_body
from aift.auth.hosts import HostPolicy

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MIB = 1024 * 1024


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def is_ollama_path(path: str) -> bool:
    """Ollama's own routes answer errors as {"error": "..."}; every other route with
    aift's {"error": {"code", "message"}}."""
    return path.startswith("/api/") and not path.startswith("/api/v1/")


async def refuse(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    """Answer a request with an error before it reaches a route (WebSockets: a 403
    handshake refusal, which is all a browser's WebSocket can be told)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4403, "reason": message[:120]})
        return
    payload = {"error": message} if is_ollama_path(scope["path"]) else error_body(code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


class HostGuardMiddleware:
    """Answer only requests addressed to one of our names (DNS rebinding defence)."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.policy.host_allowed(
            header(scope, b"host")
        ):
            message = (
                "This server does not answer to that host name. If you reach it through "
                "this name on purpose, add the name to AIFT_ALLOWED_HOSTS."
            )
            await refuse(scope, send, 400, "host_not_allowed", message)
            return
        await self.app(scope, receive, send)


class CrossSiteGuardMiddleware:
    """Refuse state-changing requests (and WebSocket handshakes) that a browser sends
    on behalf of another site's page; non-browser clients send no Origin and pass."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method = "WEBSOCKET" if scope["type"] == "websocket" else scope["method"]
        reason = self.policy.cross_site_reason(
            method,
            header(scope, b"origin"),
            header(scope, b"sec-fetch-site"),
            header(scope, b"host"),
        )
        if reason is not None:
            await refuse(scope, send, 403, "cross_site_request", reason)
            return
        await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    """A request body past its limit, raised while it is being read (an HTTPException
    so FastAPI's body parsing passes it on instead of calling it a parse error)."""

    def __init__(self, limit_bytes: int, setting: str) -> None:
        super().__init__(
            413,
            f"The request body is larger than the {limit_bytes // MIB} MB limit ({setting}).",
        )


class BodyLimitMiddleware:
    """Cap every request body while it arrives: a declared Content-Length past the
    limit is refused at once, a chunked body as soon as it passes it. Uploads
    (multipart), model blobs and everything else (JSON) each have their own limit."""

    def __init__(self, app: ASGIApp, *, json_mb: int, upload_mb: int, blob_mb: int) -> None:
        self.app = app
        self.limits = {
            "json": (json_mb * MIB, "AIFT_MAX_JSON_MB"),
            "upload": (upload_mb * MIB, "AIFT_MAX_UPLOAD_REQUEST_MB"),
            "blob": (blob_mb * MIB, "AIFT_MAX_BLOB_MB"),
        }

    def _limit(self, scope: Scope) -> tuple[int, str]:
        if scope["path"].startswith("/api/blobs/"):
            return self.limits["blob"]
        if (header(scope, b"content-type") or "").lower().startswith("multipart/"):
            return self.limits["upload"]
        return self.limits["json"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit, setting = self._limit(scope)
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            too_large = BodyTooLarge(limit, setting)
            await refuse(scope, send, 413, "too_large", str(too_large.detail))
            return
        seen = {"bytes": 0, "started": False}

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["started"] = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge as exc:  # raised where no handler turned it into a response
            if not seen["started"]:
                await refuse(scope, send, 413, "too_large", str(exc.detail))
