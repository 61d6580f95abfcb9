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
from bot.handoff.access import Actor, Visibility
from bot.handoff.dispatcher import skilled_instead
from bot.handoff.ledger import Change, NotAllowed, TicketNotFound
from bot.handoff.roles import Action
from bot.handoff.states import UNCLAIMED
from bot.handoff.texts import who_is_coming
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


def confident_miss(row: Classification, below: float) -> bool:
    """The model was sure and a member said it was wrong: what a new model most needs."""
    corrected = row.corrected_intent is not None and row.corrected_intent != row.intent
    return corrected and row.confidence >= below


async def review_queue(session: AsyncSession, below: float) -> list[dict[str, Any]]:
    """Pending items grouped by predicted → corrected intent. Confident readings members
    corrected come first, in their groups and within each group (surest first); then the
    largest group, the newest items."""
    rows = await session.scalars(
        select(Classification)
        .where(Classification.review == "pending", needs_review(below))
        .order_by(Classification.created_at.desc())
    )
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row.intent, row.corrected_intent), []).append(_item(row, below))
    for items in groups.values():
        items.sort(key=lambda item: -item["confidence"] if item["confident_miss"] else 1)

    def misses_then_size(group: list[dict[str, Any]]) -> tuple[int, int]:
        return -sum(item["confident_miss"] for item in group), -len(group)

    return [
        {"predicted": predicted, "corrected": corrected, "items": items}
        for (predicted, corrected), items in sorted(
            groups.items(), key=lambda g: misses_then_size(g[1])
        )
    ]


def _item(row: Classification, below: float) -> dict[str, Any]:
    return {
        "id": row.id,
        "text": mask_text(row.text),
        "intent": row.intent,
        "confidence": round(row.confidence, 3),
        "corrected_intent": row.corrected_intent,
        "confident_miss": confident_miss(row, below),
        "model": row.model,
        "ticket_id": row.ticket_id,
        "created_at": row.created_at.isoformat(),
    }


class NotDecided(Exception):
    """Nothing to undo: the item is waiting for a decision."""


async def _reviewable(session: AsyncSession, actor: Actor, item_id: int) -> Classification:
    """The item, while a decision on it may still be made or taken back: until it is
    exported into the training data."""
    operator_only(actor)
    item = await session.get(Classification, item_id)
    if item is None:
        raise TicketNotFound(f"no review item {item_id}")
    if item.exported_at is not None:
        raise AlreadyExported(f"review item {item_id} is already in the training data")
    return item


async def decide(
    session: AsyncSession, actor: Actor, item_id: int, decision: Decision
) -> Classification:
    item = await _reviewable(session, actor, item_id)
    label = decision.label_for(item)
    item.review = "skipped" if label is None else "accepted"
    item.label = label
    item.reviewed_by = actor.member_id
    item.reviewed_at = utcnow()
    await session.flush()
    return item


async def undo(session: AsyncSession, actor: Actor, item_id: int) -> Classification:
    """Take a decision back: the item waits in the queue again (where the page offered it
    from), with the member's correction it had."""
    item = await _reviewable(session, actor, item_id)
    if item.review == "pending":
        raise NotDecided(f"review item {item_id} has no decision to undo")
    item.review = "pending"
    item.label = None
    item.reviewed_by = None
    item.reviewed_at = None
    await session.flush()
    return item


async def correct_category(change: Change, actor: Actor, ticket_id: int, category: str) -> Ticket:
    """A member says what the request really is ("其实是医疗"). While nobody has claimed it,
    it goes to a member of the grid with the new skill if the one it waits for lacks it (the
    resident is told who comes now); corrected to urgent, its claim deadline becomes the
    urgent one, so the escalation chain reaches the secretary and the branch within minutes."""
    if category not in REQUEST_INTENTS:
        raise BadDecision(f"category must be one of {', '.join(REQUEST_INTENTS)}")
    session = change.session
    ticket = await change.visible_ticket(actor, ticket_id)
    if ticket.category == category:
        return ticket
    was, before = ticket.category, Visibility.of(ticket)
    ticket.category = category
    ticket.updated_at = change.now
    reason = f"{CATEGORY_LABELS[was]} → {CATEGORY_LABELS[category]}"
    change.record(ticket, "category_corrected", actor, reason, ticket.status, ticket.status)
    # A member said what it is: whether it might be urgent is no longer a question.
    ticket.possibly_urgent = False
    if category == "urgent" and ticket.status in UNCLAIMED:
        urgent_deadline = change.now + change.timeouts.urgent_claim
        ticket.claim_deadline = min(ticket.claim_deadline or urgent_deadline, urgent_deadline)
    elif ticket.status in UNCLAIMED:
        step = await skilled_instead(session, ticket, change.now)
        if step is not None and step.member is not None:
            note = f"分类改为{CATEGORY_LABELS[category]}，改派给{step.member.name}"
            change.offer(ticket, step, "redispatch", actor, note)
            change.tell_resident(ticket, who_is_coming(step))
    # `before`: the console of the member it no longer waits for learns of it too.
    change.push("ticket.updated", ticket, before)
    item = await session.scalar(select(Classification).where(Classification.ticket_id == ticket.id))
    if item is None:
        # Opened without a turn through the router (e.g. by an external action server).
        item = Classification(
            **Classification.reading(
                ticket.text, ticket.intent, ticket.confidence, model="", ticket_id=ticket.id
            )
        )
        session.add(item)
    item.correct(category, actor.member_id)
    await session.flush()
    return ticket
