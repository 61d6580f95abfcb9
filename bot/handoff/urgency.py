"""可能紧急: a request the model read as urgent without being sure of it goes to the grid's
members on duty first (`Opening`), not to the secretary and the branch. One of them says which
it is, with one tap:

    confirm     it is urgent: offered at once to the urgent audience (everyone on duty in the
                grid and the secretaries), which escalates as any urgent request
    not urgent  an ordinary request (未分类, a member sorts it with 分错了？), offered to one
                member as any request

Nobody deciding within the urgent claim time counts as urgent (`dispatcher.next_step`). Once
anyone claims the request, or corrects its category, the question is closed.
"""

from __future__ import annotations

import logging

from bot.core.categories import UNCLASSIFIED
from bot.db.models import Ticket
from bot.handoff import texts
from bot.handoff.access import Actor, Visibility
from bot.handoff.dispatcher import Place, choose_assignee, urgent_audience
from bot.handoff.holding import holds_tickets
from bot.handoff.ledger import Change, Ledger
from bot.handoff.states import UNCLAIMED, IllegalTransition

logger = logging.getLogger(__name__)


class Urgency:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def confirm(self, actor: Actor, ticket_id: int) -> Ticket:
        async with self._ledger.change() as change:
            ticket, before = await self._undecided(change, actor, ticket_id, "confirm_urgent")
            step = await urgent_audience(change.session, Place.of(ticket), change.now)
            change.offer(ticket, step, "confirm_urgent", actor)
            change.tell_resident(ticket, texts.urgent_confirmed(step))
            change.push("ticket.updated", ticket, before)
            change.ring_if_urgent(ticket)
        logger.info("member %s confirmed ticket %s is urgent", actor.member_id, ticket_id)
        return ticket

    async def not_urgent(self, actor: Actor, ticket_id: int) -> Ticket:
        async with self._ledger.change() as change:
            ticket, before = await self._undecided(change, actor, ticket_id, "not_urgent")
            ticket.category = UNCLASSIFIED
            # A fresh chain, as for any request: the members asked first may be chosen.
            ticket.tried_member_ids = []
            step = await choose_assignee(change.session, Place.of(ticket), UNCLASSIFIED, change.now)
            change.offer(ticket, step, "not_urgent", actor)
            change.tell_resident(ticket, texts.who_is_coming(step))
            change.push("ticket.updated", ticket, before)
        logger.info("member %s said ticket %s is not urgent", actor.member_id, ticket_id)
        return ticket

    @staticmethod
    async def _undecided(
        change: Change, actor: Actor, ticket_id: int, decision: str
    ) -> tuple[Ticket, Visibility]:
        """The ticket, while it is still 可能紧急 and nobody holds it; else a conflict (a
        colleague decided or claimed first)."""
        holds_tickets(actor)
        ticket = await change.visible_ticket(actor, ticket_id)
        if not ticket.possibly_urgent or ticket.status not in UNCLAIMED:
            raise IllegalTransition(decision, "decided already")
        return ticket, Visibility.of(ticket)
