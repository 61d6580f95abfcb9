"""Keys the service makes for itself, once, and keeps in the database so that every worker and
every restart signs with the same one."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot.db.models import ServiceSecret


async def service_secret(sessions: sessionmaker, name: str) -> bytes:
    async with sessions() as session:
        row = await session.get(ServiceSecret, name)
    if row is None:
        try:
            async with sessions() as session, session.begin():
                session.add(ServiceSecret(name=name, value=secrets.token_hex(32)))
        except IntegrityError:
            pass  # another worker made it first; theirs is the one
        async with sessions() as session:
            row = await session.get(ServiceSecret, name)
    return bytes.fromhex(row.value)
