"""`/console/overview` over HTTP: who may read which community's figures, the charts as SVG a
screen reader can name, and the CSV download Excel opens (BOM, masked numbers, no formulas)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.cli_people import NewMember, add_community, add_grid, add_member
from bot.db.models import AuditEntry, Member
from bot.typedefs import possible_key, sessions_key
from tests.fakes import chatter_that_may_be_a_request
from tests.helpers import Service, add_ticket

PASSWORD = "donghu-password"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
async def donghu(service: Service) -> Service:
    """东湖社区 beside the demo's community, with its secretary 钱湖, and 孙街道 of the
    district."""
    settings = service.settings
    await add_community(settings, "东湖社区", "donghu")
    await add_grid(settings, "东湖1号楼", "dh1", "", "donghu")
    for name, role in (("钱湖", "secretary"), ("孙街道", "district")):
        grids = ("东湖1号楼",) if role == "secretary" else ()
        new = NewMember(name, grids, "", role, PASSWORD, None, "", None, community="donghu")
        await add_member(settings, new)
    return service


async def login(service: Service, name: str) -> str:
    if name in ("钱湖", "孙街道"):
        resp = await service.client.post("/api/login", json={"name": name, "password": PASSWORD})
        return (await resp.json())["token"]
    return await service.login(name)


async def opened(
    service: Service, grid_code: str, text: str, hours_ago: float, **fields: object
) -> int:
    """A request opened `hours_ago`, offered to nobody yet."""
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    resident = f"r-{text}"
    return await add_ticket(
        service, grid_code, text, resident, created_at=at, updated_at=at, **fields
    )


async def read(service: Service, token: str, query: str = "") -> tuple[int, dict]:
    return await service.api("GET", f"/api/overview{query}", token)


async def test_members_are_refused_and_each_secretary_reads_her_own_community(
    donghu: Service,
) -> None:
    await opened(donghu, "b3", "3号楼楼道灯坏了", 100)
    await opened(donghu, "dh1", "东湖1号楼电梯停了", 1)
    await opened(donghu, "dh1", "东湖1号楼门禁坏了", 2)

    status, body = await read(donghu, await login(donghu, "王建国"))
    assert status == 403
    status, chen = await read(donghu, await login(donghu, "陈红梅"))
    assert status == 200
    assert chen["scope"]["name"] == "默认社区"
    assert (chen["requests"], chen["open_now"], chen["overdue_now"]) == (1, 1, 1)
    assert {g["grid"] for g in chen["grids"]} == {"3号楼", "东村"}
    assert [c["code"] for c in chen["communities"]] == ["default"]
    qian = await login(donghu, "钱湖")
    status, east = await read(donghu, qian)
    assert (east["requests"], east["open_now"], east["overdue_now"]) == (2, 2, 0)
    assert {m["name"] for m in east["members"]} == {"钱湖"}
    assert (await read(donghu, qian, "?community=default"))[0] == 403


async def test_the_district_reads_every_community_or_one(donghu: Service) -> None:
    await opened(donghu, "b3", "3号楼楼道灯坏了", 100)
    await opened(donghu, "dh1", "东湖1号楼电梯停了", 1)
    district = await login(donghu, "孙街道")

    status, everything = await read(donghu, district)
    assert status == 200
    assert (everything["scope"]["name"], everything["requests"]) == ("全街道", 2)
    assert [c["code"] for c in everything["communities"]] == ["default", "donghu"]
    assert {(g["community"], g["grid"]) for g in everything["grids"]} >= {
        ("默认社区", "3号楼"),
        ("东湖社区", "东湖1号楼"),
    }
    status, east = await read(donghu, district, "?community=donghu&days=7")
    assert (status, east["scope"]["name"], east["requests"]) == (200, "东湖社区", 1)
    assert east["period"]["days"] == 7
    assert (await read(donghu, district, "?community=nowhere"))[0] == 400
    assert (await read(donghu, district, "?days=365"))[0] == 400


async def test_the_charts_are_svg_with_a_title_a_description_and_their_numbers(
    service: Service,
) -> None:
    await opened(service, "b3", "3号楼楼道灯坏了", 100)
    await opened(service, "dongcun", "东村路灯坏了", 3, rating="满意")

    status, body = await read(service, await service.login("陈红梅"))

    assert status == 200 and set(body["charts"]) == {"grids", "weeks", "satisfaction"}
    for key, markup in body["charts"].items():
        svg = ET.fromstring(markup)
        assert svg.tag == f"{SVG}svg" and svg.get("role") == "img"
        assert svg.get("viewBox", "").startswith("0 0 360 ")
        title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
        assert title is not None and title.text and desc is not None and desc.text
        assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
        assert "style" not in markup, key  # the page's CSP refuses inline styles
    grids = ET.fromstring(body["charts"]["grids"])
    words = [t.text for t in grids.iter(f"{SVG}text")]
    assert "3号楼" in words and "在办" in words and "超时" in words
    assert "3号楼：在办 1，超时 1。" in grids.find(f"{SVG}desc").text
    satisfaction = ET.fromstring(body["charts"]["satisfaction"])
    assert "满意：人数 1。" in satisfaction.find(f"{SVG}desc").text


async def test_the_csv_opens_in_excel_with_numbers_masked_and_no_formulas(
    service: Service,
) -> None:
    await opened(service, "b3", "3号楼楼道灯坏了", 30)
    async with service.client.app[sessions_key]() as session, session.begin():
        wang = await session.scalar(select(Member).where(Member.name == "王建国"))
        wang.name = "=王建国"  # what a spreadsheet would take for a formula
    token = await service.login("陈红梅")
    words = "3号楼楼下好像有人晕倒了 电话 139 0000 1234 身份证110101199003071234"
    sessions = service.client.app[sessions_key]
    await chatter_that_may_be_a_request(service.client.app[possible_key], sessions, words, "rp")

    resp = await service.client.get(
        "/api/overview.csv?days=7", headers={"Authorization": f"Bearer {token}"}
    )

    assert resp.status == 200
    assert resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    raw = await resp.read()
    assert raw.startswith("\ufeff".encode())
    text = raw.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert ["社区概况", "默认社区"] in rows
    assert ["现在在办", "1", "还没办完的求助"] in rows
    assert any(row[:2] == ["24小时内解决", "0.0%"] for row in rows)
    assert any(row[:3] == ["'=王建国", "网格员", "默认社区"] for row in rows)
    assert "13900001234" not in text and "139 0000 1234" not in text
    assert "110101199003071234" not in text
    assert any(
        "139****1234" in cell and "110101********1234" in cell for row in rows for cell in row
    )
    async with service.client.app[sessions_key]() as session:
        exported = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "overview_export")
        )
    assert (exported.actor_name, exported.target, exported.detail) == (
        "陈红梅",
        "默认社区",
        "近7天",
    )


async def test_the_page_is_served_and_links_back_to_the_console(service: Service) -> None:
    resp = await service.client.get("/console/overview")
    assert resp.status == 200
    html = await resp.text()
    assert 'href="/console/"' in html and 'id="overview-period"' in html
