"""What every response and every caller meets: security headers, a readiness answer without
internals, metrics only for whom they are for, a flood that stays one ticket, and a demo seed
that keeps off real databases (finding 10)."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy
from sqlalchemy import func, select

from bot.app import create_app
from bot.cli_people import NewMember, add_member
from bot.db.migrate import upgrade_async
from bot.db.models import Message, Ticket
from bot.demo import RealMembers, seed
from bot.settings import Settings
from bot.typedefs import sessions_key
from bot.web import pages
from tests.helpers import Service


@pytest.mark.parametrize("path", ["/webchat/", "/console/", "/ops/review", "/api/tickets"])
async def test_pages_and_answers_carry_security_headers(service: Service, path: str) -> None:
    resp = await service.client.get(path)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-cache"


async def test_a_script_module_is_revalidated_not_refetched(service: Service) -> None:
    """A page and its modules always come from one deploy, at the cost of a 304 each."""
    first = await service.client.get("/static/console-core.js")
    assert first.headers["Cache-Control"] == "no-cache"
    again = await service.client.get(
        "/static/console-core.js", headers={"If-Modified-Since": first.headers["Last-Modified"]}
    )
    assert again.status == 304


async def test_pages_hold_no_inline_script_or_style(service: Service) -> None:
    for path in ("/webchat/", "/console/", "/ops/review"):
        html = await (await service.client.get(path)).text()
        assert "<script>" not in html and " style=" not in html and " onclick=" not in html


async def test_readiness_says_what_is_wrong_without_internals(
    service: Service, caplog, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    broken_probe = sqlalchemy.text("SELECT * FROM no_such_table")
    monkeypatch.setattr(pages, "text", lambda _: broken_probe)
    caplog.set_level(logging.ERROR, logger="bot.web.pages")
    resp = await service.client.get("/readyz")
    assert resp.status == 503
    assert await resp.json() == {"status": "database unavailable"}
    assert "no_such_table" in caplog.text  # the cause is in the log, not in the answer


async def test_metrics_answer_loopback_or_the_configured_token(
    service: Service, settings: Settings, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    assert (await service.client.get("/metrics")).status == 200  # the test client is loopback
    guarded = await aiohttp_client(create_app(settings.with_overrides(metrics_token="m-secret")))
    assert (await guarded.get("/metrics")).status == 403
    ok = await guarded.get("/metrics", headers={"Authorization": "Bearer m-secret"})
    assert ok.status == 200


async def test_a_flood_from_one_resident_is_one_ticket_and_one_log_line(
    service: Service, caplog
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, logger="bot.conversation.router")
    resident = await service.resident("张阿姨")
    await resident.say("3号楼2单元的电梯坏了 停在五楼不动")
    await resident.hear("bot")
    for n in range(30):
        await resident.say(f"快来人 电梯 {n}")
    await service.settle()
    async with service.client.app[sessions_key]() as session:
        tickets = await session.scalar(select(func.count()).select_from(Ticket))
        stored = await session.scalar(
            select(func.count()).select_from(Message).where(Message.direction == "in")
        )
        unrouted = await session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.direction == "in", Message.handled_at.is_(None))
        )
    assert tickets == 1 and stored == 31  # nothing lost, nothing multiplied
    assert unrouted == 0  # settled means every one of them was dealt with
    assert caplog.text.count("messages a minute") == 1


async def test_demo_seed_refuses_a_database_with_real_members(settings: Settings) -> None:
    await upgrade_async(settings.database_url)
    await seed(settings)
    await add_member(
        settings, NewMember("赵书记", (), "", "secretary", "a-real-pass", None, "", None)
    )
    with pytest.raises(RealMembers):
        await seed(settings)
    assert "3号楼" in await seed(settings, force=True)
