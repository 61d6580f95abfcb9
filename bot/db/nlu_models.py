"""SQLAlchemy models of the language model's side: how it read each resident message, what
members and operators made of that reading, and the model archives with their runs.

Declared on `bot.db.models.Base`; wherever the schema is built from `Base.metadata` (Alembic's
env.py, the migration test), this module must be imported too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Column, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import relationship

from bot.db.models import Base, InChat, UTCDateTime, utcnow
from bot.privacy import mask_text


class Classification(Base):
    """How the model read one resident message: the raw material of the review queue.

    The text is stored masked, so a review never shows a phone or ID number and outlives the
    message body's expiry."""

    __tablename__ = "classifications"
    __table_args__ = (Index("ix_classifications_review", "review", "confidence"),)

    id = Column(Integer, primary_key=True)
    message_id = Column(ForeignKey("messages.id", ondelete="SET NULL"), unique=True)
    ticket_id = Column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    text = Column(Text, nullable=False)
    intent = Column(String(64), nullable=False)
    confidence = Column(Float, nullable=False)
    # The archive name of the model that read it.
    model = Column(String(255), nullable=False)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    # A member's correction from the console ("其实是医疗").
    corrected_intent = Column(String(64))
    corrected_by = Column(ForeignKey("members.id"))
    # pending → accepted (with `label`) or skipped, by an operator (`bot.ops.review`).
    review = Column(String(16), nullable=False, default="pending")
    label = Column(String(64))
    reviewed_by = Column(ForeignKey("members.id"))
    reviewed_at = Column(UTCDateTime())
    # Written into data/nlu/ by `python -m bot ops export`.
    exported_at = Column(UTCDateTime())

    @staticmethod
    def reading(
        text: str,
        intent: str,
        confidence: float,
        model: str,
        message_id: int | None = None,
        ticket_id: int | None = None,
    ) -> dict[str, Any]:
        """A row's values: the model's reading of `text`, masked, and what it belongs to."""
        return {
            "message_id": message_id,
            "ticket_id": ticket_id,
            "text": mask_text(text),
            "intent": intent,
            "confidence": confidence,
            "model": model,
        }

    def correct(self, intent: str, member_id: int) -> None:
        """A member's word on what the message really is, for the operators to review."""
        self.corrected_intent = intent
        self.corrected_by = member_id
        self.review = "pending"


class PossibleRequest(InChat, Base):
    """A message the model read as chatter although something in it sounds like a request.

    A member of its grid decides with one tap: a request (a ticket opens) or chatter. Its
    status changes only through `bot.handoff.possible`."""

    __tablename__ = "possible_requests"
    __table_args__ = (Index("ix_possible_requests_status_grid", "status", "grid_id"),)

    id = Column(Integer, primary_key=True)
    message_id = Column(ForeignKey("messages.id"), nullable=False, unique=True)
    # The model's reading of the message, which the member's decision corrects.
    classification_id = Column(ForeignKey("classifications.id"), nullable=False)
    conversation_id = Column(String(255), nullable=False)
    resident_id = Column(ForeignKey("residents.id"), nullable=False)
    # As a ticket's: the grid's community, or the default one when the grid is unknown.
    community_id = Column(ForeignKey("communities.id"), nullable=False, index=True)
    grid_id = Column(ForeignKey("grids.id"))
    channel = Column(String(16), nullable=False)
    chat_type = Column(String(8), nullable=False)
    chat_id = Column(String(128))
    # Masked, as members see it before anyone has taken the request on.
    text = Column(Text, nullable=False)
    # The request intent the model ranked highest, which becomes the ticket's category.
    intent = Column(String(64), nullable=False)
    confidence = Column(Float, nullable=False)
    # What the model found in it (address, phone, time), for the ticket if it is confirmed.
    entities = Column(JSON, nullable=False, default=dict)
    # open → confirmed (with `ticket_id`) or dismissed.
    status = Column(String(16), nullable=False, default="open")
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    decided_by = Column(ForeignKey("members.id"))
    decided_at = Column(UTCDateTime())
    ticket_id = Column(ForeignKey("tickets.id", ondelete="SET NULL"))

    resident = relationship("Resident", lazy="joined")
    community = relationship("Community", lazy="joined")
    grid = relationship("Grid", lazy="joined")
    decider = relationship("Member", lazy="joined")
    classification = relationship("Classification", lazy="joined")


class NluModel(Base):
    """A trained model archive the service may run; exactly one is active at a time."""

    __tablename__ = "nlu_models"

    id = Column(Integer, primary_key=True)
    name = Column(String(255), nullable=False, unique=True)
    path = Column(String(1024), nullable=False)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    # SHA-256 of the training data and config the model was trained from.
    data_hash = Column(String(64), nullable=False, default="")
    example_counts = Column(JSON, nullable=False, default=dict)
    # Summary of its evaluation report (macro-F1, urgent recall, misroute rate...).
    metrics = Column(JSON)
    active = Column(Boolean, nullable=False, default=False)
    activated_at = Column(UTCDateTime())
    activated_by = Column(String(64))


class ModelEvent(Base):
    """The models' audit trail: registered, activated, refused by the gate, forced, rolled back."""

    __tablename__ = "model_events"

    id = Column(Integer, primary_key=True)
    model_name = Column(String(255), nullable=False, index=True)
    kind = Column(String(32), nullable=False)
    actor = Column(String(64), nullable=False)
    reason = Column(Text, nullable=False, default="")
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)


class OpsRun(Base):
    """A training or evaluation run (`python -m bot ops train|evaluate`); its output is kept
    here so `/ops/models` can follow it, wherever it was started."""

    __tablename__ = "ops_runs"

    id = Column(Integer, primary_key=True)
    kind = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False, default="running")
    started_by = Column(String(64), nullable=False)
    started_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    # Refreshed while the run works; a stale "running" run was stopped.
    updated_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    finished_at = Column(UTCDateTime())
    output = Column(Text, nullable=False, default="")
    model_name = Column(String(255))
    # [{"name": "export"|"train"|"evaluate", "status", "started_at", "finished_at", "detail"}]
    # in order (`bot.ops.runs`); none for runs older than the steps.
    steps = Column(JSON)
