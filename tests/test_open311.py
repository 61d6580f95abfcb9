"""Open311 GeoReport v2, read side, as a city system calls it: the services, the requests
with the specification's filters and 90-day window, one request, errors in its shape, both
formats alike, and nobody's personal data in either."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import defusedxml.ElementTree as SafeElementTree
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.cli_people import add_community, add_grid
from bot.core.categories import CATEGORY_LABELS
from bot.core.clock import FakeClock
from bot.db.models import Community, Grid, Member, Resident, Ticket
from bot.handoff.states import OPEN_STATUSES, STATUS_LABELS, Status
from bot.typedefs import sessions_key
from bot.web import open311 as open311_views
from tests.helpers import Service, a_ticket

BASE = "/open311/v2"


async def add_ticket(
    service: Service,
    created_at: datetime,
    grid_code: str | None = "b3",
    resident: Resident | None = None,
    **fields: Any,
) -> int:
    """A ticket made at `created_at` in the grid (None: no grid, the default community)."""
    async with service.client.app[sessions_key]() as session, session.begin():
        grid = await session.scalar(select(Grid).where(Grid.code == grid_code))
        default = await session.scalar(select(Community.id).order_by(Community.id).limit(1))
        ticket = a_ticket(
            resident or Resident(channel="webchat", external_id=uuid.uuid4().hex),
            grid,
            grid.community_id if grid else default,
            created_at=created_at,
            updated_at=created_at,
            **fields,
        )
        session.add(ticket)
        await session.flush()
        return ticket.id


async def get(service: Service, path: str, **params: str) -> tuple[int, Any]:
    resp = await service.client.get(f"{BASE}/{path}", params=params)
    if path.endswith(".xml"):
        assert resp.content_type == "text/xml" and resp.charset == "utf-8"
        return resp.status, xml_rows(await resp.read())
    assert resp.content_type == "application/json" and resp.charset == "utf-8"
    return resp.status, await resp.json()


def xml_rows(body: bytes) -> tuple[str, list[dict[str, str | None]]]:
    root = SafeElementTree.fromstring(body)
    return root.tag, [{field.tag: field.text for field in item} for item in root]


def as_xml_text(rows: list[dict[str, Any]]) -> list[dict[str, str | None]]:
    """JSON rows as their XML reads: text, booleans as true/false, null as empty."""

    def text(value: Any) -> str | None:
        if isinstance(value, bool):
            return str(value).lower()
        return None if value is None else str(value)

    return [{k: text(v) for k, v in row.items()} for row in rows]


async def ids(service: Service, **params: str) -> list[int]:
    status, rows = await get(service, "requests.json", **params)
    assert status == 200, rows
    return [int(r["service_request_id"]) for r in rows]


async def test_every_category_is_a_service_in_both_formats(timed: Service) -> None:
    status, services = await get(timed, "services.json")
    assert status == 200
    assert [s["service_code"] for s in services] == list(CATEGORY_LABELS)
    assert {s["service_name"] for s in services} == set(CATEGORY_LABELS.values())
    assert all(s["metadata"] is False and s["type"] == "realtime" for s in services)
    assert all(s["description"] and s["keywords"] and s["group"] for s in services)

    status, (root, xml_services) = await get(timed, "services.xml")
    assert (status, root) == (200, "services")
    assert xml_services == as_xml_text(services)


async def test_requests_default_to_the_last_90_days_newest_first(
    timed: Service, clock: FakeClock
) -> None:
    now = clock.now()
    old = await add_ticket(timed, now - timedelta(days=91))
    older = await add_ticket(timed, now - timedelta(days=89))
    recent = await add_ticket(timed, now - timedelta(hours=1))

    assert await ids(timed) == [recent, older]
    assert old not in await ids(timed, status="open,closed")


async def test_a_window_picks_requests_by_when_they_were_made(
    timed: Service, clock: FakeClock
) -> None:
    now = clock.now()
    march = await add_ticket(timed, datetime.fromisoformat("2026-03-10T09:00:00+08:00"))
    june = await add_ticket(timed, datetime.fromisoformat("2026-06-01T09:00:00+08:00"))
    recent = await add_ticket(timed, now - timedelta(days=1))

    assert await ids(timed, start_date="2026-03-01T00:00:00Z", end_date="2026-05-01") == [march]
    # One end given: the window reaches 90 days from it.
    assert await ids(timed, start_date="2026-03-09") == [june, march]
    assert await ids(timed, end_date="2026-06-01T00:59:00Z") == [march]
    # An unescaped "+" arrives as a space; the time is still read with its zone.
    resp = await timed.client.get(f"{BASE}/requests.json?start_date=2026-06-01T09:00:00+08:00")
    assert [int(r["service_request_id"]) for r in await resp.json()] == [june]
    assert await ids(timed) == [recent]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-04-02T00:00:00Z"}, "90 天"),
        ({"start_date": "2026-05-01", "end_date": "2026-04-01"}, "早于"),
        ({"start_date": "2026-05-01T08:00:00"}, "时区"),
        ({"start_date": "yesterday"}, "时区"),
        ({"end_date": "2026-02-30"}, "不是一个存在的时间"),
        ({"end_date": "9999-12-31T23:00:00-05:00"}, "不是一个存在的时间"),
        ({"status": "pending"}, "open, closed"),
        ({"service_code": "repair,plumbing"}, "plumbing"),
        ({"service_request_id": "12,abc"}, "service_request_id"),
        ({"service_request_id": "99999999999999999999"}, "service_request_id"),
    ],
)
async def test_bad_parameters_are_refused_as_the_specification_says(
    timed: Service, params: dict[str, str], words: str
) -> None:
    status, errors = await get(timed, "requests.json", **params)
    assert status == 400
    assert len(errors) == 1 and errors[0]["code"] == 400 and words in errors[0]["description"]

    status, (root, xml_errors) = await get(timed, "requests.xml", **params)
    assert (status, root, xml_errors) == (400, "errors", as_xml_text(errors))


async def test_ticket_states_read_as_open_or_closed(timed: Service, clock: FakeClock) -> None:
    now = clock.now()
    by_status = {s: await add_ticket(timed, now, status=s) for s in Status}
    rows = {int(r["service_request_id"]): r for r in (await get(timed, "requests.json"))[1]}

    for state, ticket in by_status.items():
        expected = "open" if state in OPEN_STATUSES else "closed"
        assert rows[ticket]["status"] == expected, state
        assert rows[ticket]["status_notes"] == STATUS_LABELS[state]
    closed = {by_status[Status.RESOLVED], by_status[Status.CLOSED]}
    assert set(await ids(timed, status="closed")) == closed
    assert set(await ids(timed, status="open")) == set(by_status.values()) - closed
    assert set(await ids(timed, status="")) == set(by_status.values())

    merged = await add_ticket(timed, now, incident_id=by_status[Status.CLAIMED])
    _, [report] = await get(timed, f"requests/{merged}.json")
    assert report["status_notes"] == f"待认领；与工单#{by_status[Status.CLAIMED]}是同一件事"


async def test_a_closed_request_is_updated_when_it_was_resolved(
    timed: Service, clock: FakeClock
) -> None:
    now = clock.now()
    ticket = await add_ticket(timed, now - timedelta(days=2), status=Status.CLOSED)
    async with timed.client.app[sessions_key]() as session, session.begin():
        row = await session.get(Ticket, ticket)
        row.resolved_at = now - timedelta(days=1)
        row.updated_at = now

    _, [request] = await get(timed, f"requests/{ticket}.json")
    assert request["requested_datetime"] == "2026-11-25T10:00:00+08:00"
    assert request["updated_datetime"] == "2026-11-26T10:00:00+08:00"


async def test_service_codes_and_ids_filter_and_ids_override_the_window(
    timed: Service, clock: FakeClock
) -> None:
    now = clock.now()
    leak = await add_ticket(timed, now, category="repair")
    meal = await add_ticket(timed, now, category="canteen")
    doctor = await add_ticket(timed, now, category="medical")
    long_ago = await add_ticket(timed, now - timedelta(days=300), category="medical")

    assert set(await ids(timed, service_code="repair,canteen")) == {leak, meal}
    assert await ids(timed, service_code="medical") == [doctor]
    found = await ids(timed, service_request_id=f"{leak},{long_ago},424242", service_code="canteen")
    assert set(found) == {leak, long_ago}


async def test_a_community_is_read_by_its_code_as_jurisdiction_id(
    timed: Service, clock: FakeClock
) -> None:
    await add_community(timed.settings, "东湖社区", "donghu")
    await add_grid(timed.settings, "东湖1号楼", "dh1", "", "donghu")
    home = await add_ticket(timed, clock.now(), grid_code="b3")
    east = await add_ticket(timed, clock.now(), grid_code="dh1")

    assert set(await ids(timed)) == {home, east}
    assert await ids(timed, jurisdiction_id="donghu") == [east]
    assert await ids(timed, jurisdiction_id="default") == [home]
    _, [request] = await get(timed, f"requests/{east}.json", jurisdiction_id="donghu")
    assert request["address"] == "东湖1号楼, 东湖社区"
    assert request["agency_responsible"] == "东湖社区 东湖1号楼网格"
    assert request["address_id"] == "dh1"

    status, _ = await get(timed, f"requests/{east}.json", jurisdiction_id="default")
    assert status == 404
    for path in ("requests.json", "services.json"):
        status, errors = await get(timed, path, jurisdiction_id="xihu")
        assert status == 404 and "xihu" in errors[0]["description"]


async def test_one_request_alone_and_unknown_ones_are_404(timed: Service, clock: FakeClock) -> None:
    ticket = await add_ticket(timed, clock.now(), grid_code=None, category="urgent")

    status, [request] = await get(timed, f"requests/{ticket}.json")
    assert status == 200
    assert request["service_code"] == "urgent" and request["service_name"] == "紧急"
    # No grid recognised: the community answers for it.
    assert request["address"] == request["agency_responsible"] == "默认社区"
    status, (root, [xml_request]) = await get(timed, f"requests/{ticket}.xml")
    assert (status, root, xml_request) == (200, "service_requests", as_xml_text([request])[0])

    for missing in ("424242", "abc", "99999999999999999999"):
        status, errors = await get(timed, f"requests/{missing}.json")
        assert status == 404 and errors[0]["code"] == 404
        status, (root, _) = await get(timed, f"requests/{missing}.xml")
        assert (status, root) == (404, "errors")
    status, errors = await get(timed, "requests.csv")
    assert status == 404 and ".json" in errors[0]["description"]


async def test_while_the_database_is_away_a_city_system_gets_503_in_the_specification_s_shape(
    timed: Service,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticket = await add_ticket(timed, clock.now())

    async def database_restarting(*_args: object) -> None:
        raise OperationalError("SELECT tickets", {}, ConnectionRefusedError(111, "refused"))

    with monkeypatch.context() as patched:
        patched.setattr(open311_views, "find_requests", database_restarting)
        resp = await timed.client.get(f"{BASE}/requests.json")
        assert (resp.status, resp.headers["Retry-After"]) == (503, "5")
        [error] = await resp.json()
        assert error["code"] == 503 and "稍后再试" in error["description"]
        status, (root, xml_errors) = await get(timed, "requests.xml")
        assert (status, root, xml_errors) == (503, "errors", as_xml_text([error]))
    assert "open311 /open311/v2/requests.json: the database does not answer" in caplog.text

    # Once it answers again, so does the service, with the same request.
    assert await ids(timed) == [ticket]


async def test_nobodys_personal_data_reaches_a_city_system(
    timed: Service, clock: FakeClock
) -> None:
    async with timed.client.app[sessions_key]() as session:
        wang = await session.scalar(select(Member).where(Member.name == "王建国"))
    resident = Resident(
        channel="wechat", external_id="oWx-openid-42", name="张秀兰", phone="13912345678"
    )
    words = "我是张秀兰，3号楼2单元501，电话139 1234 5678，厨房水管漏水"
    ticket = await add_ticket(
        timed,
        clock.now(),
        resident=resident,
        text=words,
        entities={"phone": "13912345678", "address": "3号楼2单元501"},
        assignee_id=wang.id,
        status=Status.RESOLVED,
        resolved_at=clock.now(),
        resolution_note="王建国换了阀门，张秀兰说好了",
        visit_at=clock.now(),
        visit_outcome="上门看过，阀门老化",
        rating="满意",
    )
    secrets = ("张秀兰", "1391", "1234", "5678", "2单元", "501", "王建国", "oWx", "阀门", "满意")

    for path in ("requests.json", "requests.xml", f"requests/{ticket}.json"):
        resp = await timed.client.get(f"{BASE}/{path}")
        body = await resp.text()
        assert resp.status == 200 and "3号楼" in body
        assert not [s for s in secrets if s in body], path
    _, [request] = await get(timed, f"requests/{ticket}.json")
    assert request["description"] is None and request["media_url"] is None
    assert request["address"] == "3号楼, 默认社区"


async def test_names_and_a_caller_s_words_come_back_escaped_in_xml(
    timed: Service, clock: FakeClock
) -> None:
    await add_community(timed.settings, "A&B<社区>", "amp")
    await add_grid(timed.settings, "C&D<楼>", "cd", "", "amp")
    await add_ticket(timed, clock.now(), grid_code="cd")

    status, (_, [request]) = await get(timed, "requests.xml", jurisdiction_id="amp")
    assert (status, request["address"]) == (200, "C&D<楼>, A&B<社区>")
    status, (root, [error]) = await get(timed, "requests.xml", service_code="<x>&\x01")
    assert (status, root) == (400, "errors")
    assert "没有 <x>&" in (error["description"] or "")


async def test_at_most_1000_requests_come_back(timed: Service, clock: FakeClock) -> None:
    now = clock.now()
    async with timed.client.app[sessions_key]() as session, session.begin():
        grid = await session.scalar(select(Grid).where(Grid.code == "b3"))
        resident = Resident(channel="webchat", external_id="r-many")
        made = (now - timedelta(minutes=n) for n in range(1001))
        session.add_all(
            a_ticket(resident, grid, grid.community_id, created_at=at, updated_at=at) for at in made
        )
    found = await ids(timed)
    # Newest first: the first one made (the oldest) is the one left out.
    assert len(found) == 1000 and found == sorted(found)
