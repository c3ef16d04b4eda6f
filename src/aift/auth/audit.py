"""The audit trail: every state change — who, when, what, on what, from where, with
which request id — kept under a retention setting and filtered by admins."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from aift.auth.schemas import AuditEvent, Principal
from aift.store import Database, utcnow
from aift.store.tables import AuditEventRow

MAX_TARGET = 1000


class AuditLog:
    """Records events and reads them back; drops those older than `retention_days`."""

    def __init__(self, db: Database, retention_days: int) -> None:
        self.db = db
        self.retention = timedelta(days=retention_days)

    def record(
        self,
        principal: Principal | None,
        action: str,
        target: str = "",
        *,
        status: int = 200,
        client: str = "",
        request_id: str = "",
        actor: str | None = None,
    ) -> None:
        row = AuditEventRow(
            at=utcnow(),
            actor_id=principal.user_id if principal else None,
            actor=actor or (principal.label if principal else "anonymous"),
            action=action[:200],
            target=target[:MAX_TARGET],
            status=status,
            client=client[:100],
            request_id=request_id[:64],
        )
        with self.db.session() as session:
            session.add(row)

    def query(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Events newest first: `actor` an email or user id, `action` a part of it."""
        query = select(AuditEventRow)
        if actor:
            query = query.where((AuditEventRow.actor == actor) | (AuditEventRow.actor_id == actor))
        if action:
            query = query.where(AuditEventRow.action.contains(action))
        if since:
            query = query.where(AuditEventRow.at >= since)
        if until:
            query = query.where(AuditEventRow.at < until)
        query = query.order_by(AuditEventRow.id.desc()).limit(limit)
        with self.db.session() as session:
            return [AuditEvent.model_validate(r) for r in session.scalars(query)]

    def prune(self) -> int:
        """Drop events past the retention; how many went."""
        with self.db.session() as session:
            result = session.execute(
                delete(AuditEventRow).where(AuditEventRow.at < utcnow() - self.retention)
            )
            return int(getattr(result, "rowcount", 0) or 0)
