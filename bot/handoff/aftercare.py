"""After a resolve: the resident rates it, says it is not fixed (the ticket reopens to whoever
had it, or to the secretary when they were not satisfied), or says nothing (the survey
expires, and nobody nags).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Row

from bot.conversation.messages import message_by_id
from bot.core.chat import StoredInbound
from bot.db.models import Member, Ticket
from bot.handoff import texts
from bot.handoff.access import Visibility
from bot.handoff.dispatcher import Assignment, Place, choose_assignee, secretary
from bot.handoff.ledger import Change, Ledger
from bot.handoff.schedule import on_duty
from bot.handoff.states import Status


class Aftercare:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def follow_up(self, stored: StoredInbound) -> bool:
        """A rating of the resolved ticket, or word that it is not fixed; True when the
        message was one of those (and has been dealt with). Every message no open ticket
        takes comes here: words that are neither cost no query."""
        rating = texts.read_rating(stored.inbound.text)
        not_fixed = texts.says_not_fixed(stored.inbound.text)
        if rating is None and not not_fixed:
            return False
        ticket_id = await self._latest_if_resolved(stored.chat.conversation_id)
        if ticket_id is None:
            return False
        async with self._ledger.change() as change:
            ticket = await change.session.get(Ticket, ticket_id)
            if ticket.status == Status.RESOLVED and rating is not None:
                await self._rate(change, ticket, rating, stored)
                return True
            in_time = change.now - ticket.resolved_at <= change.timeouts.reopen
            unrated = ticket.status == Status.CLOSED and ticket.rating is None
            if rating is not None and in_time and unrated:
                # A tap on the question's button after the survey expired: the answer cannot
                # count any more, but it is not met with silence either.
                await change.attach(stored.message_id, ticket.id)
                change.tell_resident(ticket, texts.RATING_TOO_LATE)
                return True
            if in_time and not_fixed:
                await self._reopen(
                    change, ticket, stored, to_secretary=False, reason="居民说还没好"
                )
                return True
        return False

    async def expire_surveys(self) -> int:
        """Resolved tickets whose resident did not rate them in time: closed, never nagged."""
        async with self._ledger.change() as change:
            tickets = (
                await change.session.scalars(
                    select(Ticket).where(
                        Ticket.status == Status.RESOLVED, Ticket.survey_deadline <= change.now
                    )
                )
            ).all()
            for ticket in tickets:
                change.transition(ticket, "expire", None, "24小时未评价")
                ticket.closed_at = change.now
                ticket.survey_deadline = None
        return len(tickets)

    async def survey_open(self, conversation_id: str) -> bool:
        """Whether the conversation's resident is being asked to rate a request now: its
        latest ticket, the one an answer rates, waits for a rating."""
        latest = await self._latest(conversation_id)
        return latest is not None and latest.status == Status.RESOLVED

    async def _latest_if_resolved(self, conversation_id: str) -> int | None:
        latest = await self._latest(conversation_id)
        return None if latest is None or latest.resolved_at is None else latest.id

    async def _latest(self, conversation_id: str) -> Row | None:
        """The conversation's latest ticket's id, status and resolve time: three columns tell,
        without loading a ticket and everything it brings along."""
        async with self._ledger.sessions() as session:
            return (
                await session.execute(
                    select(Ticket.id, Ticket.status, Ticket.resolved_at)
                    .where(Ticket.conversation_id == conversation_id)
                    .order_by(Ticket.id.desc())
                    .limit(1)
                )
            ).first()

    async def _rate(
        self, change: Change, ticket: Ticket, rating: str, stored: StoredInbound
    ) -> None:
        change.transition(ticket, "rate", None, rating)
        ticket.rating = rating
        ticket.closed_at = change.now
        ticket.survey_deadline = None
        await change.attach(stored.message_id, ticket.id)
        change.count("ratings", rating)
        if rating == texts.UNSATISFIED:
            await self._reopen(change, ticket, None, to_secretary=True, reason="居民不满意")
        else:
            change.tell_resident(ticket, texts.THANKS)
            change.push("ticket.updated", ticket)

    async def _reopen(
        self,
        change: Change,
        ticket: Ticket,
        stored: StoredInbound | None,
        *,
        to_secretary: bool,
        reason: str,
    ) -> None:
        """Back to the member who had it (if on duty), or to the secretary when the resident
        was not satisfied; the conversation is the member's again."""
        before, holder = Visibility.of(ticket), ticket.assignee
        step = await self._reopen_step(change, ticket, holder, to_secretary)
        change.offer(ticket, step, "reopen", None, reason)
        ticket.resolved_at = None
        ticket.survey_deadline = None
        member = step.member
        text = texts.sorry_reopened(member) if to_secretary else texts.looked_at_again(member)
        change.tell_resident(ticket, text)
        change.push("ticket.updated", ticket, before)
        if stored is not None:
            await change.attach(stored.message_id, ticket.id)
            message = await message_by_id(change.session, stored.message_id)
            change.push("ticket.message", ticket, message=message)

    @staticmethod
    async def _reopen_step(
        change: Change, ticket: Ticket, holder: Member | None, to_secretary: bool
    ) -> Assignment:
        session, now = change.session, change.now
        if to_secretary:
            return await secretary(session, Place.of(ticket), now, "居民不满意")
        if holder is not None and on_duty(holder.schedule, holder.paused, now):
            return Assignment(ticket.grid, holder, f"{holder.name} · 在岗 · 原经办人")
        skip = [holder.id] if holder is not None else []
        return await choose_assignee(session, Place.of(ticket), ticket.category, now, exclude=skip)
