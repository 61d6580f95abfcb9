"""The audit log (安全记录): what touched residents' privacy or members' accounts, by whom.

Written in the same transaction as the change it records, so neither exists without the other.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditEntry
from bot.privacy import mask_text


class AuditAction(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    PHONE_REVEALED = "phone_revealed"
    PRIVACY_EXPORT = "privacy_export"
    PRIVACY_ERASE = "privacy_erase"
    PASSWORD_CHANGED = "password_changed"
    MEMBER_ADDED = "member_added"
    MEMBER_REMOVED = "member_removed"
    ROLE_CHANGED = "role_changed"
    RETENTION = "retention"
    OVERVIEW_EXPORT = "overview_export"


class Actor(Protocol):
    """A member as they act (`Member` or `Actor`)."""

    @property
    def name(self) -> str: ...


def record(
    session: AsyncSession,
    action: AuditAction,
    at: datetime,
    actor: Actor | None = None,
    actor_id: int | None = None,
    target: str | None = None,
    detail: str | None = None,
    community_id: int | None = None,
) -> None:
    """`community_id`: whose secretary reads the entry; none, only the district's roles."""
    session.add(
        AuditEntry(
            at=at,
            actor_id=actor_id,
            actor_name=actor.name if actor is not None else None,
            community_id=community_id,
            action=action.value,
            target=mask_text(target)[:128] if target else None,
            detail=mask_text(detail)[:255] if detail else None,
        )
    )


async def recent(
    session: AsyncSession, community_id: int | None, limit: int = 200
) -> list[AuditEntry]:
    """The newest entries of one community, or of the whole district when it is None."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if community_id is not None:
        query = query.where(AuditEntry.community_id == community_id)
    rows = await session.scalars(query)
    return list(rows.all())


def entry_payload(entry: AuditEntry) -> dict[str, str | None]:
    return {
        "at": entry.at.isoformat(),
        "actor": entry.actor_name,
        "action": entry.action,
        "target": entry.target,
        "detail": entry.detail,
    }
