"""The lifecycle end to end, through the webchat, the model and the API: the resident's rating
and reopening, history and the phone, incidents in a group room, merging by hand. The same
rules at the service seam, without the model, are in tests/test_tickets.py."""

from __future__ import annotations

from sqlalchemy import select, update

from bot.core.clock import FakeClock
from bot.db.models import Member
from bot.typedefs import router_key, sessions_key
from tests.conftest import MORNING
from tests.helpers import Chat, Service

LEAK = "我家厨房水管漏水了，3号楼2单元501，电话13900001234"
FALL = "我爸在家摔倒了起不来，3号楼2单元501"


async def everyone_takes_everything(service: Service) -> None:
    """Members without skills take every kind of request: two candidates per grid."""
    async with service.client.app[sessions_key]() as session, session.begin():
        await session.execute(update(Member).values(skills=""))


async def ticket_of(service: Service, token: str, ticket_id: int) -> dict:
    status, ticket = await service.api("GET", f"/api/tickets/{ticket_id}", token)
    assert status == 200, ticket
    return ticket


async def report(service: Service, resident: Chat, text: str, token: str) -> dict:
    console = await service.console(token)
    await resident.say(text)
    ticket = (await console.event("ticket.created"))["ticket"]
    await resident.hear("bot")
    await service.client.app[router_key].drain()
    return ticket


async def resolved_leak(service: Service) -> tuple[str, Chat, dict]:
    """张阿姨's leak, resolved by 王建国; she has just been asked how it went."""
    wang = await service.login("王建国")
    resident = await service.resident("张阿姨")
    ticket = await report(service, resident, LEAK, wang)
    await service.api("POST", f"/api/tickets/{ticket['id']}/resolve", wang, json={"note": "好了"})
    await resident.hear("bot")
    return wang, resident, ticket


async def test_resolve_asks_once_and_a_dissatisfied_answer_reopens_to_the_secretary(
    timed: Service, clock: FakeClock
) -> None:
    wang = await timed.login("王建国")
    resident = await timed.resident("张阿姨")
    ticket = await report(timed, resident, LEAK, wang)
    visit = {"at": "2026-11-27T15:00", "outcome": "换了阀门，试水正常"}
    status, resolved = await timed.api(
        "POST", f"/api/tickets/{ticket['id']}/resolve", wang, json={"note": "修好", "visit": visit}
    )
    assert (status, resolved["visit"]["outcome"]) == (200, "换了阀门，试水正常")
    assert resolved["visit"]["at"] == "2026-11-27T07:00:00+00:00"
    assert "回复1满意、2一般、3不满意" in (await resident.hear("bot"))["text"]

    await resident.say("３")
    said = (await resident.hear("bot"))["text"]
    assert "对不起" in said and "陈红梅" in said
    secretary = await timed.login("陈红梅")
    reopened = await ticket_of(timed, secretary, ticket["id"])
    assert (reopened["status"], reopened["assignee"]["name"]) == ("reopened", "陈红梅")
    assert reopened["rating"] == "不满意"


async def test_still_leaking_within_three_days_reopens_the_same_ticket_to_the_same_member(
    timed: Service, clock: FakeClock
) -> None:
    wang = await timed.login("王建国")
    console = await timed.console(wang)
    resident = await timed.resident("张阿姨")
    ticket = await report(timed, resident, LEAK, wang)
    await timed.api("POST", f"/api/tickets/{ticket['id']}/resolve", wang, json={"note": "好了"})
    await resident.hear("bot")
    await resident.say("满意")
    assert (await resident.hear("bot"))["text"] == "谢谢您告诉我们！"

    clock.advance(hours=48)
    await resident.say("师傅 水管还是漏")
    assert "已请王建国再来看看" in (await resident.hear("bot"))["text"]
    relayed = await console.resident_wrote()
    assert relayed["ticket"]["id"] == ticket["id"]
    assert relayed["ticket"]["status"] == "reopened"
    await timed.api("POST", f"/api/tickets/{ticket['id']}/resolve", wang, json={"note": "再修"})
    await resident.hear("bot")

    # After three days it is a new request.
    clock.advance(hours=73)
    await resident.say("水管还是漏")
    fresh = (await console.event("ticket.created"))["ticket"]
    assert fresh["id"] != ticket["id"]


async def test_the_member_sees_history_and_revealing_the_phone_is_audited(
    timed: Service, clock: FakeClock
) -> None:
    wang, resident, first = await resolved_leak(timed)
    await resident.say("1")
    await resident.hear("bot")
    second = await report(timed, resident, "楼道的灯坏了好几天了，3号楼2单元", wang)

    detail = await ticket_of(timed, wang, second["id"])
    assert detail["resident"]["phone"] == "139****1234"
    assert [(t["id"], t["rating"]) for t in detail["earlier"]] == [(first["id"], "满意")]
    status, shown = await timed.api("POST", f"/api/tickets/{second['id']}/phone", wang)
    assert (status, shown["phone"]) == (200, "13900001234")
    events = (await ticket_of(timed, wang, second["id"]))["events"]
    assert ("phone_revealed", "王建国") in [(e["kind"], e["actor"]) for e in events]

    outsider = await timed.login("张志强")
    status, _ = await timed.api("POST", f"/api/tickets/{second['id']}/phone", outsider)
    assert status == 403


async def test_members_list_shows_who_is_on_duty_now(timed: Service, clock: FakeClock) -> None:
    async with timed.client.app[sessions_key]() as session, session.begin():
        zhang = await session.scalar(select(Member).where(Member.name == "张志强"))
        zhang.schedule = [[4, 8 * 60, 18 * 60]]
    token = await timed.login("陈红梅")
    clock.set(MORNING.replace(hour=18))
    _, listed = await timed.api("GET", "/api/members", token)
    duty = {m["name"]: m["on_duty"] for m in listed["members"]}
    assert duty["张志强"] is False and duty["王建国"] is True


async def test_neighbours_reporting_the_same_outage_share_one_incident(
    timed: Service, clock: FakeClock
) -> None:
    wang = await timed.login("王建国")
    console = await timed.console(wang)
    first = await timed.resident("张阿姨", chat="b3")
    second = await timed.resident("李大爷", chat="b3")
    private = await timed.resident("赵奶奶")

    await first.say("@社区小助手 3号楼停水了，我家一滴水都没有")
    incident = (await console.event("ticket.created"))["ticket"]
    await first.hear("bot")
    await second.say("@社区小助手 我们楼也停水了 水龙头拧开没水")
    joined = (await console.event("ticket.created"))["ticket"]
    assert joined["incident_id"] == incident["id"]
    assert "邻居也报了停水的事" in (await second.hear("bot"))["text"]
    await private.say("3号楼停水了吗？我家也没水，3号楼1单元")
    third = (await console.event("ticket.created"))["ticket"]
    assert third["incident_id"] == incident["id"]
    await timed.client.app[router_key].drain()

    detail = await ticket_of(timed, wang, incident["id"])
    assert [r["resident"] for r in detail["reporters"]] == ["李大爷", "赵奶奶"]

    # Claiming the incident claims every report; the group gets one line, no details.
    status, _ = await timed.api("POST", f"/api/tickets/{incident['id']}/claim", wang)
    assert status == 200
    # The room also shows the bot's earlier lines to each neighbour; skip to the new one.
    while (line := (await first.hear("bot"))["text"]).startswith("@"):
        pass
    assert line == "3号楼停水已有王建国在处理。"
    assert (await ticket_of(timed, wang, third["id"]))["status"] == "claimed"

    # One reply reaches all three residents.
    status, _ = await timed.api(
        "POST",
        f"/api/tickets/{incident['id']}/reply",
        wang,
        json={"text": "水管在抢修，下午三点前来水。", "all": True},
    )
    assert status == 200
    for chat in (first, second, private):
        assert (await chat.hear("member"))["text"].endswith("水管在抢修，下午三点前来水。")

    await timed.api("POST", f"/api/tickets/{incident['id']}/resolve", wang, json={"note": "来水了"})
    assert (await ticket_of(timed, wang, third["id"]))["status"] == "resolved"


async def test_different_problems_stay_apart_and_members_can_merge_and_split_by_hand(
    timed: Service, clock: FakeClock
) -> None:
    await everyone_takes_everything(timed)
    wang = await timed.login("陈红梅")
    console = await timed.console(wang)
    one, two = await timed.resident("张阿姨"), await timed.resident("李大爷")
    await one.say("3号楼电梯卡住了，按了没反应")
    lift = (await console.event("ticket.created"))["ticket"]
    await two.say("3号楼2单元楼道灯坏了")
    lamp = (await console.event("ticket.created"))["ticket"]
    assert lamp["incident_id"] is None
    await timed.client.app[router_key].drain()

    await timed.api("POST", f"/api/tickets/{lift['id']}/claim", wang)
    status, merged = await timed.api(
        "POST", f"/api/tickets/{lamp['id']}/merge", wang, json={"into": lift["id"]}
    )
    assert (status, merged["incident_id"]) == (200, lift["id"])
    status, apart = await timed.api("POST", f"/api/tickets/{lamp['id']}/split", wang)
    assert (status, apart["incident_id"]) == (200, None)
    kinds = [e["kind"] for e in (await ticket_of(timed, wang, lamp["id"]))["events"]]
    assert kinds[-2:] == ["merge", "split"]
