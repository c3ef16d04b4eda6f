"""Personal API tokens: named, scoped (read / write / admin, at most the user's role),
optionally expiring, revocable, shown once and kept as a SHA-256 only. Usable wherever
the API key is (`Authorization: Bearer`, the OpenAI and Ollama clients' api_key)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import select

from aift.auth.schemas import (
    ROLE_SCOPES,
    NewToken,
    Principal,
    Role,
    Scope,
    TokenCreate,
    TokenInfo,
)
from aift.errors import InvalidInput, NotFound
from aift.store import Database, utcnow
from aift.store.tables import ApiTokenRow, UserRow

PREFIX = "aift_"
# A token used within this long is not written again just to move last_used_at.
TOUCH_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Create, list, revoke and resolve API tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, user_id: str, role: Role, request: TokenCreate) -> NewToken:
        """A new token of the user; scopes beyond the user's role are refused."""
        beyond = set(request.scopes) - ROLE_SCOPES[role]
        if beyond:
            raise InvalidInput(
                f"A {role.value} cannot hold a token with {', '.join(sorted(beyond))} scope."
            )
        token = PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        row = ApiTokenRow(
            id=uuid.uuid4().hex,
            user_id=user_id,
            name=request.name,
            token_hash=token_hash(token),
            prefix=token[: len(PREFIX) + 4],
            scopes=sorted({s.value for s in request.scopes}),
            created_at=now,
            expires_at=now + timedelta(days=request.expires_days) if request.expires_days else None,
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return NewToken(token=token, info=TokenInfo.model_validate(row))

    def list(self, user_id: str) -> list[TokenInfo]:
        query = select(ApiTokenRow).where(ApiTokenRow.user_id == user_id)
        with self.db.session() as session:
            rows = session.scalars(query.order_by(ApiTokenRow.created_at.desc()))
            return [TokenInfo.model_validate(r) for r in rows]

    def revoke(self, user_id: str, token_id: str) -> TokenInfo:
        """Revoke one of the user's tokens (another user's is not found)."""
        with self.db.session() as session:
            row = session.get(ApiTokenRow, token_id)
            if row is None or row.user_id != user_id:
                raise NotFound(f"No token {token_id!r}.")
            row.revoked_at = row.revoked_at or utcnow()
            return TokenInfo.model_validate(row)

    def principal(self, token: str) -> Principal | None:
        """Who a live token speaks for (its scopes cut to the user's role today), or
        None: unknown, revoked, expired, or its user disabled."""
        if not token.startswith(PREFIX) or len(token) > 200:
            return None
        now = utcnow()
        with self.db.session() as session:
            row = session.scalar(
                select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash(token))
            )
            if row is None or row.revoked_at is not None:
                return None
            if row.expires_at is not None and row.expires_at <= now:
                return None
            user = session.get(UserRow, row.user_id)
            if user is None or user.disabled:
                return None
            if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
                row.last_used_at = now
            role = Role(user.role)
            return Principal(
                user_id=user.id,
                email=user.email,
                role=role,
                scopes=frozenset(Scope(s) for s in row.scopes) & ROLE_SCOPES[role],
                via="token",
            )
