"""The review queue: what the model read uncertainly and what members corrected.

A member corrects a ticket's category with one tap in the console; the correction is a ticket
event and marks the message's classification. Operators then accept, relabel, mark "not a
request" or skip each item; accepted items are what `ops export` writes into data/nlu/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.categories import CATEGORY_LABELS, CHITCHAT, REQUEST_INTENTS
from bot.db.models import Ticket, utcnow
from bot.db.nlu_models import Classification
from bot.handoff.access import Actor
from bot.handoff.ledger import Change, NotAllowed, TicketNotFound
from bot.handoff.roles import Action
from bot.handoff.states import UNCLAIMED
from bot.ops.evaluation import FALLBACK_INTENT
from bot.privacy import mask_text

NOT_A_REQUEST = CHITCHAT
LABELS = (*REQUEST_INTENTS, NOT_A_REQUEST)
ACTIONS = ("accept", "relabel", "not_request", "skip")


class BadDecision(Exception):
    pass


class AlreadyExported(Exception):
    """The item is in data/nlu/ already; change it there."""


@dataclass(frozen=True)
class Decision:
    action: str
    intent: str | None = None

    def label_for(self, item: Classification) -> str | None:
        """The intent the example is trained as; None when it is skipped."""
        if self.action == "skip":
            return None
        if self.action == "not_request":
            return NOT_A_REQUEST
        if self.action == "relabel":
            if self.intent not in LABELS:
                raise BadDecision(f"relabel needs one of {', '.join(LABELS)}")
            return self.intent
        if self.action == "accept":
            label = item.corrected_intent or item.intent
            if label not in LABELS:
                raise BadDecision("nothing to accept: choose the right intent")
            return label
        raise BadDecision(f"action must be one of {', '.join(ACTIONS)}")


def operator_only(actor: Actor) -> None:
    if not actor.may(Action.REVIEW):
        raise NotAllowed(f"member {actor.member_id} may not review")


def needs_review(below: float) -> Any:
    return or_(
        Classification.corrected_intent.is_not(None),
        Classification.confidence < below,
        Classification.intent == FALLBACK_INTENT,
    )


async def review_queue(session: AsyncSession, below: float) -> list[dict[str, Any]]:
    """Pending items grouped by predicted → corrected intent, the largest group first."""
    rows = await session.scalars(
        select(Classification)
        .where(Classification.review == "pending", needs_review(below))
        .order_by(Classification.created_at.desc())
    )
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row.intent, row.corrected_intent), []).append(_item(row))
    return [
        {"predicted": predicted, "corrected": corrected, "items": items}
        for (predicted, corrected), items in sorted(groups.items(), key=lambda g: -len(g[1]))
    ]


def _item(row: Classification) -> dict[str, Any]:
    return {
        "id": row.id,
        "text": mask_text(row.text),
        "intent": row.intent,
        "confidence": round(row.confidence, 3),
        "corrected_intent": row.corrected_intent,
        "model": row.model,
        "ticket_id": row.ticket_id,
        "created_at": row.created_at.isoformat(),
    }


async def decide(
    session: AsyncSession, actor: Actor, item_id: int, decision: Decision
) -> Classification:
    operator_only(actor)
    item = await session.get(Classification, item_id)
    if item is None:
        raise TicketNotFound(f"no review item {item_id}")
    if item.exported_at is not None:
        raise AlreadyExported(f"review item {item_id} is already in the training data")
    label = decision.label_for(item)
    item.review = "skipped" if label is None else "accepted"
    item.label = label
    item.reviewed_by = actor.member_id
    item.reviewed_at = utcnow()
    await session.flush()
    return item


async def correct_category(change: Change, actor: Actor, ticket_id: int, category: str) -> Ticket:
    """A member says what the request really is ("其实是医疗"). Corrected to urgent while
    nobody holds it, its claim deadline becomes the urgent one, so the escalation chain
    reaches the secretary and the branch within minutes."""
    if category not in REQUEST_INTENTS:
        raise BadDecision(f"category must be one of {', '.join(REQUEST_INTENTS)}")
    session = change.session
    ticket = await change.visible_ticket(actor, ticket_id)
    if ticket.category == category:
        return ticket
    was = ticket.category
    ticket.category = category
    ticket.updated_at = change.now
    # A member said what it is: whether it might be urgent is no longer a question.
    ticket.possibly_urgent = False
    if category == "urgent" and ticket.status in UNCLAIMED:
        urgent_deadline = change.now + change.timeouts.urgent_claim
        ticket.claim_deadline = min(ticket.claim_deadline or urgent_deadline, urgent_deadline)
    reason = f"{CATEGORY_LABELS[was]} → {CATEGORY_LABELS[category]}"
    change.record(ticket, "category_corrected", actor, reason, ticket.status, ticket.status)
    change.push("ticket.updated", ticket)
    item = await session.scalar(select(Classification).where(Classification.ticket_id == ticket.id))
    if item is None:
        # Opened without a turn through the router (e.g. by an external action server).
        item = Classification(
            ticket_id=ticket.id,
            text=mask_text(ticket.text),
            intent=ticket.intent,
            confidence=ticket.confidence,
            model="",
        )
        session.add(item)
    item.correct(category, actor.member_id)
    await session.flush()
    return ticket
