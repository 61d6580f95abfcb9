"""JSON shapes of tickets, members and events (documented in docs/api.md)."""

from __future__ import annotations

from typing import Any

from bot.db.models import Member, Ticket, TicketEvent
from bot.handoff.categories import CATEGORY_LABELS
from bot.handoff.states import STATUS_LABELS, Status
from bot.privacy import mask_phone


def member_payload(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "role": member.role,
        "grids": [g.name for g in member.grids],
        "skills": member.skill_list(),
    }


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
        "text": ticket.text,
        "confidence": round(ticket.confidence, 3),
        "entities": {name: entities.get(name) for name in ("address", "phone", "time")},
        "resident": {
            "name": resident.name,
            "phone": mask_phone(resident.phone or entities.get("phone")),
        },
        "grid": ticket.grid.name if ticket.grid else None,
        "channel": ticket.channel,
        "chat_type": ticket.chat_type,
        "assignee": (
            {"id": ticket.assignee.id, "name": ticket.assignee.name} if ticket.assignee else None
        ),
        "resolution_note": ticket.resolution_note,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
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
