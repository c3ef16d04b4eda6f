"""Conversations of the chat page, kept in the metadata store with their turns."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from aift.conversations.schemas import (
    ChatSettings,
    Conversation,
    ConversationCreate,
    ConversationSummary,
    ConversationUpdate,
    Message,
    MessagesAppend,
)
from aift.errors import InvalidInput, NotFound
from aift.store import Database, utcnow
from aift.store.tables import ConversationMessageRow, ConversationRow
from aift.work.actor import current_actor

TITLE_CHARS = 80


class ConversationService:
    """Create, list, read, rename and delete conversations; append (or replace) turns."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, request: ConversationCreate) -> Conversation:
        row = ConversationRow(
            id=uuid.uuid4().hex,
            title=request.title or "New conversation",
            model=request.model,
            kb_id=request.kb_id,
            settings=request.settings.model_dump(),
            created_at=utcnow(),
            updated_at=utcnow(),
            owner_id=current_actor.get().user_id,
        )
        with self.db.session() as session:
            session.add(row)
            session.commit()
        return self.get(row.id)

    def list(
        self, limit: int = 50, offset: int = 0, query: str | None = None
    ) -> list[ConversationSummary]:
        """The current user's conversations (an admin: all), newest activity first;
        `query` filters by title."""
        counts = (
            select(
                ConversationMessageRow.conversation_id,
                func.count().label("messages"),
            )
            .group_by(ConversationMessageRow.conversation_id)
            .subquery()
        )
        statement = (
            select(ConversationRow, func.coalesce(counts.c.messages, 0))
            .outerjoin(counts, counts.c.conversation_id == ConversationRow.id)
            .order_by(ConversationRow.updated_at.desc())
            .limit(limit)
            .offset(offset)
        )
        actor = current_actor.get()
        if not actor.admin:
            statement = statement.where(ConversationRow.owner_id == actor.user_id)
        if query:
            statement = statement.where(ConversationRow.title.ilike(f"%{query}%"))
        with self.db.session() as session:
            return [
                self._summary(row, messages) for row, messages in session.execute(statement).all()
            ]

    def get(self, conversation_id: str) -> Conversation:
        with self.db.session() as session:
            row = self._row(session, conversation_id)
            turns = session.scalars(
                select(ConversationMessageRow)
                .where(ConversationMessageRow.conversation_id == conversation_id)
                .order_by(ConversationMessageRow.position)
            ).all()
            summary = self._summary(row, len(turns))
            return Conversation(
                **summary.model_dump(), turns=[Message.model_validate(t) for t in turns]
            )

    def update(self, conversation_id: str, request: ConversationUpdate) -> Conversation:
        values = request.model_dump(exclude_unset=True)
        if "settings" in values and values["settings"] is None:
            raise InvalidInput("settings cannot be null; leave it out to keep the current ones.")
        with self.db.session() as session:
            row = self._row(session, conversation_id)
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            session.commit()
        return self.get(conversation_id)

    def append(self, conversation_id: str, request: MessagesAppend) -> Conversation:
        """Add turns at the end, or from `replace_from` on (dropping what was there)."""
        with self.db.session() as session:
            row = self._row(session, conversation_id)
            count = (
                session.scalar(
                    select(func.count()).where(
                        ConversationMessageRow.conversation_id == conversation_id
                    )
                )
                or 0
            )
            start = count
            if request.replace_from is not None:
                if request.replace_from > count:
                    raise InvalidInput(
                        f"replace_from {request.replace_from} is past the end: the "
                        f"conversation has {count} message(s)."
                    )
                session.execute(
                    delete(ConversationMessageRow).where(
                        ConversationMessageRow.conversation_id == conversation_id,
                        ConversationMessageRow.position >= request.replace_from,
                    )
                )
                start = request.replace_from
            for offset, message in enumerate(request.messages):
                session.add(
                    ConversationMessageRow(
                        conversation_id=conversation_id,
                        position=start + offset,
                        created_at=utcnow(),
                        **message.model_dump(),
                    )
                )
            if row.title == "New conversation":
                first = next((m for m in request.messages if m.role == "user"), None)
                if first is not None:
                    row.title = _title(first.content)
            row.updated_at = utcnow()
            session.commit()
        return self.get(conversation_id)

    def delete(self, conversation_id: str) -> None:
        with self.db.session() as session:
            row = self._row(session, conversation_id)
            session.execute(
                delete(ConversationMessageRow).where(
                    ConversationMessageRow.conversation_id == conversation_id
                )
            )
            session.delete(row)
            session.commit()

    @staticmethod
    def _row(session: Session, conversation_id: str) -> ConversationRow:
        row = session.get(ConversationRow, conversation_id)
        if row is None or not current_actor.get().sees(row.owner_id):
            raise NotFound(f"Conversation {conversation_id!r} does not exist (deleted?).")
        return row

    @staticmethod
    def _summary(row: ConversationRow, messages: int) -> ConversationSummary:
        return ConversationSummary(
            id=row.id,
            title=row.title,
            model=row.model,
            kb_id=row.kb_id,
            settings=ChatSettings.model_validate(row.settings or {}),
            messages=messages,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def _title(text: str) -> str:
    """A conversation's title from its first question: one line, at most TITLE_CHARS."""
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"
