"""Nothing is kept forever: the retention job erases the words of conversations that ended long
ago and keeps the statistics; a resident can have everything exported or erased (finding 11)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import or_, select, text

from bot.cli import privacy
from bot.cli_common import CommandError
from bot.core.clock import FakeClock
from bot.db.models import AuditEntry, ConsoleEvent, Message, Resident, Ticket
from bot.db.nlu_models import Classification
from bot.retention import RetentionJob
from bot.typedefs import sessions_key
from tests.helpers import Service

PHONE = "13900001234"
LEAK = f"我家厨房水管漏水了，3号楼2单元501，电话{PHONE}"


@pytest.fixture
def clock() -> FakeClock:
    # Rows and Rasa's events are stamped with the wall clock: the fake one starts there.
    return FakeClock(datetime.now(UTC))


async def _closed_request(service: Service) -> tuple[int, str]:
    """A resident's request, handled and rated: the conversation has ended."""
    token = await service.login("王建国")
    console = await service.console(token)
    resident = await service.resident("张阿姨")
    await resident.say(LEAK)
    await resident.hear("bot")  # who is coming
    ticket = (await console.event("ticket.created"))["ticket"]
    await service.api("POST", f"/api/tickets/{ticket['id']}/claim", token)
    assert "已经接单" in (await resident.hear("bot"))["text"]
    await service.api(
        "POST", f"/api/tickets/{ticket['id']}/resolve", token, json={"note": "换了阀门"}
    )
    assert "满意" in (await resident.hear("bot"))["text"]
    await resident.say("满意")
    await resident.hear("bot")
    await service.settle()
    async with service.client.app[sessions_key]() as session:
        status = await session.scalar(select(Ticket.status).where(Ticket.id == ticket["id"]))
    assert status == "closed"
    return ticket["id"], f"webchat:{resident.user_id}"


async def _words_held(service: Service, conversation_id: str) -> list[str]:
    async with service.client.app[sessions_key]() as session:
        messages = await session.scalars(
            select(Message.text).where(Message.conversation_id == conversation_id)
        )
        texts = [t for t in messages.all() if t]
        tickets = await session.scalars(
            select(Ticket.text).where(Ticket.conversation_id == conversation_id)
        )
        texts += [t for t in tickets.all() if t]
        classified = await session.scalars(
            select(Classification.text).where(
                or_(
                    Classification.message_id.in_(
                        select(Message.id).where(Message.conversation_id == conversation_id)
                    ),
                    Classification.ticket_id.in_(
                        select(Ticket.id).where(Ticket.conversation_id == conversation_id)
                    ),
                )
            )
        )
        texts += [t for t in classified.all() if t]
    return texts + await _journal_mentions(service, "厨房水管漏水")


async def _journal_mentions(service: Service, words: str) -> list[str]:
    """Events kept for reconnecting consoles that carry these words."""
    async with service.client.app[sessions_key]() as session:
        events = (await session.scalars(select(ConsoleEvent.event))).all()
    dumped = [json.dumps(event, ensure_ascii=False) for event in events]
    return [event for event in dumped if words in event]


async def _tracker_events(service: Service, conversation_id: str) -> int:
    async with service.client.app[sessions_key]() as session:
        found = await session.execute(
            text("SELECT count(*) FROM events WHERE sender_id = :s"), {"s": conversation_id}
        )
        return int(found.scalar_one())


async def test_words_of_a_long_ended_conversation_are_erased_statistics_stay(
    timed: Service, clock: FakeClock
) -> None:
    ticket_id, conversation = await _closed_request(timed)
    job = RetentionJob(timed.client.app[sessions_key], clock, timed.settings.retention_days)
    assert (await job.run_once()).messages == 0  # too recent
    assert await _tracker_events(timed, conversation) > 0
    assert await _journal_mentions(timed, "厨房水管漏水")

    clock.advance(days=timed.settings.retention_days + 1)
    erased = await job.run_once()

    assert erased.messages >= 3 and erased.tickets == 1 and erased.tracker_events > 0
    assert erased.console_events > 0
    assert await _words_held(timed, conversation) == []
    assert await _tracker_events(timed, conversation) == 0
    async with timed.client.app[sessions_key]() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert (ticket.category, ticket.rating, ticket.assignee.name) == (
            "repair",
            "满意",
            "王建国",
        )
        assert ticket.resolved_at is not None and ticket.resolution_note is None
        logged = await session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == "retention")
            .order_by(AuditEntry.id.desc())
        )
    assert logged is not None and "tickets 1" in logged.detail


async def test_an_open_request_keeps_its_words_however_old(
    timed: Service, clock: FakeClock
) -> None:
    resident = await timed.resident("李大爷")
    await resident.say(LEAK)
    await resident.hear("bot")
    await timed.settle()
    conversation = f"webchat:{resident.user_id}"
    clock.advance(days=365)
    await RetentionJob(timed.client.app[sessions_key], clock, 180).run_once()
    assert LEAK in await _words_held(timed, conversation)
    assert await _tracker_events(timed, conversation) > 0


async def test_export_holds_everything_and_erase_leaves_statistics(
    timed: Service, clock: FakeClock
) -> None:
    ticket_id, conversation = await _closed_request(timed)
    neighbour = await timed.resident("李大爷")
    await neighbour.say("楼道灯坏了好几天了，晚上看不见")
    await neighbour.hear("bot")
    await timed.settle()
    # Within minutes of the request, consoles that reconnect could still be sent its words.
    assert await _journal_mentions(timed, "厨房水管漏水")
    exported = json.loads(await privacy(timed.settings, "export", f"ticket:{ticket_id}"))
    assert exported["resident"]["name"] == "张阿姨"
    assert LEAK in [m["text"] for m in exported["messages"]]
    assert exported["tickets"][0]["resolution_note"] == "换了阀门"

    said = await privacy(timed.settings, "erase", f"ticket:{ticket_id}")
    assert "erased" in said
    assert await _words_held(timed, conversation) == []
    assert await _tracker_events(timed, conversation) == 0
    assert await _journal_mentions(timed, "楼道灯坏了"), "only her words go"
    async with timed.client.app[sessions_key]() as session:
        resident = await session.scalar(select(Resident).join(Ticket).where(Ticket.id == ticket_id))
        assert (resident.name, resident.phone) == ("已删除", None)
        assert resident.external_id.startswith("erased:")
        ticket = await session.get(Ticket, ticket_id)
        assert ticket.rating == "满意"
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert "privacy_export" in actions and "privacy_erase" in actions


async def test_a_resident_with_an_open_request_is_not_erased(timed: Service) -> None:
    resident = await timed.resident("孙爷爷")
    await resident.say(LEAK)
    await resident.hear("bot")
    await timed.settle()
    async with timed.client.app[sessions_key]() as session:
        ticket_id = await session.scalar(select(Ticket.id))
    with pytest.raises(CommandError, match="open tickets"):
        await privacy(timed.settings, "erase", f"ticket:{ticket_id}")
