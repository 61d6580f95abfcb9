"""The ticket service: the lifecycle's rooms around one ledger, and the listeners that carry
out what a committed change sets off.

- `ledger`: the one writer of status and events (`bot.handoff.ledger`)
- `opening`: new tickets, for requests, confirmed chatter, photos and voice clips
- `holding`: what members do with a ticket, from claim to resolve
- `urgency`: a member's word on a request the model is unsure is urgent (可能紧急)
- `aftercare`: ratings, reopening, surveys that expire
- `escalation`: unclaimed tickets up the chain
- `residents`: a resident's messages while a ticket is open
- `queries`: what members read

Pushes go to the consoles' hub, lines to residents through delivery, counters to metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.conversation.delivery import Delivery
from bot.conversation.router import TicketDesk
from bot.core.clock import Clock
from bot.db.models import Ticket
from bot.handoff.aftercare import Aftercare
from bot.handoff.effects import Counted, ForHolder, Listeners, Observed, Opened, Pushed, Told
from bot.handoff.escalation import Escalation
from bot.handoff.holding import Holding
from bot.handoff.ledger import Ledger, Timeouts
from bot.handoff.opening import Opening
from bot.handoff.push import MemberHub
from bot.handoff.queries import Queries
from bot.handoff.residents import Residents
from bot.handoff.urgency import Urgency
from bot.metrics import Metrics


class TicketService:
    def __init__(
        self,
        sessions: sessionmaker,
        delivery: Delivery,
        hub: MemberHub,
        metrics: Metrics,
        clock: Clock,
        timeouts: Timeouts | None = None,
        possibly_urgent_below: float = 0.5,
    ) -> None:
        self.listeners = listeners = Listeners()
        self.ledger = ledger = Ledger(sessions, clock, listeners, timeouts)
        self.opening = Opening(ledger, possibly_urgent_below)
        self.holding = Holding(ledger, delivery)
        self.urgency = Urgency(ledger)
        self.aftercare = Aftercare(ledger)
        self.escalation = Escalation(ledger)
        self.residents = Residents(ledger)
        self.queries = Queries(sessions)

        async def journal(session: AsyncSession, effect: Pushed) -> Pushed:
            numbered = await hub.journal_in(
                session, effect.kind, effect.ticket, effect.message, effect.before, effect.members
            )
            return replace(effect, numbered=numbered)

        async def push(effect: Pushed) -> None:
            if effect.numbered is not None:
                await hub.send_numbered(effect.numbered)
                return
            await hub.publish(
                effect.kind, effect.ticket, effect.message, effect.before, effect.members
            )

        async def tell_holder(effect: ForHolder) -> None:
            await hub.tell_holder(effect.kind, effect.ticket, effect.fields)

        async def tell(effect: Told) -> None:
            assert effect.line is not None, "a change stores its lines before it commits"
            if not effect.by_caller:
                await delivery.send_stored(effect.chat, effect.line)

        async def count(effect: Counted) -> None:
            getattr(metrics, effect.metric).labels(effect.label).inc()

        async def observe(effect: Observed) -> None:
            getattr(metrics, effect.metric).labels(effect.label).observe(effect.value)

        listeners.on(Told, tell)
        listeners.stored_by(Pushed, journal)
        listeners.on(Pushed, push)
        listeners.on(ForHolder, tell_holder)
        listeners.on(Counted, count)
        listeners.on(Observed, observe)

    def desk(self) -> TicketDesk:
        """What the router asks of tickets."""
        return TicketDesk(
            open_ticket_of=self.residents.open_ticket_of,
            relay_from_resident=self.residents.relay_from_resident,
            remember_location=self.residents.remember_location,
            open_for_media=self.opening.open_for_media,
            follow_up=self.aftercare.follow_up,
        )

    def on_opened(self, listener: Callable[[Ticket], Awaitable[None]]) -> None:
        """Also tell `listener` of every new ticket (a second route to party members)."""

        async def opened(effect: Opened) -> None:
            await listener(effect.ticket)

        self.listeners.on(Opened, opened)
