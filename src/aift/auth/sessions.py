"""Server-side browser sessions: the cookie holds a random token, the database its
SHA-256 with an expiry and the CSRF token the pages send back.

Signing in no longer stores the API key in the browser: a stolen cookie is one
revocable session that ends by itself, and signing out really ends it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete

from aift.auth.schemas import BrowserSession, NewSession
from aift.store import Database
from aift.store.db import utcnow
from aift.store.tables import BrowserSessionRow

# A session seen within this long is not written again just to move last_seen_at.
TOUCH_EVERY = timedelta(minutes=5)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    """Creates, finds and ends browser sessions that last `hours`."""

    def __init__(self, db: Database, hours: float) -> None:
        self.db = db
        self.lifetime = timedelta(hours=hours)

    def create(self, user_id: str | None = None) -> NewSession:
        """A new session (of a user; None: of the bootstrap API key); expired ones are
        swept on the way."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        row = BrowserSessionRow(
            token_hash=token_hash(token),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + self.lifetime,
            last_seen_at=now,
            user_id=user_id,
        )
        with self.db.session() as session:
            session.execute(delete(BrowserSessionRow).where(BrowserSessionRow.expires_at < now))
            session.add(row)
            session.flush()
            return NewSession(token=token, session=BrowserSession.model_validate(row))

    def find(self, token: str) -> BrowserSession | None:
        """The live session of a cookie token, or None (unknown, ended or expired)."""
        if not token or len(token) > 200:
            return None
        now = utcnow()
        with self.db.session() as session:
            row = session.get(BrowserSessionRow, token_hash(token))
            if row is None:
                return None
            if row.expires_at <= now:
                session.delete(row)
                return None
            if now - row.last_seen_at > TOUCH_EVERY:
                row.last_seen_at = now
            return BrowserSession.model_validate(row)

    def end(self, token: str) -> bool:
        """Sign a browser out; True when there was a session to end."""
        with self.db.session() as session:
            result = session.execute(
                delete(BrowserSessionRow).where(BrowserSessionRow.token_hash == token_hash(token))
            )
            return bool(getattr(result, "rowcount", 0))

    def end_user(self, user_id: str) -> int:
        """Sign a user out everywhere."""
        with self.db.session() as session:
            result = session.execute(
                delete(BrowserSessionRow).where(BrowserSessionRow.user_id == user_id)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def end_all(self) -> int:
        """Sign every browser out (e.g. after the API key changed)."""
        with self.db.session() as session:
            result = session.execute(delete(BrowserSessionRow))
            return int(getattr(result, "rowcount", 0) or 0)
