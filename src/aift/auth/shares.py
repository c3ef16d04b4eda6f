"""Grants of owned resources (knowledge bases, datasets, models) to users and groups,
to read or to write; `aift.store.access` applies them to every query."""

from __future__ import annotations

from sqlalchemy import delete, select

from aift.auth.schemas import ShareGrant, ShareInfo
from aift.auth.users import normal_email
from aift.errors import NotFound
from aift.store import Database, utcnow
from aift.store.tables import GroupRow, ShareRow, UserRow


class ShareStore:
    """Grant, list and revoke shares of one kind of resource."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def grant(self, resource_type: str, resource_id: str, grant: ShareGrant) -> ShareInfo:
        """Share (or change the access of a share) with a user or a group."""
        with self.db.session() as session:
            if grant.kind == "user":
                who = session.scalar(
                    select(UserRow.id).where(UserRow.email == normal_email(grant.grantee))
                )
            else:
                who = session.scalar(
                    select(GroupRow.id).where(GroupRow.name == grant.grantee.strip())
                )
            if who is None:
                raise NotFound(f"No {grant.kind} {grant.grantee!r}.")
            key = (resource_type, resource_id, grant.kind, who)
            row = session.get(ShareRow, key)
            if row is None:
                row = ShareRow(
                    resource_type=resource_type,
                    resource_id=resource_id,
                    grantee_type=grant.kind,
                    grantee_id=who,
                    access=grant.access,
                    created_at=utcnow(),
                )
                session.add(row)
            row.access = grant.access
        return next(s for s in self.of(resource_type, resource_id) if s.grantee_id == who)

    def of(self, resource_type: str, resource_id: str) -> list[ShareInfo]:
        """Who a resource is shared with."""
        query = select(ShareRow).where(
            ShareRow.resource_type == resource_type, ShareRow.resource_id == resource_id
        )
        with self.db.session() as session:
            emails = dict(session.execute(select(UserRow.id, UserRow.email)).all())
            groups = dict(session.execute(select(GroupRow.id, GroupRow.name)).all())
            return [
                ShareInfo(
                    grantee_type=row.grantee_type,
                    grantee_id=row.grantee_id,
                    grantee=(emails if row.grantee_type == "user" else groups).get(
                        row.grantee_id, "?"
                    ),
                    access=row.access,
                    created_at=row.created_at,
                )
                for row in session.scalars(query.order_by(ShareRow.created_at))
            ]

    def revoke(
        self, resource_type: str, resource_id: str, grantee_type: str, grantee_id: str
    ) -> None:
        with self.db.session() as session:
            result = session.execute(
                delete(ShareRow).where(
                    ShareRow.resource_type == resource_type,
                    ShareRow.resource_id == resource_id,
                    ShareRow.grantee_type == grantee_type,
                    ShareRow.grantee_id == grantee_id,
                )
            )
            if not getattr(result, "rowcount", 0):
                raise NotFound("No such share.")

    def forget(self, resource_type: str, resource_id: str) -> None:
        """Drop every share of a deleted resource."""
        with self.db.session() as session:
            session.execute(
                delete(ShareRow).where(
                    ShareRow.resource_type == resource_type, ShareRow.resource_id == resource_id
                )
            )
