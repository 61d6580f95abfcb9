"""What a ticket change sets off once it is committed: consoles and residents told, counters
moved, new tickets announced. A change collects these while its transaction is open; the
listeners registered for each kind run them after the commit, so a change rolled back tells
nobody anything, and the rooms that change tickets know nothing of sockets or platforms.
What an effect must leave in the database (a console event's journal row) is written by a
step that runs in the change's own transaction, just before its commit.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.chat import ChatMessage, ChatRef, LineKind
from bot.db.models import Ticket
from bot.handoff.access import Visibility
from bot.handoff.push import Numbered

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pushed:
    """An event for the consoles of members who may see the ticket, or could `before`; with
    `members`, only for theirs."""

    kind: str
    ticket: Ticket
    before: Visibility | None = None
    message: ChatMessage | None = None
    members: tuple[int, ...] = ()
    # The event as journaled in the change's transaction; sent as it is after the commit.
    numbered: Numbered | None = None


@dataclass(frozen=True)
class ForHolder:
    """An event only the person answering for the ticket needs (a number to call)."""

    kind: str
    ticket: Ticket
    fields: dict[str, Any]


@dataclass(frozen=True)
class Told:
    """A line from the service to a chat."""

    chat: ChatRef
    text: str
    ticket_id: int
    kind: LineKind = "text"
    resident_id: int | None = None
    # The line as stored, pending, in the change's own transaction (`Change.store_lines`).
    line: ChatMessage | None = None
    # Handed on by whoever made the change, not by the listeners (`Opening.open_ticket`).
    by_caller: bool = False


@dataclass(frozen=True)
class Opened:
    """A new ticket: other routes to party members (the group robot) hear of it."""

    ticket: Ticket


@dataclass(frozen=True)
class Counted:
    """One more of a counter in `bot.metrics.Metrics`, by label."""

    metric: str
    label: str


@dataclass(frozen=True)
class Observed:
    """A measurement for a histogram in `bot.metrics.Metrics`, by label."""

    metric: str
    label: str
    value: float


Effect = Pushed | ForHolder | Told | Opened | Counted | Observed
E = TypeVar("E", Pushed, ForHolder, Told, Opened, Counted, Observed)


class Listeners:
    def __init__(self) -> None:
        self._by_kind: dict[type, list[Callable[[Any], Awaitable[None]]]] = defaultdict(list)
        self._stored: dict[type, Callable[[AsyncSession, Any], Awaitable[Any]]] = {}

    def on(self, kind: type[E], listener: Callable[[E], Awaitable[None]]) -> None:
        self._by_kind[kind].append(listener)

    def stored_by(self, kind: type[E], step: Callable[[AsyncSession, E], Awaitable[E]]) -> None:
        """`step` writes what an effect of this kind leaves in the database, in the change's
        transaction, and returns the effect as its listeners then get it."""
        self._stored[kind] = step

    async def store(self, session: AsyncSession, effects: list[Effect]) -> None:
        """Before the commit: a failing step fails the change, which then sets off nothing."""
        for n, effect in enumerate(effects):
            step = self._stored.get(type(effect))
            if step is not None:
                effects[n] = await step(session, effect)

    async def run(self, effects: Iterable[Effect]) -> None:
        """In order; the change is already committed, so one listener failing is logged and
        the others still run."""
        for effect in effects:
            for listener in self._by_kind[type(effect)]:
                try:
                    await listener(effect)
                except Exception:
                    logger.exception("%s listener failed", type(effect).__name__)
