"""The same service on PostgreSQL (skipped where no server listens on 127.0.0.1:5432)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.app import create_app
from bot.db.engine import create_engine, create_session_factory
from bot.db.migrate import upgrade_async
from bot.db.models import Grid, Resident, Ticket, TicketEvent
from bot.demo import DEMO_PASSWORD, seed
from bot.settings import Settings
from tests.helpers import Service

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    try:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        pytest.skip(f"PostgreSQL not available on 127.0.0.1:5432: {e}")
    name = f"bot_test_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_the_handoff_round_trip_on_postgresql(
    pg_database: str, trained_model: Path, unused_tcp_port: int, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=pg_database, port=unused_tcp_port, model_path=trained_model)
    client: TestClient = await aiohttp_client(
        create_app(settings), server_kwargs={"port": settings.port}
    )
    await seed(settings)
    service = Service(client, settings, DEMO_PASSWORD)
    wang, li = await service.login("王建国"), await service.login("李秀英")
    console = await service.console(wang)
    resident = await service.resident("张阿姨")

    await resident.say("我家厨房水管漏水了，3号楼2单元501")
    ticket = (await console.event("ticket.created"))["ticket"]
    assert (ticket["category"], ticket["assignee"]["name"]) == ("repair", "王建国")
    claims = await asyncio.gather(
        service.api("POST", f"/api/tickets/{ticket['id']}/claim", wang),
        service.api("POST", f"/api/tickets/{ticket['id']}/claim", li),
    )
    assert sorted(status for status, _ in claims) == [200, 409]
    holder = wang if claims[0][0] == 200 else li
    await service.api("POST", f"/api/tickets/{ticket['id']}/reply", holder, json={"text": "马上到"})
    assert (await resident.hear("member"))["text"] == "马上到"
    status, _ = await service.api(
        "POST", f"/api/tickets/{ticket['id']}/resolve", holder, json={"note": "修好了"}
    )
    assert status == 200
    await resident.say("谢谢你们")
    assert (await resident.hear("bot"))["text"]  # the bot is back: a private hint line


async def test_two_worker_processes_claiming_at_once_one_wins(pg_database: str) -> None:
    settings = Settings(database_url=pg_database)
    await upgrade_async(pg_database)
    await seed(settings)
    engine = create_engine(pg_database)
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
        start_at = time.time() + 4.0
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.claim_worker",
                pg_database,
                str(ticket.id),
                name,
                str(start_at),
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            for name in ("王建国", "李秀英")
        ]
        outcomes = [(await w.communicate())[0].decode().strip() for w in workers]
        assert sorted(outcomes) == ["lost", "won"]
        async with create_session_factory(engine)() as session:
            claims = await session.scalar(
                select(func.count())
                .select_from(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "claim")
            )
        assert claims == 1
    finally:
        await engine.dispose()
