"""The accounts of a workspace in one place: users and groups, browser sessions, API
tokens, the audit trail — and who a presented credential is."""

from __future__ import annotations

from aift.auth.audit import AuditLog
from aift.auth.schemas import ROLE_SCOPES, BrowserSession, Principal, Role
from aift.auth.sessions import SessionStore
from aift.auth.shares import ShareStore
from aift.auth.tokens import TokenStore
from aift.auth.users import UserStore
from aift.errors import NotFound
from aift.store import Database

OPEN = Principal(via="open")  # single-user mode: no key, no accounts, loopback only
BOOTSTRAP = Principal(via="key")  # AIFT_API_KEY: the bootstrap admin


class Accounts:
    """Users, sessions, tokens and the audit trail of one metadata store."""

    def __init__(self, db: Database, session_hours: float, audit_days: int) -> None:
        self.users = UserStore(db)
        self.sessions = SessionStore(db, session_hours)
        self.tokens = TokenStore(db)
        self.audit = AuditLog(db, audit_days)
        self.shares = ShareStore(db)
        self._exist = False

    def exist(self) -> bool:
        """Whether any account exists (then every request must say who it is). Once
        true it stays true: the last admin cannot be removed."""
        if not self._exist:
            self._exist = self.users.count() > 0
        return self._exist

    def bootstrap(self, email: str) -> str | None:
        """On a workspace without accounts, the first admin (AIFT_ADMIN_EMAIL) with a
        one-time token that sets the password; None when accounts exist already."""
        from aift.auth.schemas import UserCreate

        if self.users.count() > 0:
            return None
        _, token = self.users.create(UserCreate(email=email, name="admin", role=Role.admin))
        self._exist = True
        return token

    def of_session(self, session: BrowserSession) -> Principal | None:
        """Who a signed-in browser is: its user (None when the user is gone or
        disabled), or the bootstrap admin for a session opened with the API key."""
        if session.user_id is None:
            return Principal(via="session")
        try:
            user = self.users.get(session.user_id)
        except NotFound:
            return None
        if user.disabled:
            return None
        return Principal(
            user_id=user.id,
            email=user.email,
            role=user.role,
            scopes=ROLE_SCOPES[Role(user.role)],
            via="session",
            must_change_password=user.must_change_password,
        )
