"""What the console lists around tickets: the ticket list filtered and searched within what a
member may see, the tickets a report may be merged into, and the colleagues a ticket may be
transferred to with their load. The lists at the service seam (fake clock, no model), then
the API's answers to bad filters."""

from __future__ import annotations

from sqlalchemy import update

from bot.db.models import Member
from bot.handoff.queries import TicketFilter
from bot.handoff.states import Status
from tests.fakes import Desk
from tests.helpers import Service, add_ticket

LEAK = "我家厨房水管漏水了，3号楼2单元501，电话13900001234"
LAMP = "3号楼楼道灯坏了"
EAST_LEAK = "东村卫生间漏水，5组12号"
MEAL = "东村想订明天的午饭"


async def listed(desk: Desk, name: str, **wanted: object) -> set[int]:
    tickets = await desk.service.queries.visible_tickets(
        await desk.actor(name),
        TicketFilter(**wanted),  # type: ignore[arg-type]
    )
    return {t.id for t in tickets}


async def test_the_list_is_filtered_and_searched_within_what_each_may_see(
    tickets: Desk,
) -> None:
    leak = (await tickets.asks(LEAK, resident="a")).ticket_id
    lamp = (await tickets.asks(LAMP, resident="b")).ticket_id
    east = (await tickets.asks(EAST_LEAK, resident="c")).ticket_id
    meal = (await tickets.asks(MEAL, "canteen", resident="d")).ticket_id
    zhang = await tickets.actor("张志强")
    await tickets.service.holding.claim(zhang, east)
    await tickets.service.holding.resolve(zhang, east, "换了管子")

    assert await listed(tickets, "陈红梅", text="漏水") == {leak, east}
    assert await listed(tickets, "陈红梅", text="漏水", status="open") == {leak}
    assert await listed(tickets, "陈红梅", status="done") == {east}
    assert await listed(tickets, "陈红梅", status="unclaimed") == {leak, lamp, meal}
    assert await listed(tickets, "陈红梅", category="canteen") == {meal}
    assert await listed(tickets, "陈红梅", grid="东村") == {east, meal}
    assert await listed(tickets, "陈红梅", grid="没有这个网格") == set()
    assert await listed(tickets, "陈红梅", assignee_id=zhang.member_id) == {east}
    # 王建国 sees his grid's unclaimed tickets only, however he searches.
    assert await listed(tickets, "王建国", text="漏水") == {leak}
    assert await listed(tickets, "王建国", grid="东村") == set()


async def test_searching_digits_does_not_find_the_hidden_part_of_a_phone(tickets: Desk) -> None:
    leak = (await tickets.asks(LEAK, resident="a")).ticket_id

    assert await listed(tickets, "陈红梅", text="1234") == {leak}  # shown: 139****1234
    assert await listed(tickets, "陈红梅", text="0000") == set()
    assert await listed(tickets, "陈红梅", text="13900001234") == set()
    assert await listed(tickets, "陈红梅", text="漏%") == set()  # a LIKE wildcard is a letter


async def test_merge_candidates_are_open_tickets_the_actor_holds_likeliest_first(
    tickets: Desk,
) -> None:
    await tickets.everyone_takes_everything()
    # Nothing neighbours share (停水, 电梯): each stays a ticket of its own until merged.
    report = (await tickets.asks("3号楼2单元水龙头坏了", resident="a")).ticket_id
    same = (await tickets.asks("3号楼5单元马桶堵了", resident="b")).ticket_id
    other_category = await tickets.asks("3号楼想订明天的午饭", "canteen", resident="c")
    east = (await tickets.asks(EAST_LEAK, resident="d")).ticket_id
    done = (await tickets.asks(LAMP, resident="e")).ticket_id
    chen = await tickets.actor("陈红梅")
    await tickets.service.holding.claim(chen, done)
    await tickets.service.holding.resolve(chen, done, "换了灯泡")

    candidates = await tickets.service.queries.merge_candidates(chen, report)

    ids = [t.id for t in candidates]
    assert ids[:2] == [same, other_category.ticket_id]  # same grid: same category first
    assert set(ids) == {same, other_category.ticket_id, east}  # not itself, not the resolved
    holder = (await tickets.ticket(same)).assignee.name
    mine = await tickets.service.queries.merge_candidates(await tickets.actor(holder), report)
    assert {t.assignee.name for t in mine} == {holder}


async def test_the_transfer_list_offers_only_people_who_take_tickets_with_their_load(
    tickets: Desk,
) -> None:
    leak = (await tickets.asks(LEAK, resident="a")).ticket_id
    await tickets.asks(LAMP, resident="b")  # 王建国's second ticket
    await tickets.asks(MEAL, "canteen", resident="c")  # 刘桂兰's
    async with tickets.sessions() as session, session.begin():
        await session.execute(update(Member).where(Member.name == "张志强").values(paused=True))
    wang = await tickets.actor("王建国")
    await tickets.service.holding.claim(wang, leak)

    colleagues = await tickets.service.queries.transfer_targets(wang, leak, tickets.clock.now())

    offered = [(c.member.name, c.on_duty, c.open_tickets) for c in colleagues]
    assert offered == [
        ("李秀英", True, 0),  # on duty, in 3号楼
        ("陈红梅", True, 0),  # on duty, covers 3号楼 too, later id
        ("刘桂兰", True, 1),  # on duty elsewhere
        ("张志强", False, 0),  # paused: last
    ]  # never 王建国 himself, nor the operator 周晓燕


async def test_the_api_refuses_bad_filters_and_lists_whom_to_transfer_to(
    service: Service,
) -> None:
    chen = await service.login("陈红梅")
    for query in ("status=lost", "category=weather", "member=abc"):
        status, body = await service.api("GET", f"/api/tickets?{query}", chen)
        assert status == 400, (query, body)
    status, body = await service.api("GET", "/api/tickets?status=done&q=漏水&grid=3号楼", chen)
    assert (status, body) == (200, {"tickets": []})

    ticket_id = await add_ticket(service, "b3", LAMP, holder="王建国", status=Status.CLAIMED)
    wang = await service.login("王建国")
    status, body = await service.api("GET", f"/api/tickets/{ticket_id}/transfer-targets", wang)
    assert status == 200
    names = {m["name"]: m["open_tickets"] for m in body["members"]}
    assert names == {"李秀英": 0, "张志强": 0, "刘桂兰": 0, "陈红梅": 0}
    status, body = await service.api("GET", f"/api/tickets/{ticket_id}/merge-candidates", chen)
    assert (status, body["tickets"]) == (200, [])
    li = await service.login("李秀英")  # not hers to pass on
    status, _ = await service.api("GET", f"/api/tickets/{ticket_id}/transfer-targets", li)
    assert status == 403
