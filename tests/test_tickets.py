"""The ticket lifecycle at the service seam: the real service on a migrated database with the
demo's people and a fake clock, no model and no HTTP. What residents are told, what the
consoles learn, and what the ticket's history says."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.conversation.delivery import Delivery
from bot.db.models import TicketEvent
from bot.handoff.access import may_see
from bot.handoff.ledger import NotAllowed
from bot.handoff.service import TicketService
from bot.handoff.states import IllegalTransition
from bot.handoff.texts import CALL_120, WHOLE_BRANCH
from bot.metrics import Metrics
from bot.ops.review import correct_category
from tests.conftest import MORNING
from tests.fakes import Desk, RecordingHub, RecordingSender

LEAK = "我家厨房水管漏水了，3号楼2单元501，电话13900001234"
FALL = "我爸在家摔倒了起不来，3号楼2单元501"
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

    # Who is coming: stored with the ticket, for the router to hand on once routing is done.
    assert opened.stored_line() is not None and opened.stored_line().text == opened.reply
    claimed, replied, survey = tickets.chats.lines_to("zhang")
    assert claimed == "王建国已经接单，会在这里直接回复您。"
    assert replied == "马上到" and "王建国" in survey

    # Claimed by replying: the reply itself tells who took it.
    second = await tickets.asks("楼道灯坏了，3号楼2单元", resident="li")
    await tickets.service.holding.reply(wang, second.ticket_id, "下午来修")
    assert tickets.chats.lines_to("li") == ["下午来修"]
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


async def test_a_request_resolved_after_a_phone_call_counts_as_answered_then(
    tickets: Desk,
) -> None:
    opened = await tickets.asks(LEAK)
    wang = await tickets.actor("王建国")
    await tickets.service.holding.claim(wang, opened.ticket_id)
    tickets.clock.advance(minutes=25)

    # He phoned and went round; no line typed in the chat before the resolution.
    await tickets.service.holding.resolve(wang, opened.ticket_id, "电话联系后上门换了阀门")

    resolved = await tickets.ticket(opened.ticket_id)
    assert resolved.first_response_at == tickets.clock.now()
    assert resolved.first_response_at - resolved.created_at == timedelta(minutes=25)


async def test_a_refused_change_writes_nothing_and_tells_nobody(tickets: Desk) -> None:
    opened = await tickets.asks(LEAK)
    wang, li = await tickets.actor("王建国"), await tickets.actor("李秀英")
    await tickets.service.holding.claim(wang, opened.ticket_id)
    said, pushed = len(tickets.chats.sent), len(tickets.hub.events)

    with pytest.raises(IllegalTransition):
        await tickets.service.holding.claim(li, opened.ticket_id)

    assert (len(tickets.chats.sent), len(tickets.hub.events)) == (said, pushed)
    assert [kind for kind, *_ in await history(tickets, opened.ticket_id)][-1] == "claim"


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
        await correct_category(change, wang, opened.ticket_id, "complaint")

    assert (await tickets.ticket(opened.ticket_id)).category == "complaint"
    assert tickets.hub.kinds(opened.ticket_id)[-1] == "ticket.updated"
    corrected = (await history(tickets, opened.ticket_id))[-1]
    assert corrected == ("category_corrected", "assigned", "王建国")
    async with tickets.sessions() as session:
        at = await session.scalar(
            select(TicketEvent.created_at).where(TicketEvent.kind == "category_corrected")
        )
    assert at == tickets.clock.now()


async def test_a_correction_sends_an_unclaimed_request_to_a_member_with_the_new_skill(
    tickets: Desk,
) -> None:
    opened = await tickets.asks("3号楼的 社区食堂明天中午有饭吗", intent="repair")
    claimed = await tickets.asks("3号楼2单元 想订明天的午饭", intent="repair", resident="li")
    wang = await tickets.actor("王建国")
    await tickets.service.holding.claim(wang, claimed.ticket_id)

    for ticket_id in (opened.ticket_id, claimed.ticket_id):
        async with tickets.service.ledger.change() as change:
            await correct_category(change, wang, ticket_id, "canteen")

    # Waiting for 王建国 (维修, 调解), it goes to 李秀英 (助餐), and the resident is told.
    moved = await tickets.ticket(opened.ticket_id)
    assert (moved.assignee.name, moved.status, moved.escalation_level) == ("李秀英", "assigned", 0)
    assert (await history(tickets, opened.ticket_id))[-2:] == [
        ("category_corrected", "assigned", "王建国"),
        ("redispatch", "assigned", "王建国"),
    ]
    [event] = [e for e in await tickets.history(opened.ticket_id) if e.kind == "redispatch"]
    assert event.reason.startswith("分类改为助餐，改派给李秀英")
    assert "李秀英" in tickets.chats.lines_to("zhang")[-1]
    pushed = [e for e in tickets.hub.events if e.ticket_id == opened.ticket_id][-1]
    assert (pushed.kind, pushed.assignee) == ("ticket.updated", "李秀英")
    # A request someone has claimed stays with them.
    kept = await tickets.ticket(claimed.ticket_id)
    assert (kept.assignee.name, kept.status) == ("王建国", "claimed")
    assert [k for k, *_ in await history(tickets, claimed.ticket_id)][-1] == "category_corrected"


async def test_unclaimed_requests_climb_the_chain_and_the_resident_is_told_each_time(
    tickets: Desk,
) -> None:
    await tickets.everyone_takes_everything()
    opened = await tickets.asks(LEAK)
    assert (await tickets.ticket(opened.ticket_id)).assignee.name == "王建国"

    assert await tickets.time_passes(minutes=9) == 0
    assert await tickets.time_passes(minutes=1) == 1
    said = tickets.chats.lines_to("zhang")[-1]
    assert "王建国这会儿走不开" in said and "李秀英" in said
    assert (await tickets.ticket(opened.ticket_id)).assignee.name == "李秀英"

    assert await tickets.time_passes(minutes=10) == 1
    assert "已请社区书记陈红梅" in tickets.chats.lines_to("zhang")[-1]

    # Nobody in the grid, not even the secretary: every on-duty member of the branch is asked.
    assert await tickets.time_passes(minutes=10) == 1
    assert tickets.chats.lines_to("zhang")[-1] == WHOLE_BRANCH
    far_away = await tickets.actor("张志强")
    claimed = await tickets.service.holding.claim(far_away, opened.ticket_id)
    assert claimed.assignee.name == "张志强"
    assert tickets.chats.lines_to("zhang")[-1] == "张志强已经接单，会在这里直接回复您。"
    # Everyone was told; whoever comes second hears that someone was quicker.
    with pytest.raises(IllegalTransition):
        await tickets.service.holding.claim(await tickets.actor("刘桂兰"), opened.ticket_id)

    events = await tickets.history(opened.ticket_id)
    assert [(e.kind, e.to_status) for e in events] == [
        ("created", "new"),
        ("assign", "assigned"),
        ("escalate", "escalated"),
        ("escalate", "escalated"),
        ("escalate", "escalated"),
        ("claim", "claimed"),
    ]
    assert events[2].reason.startswith("10分钟无人认领 · 3号楼")
    assert events[2].created_at == MORNING + timedelta(minutes=10)
    # The whole branch was the last step: no timer is left to fire.
    assert await tickets.time_passes(minutes=30) == 0


async def test_an_escalation_resumes_after_a_restart(tickets: Desk) -> None:
    await tickets.everyone_takes_everything()
    opened = await tickets.asks(LEAK)
    assert await tickets.time_passes(minutes=10) == 1

    again = tickets.restarted()
    assert await again.time_passes(minutes=5) == 0
    assert await again.time_passes(minutes=5) == 1
    assert (await again.ticket(opened.ticket_id)).assignee.name == "陈红梅"


async def test_an_emergency_goes_to_everyone_on_duty_at_once_and_the_first_claim_wins(
    tickets: Desk,
) -> None:
    opened = await tickets.asks(FALL, "urgent")

    wang, li = await tickets.actor("王建国"), await tickets.actor("李秀英")
    created = [e for e in tickets.hub.events if e.kind == "ticket.created"]
    assert [(e.ticket_id, e.assignee) for e in created] == [(opened.ticket_id, None)]
    ticket = await tickets.ticket(opened.ticket_id)
    # Both consoles show it.
    assert ticket.category == "urgent" and may_see(wang, ticket) and may_see(li, ticket)
    said = opened.reply
    assert said.startswith(CALL_120) and all(n in said for n in ("王建国", "李秀英", "陈红梅"))

    claims = await asyncio.gather(
        tickets.service.holding.claim(wang, opened.ticket_id),
        tickets.service.holding.claim(li, opened.ticket_id),
        return_exceptions=True,
    )
    assert sorted(type(c).__name__ for c in claims) == ["IllegalTransition", "Ticket"]


async def test_an_emergency_without_an_address_reaches_every_member_on_duty(
    tickets: Desk,
) -> None:
    opened = await tickets.asks("我爸在家摔倒了起不来", "urgent")

    ticket = await tickets.ticket(opened.ticket_id)
    assert (ticket.category, ticket.grid) == ("urgent", None)
    zhang, wang = await tickets.actor("张志强"), await tickets.actor("王建国")
    # Members of both grids see it on their consoles.
    assert may_see(zhang, ticket) and may_see(wang, ticket)
    claimed = await tickets.service.holding.claim(zhang, opened.ticket_id)
    assert claimed.assignee.name == "张志强"


async def test_an_unclaimed_emergency_reaches_the_whole_branch_after_a_minute(
    tickets: Desk,
) -> None:
    opened = await tickets.asks(FALL, "urgent")
    assert await tickets.time_passes(seconds=59) == 0
    assert await tickets.time_passes(seconds=1) == 1
    assert tickets.chats.lines_to("zhang")[-1] == WHOLE_BRANCH
    assert (await tickets.ticket(opened.ticket_id)).broadcast is True


async def test_an_unclaimed_emergency_calls_the_whole_branch_again_until_someone_claims(
    tickets: Desk,
) -> None:
    opened = await tickets.asks(FALL, "urgent")
    assert await tickets.time_passes(minutes=1) == 1  # the whole branch
    told = tickets.chats.lines_to("zhang")

    assert await tickets.time_passes(minutes=4, seconds=59) == 0
    assert await tickets.time_passes(seconds=1) == 1
    # Their consoles rang when the whole branch was told, and ring again now.
    assert tickets.hub.kinds(opened.ticket_id).count("ticket.alarm") == 2
    # After a restart the calls go on where they were.
    again = tickets.restarted()
    assert await again.time_passes(minutes=5) == 1
    assert again.hub.kinds(opened.ticket_id) == ["ticket.alarm"]
    # The resident was told the whole branch is coming; the calls add nothing for them.
    assert tickets.chats.lines_to("zhang") == told and again.chats.sent == []

    await again.service.holding.claim(await again.actor("张志强"), opened.ticket_id)
    assert await again.time_passes(minutes=30) == 0
    events = await again.history(opened.ticket_id)
    assert [(e.kind, e.to_status) for e in events][-3:] == [
        ("recall", None),
        ("recall", None),
        ("claim", "claimed"),
    ]
    assert events[-2].reason == "5分钟 · 3号楼 · 仍无人认领 · 通知全支部在岗4人"
    assert events[-2].created_at == MORNING + timedelta(minutes=11)


async def test_an_emergency_handed_back_rings_again(tickets: Desk) -> None:
    opened = await tickets.asks(FALL, "urgent")
    wang = await tickets.actor("王建国")
    await tickets.service.holding.claim(wang, opened.ticket_id)
    assert "ticket.alarm" not in tickets.hub.kinds(opened.ticket_id)

    await tickets.service.holding.hand_back(wang, opened.ticket_id, "临时有事走不开")

    assert tickets.hub.kinds(opened.ticket_id)[-1] == "ticket.alarm"


async def test_two_workers_due_at_once_call_the_branch_again_once(tickets: Desk) -> None:
    opened = await tickets.asks(FALL, "urgent")
    assert await tickets.time_passes(minutes=1) == 1
    other_worker = tickets.restarted()
    tickets.clock.advance(minutes=5)
    steps = await asyncio.gather(tickets.timers.run_due(), other_worker.timers.run_due())
    assert sum(steps) == 1
    kinds = [e.kind for e in await tickets.history(opened.ticket_id)]
    assert kinds.count("recall") == 1


async def test_transfer_and_hand_back_are_recorded_and_the_resident_told(tickets: Desk) -> None:
    await tickets.everyone_takes_everything()
    wang, li = await tickets.actor("王建国"), await tickets.actor("李秀英")
    opened = await tickets.asks(LEAK)
    holding = tickets.service.holding
    await holding.claim(wang, opened.ticket_id)

    moved = await holding.transfer(wang, opened.ticket_id, li.member_id, "我在外地")
    assert (moved.status, moved.assignee.name) == ("transferred", "李秀英")
    assert "李秀英" in tickets.chats.lines_to("zhang")[-1]
    # 王建国 no longer holds it.
    with pytest.raises(NotAllowed):
        await holding.reply(wang, opened.ticket_id, "x")

    back = await holding.hand_back(li, opened.ticket_id, "腿脚不便")
    assert (back.status, back.assignee.name) == ("escalated", "陈红梅")
    assert "陈红梅" in tickets.chats.lines_to("zhang")[-1]
    with pytest.raises(NotAllowed):
        await holding.hand_back(li, opened.ticket_id, "再退一次")

    events = (await tickets.history(opened.ticket_id))[3:]
    moves = [(e.kind, e.actor, e.reason.split(" · ")[0]) for e in events]
    assert moves == [("transfer", "王建国", "我在外地"), ("hand_back", "李秀英", "退回：腿脚不便")]


async def test_no_answer_in_a_day_closes_without_asking_again(tickets: Desk) -> None:
    opened = await tickets.asks(LEAK)
    wang = await tickets.actor("王建国")
    await tickets.service.holding.resolve(wang, opened.ticket_id, "好了")
    asked = len(tickets.chats.lines_to("zhang"))

    assert await tickets.time_passes(hours=23) == 0
    assert await tickets.time_passes(hours=1) == 1
    closed = await tickets.ticket(opened.ticket_id)
    assert (closed.status, closed.rating) == ("closed", None)
    assert len(tickets.chats.lines_to("zhang")) == asked


async def test_the_line_of_a_worker_that_died_after_opening_goes_out_once_from_another(
    tickets: Desk,
) -> None:
    # It stored the ticket and its line together, then died before handing the line on (its
    # delivery has no sender: the line stays pending, claimed by it for the lease).
    dying = Delivery(tickets.sessions, "worker-dead", tickets.clock)
    service = TicketService(
        tickets.sessions, dying, RecordingHub(), Metrics.create(), tickets.clock
    )
    opened = await replace(tickets, service=service).asks(LEAK)

    chats = RecordingSender()
    living = Delivery(tickets.sessions, "worker-b", tickets.clock)
    living.register("webchat", chats)
    assert await living.resume_pending() == 0  # still the dead worker's, for all it knows
    tickets.clock.advance(seconds=living.lease.total_seconds() + 1)
    assert await living.resume_pending() == 1
    assert chats.lines_to("zhang") == [opened.reply]
    assert await living.resume_pending() == 0
