"""Two worker processes claim one ticket at the same moment: one wins, one claim is recorded.
The claims in one process (tests/test_tickets.py, tests/test_api.py) share a connection pool;
these are two processes with their own, as `serve --workers 2` runs."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from bot.db.engine import create_engine, create_session_factory
from bot.db.models import Grid, Resident, Ticket, TicketEvent
from bot.demo import seed
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# Long enough for both workers to import the service before the agreed moment.
START_IN_S = 4.0


async def _assigned_ticket(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            grid = await session.scalar(select(Grid).where(Grid.name == "3号楼"))
            resident = Resident(channel="webchat", external_id="race", name="赵奶奶")
            ticket = Ticket(
                conversation_id="webchat:race", resident=resident, channel="webchat",
                chat_type="private", category="repair", intent="repair", confidence=0.9,
                text="水管漏了", entities={}, status="assigned", grid=grid, tried_member_ids=[],
                community_id=grid.community_id,
            )  # fmt: skip
            session.add(ticket)
        return ticket.id
    finally:
        await engine.dispose()


async def _claims_recorded(database_url: str, ticket_id: int) -> int:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            return await session.scalar(
                select(func.count())
                .select_from(TicketEvent)
                .where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "claim")
            )
    finally:
        await engine.dispose()


async def test_two_worker_processes_claiming_at_once_one_wins(database_url: str) -> None:
    await seed(Settings(database_url=database_url))
    ticket_id = await _assigned_ticket(database_url)
    start_at = str(time.time() + START_IN_S)
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.claim_worker",
            database_url,
            str(ticket_id),
            name,
            start_at,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for name in ("王建国", "李秀英")
    ]
    outcomes = [(await w.communicate())[0].decode().strip() for w in workers]
    assert sorted(outcomes) == ["lost", "won"]
    assert await _claims_recorded(database_url, ticket_id) == 1
