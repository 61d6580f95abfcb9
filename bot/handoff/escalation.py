"""Escalation: a ticket nobody claimed in time goes one step up the chain (next member, the
secretary, the whole branch of the ticket's community); an urgent one then calls the whole
branch again every few minutes (`Timeouts.urgent_repeat`) until someone claims it. The
deadlines live in the database, so timers resume after a restart, and several workers may race
for one step: only one wins it.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from sqlalchemy import select, update

from bot.core.categories import URGENT
from bot.db.models import Ticket
from bot.handoff import texts
from bot.handoff.access import Visibility
from bot.handoff.dispatcher import Place, next_step, whole_branch
from bot.handoff.ledger import Change, Ledger
from bot.handoff.states import UNCLAIMED

logger = logging.getLogger(__name__)


class Overdue(NamedTuple):
    """A ticket past its claim deadline, at the escalation level it was seen at."""

    ticket_id: int
    level: int


class Escalation:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def overdue(self) -> list[Overdue]:
        """Unclaimed tickets past their claim deadline, oldest deadline first."""
        async with self._ledger.sessions() as session:
            rows = await session.execute(
                select(Ticket.id, Ticket.escalation_level)
                .where(
                    Ticket.status.in_(UNCLAIMED),
                    Ticket.claim_deadline <= self._ledger.clock.now(),
                )
                .order_by(Ticket.claim_deadline)
            )
            return [Overdue(*row) for row in rows.all()]

    async def escalate(self, due: Overdue) -> bool:
        """One step up the chain, or for an urgent request the whole branch called again;
        False when another worker took this step first, or when the whole branch has been
        asked already about a request that is not urgent."""
        async with self._ledger.change() as change:
            session, now = change.session, change.now
            ticket = await session.get(Ticket, due.ticket_id)
            if ticket is None or ticket.escalation_level != due.level:
                return False
            before, previous = Visibility.of(ticket), ticket.assignee
            step = await next_step(session, ticket, now)
            won = await session.execute(
                update(Ticket)
                .where(
                    Ticket.id == due.ticket_id,
                    Ticket.escalation_level == due.level,
                    Ticket.status.in_(UNCLAIMED),
                    Ticket.claim_deadline <= now,
                )
                .values(claim_deadline=None)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount != 1:
                return False
            if step is None and ticket.category == URGENT:
                await self._call_branch_again(change, ticket)
                return True
            if step is None:
                ticket.claim_deadline = None
                change.record(ticket, "waiting", None, "全支部都已通知，仍无人认领")
                return False
            waited = int(change.timeouts.for_category(ticket.category).total_seconds() // 60) or 1
            change.offer(ticket, step, "escalate", None, f"{waited}分钟无人认领")
            change.count("escalations", str(step.level))
            change.tell_resident(ticket, texts.now_coming(previous, step))
            change.push("ticket.updated", ticket, before)
            change.ring_if_urgent(ticket)
        logger.info("ticket %s escalated to level %s: %s", due.ticket_id, step.level, step.reason)
        return True

    @staticmethod
    async def _call_branch_again(change: Change, ticket: Ticket) -> None:
        """Every console that may see the request rings again: it is broadcast to the whole
        branch by now. The resident was told the branch is coming and hears nothing new."""
        repeat = change.timeouts.urgent_repeat
        branch = await whole_branch(change.session, Place.of(ticket), change.now, "仍无人认领")
        ticket.claim_deadline = change.now + repeat
        waited = int(repeat.total_seconds() // 60) or 1
        change.record(ticket, "recall", None, f"{waited}分钟 · {branch.reason}")
        change.count("escalations", str(branch.level))
        change.ring_if_urgent(ticket)
        logger.info("urgent ticket %s: the whole branch called again", ticket.id)
