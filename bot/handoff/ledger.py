"""The ledger: the one writer of a ticket's status and of its events.

Every room of the lifecycle (`opening`, `holding`, `aftercare`, `escalation`) changes tickets
inside `Ledger.change()`: one transaction, one moment of the injected clock, and a list of
effects (`bot.handoff.effects`) that run only after the commit. A status moves only by
`Change.transition`, which consults the table in `bot.handoff.states` and writes the event;
a claim is a conditional update, so two members claiming at once cannot both win.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.conversation.messages import mark_handled, store_outbound
from bot.core.categories import URGENT
from bot.core.chat import ChatMessage, ChatRef, LineKind
from bot.core.clock import Clock
from bot.db.models import Member, Ticket, TicketEvent
from bot.handoff.access import Actor, Visibility, may_see
from bot.handoff.dispatcher import WHOLE_BRANCH, Assignment
from bot.handoff.effects import (
    Counted,
    Effect,
    ForHolder,
    Listeners,
    Observed,
    Opened,
    Pushed,
    Told,
)
from bot.handoff.states import IllegalTransition, next_status


class TicketNotFound(Exception):
    pass


class NotAllowed(Exception):
    pass


@dataclass(frozen=True)
class Timeouts:
    """How long a ticket may wait for a claim, and how long a resident's answers count."""

    claim: timedelta = timedelta(minutes=10)
    urgent_claim: timedelta = timedelta(minutes=1)
    # An urgent request the whole branch has heard of, still unclaimed: everyone is called
    # again this often until someone claims it.
    urgent_repeat: timedelta = timedelta(minutes=5)
    survey: timedelta = timedelta(hours=24)
    reopen: timedelta = timedelta(hours=72)
    # Reports of the same thing in a grid within this long become one incident.
    incident: timedelta = timedelta(hours=2)
    # How long the worker that stored a line to a resident has to hand it on, before any
    # worker's sweep does it instead (bot.conversation.delivery): the routing lease.
    line_claim: timedelta = timedelta(seconds=30)

    def for_category(self, category: str) -> timedelta:
        return self.urgent_claim if category == URGENT else self.claim

    def after_whole_branch(self, category: str) -> timedelta | None:
        """Once the whole branch was asked: when to call it again (urgent only), or never."""
        return self.urgent_repeat if category == URGENT else None


def addressed(chat_type: str, resident_name: str, text: str) -> str:
    """In a group, a line meant for one resident names them."""
    return f"@{resident_name} {text}" if chat_type == "group" and resident_name else text


async def visible_ticket(session: AsyncSession, actor: Actor, ticket_id: int) -> Ticket:
    """The ticket, if it exists and `actor` may see it."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(str(ticket_id))
    if not may_see(actor, ticket):
        raise NotAllowed(f"ticket {ticket_id} is not visible to member {actor.member_id}")
    return ticket


# Who an event names: a signed-in member, a member the service acts for (the holder of an
# incident a report joins), or nobody (the system).
By = Actor | Member | None


@dataclass
class Change:
    """One transaction on tickets, at one moment."""

    session: AsyncSession
    now: datetime
    timeouts: Timeouts
    effects: list[Effect] = field(default_factory=list)
    # Events recorded, written together when the change ends (`write_events`).
    events: list[tuple[Ticket, dict[str, Any]]] = field(default_factory=list)

    async def visible_ticket(self, actor: Actor, ticket_id: int) -> Ticket:
        return await visible_ticket(self.session, actor, ticket_id)

    # ---------- status and events ----------

    def transition(self, ticket: Ticket, kind: str, by: By, reason: str) -> None:
        target = next_status(kind, ticket.status)
        self.record(ticket, kind, by, reason, ticket.status, target)
        ticket.status = target
        ticket.updated_at = self.now

    def record(
        self,
        ticket: Ticket,
        kind: str,
        by: By,
        reason: str,
        from_status: str | None = None,
        to_status: str | None = None,
    ) -> None:
        """An event; without statuses, one that changes no status (a merge, a reveal). A new
        ticket may record events before it is stored: they are written at the end."""
        if isinstance(by, Member):
            member_id, name = by.id, by.name
        elif by is not None:
            member_id, name = by.member_id, by.name
        else:
            member_id, name = None, "system"
        event = {
            "kind": kind,
            "from_status": from_status,
            "to_status": to_status,
            "actor_member_id": member_id,
            "actor": name,
            "reason": reason,
            "created_at": self.now,
        }
        self.events.append((ticket, event))

    async def write_events(self) -> None:
        """The events recorded, in their order, in one statement: as ORM objects they were
        an INSERT and a unit-of-work pass each."""
        if not self.events:
            return
        await self.session.flush()
        rows = [{"ticket_id": ticket.id, **event} for ticket, event in self.events]
        await self.session.execute(insert(TicketEvent.__table__), rows)
        self.events.clear()

    async def claim(self, ticket: Ticket, actor: Actor) -> None:
        target = next_status("claim", ticket.status)
        result = await self.session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, Ticket.status == ticket.status)
            .values(
                status=target,
                assignee_id=actor.member_id,
                updated_at=self.now,
                claim_deadline=None,
                possibly_urgent=False,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise IllegalTransition("claim", "claimed")
        self.record(ticket, "claim", actor, "", ticket.status, target)
        await self.session.refresh(ticket)

    def offer(
        self, ticket: Ticket, assignment: Assignment, kind: str, by: By, note: str = ""
    ) -> None:
        """Offer the ticket to the assignment's member (or everyone it names) and start the
        claim timer, unless nobody is left to ask; the event's reason says who and why."""
        ticket.assignee = assignment.member
        ticket.escalation_level = assignment.level
        ticket.broadcast = assignment.broadcast
        ticket.possibly_urgent = assignment.unsure
        offered = [m.id for m in (assignment.member, *assignment.notified) if m is not None]
        ticket.tried_member_ids = [*(ticket.tried_member_ids or []), *offered]
        if assignment.member is not None:
            assignment.member.last_assigned_at = self.now
        more_steps = assignment.level < WHOLE_BRANCH or assignment.member is not None
        wait = (
            self.timeouts.for_category(ticket.category)
            if more_steps
            else self.timeouts.after_whole_branch(ticket.category)
        )
        ticket.claim_deadline = self.now + wait if wait is not None else None
        reason = " · ".join(r for r in (note, assignment.reason) if r)
        if kind == "assign" and assignment.member is None and not assignment.notified:
            self.record(ticket, "unassigned", by, reason)
            return
        self.transition(ticket, kind, by, reason)

    async def attach(self, message_id: int, ticket_id: int | None) -> None:
        """A resident's message is dealt with, and shows in the ticket it went to."""
        await mark_handled(self.session, message_id, ticket_id)

    # ---------- what it sets off ----------

    def push(
        self,
        kind: str,
        ticket: Ticket,
        before: Visibility | None = None,
        message: ChatMessage | None = None,
        members: tuple[int, ...] = (),
    ) -> None:
        self.effects.append(Pushed(kind, ticket, before, message, members))

    def ring_if_urgent(self, ticket: Ticket) -> None:
        """An urgent request offered anew (up the chain, handed back, confirmed, called again):
        every console that shows it rings, also one whose member stopped it before."""
        if ticket.category == URGENT:
            self.push("ticket.alarm", ticket)

    def tell_holder(self, kind: str, ticket: Ticket, fields: dict[str, Any]) -> None:
        self.effects.append(ForHolder(kind, ticket, fields))

    def tell_resident(self, ticket: Ticket, text: str, kind: LineKind = "text") -> None:
        text = addressed(ticket.chat_type, ticket.resident.name, text)
        self.effects.append(Told(ticket.chat, text, ticket.id, kind, ticket.resident_id))

    def tell_chat(
        self,
        chat: ChatRef,
        text: str,
        ticket_id: int,
        resident_id: int | None = None,
        by_caller: bool = False,
    ) -> None:
        self.effects.append(
            Told(chat, text, ticket_id, resident_id=resident_id, by_caller=by_caller)
        )

    def lines_for_caller(self) -> list[ChatMessage]:
        """The lines stored by this change that its caller hands on itself."""
        return [e.line for e in self.effects if isinstance(e, Told) and e.by_caller and e.line]

    async def store_lines(self) -> None:
        """The lines this change tells, stored with it: committed together, a line goes out
        even when this worker dies before handing it on (bot.conversation.delivery)."""
        for n, effect in enumerate(self.effects):
            if isinstance(effect, Told) and effect.line is None:
                line = await store_outbound(
                    self.session,
                    effect.chat,
                    effect.text,
                    ticket_id=effect.ticket_id,
                    resident_id=effect.resident_id,
                    kind=effect.kind,
                    claim_until=self.now + self.timeouts.line_claim,
                )
                self.effects[n] = replace(effect, line=line)

    def opened(self, ticket: Ticket) -> None:
        self.effects.append(Opened(ticket))

    def count(self, metric: str, label: str) -> None:
        self.effects.append(Counted(metric, label))

    def observe(self, metric: str, label: str, value: float) -> None:
        self.effects.append(Observed(metric, label, value))


class Ledger:
    def __init__(
        self,
        sessions: sessionmaker,
        clock: Clock,
        listeners: Listeners,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.timeouts = timeouts or Timeouts()
        self.listeners = listeners

    @asynccontextmanager
    async def change(self) -> AsyncIterator[Change]:
        async with self.sessions() as session:
            async with session.begin():
                change = Change(session, self.clock.now(), self.timeouts)
                yield change
                await change.write_events()
                await change.store_lines()
                await self.listeners.store(session, change.effects)
        await self.listeners.run(change.effects)
