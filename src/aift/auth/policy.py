"""What a principal may do with a request, from its method and path alone — checked
once, in the authentication middleware, for every route, page and WebSocket.

- Reads (GET, HEAD, WebSockets) and the POSTs that only read — generation, search,
  ask, embeddings, scoring, the OpenAI and Ollama inference routes, MCP (whose only
  writing tool is offered to credentials that may write) — need `read`.
- A principal's own account (password, tokens, sign-out everywhere) and own
  conversations need only to be signed in: a viewer keeps their chats.
- `/api/v1/admin/…` needs `admin`.
- Every other change needs `write`.
- A user whose password must change may reach only their account until it is changed.
What each principal may *see* (ownership and sharing) is the services' concern.
"""

from __future__ import annotations

import re

from aift.auth.hosts import SAFE_METHODS
from aift.auth.schemas import Principal, Scope

READ_ONLY_POSTS = re.compile(
    r"^/(v1/(chat/completions|completions|embeddings|moderations)"
    r"|api/(chat|generate|embed|embeddings|show)"
    r"|api/v1/kb/[^/]+/(search|ask)"
    r"|api/v1/models/[^/]+/score"
    r"|mcp)$"  # MCP calls: its tools check the credential's scope themselves
)
OWN_ACCOUNT = re.compile(r"^/(api/v1/account(/.*)?|api/v1/conversations(/.*)?|logout|account)$")
ADMIN = re.compile(r"^/(api/v1/admin(/.*)?|admin(/.*)?)$")
PASSWORD_FIRST = re.compile(r"^/(api/v1/account(/password)?|account|logout|static/.*)$")


def is_change(method: str, path: str) -> bool:
    """Whether a request changes state (what the audit trail records)."""
    return method not in SAFE_METHODS and method != "WS" and not READ_ONLY_POSTS.match(path)


def refusal(principal: Principal, method: str, path: str) -> str | None:
    """Why `principal` may not make this request, or None when it may."""
    if principal.must_change_password and not PASSWORD_FIRST.match(path):
        return "Change your password first (your account page)."
    if ADMIN.match(path):
        return None if principal.can(Scope.admin) else "This needs an admin."
    if OWN_ACCOUNT.match(path):
        return None
    if not is_change(method, path):
        return None if principal.can(Scope.read) else "This credential cannot read."
    if principal.can(Scope.write):
        return None
    return (
        "This credential can only read (a viewer, or a token with read scope); "
        "this request changes something."
    )
