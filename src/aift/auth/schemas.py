"""The shapes of the auth package, shared by the middleware, pages and tests."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class BrowserSession(BaseModel):
    """A signed-in browser as the server knows it (its cookie token is never kept)."""

    model_config = ConfigDict(from_attributes=True)

    token_hash: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    user_id: str | None = None


class NewSession(BaseModel):
    """A session just created: the cookie's token is known only now."""

    token: str
    session: BrowserSession


# accounts ------------------------------------------------------------------------------
class Role(StrEnum):
    """What a user may do: admin (everything, users), member (own work, what is shared
    with them), viewer (chat and ask what is shared with them)."""

    admin = "admin"
    member = "member"
    viewer = "viewer"


class Scope(StrEnum):
    """What a credential may do, at most its user's role: read (lists, reads, chat, search,
    ask), write (uploads, deletes, training…), admin (users, groups, audit)."""

    read = "read"
    write = "write"
    admin = "admin"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.admin: frozenset(Scope),
    Role.member: frozenset({Scope.read, Scope.write}),
    Role.viewer: frozenset({Scope.read}),
}
MIN_PASSWORD = 10
MAX_PASSWORD = 256


class Principal(BaseModel):
    """Who a request comes from, and what it may do. `user_id` None: the bootstrap API
    key, or single-user mode (no accounts, loopback) — both act as the admin."""

    model_config = ConfigDict(frozen=True)

    user_id: str | None = None
    email: str | None = None
    role: Role = Role.admin
    scopes: frozenset[Scope] = frozenset(Scope)
    via: Literal["open", "key", "token", "session"] = "open"
    must_change_password: bool = False

    @property
    def label(self) -> str:
        """How the audit trail names this principal."""
        if self.email:
            return self.email
        return "api key" if self.via == "key" else "single-user mode"

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes


class UserInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    name: str
    role: Role
    disabled: bool
    must_change_password: bool
    has_password: bool = False
    created_at: datetime
    last_login_at: datetime | None = None


class UserCreate(BaseModel):
    """A new account: with an initial password (changed at first sign-in) or, without
    one, an invite link to set it."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(..., min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field("", max_length=200)
    role: Role = Role.member
    password: str | None = Field(None, min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    role: Role | None = None
    disabled: bool | None = None


class CreatedUser(BaseModel):
    """A user just made, and the one-time link that sets their password (when no
    initial password was given)."""

    user: UserInfo
    link: str | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current: str = Field("", max_length=MAX_PASSWORD)
    new: str = Field(..., min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=100)
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.read], min_length=1)
    expires_days: int | None = Field(None, ge=1, le=3650, description="None: never expires.")


class TokenInfo(BaseModel):
    """A token as lists show it: never the token itself."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str = Field(..., description="The token's first characters, to recognise it.")
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class NewToken(BaseModel):
    """A token just made: `token` is shown this once and never again."""

    token: str
    info: TokenInfo


class GroupInfo(BaseModel):
    id: str
    name: str
    members: list[str] = Field(default_factory=list, description="User ids.")
    created_at: datetime


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=100)
    members: list[str] = Field(default_factory=list, max_length=1000)


class AuditEvent(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_id: str | None
    actor: str
    action: str
    target: str
    status: int
    client: str
    request_id: str


class ShareGrant(BaseModel):
    """Share a resource with a user (by email) or a group (by name), to read or write."""

    model_config = ConfigDict(extra="forbid")

    grantee: str = Field(..., min_length=1, max_length=320, description="Email or group name.")
    kind: Literal["user", "group"] = "user"
    access: Literal["read", "write"] = "read"


class ShareInfo(BaseModel):
    grantee_type: Literal["user", "group"]
    grantee_id: str
    grantee: str = Field(..., description="The user's email or the group's name.")
    access: Literal["read", "write"]
    created_at: datetime
