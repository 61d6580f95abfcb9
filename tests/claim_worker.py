"""One worker process claiming a ticket at an agreed moment (tests/test_claim_race.py).

    python -m tests.claim_worker DATABASE_URL TICKET_ID MEMBER_NAME START_AT_EPOCH
prints "won" or "lost".
"""

from __future__ import annotations

import asyncio
import sys
import time

from sqlalchemy import select

from bot.conversation.delivery import Delivery
from bot.core.clock import SystemClock
from bot.db.engine import create_engine, create_session_factory
from bot.db.models import Member
from bot.handoff.access import Actor
from bot.handoff.push import MemberHub
from bot.handoff.service import TicketService
from bot.handoff.states import IllegalTransition
from bot.metrics import Metrics


async def claim(url: str, ticket_id: int, name: str, start_at: float) -> str:
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    tickets = TicketService(
        sessions,
        Delivery(sessions),
        MemberHub(),
        Metrics.create(),
        SystemClock(),
    )
    try:
        async with sessions() as session:
            actor = Actor.of(await session.scalar(select(Member).where(Member.name == name)))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        try:
            await tickets.holding.claim(actor, ticket_id)
        except IllegalTransition:
            return "lost"
        return "won"
    finally:
        await engine.dispose()


if __name__ == "__main__":
    url, ticket_id, name, start_at = sys.argv[1:5]
    print(asyncio.run(claim(url, int(ticket_id), name, float(start_at))))
