"""The ticket lifecycle at the service seam: the real service on a migrated database with the
demo's people and a fake clock, no model and no HTTP. What residents are told, what the
consoles learn, and what the ticket's history says."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from bot.db.models import Member, TicketEvent
from bot.handoff.states import IllegalTransition
from bot.handoff.texts import WHOLE_BRANCH
from bot.ops.review import correct_category
from tests.fakes import Desk

LEAK = "我家厨房水管漏水了，3号楼2单元501"
NO_WATER = "3号楼停水了，一滴水都没有"


async def history(desk: Desk, ticket_id: int) -> list[tuple[str, str | None, str]]:
    async with desk.sessions() as session:
        events = await session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
        return [(e.kind, e.to_status, e.actor) for e in events]


async def test_a_request_is_offered_claimed_answered_resolved_and_rated(tickets: Desk) -> None:
    opened = await tickets.asks(LEAK)
    assert "王建国" in opened.reply
    wang = await tickets.actor("王建国")

    await tickets.service.holding.claim(wang, opened.ticket_id)
    await tickets.service.holding.reply(wang, opened.ticket_id, "马上到")
    await tickets.service.holding.resolve(wang, opened.ticket_id, "换了阀门")

    lines = tickets.chats.lines_to("zhang")
    assert lines[0] == "马上到" and "王建国" in lines[1]
    assert tickets.hub.kinds(opened.ticket_id) == [
        "ticket.created",
        "ticket.updated",
        "ticket.message",
        "ticket.updated",
    ]
    assert await history(tickets, opened.ticket_id) == [
        ("created", "new", "system"),
        ("assign", "assigned", "system"),
        ("claim", "claimed", "王建国"),
        ("resolve", "resolved", "王建国"),
    ]
    resolved = await tickets.ticket(opened.ticket_id)
    assert resolved.first_response_at == tickets.clock.now()
    assert resolved.survey_deadline is not None


async def test_a_refused_change_writes_nothing_and_tells_nobody(tickets: Desk) -> None:
    opened = await tickets.asks(LEAK)
    wang, li = await tickets.actor("王建国"), await tickets.actor("李秀英")
    await tickets.service.holding.claim(wang, opened.ticket_id)
    said, pushed = len(tickets.chats.sent), len(tickets.hub.events)

    with pytest.raises(IllegalTransition):
        await tickets.service.holding.claim(li, opened.ticket_id)

    assert (len(tickets.chats.sent), len(tickets.hub.events)) == (said, pushed)
    assert [kind for kind, *_ in await history(tickets, opened.ticket_id)][-1] == "claim"


async def test_unclaimed_requests_climb_the_chain_to_the_whole_branch(tickets: Desk) -> None:
    async with tickets.sessions() as session, session.begin():
        await session.execute(update(Member).values(skills=""))
    opened = await tickets.asks(LEAK)

    assert await tickets.time_passes(minutes=9) == 0
    assert await tickets.time_passes(minutes=1) == 1
    assert (await tickets.ticket(opened.ticket_id)).assignee.name == "李秀英"
    assert await tickets.time_passes(minutes=10) == 1
    assert (await tickets.ticket(opened.ticket_id)).assignee.name == "陈红梅"
    assert await tickets.time_passes(minutes=10) == 1
    assert await tickets.time_passes(minutes=10) == 0

    lines = tickets.chats.lines_to("zhang")
    assert "王建国这会儿走不开" in lines[0] and "李秀英" in lines[0]
    assert "已请社区书记陈红梅" in lines[1]
    assert lines[2] == WHOLE_BRANCH
    kinds = [kind for kind, *_ in await history(tickets, opened.ticket_id)]
    # The whole branch was the last step: no timer is left to fire.
    assert kinds == ["created", "assign", "escalate", "escalate", "escalate"]


async def test_neighbours_reports_join_one_incident_and_one_claim_takes_them_all(
    tickets: Desk,
) -> None:
    first = await tickets.asks(NO_WATER, resident="zhang", group="b3-group")
    second = await tickets.asks("3号楼是不是停水了 我家也没水", resident="li", group="b3-group")
    assert (await tickets.ticket(second.ticket_id)).incident_id == first.ticket_id
    wang = await tickets.actor("王建国")

    await tickets.service.holding.claim(wang, first.ticket_id)

    report = await tickets.ticket(second.ticket_id)
    assert (report.status, report.assignee.name) == ("claimed", "王建国")
    group_lines = tickets.chats.lines_to("b3-group")
    assert any("停水" in line and "王建国" in line for line in group_lines)


async def test_a_category_correction_goes_through_the_ledger_and_reaches_the_consoles(
    tickets: Desk,
) -> None:
    opened = await tickets.asks("3号楼的 社区食堂明天中午有饭吗", intent="repair")
    wang = await tickets.actor("王建国")

    async with tickets.service.ledger.change() as change:
        await correct_category(change, wang, opened.ticket_id, "canteen")

    assert (await tickets.ticket(opened.ticket_id)).category == "canteen"
    assert tickets.hub.kinds(opened.ticket_id)[-1] == "ticket.updated"
    corrected = (await history(tickets, opened.ticket_id))[-1]
    assert corrected == ("category_corrected", "assigned", "王建国")
    async with tickets.sessions() as session:
        at = await session.scalar(
            select(TicketEvent.created_at).where(TicketEvent.kind == "category_corrected")
        )
    assert at == tickets.clock.now()
