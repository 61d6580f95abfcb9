"""Party members' passwords and bearer tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Member, MemberToken

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(member: Member, password: str) -> bool:
    if not member.password_hash:
        return False
    try:
        return _HASHER.verify(member.password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(session: AsyncSession, member: Member) -> str:
    token = secrets.token_urlsafe(32)
    session.add(MemberToken(member_id=member.id, token_hash=_digest(token)))
    await session.flush()
    return token


async def member_for_token(session: AsyncSession, token: str) -> Member | None:
    if not token:
        return None
    row = await session.scalar(select(MemberToken).where(MemberToken.token_hash == _digest(token)))
    return row.member if row is not None else None
