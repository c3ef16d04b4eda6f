"""The shapes of the auth package, shared by the middleware, pages and tests."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class BrowserSession(BaseModel):
    """A signed-in browser as the server knows it (its cookie token is never kept)."""

    model_config = ConfigDict(from_attributes=True)

    token_hash: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime


class NewSession(BaseModel):
    """A session just created: the cookie's token is known only now."""

    token: str
    session: BrowserSession
