"""Two communities on one database, at the ticket service's seam: the demo's people are the
default community; 东湖社区 has its own grid, member and secretary, and the district (街道)
reads both. Nobody reaches another community's residents, tickets or members."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.db.models import Community, Grid, Member, Resident, Ticket
from bot.handoff.access import Actor, may_see
from bot.handoff.ledger import NotAllowed, TicketNotFound
from bot.handoff.push import MemberHub
from tests.fakes import Desk

DONGHU_LEAK = "东湖1号楼水管漏了，2单元302"
DEFAULT_LEAK = "我家厨房水管漏水了，3号楼2单元501"


@pytest.fixture
async def donghu(tickets: Desk) -> Desk:
    """东湖社区 beside the demo's: grid 东湖1号楼 (also written 3号楼, as in the demo's
    community), member 赵东, secretary 钱湖; and 孙街道 of the district."""
    async with tickets.sessions() as session, session.begin():
        community = Community(name="东湖社区", code="donghu")
        grid = Grid(name="东湖1号楼", code="dh1", aliases="3号楼", community=community)
        session.add_all(
            [
                Member(name="赵东", role="member", grids=[grid], community=community),
                Member(name="钱湖", role="secretary", grids=[grid], community=community),
                Member(name="孙街道", role="district", community=community),
            ]
        )
    await tickets.everyone_takes_everything()
    return tickets


async def names(desk: Desk, member_ids: list[int]) -> set[str]:
    async with desk.sessions() as session:
        rows = await session.scalars(select(Member.name).where(Member.id.in_(member_ids)))
        return set(rows.all())


async def listed(desk: Desk, name: str) -> set[int]:
    visible = await desk.service.queries.visible_tickets(await desk.actor(name), None)
    return {t.id for t in visible}


async def test_each_request_goes_to_its_own_community_and_stays_there(donghu: Desk) -> None:
    east = await donghu.asks(DONGHU_LEAK, resident="wu")
    home = await donghu.asks(DEFAULT_LEAK, resident="zhang")
    assert "赵东" in east.reply and "王建国" in home.reply

    assert await listed(donghu, "钱湖") == await listed(donghu, "赵东") == {east.ticket_id}
    assert await listed(donghu, "陈红梅") == await listed(donghu, "王建国") == {home.ticket_id}
    chen = await donghu.actor("陈红梅")
    with pytest.raises(NotAllowed):
        await donghu.service.queries.detail(chen, east.ticket_id)
    with pytest.raises(NotAllowed):
        await donghu.service.holding.claim(chen, east.ticket_id)


async def test_a_shared_grid_name_means_the_residents_own_community(donghu: Desk) -> None:
    """东湖1号楼 is also written 3号楼: a resident whose home is in 东湖 means that one."""
    await donghu.asks(DONGHU_LEAK, resident="wu")
    async with donghu.sessions() as session, session.begin():
        wu = await session.scalar(select(Resident).where(Resident.external_id == "wu"))
        wu.grid = await session.scalar(select(Grid).where(Grid.code == "dh1"))
    again = await donghu.asks("3号楼楼道灯坏了", resident="wu")
    neighbour = await donghu.asks("3号楼楼道灯坏了", resident="zhang")

    assert (await donghu.ticket(again.ticket_id)).grid.name == "东湖1号楼"
    assert (await donghu.ticket(neighbour.ticket_id)).grid.name == "3号楼"


async def test_a_request_with_no_recognisable_place_goes_to_the_default_secretary(
    donghu: Desk,
) -> None:
    opened = await donghu.asks("灯坏了，麻烦来看看", resident="somebody")

    ticket = await donghu.ticket(opened.ticket_id)
    assert (ticket.grid, ticket.community.code, ticket.assignee.name) == (None, "default", "陈红梅")
    assert opened.ticket_id not in await listed(donghu, "钱湖")


async def test_the_whole_branch_is_the_tickets_own_community(donghu: Desk) -> None:
    opened = await donghu.asks(DONGHU_LEAK, resident="wu")
    for _ in range(3):  # next candidate (none), the secretary, the whole branch
        await donghu.time_passes(minutes=10)

    ticket = await donghu.ticket(opened.ticket_id)
    assert ticket.broadcast and ticket.escalation_level == 3
    assert await names(donghu, ticket.tried_member_ids) == {"赵东", "钱湖"}
    wang = await donghu.actor("王建国")
    assert not may_see(wang, ticket) and opened.ticket_id not in await listed(donghu, "王建国")
    with pytest.raises(NotAllowed):
        await donghu.service.holding.claim(wang, opened.ticket_id)


async def test_an_emergency_is_told_only_to_its_own_communitys_branch(donghu: Desk) -> None:
    opened = await donghu.asks("东湖1号楼有老人摔倒了起不来", "urgent", resident="wu")

    ticket = await donghu.ticket(opened.ticket_id)
    assert await names(donghu, ticket.tried_member_ids) == {"赵东", "钱湖"}
    assert "陈红梅" not in opened.reply


class Console:
    """A console's socket: what it was sent."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    async def send_json(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)


async def test_consoles_hear_only_of_their_own_communitys_tickets(donghu: Desk) -> None:
    hub, consoles = MemberHub(), {}
    for name in ("王建国", "陈红梅", "赵东", "钱湖", "孙街道"):
        consoles[name] = Console()
        hub.add(await donghu.actor(name), consoles[name])  # type: ignore[arg-type]
    east = await donghu.asks(DONGHU_LEAK, resident="wu")

    await hub.publish("ticket.created", await donghu.ticket(east.ticket_id))

    told = {name for name, console in consoles.items() if console.frames}
    assert told == {"赵东", "钱湖", "孙街道"}
    assert consoles["孙街道"].frames[0]["ticket"]["community"] == "东湖社区"


async def test_the_district_reads_every_community_and_changes_nothing(donghu: Desk) -> None:
    east = await donghu.asks(DONGHU_LEAK, resident="wu")
    home = await donghu.asks(DEFAULT_LEAK, resident="zhang")
    district = await donghu.actor("孙街道")

    assert await listed(donghu, "孙街道") == {east.ticket_id, home.ticket_id}
    assert (
        await donghu.service.queries.detail(district, home.ticket_id)
    ).ticket.id == home.ticket_id
    with pytest.raises(NotAllowed):
        await donghu.service.holding.claim(district, home.ticket_id)
    with pytest.raises(NotAllowed):
        await donghu.service.holding.reply(district, east.ticket_id, "我来看看")
    assert (await donghu.ticket(home.ticket_id)).assignee.name == "王建国"


async def test_a_ticket_is_transferred_only_within_its_community(donghu: Desk) -> None:
    home = await donghu.asks(DEFAULT_LEAK, resident="zhang")
    wang = await donghu.actor("王建国")
    await donghu.service.holding.claim(wang, home.ticket_id)
    zhao: Actor = await donghu.actor("赵东")

    with pytest.raises(TicketNotFound):
        await donghu.service.holding.transfer(wang, home.ticket_id, zhao.member_id, "他有空")
    ticket: Ticket = await donghu.ticket(home.ticket_id)
    assert ticket.assignee.name == "王建国"
