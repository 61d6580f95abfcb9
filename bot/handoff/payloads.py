"""JSON shapes of tickets, members, events and possible requests (documented in docs/api.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core.categories import CATEGORY_LABELS, category_for_intent
from bot.core.chat import ChatMessage
from bot.core.clock import iso
from bot.db.models import Member, Ticket, TicketEvent
from bot.db.nlu_models import PossibleRequest
from bot.handoff.roles import Action, allowed
from bot.handoff.schedule import describe, on_duty
from bot.handoff.states import STATUS_LABELS, Status
from bot.privacy import mask_phone, mask_text


def console_message(message: ChatMessage) -> dict[str, Any]:
    """A chat message as a member's console shows it: phone and ID numbers masked (the full
    phone is one audited tap away, `POST /api/tickets/{id}/phone`)."""
    return {**message.to_json(), "text": mask_text(message.text)}


def member_payload(member: Member, now: datetime | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": member.id,
        "name": member.name,
        "role": member.role,
        "community": member.community.name,
        "grids": [g.name for g in member.grids],
        "skills": member.skill_list(),
        "hours": describe(member.schedule),
        "paused": member.paused,
        # Only these can be handed a ticket (`bot.handoff.roles`).
        "holds_tickets": allowed(member.role, Action.HOLD),
        # The district reads tickets without holding any.
        "reads_tickets": allowed(member.role, Action.TICKETS),
    }
    if now is not None:
        payload["on_duty"] = on_duty(member.schedule, member.paused, now)
    return payload


def ticket_payload(ticket: Ticket) -> dict[str, Any]:
    entities = dict(ticket.entities or {})
    if "phone" in entities:
        entities["phone"] = mask_phone(entities["phone"])
    resident = ticket.resident
    return {
        "id": ticket.id,
        "category": ticket.category,
        "category_label": CATEGORY_LABELS[ticket.category],
        "status": ticket.status,
        "status_label": STATUS_LABELS[Status(ticket.status)],
        "text": mask_text(ticket.text),
        "confidence": round(ticket.confidence, 3),
        "entities": {name: entities.get(name) for name in ("address", "phone", "time")},
        "resident": {
            "name": resident.name,
            "phone": mask_phone(ticket.contact_phone()),
        },
        "community": ticket.community.name,
        "grid": ticket.grid.name if ticket.grid else None,
        "channel": ticket.channel,
        "chat_type": ticket.chat_type,
        "assignee": (
            {"id": ticket.assignee.id, "name": ticket.assignee.name} if ticket.assignee else None
        ),
        "resolution_note": ticket.resolution_note,
        "visit": (
            {"at": ticket.visit_at.isoformat(), "outcome": ticket.visit_outcome}
            if ticket.visit_at
            else None
        ),
        "rating": ticket.rating,
        "escalation_level": ticket.escalation_level,
        "broadcast": ticket.broadcast,
        "possibly_urgent": ticket.possibly_urgent,
        "claim_deadline": iso(ticket.claim_deadline),
        "incident_id": ticket.incident_id,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
    }


def earlier_payload(ticket: Ticket) -> dict[str, Any]:
    """One of the resident's earlier requests, as a line of context for the member."""
    return {
        "id": ticket.id,
        "category_label": CATEGORY_LABELS[ticket.category],
        "status_label": STATUS_LABELS[Status(ticket.status)],
        "text": mask_text(ticket.text),
        "rating": ticket.rating,
        "created_at": ticket.created_at.isoformat(),
    }


def reporter_payload(ticket: Ticket) -> dict[str, Any]:
    """A neighbour's report merged into an incident: who, what they said, where."""
    return {
        "id": ticket.id,
        "resident": ticket.resident.name,
        "phone": mask_phone(ticket.contact_phone()),
        "text": mask_text(ticket.text),
        "chat_type": ticket.chat_type,
        "status": ticket.status,
        "created_at": ticket.created_at.isoformat(),
    }


def event_payload(event: TicketEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor": event.actor,
        "reason": event.reason,
        "created_at": event.created_at.isoformat(),
    }


def possible_payload(possible: PossibleRequest) -> dict[str, Any]:
    """A message that may be a request, as the card a member decides on shows it."""
    return {
        "id": possible.id,
        "text": possible.text,
        "resident": {"name": possible.resident.name},
        "community": possible.community.name,
        "grid": possible.grid.name if possible.grid else None,
        "channel": possible.channel,
        "chat_type": possible.chat_type,
        "intent": possible.intent,
        "intent_label": CATEGORY_LABELS[category_for_intent(possible.intent)],
        "confidence": round(possible.confidence, 3),
        "status": possible.status,
        "decided_by": possible.decider.name if possible.decided_by is not None else None,
        "decided_at": iso(possible.decided_at),
        "ticket_id": possible.ticket_id,
        "created_at": possible.created_at.isoformat(),
    }
