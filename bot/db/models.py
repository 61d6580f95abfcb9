"""SQLAlchemy models: who lives where, who helps, and every ticket's messages and events.

Places nest: a district's communities (社区), each with its grids (网格). Grids and members
belong to one community; a resident belongs to their grid's. Tickets and possible requests
carry their community in a column because their grid may be unknown (no address anyone
recognised), and every list a member reads filters on it (`bot.handoff.access`).

Declarative 1.4 style (Rasa pins SQLAlchemy 1.4); queries elsewhere use 2.0-style `select()`.
Times are stored as timezone-aware UTC. The language model's tables (classifications, possible
requests, model archives and runs) are in `bot.db.nlu_models`, on the same `Base`.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    select,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import declarative_base, relationship
from sqlalchemy.types import TypeDecorator

from bot.core.chat import ChatRef

# SQLAlchemy 1.4 has no types for declarative classes; the columns are checked at run time.
Base: Any = declarative_base()


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite drops the zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; store aware UTC times")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_invite() -> str:
    return secrets.token_urlsafe(9)


class InChat:
    """A row that belongs to one resident's chat: a ticket, a message, a possible request."""

    channel: Any
    chat_type: Any
    chat_id: Any
    resident: Any

    @property
    def chat(self) -> ChatRef:
        return ChatRef(self.channel, self.chat_type, self.chat_id, self.resident.external_id)


class Community(Base):
    """A 社区 of the district, with its own party branch, grids, members and secretary."""

    __tablename__ = "communities"

    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False, unique=True)
    # ASCII code the command line names it by, e.g. donghu.
    code = Column(String(32), nullable=False, unique=True)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)


def default_community() -> Any:
    """A query for the default community: the first one (migration 0008 makes it). It takes the
    grids and members added without naming a community, and the requests whose place nobody
    recognises (`bot.handoff.dispatcher.find_place`)."""
    return select(Community).order_by(Community.id).limit(1)


# The default community's id, as an insert fills it in for a grid or member that names none.
_DEFAULT_COMMUNITY_ID = select(Community.id).order_by(Community.id).limit(1).scalar_subquery()


class Grid(Base):
    """A 网格: a building or village group that a party member looks after. Its name is
    unique in the district (the console shows it); aliases may repeat across communities."""

    __tablename__ = "grids"

    id = Column(Integer, primary_key=True)
    community_id = Column(
        ForeignKey("communities.id"),
        nullable=False,
        default=_DEFAULT_COMMUNITY_ID,
    )
    name = Column(String(64), nullable=False, unique=True)
    # ASCII code used in URLs, e.g. the webchat room id.
    code = Column(String(32), nullable=False, unique=True)
    # Other ways residents write the same place ("三号楼,3栋"), comma separated.
    aliases = Column(String(255), nullable=False, default="")
    # The secret part of the room link on the grid's poster; a room is joined only with it.
    invite = Column(String(40), nullable=False, unique=True, default=new_invite)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)

    community = relationship("Community", lazy="joined")

    def names(self) -> list[str]:
        return [self.name, *(a.strip() for a in self.aliases.split(",") if a.strip())]


member_grids = Table(
    "member_grids",
    Base.metadata,
    Column("member_id", ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("grid_id", ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True),
)


class Member(Base):
    """A party member (党员志愿者 / 网格员), branch secretary or operator."""

    __tablename__ = "members"

    id = Column(Integer, primary_key=True)
    # Whose branch they serve; a district role (`bot.handoff.roles`) reads every community.
    community_id = Column(
        ForeignKey("communities.id"),
        nullable=False,
        default=_DEFAULT_COMMUNITY_ID,
    )
    name = Column(String(64), nullable=False, unique=True)
    role = Column(String(16), nullable=False, default="member")
    # Comma separated (维修,医疗,助餐,调解); a member with none takes every kind of request.
    skills = Column(String(255), nullable=False, default="")
    phone = Column(String(32))
    # The member chose to give residents `phone` when they take a request (private chats only).
    share_phone = Column(Boolean, nullable=False, default=False, server_default=false())
    wecom_userid = Column(String(64))
    # Weekly hours as [[weekday, start_minute, end_minute], ...] in Beijing time
    # (`bot.handoff.schedule`); none means on duty at all times.
    schedule = Column(JSON)
    # 暂停接单: off duty whatever the schedule says.
    paused = Column(Boolean, nullable=False, default=False)
    password_hash = Column(String(255))
    # False once removed (`python -m bot members remove`): kept for the tickets' history only.
    active = Column(Boolean, nullable=False, default=True)
    last_assigned_at = Column(UTCDateTime())
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)

    grids = relationship("Grid", secondary=member_grids, lazy="selectin")
    community = relationship("Community", lazy="joined")

    def skill_list(self) -> list[str]:
        return [s for s in self.skills.split(",") if s]


class MemberToken(Base):
    """A bearer token (kind "session") or a one-time websocket ticket (kind "socket");
    only its SHA-256 is stored."""

    __tablename__ = "member_tokens"

    id = Column(Integer, primary_key=True)
    member_id = Column(ForeignKey("members.id", ondelete="CASCADE"), nullable=False)
    token_hash = Column(String(64), nullable=False, unique=True)
    kind = Column(String(8), nullable=False, default="session")
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at = Column(UTCDateTime(), nullable=False)

    member = relationship("Member", lazy="joined")


class Resident(Base):
    """A resident as one channel knows them (a WeChat OpenID, a webchat user id)."""

    __tablename__ = "residents"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    external_id = Column(String(128), nullable=False)
    name = Column(String(64), nullable=False, default="")
    phone = Column(String(32))
    grid_id = Column(ForeignKey("grids.id"))
    # The place from the resident's last shared location, used when a request names none.
    location = Column(String(255))
    # False once they unfollow the account; the next message makes them active again.
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)

    grid = relationship("Grid", lazy="joined")


class Ticket(InChat, Base):
    """One request handed to a person. Its status changes only through `bot.handoff.states`."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_conversation_status", "conversation_id", "status"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        # The recent reports of a grid, among all it ever had (`incidents.find_incident`).
        Index("ix_tickets_grid_created", "grid_id", "created_at"),
    )

    id = Column(Integer, primary_key=True)
    # The Rasa sender id of the conversation this ticket paused.
    conversation_id = Column(String(255), nullable=False)
    resident_id = Column(ForeignKey("residents.id"), nullable=False)
    # The grid's community, or the default one when the grid is unknown (`dispatcher.Place`).
    community_id = Column(ForeignKey("communities.id"), nullable=False, index=True)
    channel = Column(String(16), nullable=False)
    chat_type = Column(String(8), nullable=False)
    chat_id = Column(String(128))
    category = Column(String(16), nullable=False)
    intent = Column(String(64), nullable=False)
    confidence = Column(Float, nullable=False)
    text = Column(Text, nullable=False)
    entities = Column(JSON, nullable=False, default=dict)
    status = Column(String(16), nullable=False, default="new")
    grid_id = Column(ForeignKey("grids.id"))
    assignee_id = Column(ForeignKey("members.id"))
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    first_response_at = Column(UTCDateTime())
    resolved_at = Column(UTCDateTime())
    resolution_note = Column(Text)
    # Unclaimed past this moment → the next step of the escalation chain (`timers`).
    claim_deadline = Column(UTCDateTime(), index=True)
    escalation_level = Column(Integer, nullable=False, default=0)
    # Members already asked, in order, so an escalation asks someone new.
    tried_member_ids = Column(JSON, nullable=False, default=list)
    # Offered to every on-duty member of the branch, not only the grid.
    broadcast = Column(Boolean, nullable=False, default=False)
    # Read as urgent, but not surely: the grid's members decide first (可能紧急,
    # `bot.handoff.urgency`); cleared once anyone decides, claims or it escalates.
    possibly_urgent = Column(Boolean, nullable=False, default=False, server_default=false())
    # A report merged into another resident's ticket about the same thing.
    incident_id = Column(ForeignKey("tickets.id"), index=True)
    visit_at = Column(UTCDateTime())
    visit_outcome = Column(Text)
    # 满意 / 一般 / 不满意, asked once after resolving; unanswered by survey_deadline → closed.
    rating = Column(String(8))
    survey_deadline = Column(UTCDateTime(), index=True)
    closed_at = Column(UTCDateTime())

    resident = relationship("Resident", lazy="joined")
    grid = relationship("Grid", lazy="joined")
    assignee = relationship("Member", lazy="joined")
    community = relationship("Community", lazy="joined")

    def contact_phone(self) -> str | None:
        """The resident's registered phone, else the one they wrote in this request."""
        registered = self.resident.phone if self.resident is not None else None
        return registered or (self.entities or {}).get("phone")


class Message(InChat, Base):
    """Every message in or out, stored before anything acts on it."""

    __tablename__ = "messages"
    __table_args__ = (
        # A platform retry carries the same id: the second insert fails and is dropped.
        UniqueConstraint("channel", "platform_msg_id"),
        Index("ix_messages_conversation", "conversation_id", "id"),
        Index("ix_messages_chat", "channel", "chat_id", "id"),
        Index("ix_messages_delivery", "delivery"),
        Index(
            "ix_messages_unrouted",
            "id",
            postgresql_where=sql_text("direction = 'in' AND handled_at IS NULL"),
            sqlite_where=sql_text("direction = 'in' AND handled_at IS NULL"),
        ),
    )

    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    platform_msg_id = Column(String(128))
    conversation_id = Column(String(255), nullable=False)
    chat_type = Column(String(8), nullable=False)
    chat_id = Column(String(128))
    direction = Column(String(3), nullable=False)
    sender_kind = Column(String(16), nullable=False)
    resident_id = Column(ForeignKey("residents.id"))
    member_id = Column(ForeignKey("members.id"))
    ticket_id = Column(ForeignKey("tickets.id"), index=True)
    text = Column(Text, nullable=False, default="")
    # text, voice, image, location, subscribe or unsubscribe (`bot.core.chat.MessageKind`).
    kind = Column(String(16), nullable=False, default="text")
    media = Column(JSON)
    # A one-off handle for answering this inbound message (a WeCom robot's response_url).
    reply_handle = Column(String(1024))
    # Outbound only: pending, sent, failed or undeliverable; a restart retries pending ones.
    delivery = Column(String(16))
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    # Set once an inbound message has been routed; until then any worker may claim it.
    handled_at = Column(UTCDateTime())
    # The worker routing this inbound message, until when its claim holds, and how many
    # claims it has had (`bot.conversation.work`).
    routing_by = Column(String(64))
    routing_until = Column(UTCDateTime())
    routing_attempts = Column(Integer, nullable=False, default=0, server_default="0")

    resident = relationship("Resident", lazy="joined")
    member = relationship("Member", lazy="joined")


class MediaFile(Base):
    """A photo or voice clip a resident sent through the webchat, kept as it came (WeChat keeps
    its own): its message's `media` names it by `token`. Served only to members who may see the
    message's ticket; erased with the message's words (`bot.retention`)."""

    __tablename__ = "media_files"

    id = Column(Integer, primary_key=True)
    # Random: the name in URLs, which says nothing and cannot be guessed.
    token = Column(String(32), nullable=False, unique=True)
    content_type = Column(String(32), nullable=False)
    size = Column(Integer, nullable=False)
    data = Column(LargeBinary, nullable=False)
    # Set once the message is stored; an upload never linked is erased after a day.
    message_id = Column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)


class TicketEvent(Base):
    """The audit trail: every status change and assignment, with actor, time and reason."""

    __tablename__ = "ticket_events"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True)
    kind = Column(String(32), nullable=False)
    from_status = Column(String(16))
    to_status = Column(String(16))
    actor_member_id = Column(ForeignKey("members.id"))
    actor = Column(String(64), nullable=False)
    reason = Column(Text, nullable=False, default="")
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)


class ConsoleEvent(Base):
    """A live event as members' consoles were sent it, with who it was for, kept a few
    minutes: a console that reconnects, to any worker, is sent what it missed
    (`bot.handoff.journal`). The id is the event id consoles count by."""

    __tablename__ = "console_events"

    id = Column(Integer, primary_key=True)
    created_at = Column(UTCDateTime(), nullable=False, index=True)
    # `bot.handoff.push.Audience` as JSON; the event as the consoles got it, without its id.
    audience = Column(JSON, nullable=False)
    event = Column(JSON, nullable=False)
    # Whose words the event carries, so that erasing a resident reaches it (`bot.retention`).
    # No foreign key: the row outlives nothing, and residents are anonymised, never deleted.
    resident_id = Column(Integer, index=True)


class Notification(Base):
    """A note to party members on a second route (the WeCom group robot), queued in the
    database so that rate limits and restarts delay it but never drop it."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "route", "sent_at", "id"),)

    id = Column(Integer, primary_key=True)
    route = Column(String(32), nullable=False)
    ticket_id = Column(ForeignKey("tickets.id", ondelete="SET NULL"))
    content = Column(Text, nullable=False)
    attempts = Column(Integer, nullable=False, default=0)
    last_error = Column(String(255))
    created_at = Column(UTCDateTime(), nullable=False, default=utcnow)
    sent_at = Column(UTCDateTime())


class AuditEntry(Base):
    """Who did what that touches residents' privacy or members' accounts (the secretary's
    安全记录): logins, phone reveals, exports, erasures, password and role changes."""

    __tablename__ = "audit_log"

    id = Column(Integer, primary_key=True)
    at = Column(UTCDateTime(), nullable=False, default=utcnow, index=True)
    actor_id = Column(ForeignKey("members.id", ondelete="SET NULL"))
    actor_name = Column(String(64))
    # Whose secretary reads the entry; none: only the district's roles (an unknown login).
    community_id = Column(ForeignKey("communities.id"))
    action = Column(String(32), nullable=False)
    target = Column(String(128))
    detail = Column(String(255))


class ServiceSecret(Base):
    """Keys the service makes for itself once (e.g. the one that signs webchat identities),
    shared by every worker through the database."""

    __tablename__ = "service_secrets"

    name = Column(String(32), primary_key=True)
    value = Column(String(128), nullable=False)
