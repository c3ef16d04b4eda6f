"""Who the work in this context is done for: the signed-in user a request speaks for,
set once by the server's authentication middleware and carried by Python's context into
every thread the request uses. Services read it to stamp what they create with its owner
and to leave out what the user may not see; jobs, the CLI and single-user mode act as
the admin (everything visible).

A context variable, not a parameter threaded through every call: ownership is a
property of the request, and a service that forgets to pass it must not see everything
by accident — it sees what the request's user may see.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """A user (`user_id`), and whether they see everything (an admin)."""

    user_id: str | None = None
    admin: bool = True
    groups: frozenset[str] = frozenset()  # the user's groups, for what is shared with them

    def sees(self, owner_id: str | None) -> bool:
        """Whether this actor may see what `owner_id` owns."""
        return self.admin or owner_id == self.user_id


EVERYONE = Actor()
current_actor: ContextVar[Actor] = ContextVar("aift_actor", default=EVERYONE)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Run the enclosed code for `actor`."""
    token = current_actor.set(actor)
    try:
        yield
    finally:
        current_actor.reset(token)
