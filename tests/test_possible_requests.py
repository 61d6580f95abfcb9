"""Nobody left in silence: chatter in which the model half-heard a request reaches a member of
the grid as a possible request, and one tap makes it a ticket or a chatter example.

A request intent always has some confidence, so a threshold of 0 makes every message read as
chatter a possible request, and one above 1 makes none: the model's reading of "大家早上好"
(surely chatter) then decides nothing here."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from bot.app import create_app
from bot.conversation.engine import Turn, best_request
from bot.db.models import Member
from bot.demo import DEMO_PASSWORD, seed
from bot.settings import Settings
from bot.typedefs import possible_key, sessions_key, settings_key
from tests.helpers import Service

GREETING = "大家早上好"


async def start(aiohttp_client, settings: Settings, threshold: float) -> Service:  # type: ignore[no-untyped-def]
    settings = settings.with_overrides(possible_request_threshold=threshold)
    client: TestClient = await aiohttp_client(
        create_app(settings), server_kwargs={"port": settings.port}
    )
    await seed(settings)
    return Service(client, settings, DEMO_PASSWORD)


@pytest.fixture
async def eager(settings: Settings, aiohttp_client) -> Service:  # type: ignore[no-untyped-def]
    """Every message read as chatter is a possible request."""
    return await start(aiohttp_client, settings, 0.0)


@pytest.fixture
async def deaf(settings: Settings, aiohttp_client) -> Service:  # type: ignore[no-untyped-def]
    """No chatter is a possible request: nothing reaches the threshold."""
    return await start(aiohttp_client, settings, 1.01)


async def everyone_takes_everything(service: Service) -> None:
    """Whatever category the model guesses, 王建国 is the grid's first choice."""
    async with service.client.app[sessions_key]() as session, session.begin():
        await session.execute(update(Member).values(skills=""))


async def listed(service: Service, token: str) -> list[dict]:
    status, body = await service.api("GET", "/api/possible-requests", token)
    assert status == 200, body
    return body["possible_requests"]


async def test_group_chatter_with_a_request_signal_reaches_the_grid_and_yes_opens_a_ticket(
    eager: Service,
) -> None:
    await everyone_takes_everything(eager)
    wang, li = await eager.login("王建国"), await eager.login("李秀英")
    wang_console, li_console = await eager.console(wang), await eager.console(li)
    resident = await eager.resident("张阿姨", chat="b3")
    neighbour = await eager.resident("赵奶奶", chat="b3")

    await resident.say(GREETING)

    card = (await wang_console.event("possible_request.created"))["possible_request"]
    assert (card["text"], card["resident"]["name"]) == (GREETING, "张阿姨")
    assert (card["grid"], card["chat_type"], card["status"]) == ("3号楼", "group", "open")
    assert (await li_console.event("possible_request.created"))["possible_request"] == card
    assert [p["id"] for p in await listed(eager, wang)] == [card["id"]]
    # The group hears nothing from the bot, as for any chatter.
    assert (await neighbour.hear("resident"))["text"] == GREETING
    await eager.settle()
    assert await neighbour.hears_nothing_from("bot")
    _, tickets = await eager.api("GET", "/api/tickets", wang)
    assert tickets["tickets"] == []

    status, confirmed = await eager.api(
        "POST", f"/api/possible-requests/{card['id']}/confirm", wang
    )
    assert status == 200, confirmed
    assert (confirmed["status"], confirmed["decided_by"]) == ("confirmed", "王建国")

    ticket = (await wang_console.event("ticket.created"))["ticket"]
    assert ticket["id"] == confirmed["ticket_id"]
    assert (ticket["text"], ticket["category"]) == (GREETING, card["intent"])
    assert (ticket["grid"], ticket["chat_type"]) == ("3号楼", "group")
    said = (await neighbour.hear("bot"))["text"]
    assert said.startswith("@张阿姨 ") and "王建国" in said
    # The colleague's card goes away.
    decided = await li_console.event("possible_request.decided")
    assert decided["possible_request"]["id"] == card["id"]
    assert await listed(eager, li) == []

    _, detail = await eager.api("GET", f"/api/tickets/{ticket['id']}", wang)
    assert ("confirmed", "王建国") in [(e["kind"], e["actor"]) for e in detail["events"]]
    assert [m["text"] for m in detail["messages"]][0] == GREETING

    # From now on the resident talks to the member, as with any request.
    await resident.say("水管漏了好几天了")
    relayed = await wang_console.resident_wrote()
    assert relayed["ticket"]["id"] == ticket["id"]


async def test_not_a_request_closes_it_and_the_operators_see_it_labelled_chatter(
    eager: Service,
) -> None:
    secretary = await eager.login("陈红梅")
    console = await eager.console(secretary)
    resident = await eager.resident("孙爷爷")

    await resident.say(GREETING)

    # Privately the resident still gets the one pointer; nobody's grid is known, so the
    # secretary decides.
    assert len((await resident.hear("bot"))["text"]) <= 60
    card = (await console.event("possible_request.created"))["possible_request"]
    assert (card["text"], card["chat_type"], card["grid"]) == (GREETING, "private", None)

    status, dismissed = await eager.api(
        "POST", f"/api/possible-requests/{card['id']}/dismiss", secretary
    )
    assert (status, dismissed["status"], dismissed["ticket_id"]) == (200, "dismissed", None)
    assert dismissed["decided_by"] == "陈红梅"
    assert await listed(eager, secretary) == []
    assert await resident.hears_nothing_from("bot")
    _, tickets = await eager.api("GET", "/api/tickets", secretary)
    assert tickets["tickets"] == []

    status, queue = await eager.api("GET", "/api/ops/review", await eager.login("周晓燕"))
    assert status == 200
    [group] = [g for g in queue["groups"] if g["corrected"] == "chitchat"]
    assert [item["text"] for item in group["items"]] == [GREETING]


async def test_another_grid_can_neither_see_nor_decide_it_and_deciding_twice_is_refused(
    eager: Service,
) -> None:
    wang, zhang = await eager.login("王建国"), await eager.login("张志强")
    zhang_console = await eager.console(zhang)
    resident = await eager.resident("张阿姨", chat="b3")
    await resident.say(GREETING)
    await resident.hear("resident")  # routing starts once the chat has shown it
    await eager.settle()
    [card] = await listed(eager, wang)

    assert await listed(eager, zhang) == []
    assert await zhang_console.gets_nothing()
    for decision in ("confirm", "dismiss"):
        status, refused = await eager.api(
            "POST", f"/api/possible-requests/{card['id']}/{decision}", zhang
        )
        assert status == 403 and refused["message"] == "这条消息不在您的网格，由那里的同事来看。"
    status, _ = await eager.api("POST", "/api/possible-requests/999/confirm", wang)
    assert status == 404

    status, _ = await eager.api("POST", f"/api/possible-requests/{card['id']}/dismiss", wang)
    assert status == 200
    for decision in ("dismiss", "confirm"):
        status, refused = await eager.api(
            "POST", f"/api/possible-requests/{card['id']}/{decision}", wang
        )
        assert status == 409 and refused["message"] == "这条消息已经有同事看过了。"
    _, tickets = await eager.api("GET", "/api/tickets", wang)
    assert tickets["tickets"] == []


async def test_a_greeting_with_no_request_signal_creates_nothing(deaf: Service) -> None:
    wang = await deaf.login("王建国")
    console = await deaf.console(wang)
    resident = await deaf.resident("李大爷", chat="b3")
    neighbour = await deaf.resident("赵奶奶", chat="b3")

    await resident.say(GREETING)

    assert (await neighbour.hear("resident"))["text"] == GREETING
    await deaf.settle()
    assert await console.gets_nothing()
    assert await listed(deaf, wang) == []
    assert await listed(deaf, await deaf.login("陈红梅")) == []
    assert await neighbour.hears_nothing_from("bot")


def reading(intent: str, request_confidence: float) -> Turn:
    return Turn([], intent, 0.9, "m", "repair", request_confidence, {})


async def test_only_chatter_with_a_request_ranked_at_the_threshold_is_worth_asking(
    deaf: Service,
) -> None:
    possible = deaf.client.app[possible_key]
    threshold = deaf.client.app[settings_key].possible_request_threshold
    assert possible.worth_asking(reading("chitchat", threshold))
    assert not possible.worth_asking(reading("chitchat", threshold - 0.01))
    # Requests open tickets themselves.
    assert not possible.worth_asking(reading("repair", 0.99))


def test_the_best_request_intent_is_found_whichever_intent_won() -> None:
    parsed = {
        "intent": {"name": "chitchat", "confidence": 0.7},
        "intent_ranking": [
            {"name": "chitchat", "confidence": 0.7},
            {"name": "canteen", "confidence": 0.05},
            {"name": "repair", "confidence": 0.2},
        ],
    }
    assert best_request(parsed) == ("repair", 0.2)
    assert best_request({"intent_ranking": [{"name": "chitchat", "confidence": 1.0}]}) == (
        None,
        0.0,
    )


async def test_yes_after_the_resident_asked_again_joins_the_ticket_already_open(
    eager: Service,
) -> None:
    await everyone_takes_everything(eager)
    wang = await eager.login("王建国")
    console = await eager.console(wang)
    resident = await eager.resident("张阿姨", chat="b3")
    await resident.say(GREETING)
    card = (await console.event("possible_request.created"))["possible_request"]
    await resident.say("我家厨房水管漏水了 地上全是水 麻烦来修一下")
    ticket = (await console.event("ticket.created"))["ticket"]
    await resident.hear("bot")

    status, confirmed = await eager.api(
        "POST", f"/api/possible-requests/{card['id']}/confirm", wang
    )

    assert (status, confirmed["ticket_id"]) == (200, ticket["id"])
    _, tickets = await eager.api("GET", "/api/tickets", wang)
    assert [t["id"] for t in tickets["tickets"]] == [ticket["id"]]
    assert await resident.hears_nothing_from("bot")
