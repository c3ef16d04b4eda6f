"""Accounts: users with roles and Argon2 passwords, one-time links that set a password
(the first admin's setup link, invites), and groups."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aift.auth.passwords import hash_password, needs_rehash, verify
from aift.auth.schemas import (
    GroupCreate,
    GroupInfo,
    Role,
    UserCreate,
    UserInfo,
    UserUpdate,
)
from aift.errors import Conflict, InvalidInput, NotFound
from aift.store import Database, utcnow
from aift.store.tables import (
    AccountLinkRow,
    ApiTokenRow,
    BrowserSessionRow,
    GroupMemberRow,
    GroupRow,
    UserRow,
)
from aift.work.actor import Actor

LINK_LIFETIME = timedelta(days=7)
# Resources made before accounts existed (owner NULL) become the first admin's.
OWNED_TABLES = (
    "jobs",
    "models",
    "datasets",
    "knowledge_bases",
    "search_history",
    "conversations",
    "arena_battles",
)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normal_email(email: str) -> str:
    return email.strip().lower()


def user_info(row: UserRow) -> UserInfo:
    info = UserInfo.model_validate(row)
    info.has_password = row.password_hash is not None
    return info


class UserStore:
    """Create, find, change and remove users; check passwords; make one-time links."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def count(self) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(UserRow)) or 0)

    def create(self, request: UserCreate, *, chosen: bool = False) -> tuple[UserInfo, str | None]:
        """A new user, and a one-time link token when no initial password was given
        (an initial password, set by an admin, must be changed at the first sign-in;
        one the user `chosen` at sign-up need not)."""
        email = normal_email(request.email)
        row = UserRow(
            id=uuid.uuid4().hex,
            email=email,
            name=request.name,
            role=request.role.value,
            password_hash=hash_password(request.password) if request.password else None,
            must_change_password=request.password is not None and not chosen,
            disabled=False,
            created_at=utcnow(),
        )
        try:
            with self.db.session() as session:
                first = not session.scalar(select(func.count()).select_from(UserRow))
                session.add(row)
                session.flush()
                if first:
                    _adopt_orphans(session, row.id)
                info = user_info(row)
        except IntegrityError:
            raise Conflict(f"A user with the email {email} exists already.") from None
        link = None if request.password else self.new_link(info.id)
        return info, link

    def get(self, user_id: str) -> UserInfo:
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"No user {user_id!r}.")
            return user_info(row)

    def by_email(self, email: str) -> UserInfo | None:
        with self.db.session() as session:
            row = session.scalar(select(UserRow).where(UserRow.email == normal_email(email)))
            return user_info(row) if row is not None else None

    def users(self) -> list[UserInfo]:
        with self.db.session() as session:
            return [user_info(r) for r in session.scalars(select(UserRow).order_by(UserRow.email))]

    def update(self, user_id: str, change: UserUpdate) -> UserInfo:
        """Rename, change the role, disable (which ends the user's sessions and tokens'
        use at once) or enable; the last active admin cannot be demoted or disabled."""
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"No user {user_id!r}.")
            demoted = change.role is not None and change.role != Role.admin
            if row.role == Role.admin.value and (demoted or change.disabled):
                _keep_an_admin(session, user_id)
            if change.name is not None:
                row.name = change.name
            if change.role is not None:
                row.role = change.role.value
            if change.disabled is not None:
                row.disabled = change.disabled
                if change.disabled:
                    session.execute(
                        delete(BrowserSessionRow).where(BrowserSessionRow.user_id == user_id)
                    )
            return user_info(row)

    def delete(self, user_id: str) -> None:
        """Remove a user with their tokens, sessions and memberships; what they owned
        stays (an admin still sees it)."""
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"No user {user_id!r}.")
            if row.role == Role.admin.value:
                _keep_an_admin(session, user_id)
            session.execute(delete(BrowserSessionRow).where(BrowserSessionRow.user_id == user_id))
            session.execute(delete(ApiTokenRow).where(ApiTokenRow.user_id == user_id))
            session.execute(delete(GroupMemberRow).where(GroupMemberRow.user_id == user_id))
            session.execute(delete(AccountLinkRow).where(AccountLinkRow.user_id == user_id))
            session.delete(row)

    def authenticate(self, email: str, password: str) -> UserInfo | None:
        """The active user whose password this is, else None (the same work either way)."""
        with self.db.session() as session:
            row = session.scalar(select(UserRow).where(UserRow.email == normal_email(email)))
            stored = row.password_hash if row is not None else None
            if not verify(stored, password) or row is None or row.disabled:
                return None
            if stored and needs_rehash(stored):
                row.password_hash = hash_password(password)
            row.last_login_at = utcnow()
            return user_info(row)

    def set_password(self, user_id: str, password: str, *, current: str | None = None) -> None:
        """A new password (checking the current one when given); every session of the
        user ends."""
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"No user {user_id!r}.")
            if current is not None and not verify(row.password_hash, current):
                raise InvalidInput("The current password is not right.")
            row.password_hash = hash_password(password)
            row.must_change_password = False
            session.execute(delete(BrowserSessionRow).where(BrowserSessionRow.user_id == user_id))

    def new_link(self, user_id: str) -> str:
        """A one-time token that sets the user's password within LINK_LIFETIME."""
        token = secrets.token_urlsafe(32)
        with self.db.session() as session:
            session.execute(delete(AccountLinkRow).where(AccountLinkRow.user_id == user_id))
            session.add(
                AccountLinkRow(
                    token_hash=_hash(token), user_id=user_id, expires_at=utcnow() + LINK_LIFETIME
                )
            )
        return token

    def use_link(self, token: str, password: str) -> UserInfo:
        """Set the password of a link's user and spend the link."""
        with self.db.session() as session:
            link = session.get(AccountLinkRow, _hash(token))
            if link is None or link.expires_at <= utcnow():
                raise NotFound("This link is not valid any more; ask an admin for a new one.")
            user_id = link.user_id
            session.delete(link)
        self.set_password(user_id, password)
        return self.get(user_id)

    def link_user(self, token: str) -> UserInfo | None:
        """The user a valid link is for (the set-password page shows the email)."""
        with self.db.session() as session:
            link = session.get(AccountLinkRow, _hash(token)) if token else None
            if link is None or link.expires_at <= utcnow():
                return None
            user_id = link.user_id
        return self.get(user_id)

    # groups ---------------------------------------------------------------------------
    def groups(self) -> list[GroupInfo]:
        with self.db.session() as session:
            members: dict[str, list[str]] = {}
            for group_id, user_id in session.execute(
                select(GroupMemberRow.group_id, GroupMemberRow.user_id)
            ):
                members.setdefault(group_id, []).append(user_id)
            return [
                GroupInfo(
                    id=g.id,
                    name=g.name,
                    members=sorted(members.get(g.id, [])),
                    created_at=g.created_at,
                )
                for g in session.scalars(select(GroupRow).order_by(GroupRow.name))
            ]

    def create_group(self, request: GroupCreate) -> GroupInfo:
        row = GroupRow(id=uuid.uuid4().hex, name=request.name.strip(), created_at=utcnow())
        try:
            with self.db.session() as session:
                session.add(row)
                session.flush()
        except IntegrityError:
            raise Conflict(f"A group named {request.name!r} exists already.") from None
        return self.set_members(row.id, request.members)

    def set_members(self, group_id: str, members: list[str]) -> GroupInfo:
        """Replace a group's members (each must be a user)."""
        with self.db.session() as session:
            if session.get(GroupRow, group_id) is None:
                raise NotFound(f"No group {group_id!r}.")
            known = set(session.scalars(select(UserRow.id).where(UserRow.id.in_(members))))
            unknown = sorted(set(members) - known)
            if unknown:
                raise InvalidInput(f"No users {', '.join(unknown)}.")
            session.execute(delete(GroupMemberRow).where(GroupMemberRow.group_id == group_id))
            session.add_all([GroupMemberRow(group_id=group_id, user_id=u) for u in sorted(known)])
        return next(g for g in self.groups() if g.id == group_id)

    def delete_group(self, group_id: str) -> None:
        with self.db.session() as session:
            row = session.get(GroupRow, group_id)
            if row is None:
                raise NotFound(f"No group {group_id!r}.")
            session.execute(delete(GroupMemberRow).where(GroupMemberRow.group_id == group_id))
            session.delete(row)

    def actor_of(self, user_id: str) -> Actor:
        """Whom work done for `user_id` away from a request (their jobs) acts as: their
        role and groups now; a user since removed or disabled sees only their own."""
        with self.db.session() as session:
            row = session.get(UserRow, user_id)
            known = row is not None and not row.disabled
            admin = known and row is not None and row.role == Role.admin.value
        groups = frozenset(self.group_ids_of(user_id)) if known else frozenset()
        return Actor(user_id, admin=admin, groups=groups)

    def group_ids_of(self, user_id: str) -> list[str]:
        with self.db.session() as session:
            return list(
                session.scalars(
                    select(GroupMemberRow.group_id).where(GroupMemberRow.user_id == user_id)
                )
            )


def _keep_an_admin(session: Session, leaving: str) -> None:
    """Refuse a change that would leave no active admin."""
    others = session.scalar(
        select(func.count())
        .select_from(UserRow)
        .where(UserRow.role == Role.admin.value, UserRow.disabled.is_(False), UserRow.id != leaving)
    )
    if not others:
        raise InvalidInput("This is the last active admin: make another admin first.")


def _adopt_orphans(session: Session, admin_id: str) -> None:
    """Give the first admin everything made before accounts existed — of models, those in
    the workspace (trained, merged, exported); packaged and installed ones stay everyone's."""
    from aift.store.tables import Base

    for name in OWNED_TABLES:
        table = Base.metadata.tables[name]
        orphan: list[ColumnElement[bool]] = [table.c.owner_id.is_(None)]
        if name == "models":
            orphan.append(table.c.source == "workspace")
        session.execute(update(table).where(*orphan).values(owner_id=admin_id))
