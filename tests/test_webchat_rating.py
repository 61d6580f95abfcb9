"""Rating in the webchat: the question comes with three big answers for the resident it is put
to; tapping one, typing or saying it all rate the request the same way."""

from __future__ import annotations

import pytest

from bot.core.clock import FakeClock
from bot.handoff.texts import RATING_TOO_LATE, read_rating
from bot.typedefs import timers_key
from tests.helpers import Chat, Service, request_reaches

LEAK = "我家厨房水管漏水了，3号楼2单元501"
CHOICES = ["满意", "一般", "不满意"]


async def resolved(service: Service, resident: Chat, text: str) -> tuple[str, dict]:
    """The resident's request, resolved by 王建国; returns his token and the rating question."""
    wang, ticket = await request_reaches(service, resident, text)
    status, _ = await service.api("POST", f"/api/tickets/{ticket['id']}/resolve", wang, json={})
    assert status == 200
    return wang, await resident.hear("bot")


async def rating_of(service: Service, token: str) -> str | None:
    status, body = await service.api("GET", "/api/tickets?status=closed", token)
    assert status == 200
    [ticket] = body["tickets"]
    return ticket["rating"]


async def test_the_question_offers_three_answers_and_a_tapped_one_rates(service: Service) -> None:
    resident = await service.resident("张阿姨")
    wang, question = await resolved(service, resident, LEAK)
    assert question["choices"] == CHOICES
    assert "回复1满意" in question["text"]  # WeChat has no buttons: the words still say how

    await resident.say("一般")  # what the 一般 button sends

    assert (await resident.hear("bot"))["text"] == "谢谢您告诉我们！"
    assert await rating_of(service, wang) == "一般"
    # Back later, the question is in the history, answered: without its buttons.
    again = await service.resident("张阿姨", cookie=resident.cookie)
    assert question["id"] in [m["id"] for m in again.history]
    assert [m for m in again.history if m["choices"]] == []
    assert again.history[-2]["own"] and again.history[-2]["text"] == "一般"


async def test_an_unanswered_question_keeps_its_answers_until_it_expires(
    timed: Service, clock: FakeClock
) -> None:
    resident = await timed.resident("张阿姨")
    wang, question = await resolved(timed, resident, LEAK)
    # The page reloaded the same evening: still asked.
    again = await timed.resident("张阿姨", cookie=resident.cookie)
    assert [m["id"] for m in again.history if m["choices"]] == [question["id"]]

    clock.advance(hours=25)
    await timed.client.app[timers_key].run_due()
    later = await timed.resident("张阿姨", cookie=resident.cookie)
    assert [m for m in later.history if m["choices"]] == []

    # A page left open still has the buttons: a tap is thanked, and counts for nothing.
    await again.say("满意")
    assert (await again.hear("bot"))["text"] == RATING_TOO_LATE
    assert await rating_of(timed, wang) is None


async def test_in_a_room_only_the_resident_asked_gets_the_answers(service: Service) -> None:
    resident = await service.resident("张阿姨", chat="b3")
    neighbour = await service.resident("赵奶奶", chat="b3")
    wang, question = await resolved(service, resident, "@社区小助手 楼道灯坏了 黑乎乎的不敢下楼")
    assert question["text"].startswith("@张阿姨 ") and question["choices"] == CHOICES
    seen = await neighbour.hear("bot")
    while seen["id"] != question["id"]:
        seen = await neighbour.hear("bot")
    assert seen["choices"] == []

    await resident.say("满意的")

    assert (await resident.hear("bot"))["text"] == "@张阿姨 谢谢您告诉我们！"
    assert await rating_of(service, wang) == "满意"


async def test_other_lines_carry_no_answers(service: Service) -> None:
    resident = await service.resident("张阿姨")
    await resident.say(LEAK)
    assert (await resident.hear("resident"))["choices"] == []
    assert (await resident.hear("bot"))["choices"] == []


@pytest.mark.parametrize(
    ("said", "rating"),
    [
        ("满意", "满意"),
        ("１", "满意"),
        ("很满意啊！", "满意"),
        ("还行吧", "一般"),
        ("一般。", "一般"),
        ("不太满意", "不满意"),
        ("3", "不满意"),
        # "OK" after being told it is done is not a verdict; nor is a new request.
        ("好的", None),
        ("楼道灯还是不亮", None),
    ],
)
def test_typed_or_spoken_answers_are_read_as_a_rating(said: str, rating: str | None) -> None:
    assert read_rating(said) == rating
