"""What a resident is told as their request moves, in the chat where they asked: in a group,
which problem the answer is about; who took it; and the member's own word when it is done,
with the one question."""

from __future__ import annotations

import pytest

from bot.handoff.texts import CALL_120, SAFETY, problem_of, safety_for
from tests.fakes import Desk
from tests.helpers import Service, request_reaches

LEAK = "我家厨房水管漏水了，3号楼2单元501"
LAMP = "@社区小助手 楼道灯坏了 黑乎乎的不敢下楼"
NO_WATER = "3号楼停水了，一滴水都没有"


async def test_in_a_room_the_answer_names_the_problem(service: Service) -> None:
    resident = await service.resident("张阿姨", chat="b3")
    neighbour = await service.resident("赵奶奶", chat="b3")

    await resident.say("@社区小助手 3号楼停水了，我家一滴水都没有")

    answer = "@张阿姨 停水的事已请3号楼网格员王建国来帮您，王建国会在这里直接回复您。"
    assert (await neighbour.hear("bot"))["text"] == answer
    # In a private chat there is nobody else to tell it apart for.
    private = await service.resident("李大爷")
    await private.say(LEAK)
    assert (await private.hear("bot"))["text"].startswith("已请3号楼网格员")


async def test_in_a_room_an_emergency_keeps_the_safety_line_first(tickets: Desk) -> None:
    opened = await tickets.asks(
        "我爸在家摔倒了起不来", intent="urgent", resident="zhang", group="b3-group"
    )
    assert opened.reply.startswith(f"{CALL_120}。摔倒的事已通知王建国")


@pytest.mark.parametrize(
    ("text", "advice"),
    [
        ("家里一股煤气味 我妈头晕", "燃气泄漏或烧炭中毒请开窗"),
        # A fire beside a gas bottle: get out first, windows are no help.
        ("厨房着火了 煤气罐就在旁边", "着火请先离开屋子"),
        ("我爸被困在电梯里了 喘不上气", "困在电梯里请按警铃"),
        # Water everywhere from a burst pipe: the valve and the power, neither gas nor heights.
        ("卫生间水管爆了 水一直往外喷 总阀拧不动", "请先关总阀，关不上就拉下电闸"),
        ("楼上水管爆了 我家进水了 插座都泡了", "请先关总阀"),
        ("河水漫进村里了 老人出不来", "请先到高处"),
        ("刚才地震了 墙塌了一半", "请先到高处"),
    ],
)
def test_an_emergency_is_told_what_to_do_for_the_hazard_it_names(text: str, advice: str) -> None:
    line = safety_for(text)
    assert line.startswith(f"{CALL_120}；") and advice in line
    assert "燃气" not in line or "煤气" in text


def test_someone_hurt_hears_no_gas_advice_and_a_bare_cry_hears_both() -> None:
    assert safety_for("我爸在家摔倒了起不来") == f"{CALL_120}。"
    assert safety_for("快来人啊") == SAFETY


async def test_a_flooded_family_is_told_to_get_high_before_who_is_coming(tickets: Desk) -> None:
    opened = await tickets.asks("3号楼2单元101进水了 水到膝盖 我爸妈困在屋里", intent="urgent")
    assert opened.reply.startswith(f"{CALL_120}；房子危险或水在上涨，请先到高处")
    assert "已通知王建国" in opened.reply


@pytest.mark.parametrize(
    ("category", "text", "problem"),
    [
        ("repair", "@社区小助手 3号楼停水了，我家一滴水都没有", "停水的事"),
        ("repair", "楼道灯坏了 黑乎乎的不敢下楼", "楼道灯的事"),
        ("repair", "电梯停电了 困在里面", "电梯的事"),
        ("medical", "我妈血压有点高 能不能请医生来量一下", "血压的事"),
        ("canteen", "明天中午想订两份 送到3号楼", "订餐的事"),
        # Nothing of the resident's own words reaches the group: not a name, not a number.
        ("complaint", "王大妈家13900001234天天吵", "您反映的事"),
        ("unclassified", "[照片]", "您的事"),
    ],
)
def test_the_problem_is_named_from_a_fixed_vocabulary(
    category: str, text: str, problem: str
) -> None:
    assert problem_of(category, text) == problem


async def test_claiming_tells_the_resident_who_took_it(service: Service) -> None:
    resident = await service.resident("张阿姨")
    wang, ticket = await request_reaches(service, resident, LEAK)

    status, _ = await service.api("POST", f"/api/tickets/{ticket['id']}/claim", wang)

    assert status == 200
    told = await resident.hear("bot")
    assert told["text"] == "王建国已经接单，会在这里直接回复您。"
    assert told["verified"] is True


async def test_in_a_room_the_claim_is_said_to_the_resident_by_name(service: Service) -> None:
    resident = await service.resident("张阿姨", chat="b3")
    neighbour = await service.resident("赵奶奶", chat="b3")
    wang, ticket = await request_reaches(service, resident, LAMP)

    await service.api("POST", f"/api/tickets/{ticket['id']}/claim", wang)

    assert (await resident.hear("bot"))["text"] == "@张阿姨 王建国已经接单，会在这里直接回复您。"
    lines = [(await neighbour.hear("bot"))["text"] for _ in range(2)]
    assert lines[-1] == "@张阿姨 王建国已经接单，会在这里直接回复您。"


async def test_an_incident_claimed_says_it_once_per_room_and_to_each_private_reporter(
    tickets: Desk,
) -> None:
    first = await tickets.asks(NO_WATER, resident="zhang", group="b3-group")
    await tickets.asks("3号楼是不是停水了 我家也没水", resident="li", group="b3-group")
    await tickets.asks("3号楼停水了吗 我家也没水", resident="zhao")
    wang = await tickets.actor("王建国")

    await tickets.service.holding.claim(wang, first.ticket_id)

    assert tickets.chats.lines_to("b3-group") == ["3号楼停水已有王建国在处理。"]
    assert tickets.chats.lines_to("zhao") == ["王建国已经接单，会在这里直接回复您。"]


async def test_the_members_note_comes_with_the_rating_question(service: Service) -> None:
    resident = await service.resident("张阿姨")
    wang, ticket = await request_reaches(service, resident, LEAK)
    note = {"note": "换了阀门，以后有事再找我"}

    status, _ = await service.api("POST", f"/api/tickets/{ticket['id']}/resolve", wang, json=note)

    assert status == 200
    question = await resident.hear("bot")
    assert question["text"] == (
        "王建国已经把这件事办好了。\n王建国说：“换了阀门，以后有事再找我”\n"
        "这次办得怎么样？回复1满意、2一般、3不满意就行。"
    )
    assert question["choices"] == ["满意", "一般", "不满意"]


async def test_without_a_note_the_question_stands_alone(service: Service) -> None:
    resident = await service.resident("张阿姨")
    wang, ticket = await request_reaches(service, resident, LEAK)

    await service.api("POST", f"/api/tickets/{ticket['id']}/resolve", wang, json={"note": " "})

    assert (await resident.hear("bot"))["text"] == (
        "王建国已经把这件事办好了。这次办得怎么样？回复1满意、2一般、3不满意就行。"
    )


async def test_a_member_who_chose_to_gives_residents_their_phone_in_private_only(
    service: Service,
) -> None:
    wang = await service.login("王建国")
    share = {"phone": "138 0000 1111", "share": True}
    status, me = await service.api("PUT", "/api/me/phone", wang, json=share)
    assert (status, me["phone"], me["share_phone"]) == (200, "13800001111", True)
    assert (await service.api("GET", "/api/me", wang))[1]["share_phone"] is True

    resident = await service.resident("张阿姨")
    _, ticket = await request_reaches(service, resident, LEAK)
    await service.api("POST", f"/api/tickets/{ticket['id']}/claim", wang)
    said = (await resident.hear("bot"))["text"]
    assert said.endswith("有急事可以打王建国的电话：13800001111")

    # In a room the whole group would read it.
    neighbour = await service.resident("李大爷", chat="b3")
    _, lamp = await request_reaches(service, neighbour, LAMP)
    await service.api("POST", f"/api/tickets/{lamp['id']}/claim", wang)
    said = (await neighbour.hear("bot"))["text"]
    assert said == "@李大爷 王建国已经接单，会在这里直接回复您。"


async def test_a_member_may_stop_sharing_and_bad_numbers_are_refused(service: Service) -> None:
    wang = await service.login("王建国")
    await service.api("PUT", "/api/me/phone", wang, json={"phone": "13800001111", "share": True})
    status, me = await service.api(
        "PUT", "/api/me/phone", wang, json={"phone": "13800001111", "share": False}
    )
    assert (status, me["share_phone"]) == (200, False)
    resident = await service.resident("张阿姨")
    _, ticket = await request_reaches(service, resident, LEAK)
    await service.api("POST", f"/api/tickets/{ticket['id']}/claim", wang)
    assert "138" not in (await resident.hear("bot"))["text"]

    for bad in (
        {"phone": "12345", "share": True},
        {"phone": "", "share": True},
        {"phone": "13800001111", "share": "yes"},
        {"phone": "13800001111"},
    ):
        status, body = await service.api("PUT", "/api/me/phone", wang, json=bad)
        assert status == 400 and body["message"], bad
    assert (await service.api("GET", "/api/me", wang))[1]["share_phone"] is False
