"""ASGI middleware: request ids with an access log, 500 bodies, and authentication
(the API key, or a signed-in browser session with its CSRF token).

All are plain ASGI so they cover WebSockets as well as HTTP.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
import uuid
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aift.api.errors import error_body, unexpected_error_message
from aift.api.guards import header, is_ollama_path, refuse
from aift.auth.accounts import BOOTSTRAP, OPEN, Accounts
from aift.auth.audit import AuditLog
from aift.auth.hosts import SAFE_METHODS
from aift.auth.policy import is_change, refusal
from aift.auth.schemas import BrowserSession, Principal
from aift.auth.schemas import Scope as AuthScope
from aift.errors import storage_problem
from aift.monitoring import metrics
from aift.monitoring.logging import request_id_var
from aift.work.actor import Actor, acting_as

access_log = logging.getLogger("aift.access")
error_log = logging.getLogger("aift.api.errors")

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SESSION_COOKIE = "aift_session"
CSRF_HEADER = b"x-csrf-token"
PUBLIC_PREFIXES = (
    "/healthz",
    "/static/",
    "/login",
    "/logout",
    "/setup/",
    "/signup",
    "/favicon.ico",
)
# TensorBoard's own pages POST their (read-only) queries and cannot send our CSRF token;
# the cross-site check still keeps other sites' pages out.
CSRF_EXEMPT_PREFIXES = ("/tensorboard/",)
# Routes that write their own audit events (the actor is known only inside them).
SELF_AUDITED = ("/login", "/setup/", "/logout", "/signup")


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


class AuthMiddleware:
    """Say who every request comes from and refuse what that principal may not do.

    Without an API key and without accounts (a loopback single-user install) everyone is
    the admin, as before accounts existed. Otherwise each request, health, static files
    and the sign-in pages aside, must present `Authorization: Bearer <API key or API
    token>` (`?token=` on WebSockets: browsers cannot set headers there) or a browser
    session cookie, whose state-changing requests also carry the session's CSRF token in
    `X-CSRF-Token`. The principal then goes through `auth.policy` (scopes, admin routes,
    a password that must change first) and rides in `scope["state"]["principal"]`.
    """

    def __init__(self, app: ASGIApp, api_key: str | None, accounts: Accounts) -> None:
        self.app = app
        # A blank key is no key (Settings normalises it too; this guards other callers).
        self.api_key = api_key.strip() if api_key and api_key.strip() else None
        self.accounts = accounts

    def _bearer(self, scope: Scope) -> str | None:
        auth = header(scope, b"authorization") or ""
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        if scope["type"] == "websocket":
            token = parse_qs(scope.get("query_string", b"").decode()).get("token")
            if token:
                return token[0]
        return None

    async def _session(self, scope: Scope) -> BrowserSession | None:
        token = session_cookie(header(scope, b"cookie"))
        if not token:
            return None
        return await run_in_threadpool(self.accounts.sessions.find, token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or scope["path"].startswith(PUBLIC_PREFIXES)
            or scope.get("method") == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        if not self.api_key and not await run_in_threadpool(self.accounts.exist):
            await self._admit(scope, receive, send, OPEN)
            return
        presented = self._bearer(scope)
        if presented is not None:
            principal = await self._of_bearer(presented)
            if principal is not None:
                await self._admit(scope, receive, send, principal)
                return
        else:
            session = await self._session(scope)
            principal = (
                await run_in_threadpool(self.accounts.of_session, session) if session else None
            )
            if session is not None and principal is not None:
                if not self._csrf_ok(scope, session):
                    message = (
                        "This change did not come with the page's security token. "
                        "Reload the page and try again."
                    )
                    await refuse(scope, send, 403, "csrf_failed", message)
                    return
                scope.setdefault("state", {})["browser_session"] = session
                await self._admit(scope, receive, send, principal)
                return
        await self._unauthorized(scope, send)

    async def _of_bearer(self, presented: str) -> Principal | None:
        if self.api_key and keys_match(presented, self.api_key):
            return BOOTSTRAP
        return await run_in_threadpool(self.accounts.tokens.principal, presented)

    async def _admit(
        self, scope: Scope, receive: Receive, send: Send, principal: Principal
    ) -> None:
        """Run the request as `principal` when the policy allows it, else 403."""
        reason = refusal(principal, scope.get("method", "WS"), scope["path"])
        if reason is not None:
            await refuse(scope, send, 403, "forbidden", reason)
            return
        scope.setdefault("state", {})["principal"] = principal
        with acting_as(await self._actor(principal)):
            await self.app(scope, receive, send)

    async def _actor(self, principal: Principal) -> Actor:
        """Whom the request's work is for: a user and their groups, or everyone (an
        admin, the API key, single-user mode)."""
        if principal.user_id is None or principal.can(AuthScope.admin):
            return Actor(principal.user_id, admin=True)
        groups = await run_in_threadpool(self.accounts.users.group_ids_of, principal.user_id)
        return Actor(principal.user_id, admin=False, groups=frozenset(groups))

    @staticmethod
    def _csrf_ok(scope: Scope, session: BrowserSession) -> bool:
        """A session's reads need nothing more; its changes carry its CSRF token."""
        if scope["type"] == "websocket" or scope["method"] in SAFE_METHODS:
            return True
        if scope["path"].startswith(CSRF_EXEMPT_PREFIXES):
            return True
        sent = header(scope, CSRF_HEADER) or ""
        return keys_match(sent, session.csrf_token)

    @staticmethod
    async def _unauthorized(scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401, "reason": "API key required"})
            return
        accepts_html = "text/html" in (header(scope, b"accept") or "")
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
            "Missing or wrong API key or token. Send 'Authorization: Bearer <token>' with "
            "one of your API tokens, or the key set in AIFT_API_KEY."
        )
        payload = {"error": message} if is_ollama_path(scope["path"]) else None
        body = json.dumps(payload or error_body("unauthorized", message)).encode()
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


def session_cookie(cookie_header: str | None) -> str | None:
    """The browser session token in a Cookie header, if any."""
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE:
            return value
    return None


class AuditMiddleware:
    """Record every state-changing request (`auth.policy.is_change`) in the audit trail
    once it is answered: who (the principal), what (method and route), on what (the
    path), the status, from where (the client address) and the request id."""

    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if not is_change(method, path) or path.startswith(SELF_AUDITED):
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching)
        finally:
            principal = scope.get("state", {}).get("principal")
            client = scope.get("client")
            await run_in_threadpool(
                self.audit.record,
                principal,
                f"{method} {route_template(scope)}",
                scope["path"],
                status=status["code"],
                client=client[0] if client else "",
                request_id=request_id_var.get() or "",
            )
