"""ASGI middleware: request ids with an access log, and the API key check.

Both are plain ASGI so they cover WebSockets as well as HTTP.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
import uuid
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aift.api.errors import error_body, unexpected_error_message
from aift.errors import storage_problem
from aift.monitoring import metrics
from aift.monitoring.logging import request_id_var

access_log = logging.getLogger("aift.access")
error_log = logging.getLogger("aift.api.errors")

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
API_KEY_COOKIE = "aift_api_key"
PUBLIC_PREFIXES = ("/healthz", "/static/", "/login", "/favicon.ico")


def keys_match(presented: str, expected: str) -> bool:
    """Compare a presented key with the configured one in constant time."""
    return secrets.compare_digest(presented.encode(), expected.encode())


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/api/v1/jobs/{job_id}`), never the raw path:
    metric labels stay few whatever clients send."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class RequestIdMiddleware:
    """Give every request an id (kept from X-Request-ID when sane), log it and count it
    in the HTTP metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = {"code": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope.get("method", "WS")
            access_log.info(
                "%s %s %s %.1fms",
                method,
                scope["path"],
                status["code"] or "-",
                seconds * 1000,
                extra={"status": status["code"], "duration_ms": round(seconds * 1000, 1)},
            )
            route = route_template(scope)
            metrics.http_requests.labels(method, route, str(status["code"] or "-")).inc()
            metrics.http_duration.labels(method, route).observe(seconds)
            request_id_var.reset(token)


class UnexpectedErrorMiddleware:
    """Turn an unhandled exception into aift's 500 body, inside the request id's scope
    (a full or read-only workspace disk becomes a 507 saying so).

    Starlette answers unhandled errors in its outermost layer, outside every user
    middleware: the body then had no request id and the response no X-Request-ID. This
    sits just inside `RequestIdMiddleware`, so a 500 carries both and is logged with
    the id. A response already under way (a stream) can only be cut off.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = {"response": False}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["response"] = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            problem = storage_problem(exc)
            if problem is not None:  # a full or read-only disk: the user's to fix, not a bug
                error_log.error("%s %s: %s (%s)", scope["method"], scope["path"], problem, exc)
                status, body_data = problem.status_code, error_body(problem.code, problem.message)
            else:
                error_log.exception(
                    "unhandled error on %s %s: %s", scope["method"], scope["path"], exc
                )
                status, body_data = 500, error_body("internal_error", unexpected_error_message())
            if started["response"]:
                return  # a stream was cut short; its client sees the connection end
            body = json.dumps(body_data).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})


class ApiKeyMiddleware:
    """When an API key is set, require it on everything but health, static and login.

    Accepted as `Authorization: Bearer <key>`, the `aift_api_key` cookie (set by the
    login page for the browser UI), or `?token=` on WebSockets (browsers cannot set
    headers there).
    """

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        # A blank key is no key (Settings normalises it too; this guards other callers).
        self.api_key = api_key.strip() if api_key and api_key.strip() else None

    def _presented(self, scope: Scope) -> str | None:
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == API_KEY_COOKIE:
                return value
        if scope["type"] == "websocket":
            token = parse_qs(scope.get("query_string", b"").decode()).get("token")
            if token:
                return token[0]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.api_key
            or scope["type"] not in ("http", "websocket")
            or scope["path"].startswith(PUBLIC_PREFIXES)
            or scope.get("method") == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        presented = self._presented(scope)
        if presented and keys_match(presented, self.api_key):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401, "reason": "API key required"})
            return
        accepts_html = b"text/html" in dict(scope["headers"]).get(b"accept", b"")
        if accepts_html and not scope["path"].startswith(("/api/", "/v1/")):
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", b"/login")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        message = (
            "Missing or wrong API key. Send 'Authorization: Bearer <key>' "
            "with the key set in AIFT_API_KEY."
        )
        body = json.dumps(error_body("unauthorized", message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
