"""Party members' passwords and tokens.

Checking a password costs argon2's ~0.3 s of CPU, so it runs in a thread, at most a few at a
time, and an unknown name costs the same as a known one (no timing tells which names exist).
Tokens are stored as SHA-256 with an expiry: a console session lasts `token_hours`; a websocket
ticket lasts a minute and is used once, so no long-lived token travels in a URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cluster.redis import SharedRedis
from bot.cluster.throttle import Throttle
from bot.core.clock import Clock
from bot.db.models import Member, MemberToken

SESSION = "session"
SOCKET = "socket"
SOCKET_TICKET_TTL = timedelta(seconds=60)
# Concurrent password checks; more wait their turn instead of starving the event loop's CPU.
PASSWORD_CHECKS = 2


def hash_password(password: str) -> str:
    return PasswordHasher().hash(password)


class PasswordChecker:
    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        self._slots = asyncio.Semaphore(PASSWORD_CHECKS)
        # Verified against when the name is unknown, so both cases take as long.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    async def matches(self, member: Member | None, password: str) -> bool:
        stored = member.password_hash if member is not None and member.active else None
        async with self._slots:
            ok = await asyncio.to_thread(self._verify, stored or self._decoy, password)
        return ok and stored is not None

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False


def bearer_token(request: web.Request) -> str:
    """The token of an `Authorization: Bearer ...` header; "" when there is none."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def secret_matches(presented: str, expected: str) -> bool:
    """A shared secret, compared in constant time; an unset secret matches nothing."""
    return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    session: AsyncSession, member: Member, now: datetime, ttl: timedelta, kind: str = SESSION
) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        MemberToken(
            member_id=member.id,
            token_hash=_digest(token),
            kind=kind,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    await session.flush()
    return token


async def member_for_token(
    session: AsyncSession, token: str, now: datetime, kind: str = SESSION
) -> Member | None:
    """The active member a live token belongs to; a socket ticket is spent by reading it."""
    if not token:
        return None
    row = await session.scalar(
        select(MemberToken).where(
            MemberToken.token_hash == _digest(token), MemberToken.kind == kind
        )
    )
    if row is None or row.expires_at <= now or not row.member.active:
        return None
    if kind == SOCKET:
        await session.delete(row)
    return row.member


async def revoke_token(session: AsyncSession, token: str) -> None:
    await session.execute(delete(MemberToken).where(MemberToken.token_hash == _digest(token)))


async def revoke_all(session: AsyncSession, member: Member) -> int:
    """Every session and ticket of a member (password changed, member removed)."""
    result = await session.execute(delete(MemberToken).where(MemberToken.member_id == member.id))
    return result.rowcount or 0


class TooManyAttempts(Exception):
    """`what`: what there was too much of, in the words the person who is held back reads."""

    def __init__(self, retry_after: int, what: str = "尝试次数太多了") -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after
        self.what = what


class LoginGuard:
    """Login attempts counted per account (a guessed name) and per address (one machine
    trying many names); either over its limit refuses logins for a while. An attempt counts
    before its password is checked, so a burst sent at once is held back too; a success
    clears its account's count."""

    def __init__(self, clock: Clock, redis: SharedRedis | None = None) -> None:
        self._by_name = Throttle("login-name", 5, timedelta(minutes=15), clock, redis)
        self._by_address = Throttle("login-address", 20, timedelta(minutes=15), clock, redis)

    async def attempt(self, name: str, address: str) -> None:
        wait = max(
            await self._by_name.retry_after(name), await self._by_address.retry_after(address)
        )
        if wait:
            raise TooManyAttempts(wait)
        await self._by_name.record(name)
        await self._by_address.record(address)

    async def succeeded(self, name: str) -> None:
        await self._by_name.clear(name)
