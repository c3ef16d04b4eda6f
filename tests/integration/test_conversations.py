"""Kept conversations in the real metadata store: turns in order, regenerate replaces the
last answer, titles, filters, and clear errors for what cannot be done."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aift.config import Settings
from aift.conversations.schemas import (
    ChatSettings,
    ConversationCreate,
    ConversationUpdate,
    MessageIn,
    MessagesAppend,
)
from aift.errors import InvalidInput, NotFound
from aift.runtime import Runtime


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.start(settings)
    yield rt
    rt.close()


def turn(role: str, content: str, **extra: object) -> MessageIn:
    return MessageIn(role=role, content=content, **extra)  # type: ignore[arg-type]


def test_turns_are_kept_in_order_and_regenerate_replaces_the_answer(runtime: Runtime) -> None:
    service = runtime.conversations
    made = service.create(ConversationCreate(model="m", settings=ChatSettings(temperature=0.2)))
    assert made.title == "New conversation" and made.turns == []
    question = "Where do herring gulls nest in spring, and how many nests were counted?" * 2
    cited = [{"number": 1, "document": "gulls.txt", "page_start": 1}]
    service.append(
        made.id,
        MessagesAppend(
            messages=[turn("user", question), turn("assistant", "On cliffs [1].", citations=cited)]
        ),
    )
    service.append(
        made.id, MessagesAppend(messages=[turn("user", "And in 2024?"), turn("assistant", "old")])
    )
    again = service.append(
        made.id, MessagesAppend(messages=[turn("assistant", "380 nests.")], replace_from=3)
    )
    assert [t.content for t in again.turns] == [
        question,
        "On cliffs [1].",
        "And in 2024?",
        "380 nests.",
    ]
    assert [t.position for t in again.turns] == [0, 1, 2, 3]
    assert again.turns[1].citations == cited
    assert again.title.startswith("Where do herring gulls") and len(again.title) <= 80
    assert again.settings.temperature == 0.2

    other = service.create(ConversationCreate(title="Budget questions"))
    listed = service.list()
    assert [c.id for c in listed] == [other.id, made.id]  # newest activity first
    assert listed[1].messages == 4
    assert [c.id for c in service.list(query="budget")] == [other.id]

    renamed = service.update(made.id, ConversationUpdate(title="Gulls"))
    assert renamed.title == "Gulls" and len(renamed.turns) == 4
    with pytest.raises(InvalidInput, match="past the end"):
        service.append(made.id, MessagesAppend(messages=[turn("user", "x")], replace_from=9))
    with pytest.raises(InvalidInput, match="settings cannot be null"):
        service.update(made.id, ConversationUpdate(settings=None))
    service.delete(made.id)
    with pytest.raises(NotFound, match="does not exist"):
        service.get(made.id)
    with pytest.raises(NotFound):
        service.append(made.id, MessagesAppend(messages=[turn("user", "x")]))
    assert [c.id for c in service.list()] == [other.id]
