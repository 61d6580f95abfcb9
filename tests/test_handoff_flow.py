"""The foundation, end to end: a resident's words reach a named party member and back."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from bot.app import create_app, resume_after_restart
from bot.core.chat import ChatRef, Inbound
from bot.typedefs import router_key
from tests.helpers import Service

LEAK = "我家厨房水管漏水了，3号楼2单元501"


async def test_repair_request_reaches_the_grid_member_and_the_reply_reaches_the_resident(
    service: Service,
) -> None:
    token = await service.login("王建国")
    console = await service.console(token)
    resident = await service.resident("张阿姨")

    await resident.say(LEAK)

    created = await console.event("ticket.created")
    ticket = created["ticket"]
    assert ticket["category"] == "repair"
    assert ticket["grid"] == "3号楼"
    assert ticket["assignee"]["name"] == "王建国"
    assert ticket["entities"]["address"] == "3号楼2单元501"
    assert ticket["resident"]["name"] == "张阿姨"
    bot_line = await resident.hear("bot")
    assert "王建国" in bot_line["text"] and "3号楼" in bot_line["text"]

    status, _ = await service.api(
        "POST",
        f"/api/tickets/{ticket['id']}/reply",
        token,
        json={"text": "张阿姨您好，我十分钟后到。"},
    )
    assert status == 200
    reply = await resident.hear("member")
    assert reply["text"] == "张阿姨您好，我十分钟后到。"
    assert reply["sender_name"] == "王建国"

    # While the ticket is open the resident talks to the member, not to the bot.
    await resident.say("好的 我在家等你")
    relayed = await console.resident_wrote()
    assert relayed["message"]["text"] == "好的 我在家等你"
    assert await resident.hears_nothing_from("bot")

    status, resolved = await service.api(
        "POST", f"/api/tickets/{ticket['id']}/resolve", token, json={"note": "换了阀门"}
    )
    assert (status, resolved["status"]) == (200, "resolved")
    # Asked once how it went.
    assert "回复1满意" in (await resident.hear("bot"))["text"]

    # Resolved: the conversation is resumed and the next request is the bot's again.
    await resident.say("还有 楼道的灯也不亮了")
    second = (await console.event("ticket.created"))["ticket"]
    assert second["id"] != ticket["id"] and second["category"] == "repair"
    # Of 3号楼's members only 王建国 repairs things.
    assert second["assignee"]["name"] == "王建国"
    assert "王建国" in (await resident.hear("bot"))["text"]

    status, detail = await service.api("GET", f"/api/tickets/{ticket['id']}", token)
    assert status == 200
    texts = [(m["sender_kind"], m["text"]) for m in detail["messages"]]
    assert texts[0] == ("resident", LEAK)
    assert ("member", "张阿姨您好，我十分钟后到。") in texts
    assert ("resident", "好的 我在家等你") in texts
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds == ["created", "assign", "claim", "resolve"]
    assert detail["events"][2]["actor"] == "王建国"

    metrics = await (await service.client.get("/metrics")).text()
    assert 'bot_tickets_opened_total{category="repair"} 2.0' in metrics
    assert 'bot_tickets_resolved_total{category="repair"} 1.0' in metrics
    assert 'bot_first_response_seconds_count{category="repair"} 1.0' in metrics
    assert 'bot_inbound_messages_total{channel="webchat"} 3.0' in metrics


async def test_group_chatter_creates_no_ticket_and_gets_no_reply(service: Service) -> None:
    token = await service.login("王建国")
    console = await service.console(token)
    neighbour = await service.resident("李大爷", chat="b3")
    listener = await service.resident("赵奶奶", chat="b3")

    await neighbour.say("今天天气真好 下午一起去公园跳舞啊")

    # Neighbours see each other; the bot stays quiet and nobody gets a ticket.
    heard = await listener.hear("resident")
    assert heard["text"] == "今天天气真好 下午一起去公园跳舞啊"
    await service.settle()
    assert await listener.hears_nothing_from("bot")
    assert await console.gets_nothing()
    status, body = await service.api("GET", "/api/tickets", token)
    assert (status, body["tickets"]) == (200, [])


async def test_group_request_names_the_resident_and_the_member_replies_in_the_group(
    service: Service,
) -> None:
    token = await service.login("王建国")
    console = await service.console(token)
    resident = await service.resident("张阿姨", chat="b3")
    neighbour = await service.resident("赵奶奶", chat="b3")

    await resident.say("@社区小助手 楼道灯坏了 黑乎乎的不敢下楼")

    ticket = (await console.event("ticket.created"))["ticket"]
    assert ticket["chat_type"] == "group"
    assert ticket["grid"] == "3号楼"  # from the group it was written in
    line = await neighbour.hear("bot")
    assert line["text"].startswith("@张阿姨 ") and "王建国" in line["text"]

    await service.api(
        "POST", f"/api/tickets/{ticket['id']}/reply", token, json={"text": "马上来修"}
    )
    assert (await neighbour.hear("member"))["text"] == "@张阿姨 马上来修"


async def test_private_chatter_gets_one_short_pointer_and_no_ticket(service: Service) -> None:
    token = await service.login("陈红梅")
    resident = await service.resident("孙爷爷")

    await resident.say("你好呀")

    line = await resident.hear("bot")
    assert len(line["text"]) <= 60
    assert await resident.hears_nothing_from("bot")
    _, body = await service.api("GET", "/api/tickets", token)
    assert body["tickets"] == []


async def test_tickets_messages_and_who_holds_the_chat_survive_a_restart(
    service: Service, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    resident = await service.resident("张阿姨")
    await resident.say(LEAK)
    await resident.hear("bot")
    await resident.ws.close()
    await service.client.close()

    restarted: TestClient = await aiohttp_client(
        create_app(service.settings), server_kwargs={"port": service.settings.port}
    )
    again = Service(restarted, service.settings, service.password)
    token = await again.login("王建国")
    console = await again.console(token)
    _, body = await again.api("GET", "/api/tickets?status=open", token)
    [ticket] = body["tickets"]
    assert ticket["text"] == LEAK

    resident = await again.resident("张阿姨", cookie=resident.cookie)
    assert [m["text"] for m in resident.history][0] == LEAK
    await resident.say("师傅什么时候来")
    relayed = await console.resident_wrote()
    assert relayed["ticket"]["id"] == ticket["id"]
    assert await resident.hears_nothing_from("bot")


async def test_a_message_acknowledged_before_a_stop_is_routed_after_the_restart(
    service: Service, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    chat = ChatRef("webchat", "private", "stopped-resident", "stopped-resident")
    stored = await service.client.app[router_key].accept(
        Inbound(chat, "stopped-resident:1", "周阿姨", "我想订明天的午饭 两份")
    )
    assert stored is not None
    await service.client.close()  # stopped before routing

    restarted: TestClient = await aiohttp_client(
        create_app(service.settings), server_kwargs={"port": service.settings.port}
    )
    again = Service(restarted, service.settings, service.password)
    await resume_after_restart(restarted.app)
    await again.settle()
    _, body = await again.api("GET", "/api/tickets", await again.login("陈红梅"))
    assert [t["category"] for t in body["tickets"]] == ["canteen"]


async def test_a_request_in_traditional_characters_is_routed_and_kept_as_written(
    service: Service,
) -> None:
    written = "我家廚房水管漏水了，3號樓2單元501"
    token = await service.login("王建国")
    console = await service.console(token)
    await (await service.resident("陳伯")).say(written)

    ticket = (await console.event("ticket.created"))["ticket"]
    assert ticket["category"] == "repair"
    assert ticket["grid"] == "3号楼"
    assert ticket["entities"]["address"] == "3号楼2单元501"
    _, detail = await service.api("GET", f"/api/tickets/{ticket['id']}", token)
    assert detail["messages"][0]["text"] == written

    # A correction puts the resident's own words, not the model's reading, up for review.
    secretary = await service.login("陈红梅")
    await service.api(
        "POST", f"/api/tickets/{ticket['id']}/category", secretary, json={"category": "complaint"}
    )
    _, review = await service.api("GET", "/api/ops/review", await service.login("周晓燕"))
    [group] = review["groups"]
    assert [item["text"] for item in group["items"]] == [written]
