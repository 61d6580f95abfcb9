"""A member holding a ticket: claim it, reply (relayed to the resident), pass it on or give it
back, resolve it. For an incident, claiming, replying to all and resolving reach the
neighbours' reports that follow it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot import audit
from bot.audit import AuditAction
from bot.conversation.delivery import Delivery
from bot.core.chat import ChatMessage, ChatRef
from bot.db.models import Member, Ticket
from bot.handoff import texts
from bot.handoff.access import Actor, Visibility, may_act, may_see, was_offered
from bot.handoff.dispatcher import Assignment, next_step
from bot.handoff.effects import Pushed
from bot.handoff.incidents import incident_label, reports_of
from bot.handoff.ledger import Change, Ledger, NotAllowed, TicketNotFound, addressed
from bot.handoff.roles import Action, allowed
from bot.handoff.states import OPEN_STATUSES, UNCLAIMED, IllegalTransition, Status, next_status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Visit:
    """上门走访: when a member went to the resident, and what came of it."""

    at: datetime
    outcome: str


def holds_tickets(actor: Actor) -> None:
    """Claiming and replying are for roles that hold tickets; the district only reads."""
    if not actor.may(Action.HOLD):
        raise NotAllowed(f"{actor.role} {actor.member_id} may not {Action.HOLD}")


class Holding:
    def __init__(self, ledger: Ledger, delivery: Delivery) -> None:
        self._ledger = ledger
        self._delivery = delivery

    async def claim(self, actor: Actor, ticket_id: int) -> Ticket:
        holds_tickets(actor)
        async with self._ledger.change() as change:
            ticket = await change.session.get(Ticket, ticket_id)
            if ticket is not None and was_offered(actor, ticket) and not may_see(actor, ticket):
                # A colleague of the grid was quicker: a conflict, not a secret.
                raise IllegalTransition("claim", ticket.status)
            ticket = await change.visible_ticket(actor, ticket_id)
            await self._claim_with_reports(change, ticket, actor)
        return ticket

    async def reply(
        self, actor: Actor, ticket_id: int, text: str, to_all: bool = False
    ) -> ChatMessage:
        """Relay a member's words to the resident (and, for an incident, to every neighbour
        who reported it when `to_all`). Replying to a ticket nobody holds claims it."""
        holds_tickets(actor)
        async with self._ledger.change() as change:
            ticket = await change.visible_ticket(actor, ticket_id)
            if ticket.status not in OPEN_STATUSES:
                raise IllegalTransition("reply", ticket.status)
            open_to_all = ticket.assignee_id is None and ticket.status in UNCLAIMED
            if not (may_act(actor, ticket) or open_to_all):
                raise NotAllowed("only the ticket's holder replies")
            if ticket.status != Status.CLAIMED:
                await self._claim_with_reports(change, ticket, actor, replying=True)
            self._answered(change, ticket)
            ticket.updated_at = change.now
            reports = await reports_of(change.session, ticket) if to_all else []
            chat = ticket.chat
        # The reply itself is what the member asked for, so it is sent here and returned.
        message = await self._delivery.send(
            chat, self._addressed(ticket, text), member_id=actor.member_id, ticket_id=ticket.id
        )
        await self._ledger.listeners.run([Pushed("ticket.message", ticket, message=message)])
        for report in reports:
            if report.status in OPEN_STATUSES:
                await self._delivery.send(
                    report.chat,
                    self._addressed(report, text),
                    member_id=actor.member_id,
                    ticket_id=report.id,
                )
        return message

    async def transfer(self, actor: Actor, ticket_id: int, to_member: int, reason: str) -> Ticket:
        """The holder passes the ticket to a named colleague, who then claims it."""
        async with self._ledger.change() as change:
            ticket = await change.visible_ticket(actor, ticket_id)
            if not may_act(actor, ticket):
                raise NotAllowed("only the ticket's holder transfers it")
            target = await change.session.get(Member, to_member)
            # Another community's members are not there to be named.
            outside = target is None or target.community_id != ticket.community_id
            if outside or target.id == ticket.assignee_id:
                raise TicketNotFound(f"no member {to_member} to transfer to")
            if not (target.active and allowed(target.role, Action.HOLD)):
                raise NotAllowed(f"member {to_member} cannot hold tickets")
            before, previous = Visibility.of(ticket), ticket.assignee
            step = Assignment(ticket.grid, target, f"转交{target.name}", ticket.escalation_level)
            change.offer(ticket, step, "transfer", actor, reason)
            change.tell_resident(ticket, texts.now_coming(previous, step))
            change.push("ticket.updated", ticket, before)
        return ticket

    async def hand_back(self, actor: Actor, ticket_id: int, reason: str) -> Ticket:
        """A member who cannot take it gives it back; it goes on to the next in the chain."""
        async with self._ledger.change() as change:
            ticket = await change.visible_ticket(actor, ticket_id)
            if not may_act(actor, ticket):
                raise NotAllowed("only the ticket's holder hands it back")
            next_status("hand_back", ticket.status)
            before, previous = Visibility.of(ticket), ticket.assignee
            step = await next_step(change.session, ticket, change.now)
            if step is None:
                raise IllegalTransition("hand_back", "offered to everyone")
            change.offer(ticket, step, "hand_back", actor, f"退回：{reason}")
            change.tell_resident(ticket, texts.now_coming(previous, step))
            change.push("ticket.updated", ticket, before)
            change.ring_if_urgent(ticket)
        return ticket

    async def resolve(
        self, actor: Actor, ticket_id: int, note: str, visit: Visit | None = None
    ) -> Ticket:
        async with self._ledger.change() as change:
            ticket = await change.visible_ticket(actor, ticket_id)
            if not may_act(actor, ticket):
                raise NotAllowed("only the ticket's holder resolves")
            before = Visibility.of(ticket)
            if visit is not None:
                ticket.visit_at, ticket.visit_outcome = visit.at, visit.outcome
            holder = ticket.assignee.name if ticket.assignee else actor.name
            # A member who phoned or called round and resolves without typing a reply has
            # answered too: the resident hears from them now, with the note. (A neighbour's
            # report is counted on its incident.)
            self._answered(change, ticket)
            reports = [
                r for r in await reports_of(change.session, ticket) if r.status in OPEN_STATUSES
            ]
            for resolved in (ticket, *reports):
                self._close_request(change, resolved, actor, note)
                change.count("tickets_resolved", resolved.category)
                change.tell_resident(resolved, texts.survey(holder, note), kind="rating")
            if reports:
                self._tell_groups(
                    change, ticket, reports, texts.incident_resolved(incident_label(ticket))
                )
            change.push("ticket.updated", ticket, before)
        return ticket

    async def merge(self, actor: Actor, ticket_id: int, into: int) -> Ticket:
        """By hand: this report is about the same thing as incident `into`."""
        async with self._ledger.change() as change:
            ticket = await change.visible_ticket(actor, ticket_id)
            incident = await change.visible_ticket(actor, into)
            if incident.incident_id is not None or incident.id == ticket.id:
                raise IllegalTransition("merge", "part of another incident")
            if ticket.status not in OPEN_STATUSES or not may_act(actor, incident):
                raise NotAllowed("only the incident's holder merges open reports into it")
            ticket.incident_id = incident.id
            ticket.assignee = incident.assignee
            ticket.claim_deadline = None
            change.record(ticket, "merge", actor, f"并入工单#{incident.id}")
            change.push("ticket.updated", ticket)
        return ticket

    async def split(self, actor: Actor, ticket_id: int) -> Ticket:
        """By hand: this report is something else after all; it keeps its holder."""
        async with self._ledger.change() as change:
            ticket = await change.visible_ticket(actor, ticket_id)
            if ticket.incident_id is None:
                raise IllegalTransition("split", "not part of an incident")
            if not may_act(actor, ticket):
                raise NotAllowed("only the holder splits a report off")
            change.record(ticket, "split", actor, f"从工单#{ticket.incident_id}分出")
            ticket.incident_id = None
            change.push("ticket.updated", ticket)
        return ticket

    async def reveal_phone(self, actor: Actor, ticket_id: int) -> str | None:
        """The resident's full number, for calling; every reveal is in the ticket's events."""
        async with self._ledger.change() as change:
            ticket = await change.visible_ticket(actor, ticket_id)
            phone = ticket.contact_phone()
            change.record(ticket, "phone_revealed", actor, "查看完整电话")
            audit.record(
                change.session,
                AuditAction.PHONE_REVEALED,
                change.now,
                actor,
                actor.member_id,
                target=f"工单#{ticket.id}",
                community_id=ticket.community_id,
            )
        logger.info("member %s revealed the phone of ticket %s", actor.member_id, ticket_id)
        return phone

    # ---------- internals ----------

    @staticmethod
    def _answered(change: Change, ticket: Ticket) -> None:
        """A person has answered the resident: the first time, how long they waited."""
        if ticket.first_response_at is None:
            ticket.first_response_at = change.now
            waited = (change.now - ticket.created_at).total_seconds()
            change.observe("first_response", ticket.category, waited)

    def _close_request(self, change: Change, ticket: Ticket, actor: Actor, note: str) -> None:
        change.transition(ticket, "resolve", actor, note)
        ticket.resolved_at = change.now
        ticket.resolution_note = note
        ticket.claim_deadline = None
        ticket.survey_deadline = change.now + change.timeouts.survey

    async def _claim_with_reports(
        self, change: Change, ticket: Ticket, actor: Actor, replying: bool = False
    ) -> None:
        """Claim the ticket and, for an incident, the neighbours' reports that follow it.
        Each resident hears who took it, where they asked: in a room where the incident was
        reported, one line says it for everyone; a reply on its way from the member they were
        told of says it itself (and spares one of the few messages WeChat allows)."""
        claims = [(ticket, await self._claim_one(change, ticket, actor))]
        followers = [r for r in await reports_of(change.session, ticket) if r.status in UNCLAIMED]
        for report in followers:
            claims.append((report, await self._claim_one(change, report, actor)))
        for claimed, taken_over in claims:
            said_in_room = bool(followers) and claimed.chat_type == "group"
            said_by_reply = replying and claimed is ticket and not taken_over
            if not (said_in_room or said_by_reply):
                private = claimed.chat_type == "private"
                change.tell_resident(claimed, texts.claimed(claimed.assignee, private))
        if followers:
            line = texts.incident_claimed(incident_label(ticket), ticket.assignee.name)
            self._tell_groups(change, ticket, followers, line)

    @staticmethod
    async def _claim_one(change: Change, ticket: Ticket, actor: Actor) -> bool:
        """Whether someone other than the member the resident was told of took it."""
        before = Visibility.of(ticket)
        await change.claim(ticket, actor)
        change.push("ticket.updated", ticket, before)
        return before.assignee_id != ticket.assignee_id

    @staticmethod
    def _tell_groups(change: Change, ticket: Ticket, reports: list[Ticket], text: str) -> None:
        """One short line in each group where the incident was reported; no one's details."""
        groups: dict[tuple[str, str], ChatRef] = {}
        for report in (ticket, *reports):
            if report.chat_type == "group":
                groups.setdefault((report.channel, report.chat_id), report.chat)
        for chat in groups.values():
            change.tell_chat(chat, text, ticket.id)

    @staticmethod
    def _addressed(ticket: Ticket, text: str) -> str:
        return addressed(ticket.chat_type, ticket.resident.name, text)
