"""Two communities behind one API: the demo's (the default community) and 东湖社区, added
with the command line's functions. Lists, details, members, the audit log and transfers stay
within the caller's community; the district reads both and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.cli_people import NewMember, add_community, add_grid, add_member
from bot.db.models import Member
from bot.typedefs import sessions_key
from tests.helpers import Service, add_ticket

PASSWORD = "donghu-password"


@pytest.fixture
async def donghu(service: Service) -> Service:
    settings = service.settings
    await add_community(settings, "东湖社区", "donghu")
    await add_grid(settings, "东湖1号楼", "dh1", "", "donghu")
    for name, role, grids in (
        ("赵东", "member", ("东湖1号楼",)),
        ("钱湖", "secretary", ()),
        ("孙街道", "district", ()),
    ):
        new = NewMember(name, grids, "", role, PASSWORD, None, "", None, community="donghu")
        await add_member(settings, new)
    return service


async def login(service: Service, name: str) -> str:
    if name in ("赵东", "钱湖", "孙街道"):
        resp = await service.client.post("/api/login", json={"name": name, "password": PASSWORD})
        return (await resp.json())["token"]
    return await service.login(name)


async def open_ticket(service: Service, grid_code: str, resident: str) -> int:
    """A ticket offered to the grid's first choice: 钱湖 in 东湖, 王建国 in 3号楼."""
    holder = "钱湖" if grid_code == "dh1" else "王建国"
    return await add_ticket(service, grid_code, "楼道灯坏了", resident, holder)


async def ticket_ids(service: Service, token: str) -> set[int]:
    status, body = await service.api("GET", "/api/tickets", token)
    assert status == 200, body
    return {t["id"] for t in body["tickets"]}


async def member_names(service: Service, token: str) -> set[str]:
    status, body = await service.api("GET", "/api/members", token)
    assert status == 200, body
    return {m["name"] for m in body["members"]}


async def audited(service: Service, token: str) -> set[tuple[str, str | None]]:
    status, body = await service.api("GET", "/api/audit", token)
    assert status == 200, body
    return {(e["action"], e["actor"] or e["target"]) for e in body["entries"]}


async def test_a_secretary_reads_only_her_own_community(donghu: Service) -> None:
    east, home = await open_ticket(donghu, "dh1", "wu"), await open_ticket(donghu, "b3", "zhang")
    qian, chen = await login(donghu, "钱湖"), await login(donghu, "陈红梅")

    assert await ticket_ids(donghu, qian) == {east}
    assert await ticket_ids(donghu, chen) == {home}
    assert (await donghu.api("GET", f"/api/tickets/{home}", qian))[0] == 403
    assert (await donghu.api("GET", f"/api/tickets/{east}", chen))[0] == 403
    assert (await donghu.api("POST", f"/api/tickets/{east}/phone", chen))[0] == 403

    assert {"赵东", "钱湖"} <= await member_names(donghu, qian)
    assert "王建国" not in await member_names(donghu, qian)
    assert "赵东" not in await member_names(donghu, chen)
    assert ("login", "钱湖") in await audited(donghu, qian)
    assert ("login", "陈红梅") not in await audited(donghu, qian)
    assert ("member_added", "赵东") not in await audited(donghu, chen)


async def test_a_ticket_cannot_be_transferred_to_another_community(donghu: Service) -> None:
    home = await open_ticket(donghu, "b3", "zhang")
    wang = await login(donghu, "王建国")
    async with donghu.client.app[sessions_key]() as session:
        zhao = await session.scalar(select(Member.id).where(Member.name == "赵东"))

    body = {"to": zhao, "reason": "他有空"}
    status, _ = await donghu.api("POST", f"/api/tickets/{home}/transfer", wang, json=body)
    assert status == 404


async def test_the_district_reads_both_communities_and_cannot_claim(donghu: Service) -> None:
    east, home = await open_ticket(donghu, "dh1", "wu"), await open_ticket(donghu, "b3", "zhang")
    district = await login(donghu, "孙街道")

    assert await ticket_ids(donghu, district) == {east, home}
    status, detail = await donghu.api("GET", f"/api/tickets/{east}", district)
    assert (status, detail["community"]) == (200, "东湖社区")
    assert {"王建国", "赵东"} <= await member_names(donghu, district)
    await login(donghu, "钱湖"), await login(donghu, "王建国")
    assert {("login", "钱湖"), ("login", "王建国")} <= await audited(donghu, district)
    for action in ("claim", "resolve"):
        status, _ = await donghu.api("POST", f"/api/tickets/{home}/{action}", district, json={})
        assert status == 403
    status, body = await donghu.api("GET", f"/api/tickets/{home}", district)
    assert (body["status"], body["assignee"]["name"]) == ("assigned", "王建国")
