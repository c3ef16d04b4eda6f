"""Who may see and change an owned resource: its owner, whoever it is shared with (a
user, or a group they are in; to read or to write), and admins. Queries take the
current actor (`aift.work.actor`) and filter in SQL, so a user's lists never hold what
they may not see — not even its name."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import and_, or_, select, true
from sqlalchemy.orm import Session

from aift.store.tables import ShareRow
from aift.work.actor import Actor

Access = Literal["read", "write"]


def _grants(resource_type: str, actor: Actor) -> Any:
    """The share rows naming the actor or one of their groups."""
    return select(ShareRow.resource_id, ShareRow.access).where(
        ShareRow.resource_type == resource_type,
        or_(
            and_(ShareRow.grantee_type == "user", ShareRow.grantee_id == actor.user_id),
            and_(ShareRow.grantee_type == "group", ShareRow.grantee_id.in_(actor.groups)),
        ),
    )


def visible(owner_column: Any, id_column: Any, resource_type: str, actor: Actor) -> Any:
    """A WHERE clause: the rows `actor` may see."""
    if actor.admin:
        return true()
    shared = _grants(resource_type, actor).with_only_columns(ShareRow.resource_id)
    return or_(owner_column == actor.user_id, id_column.in_(shared))


def access_of(
    session: Session, resource_type: str, resource_id: str, owner_id: str | None, actor: Actor
) -> Access | None:
    """What `actor` may do with one resource: write (owner, admin, a write share), read
    (a read share), or nothing."""
    if actor.admin or (owner_id is not None and owner_id == actor.user_id):
        return "write"
    found = {
        access
        for _, access in session.execute(
            _grants(resource_type, actor).where(ShareRow.resource_id == resource_id)
        )
    }
    if "write" in found:
        return "write"
    return "read" if found else None
