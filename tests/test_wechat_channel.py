"""The Official Account channel over WeChat's real protocol, against a fake WeChat server."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.event import listen, remove
from sqlalchemy.exc import OperationalError

from bot.app import create_app, resume_after_restart
from bot.channels.callbacks import WELCOME_TEXT
from bot.conversation import router as router_module
from bot.conversation.messages import store_outbound
from bot.core.chat import ChatRef
from bot.db.models import Message, Resident, Ticket
from bot.demo import DEMO_PASSWORD, seed
from bot.settings import CallbackSecrets, Settings, WechatSettings
from bot.typedefs import router_key, sessions_key
from tests.fake_wechat import CUSTOM_SEND, OA_TOKEN, FakeWechat
from tests.helpers import Console, Service
from tests.wechat_pusher import AES_KEY, OLD_AES_KEY, WechatPusher, message_xml, text_xml

TOKEN = "wechat-test-token"
OPENID = "oRes1dentZhang000000000001"
LEAK = "我家厨房水管漏水了，3号楼2单元501，电话13900001234"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWechat]:
    async with FakeWechat() as server:
        yield server


def wechat_settings(
    settings: Settings, fake: FakeWechat, aes_keys: tuple[str, ...] = ()
) -> Settings:
    return settings.with_overrides(
        wechat=WechatSettings(
            callback=CallbackSecrets(TOKEN, aes_keys),
            appid=fake.appid,
            secret=fake.secret,
            api_base=fake.base_url,
        )
    )


async def start(aiohttp_client, settings: Settings) -> Service:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(
        create_app(settings), server_kwargs={"port": settings.port}
    )
    await seed(settings)
    return Service(client, settings, DEMO_PASSWORD)


@pytest.fixture
async def plain(settings: Settings, fake: FakeWechat, aiohttp_client) -> Service:  # type: ignore[no-untyped-def]
    return await start(aiohttp_client, wechat_settings(settings, fake))


@pytest.fixture
async def safe(settings: Settings, fake: FakeWechat, aiohttp_client) -> Service:  # type: ignore[no-untyped-def]
    return await start(aiohttp_client, wechat_settings(settings, fake, (AES_KEY, OLD_AES_KEY)))


async def push(service: Service, pusher: WechatPusher, xml: str) -> tuple[int, str]:
    call = pusher.call(xml)
    resp = await service.client.post("/channels/wechat", params=call.params, data=call.body)
    return resp.status, await resp.text()


async def count(service: Service, model: type) -> int:
    async with service.client.app[sessions_key]() as session:
        return int(await session.scalar(select(func.count()).select_from(model)))


async def leak_reported(service: Service, fake: FakeWechat) -> tuple[str, Console, dict]:
    """A resident's leak has come in over WeChat and is 王建国's ticket; his console is open."""
    pusher = WechatPusher(TOKEN, fake.appid)
    token = await service.login("王建国")
    console = await service.console(token)
    assert (await push(service, pusher, text_xml(OPENID, LEAK, pusher.next_msg_id())))[0] == 200
    ticket = (await console.event("ticket.created"))["ticket"]
    await service.client.app[router_key].drain()
    return token, console, ticket


async def test_handshake_answers_echostr_only_to_a_correct_signature(plain: Service) -> None:
    pusher = WechatPusher(TOKEN, "")
    resp = await plain.client.get("/channels/wechat", params=pusher.handshake("echo-123"))
    assert (resp.status, await resp.text()) == (200, "echo-123")

    forged = WechatPusher("not-our-token", "").handshake("echo-123")
    assert (await plain.client.get("/channels/wechat", params=forged)).status == 403
    unsigned = {"timestamp": "1", "nonce": "2", "echostr": "echo-123"}
    assert (await plain.client.get("/channels/wechat", params=unsigned)).status == 403


async def test_text_message_becomes_a_ticket_and_the_member_reply_reaches_wechat(
    plain: Service, fake: FakeWechat
) -> None:
    pusher = WechatPusher(TOKEN, fake.appid)
    token = await plain.login("王建国")
    console = await plain.console(token)

    began = time.monotonic()
    status, body = await push(plain, pusher, text_xml(OPENID, LEAK, pusher.next_msg_id()))
    answered_in = time.monotonic() - began
    assert (status, body) == (200, "success")
    assert answered_in < 5.0

    ticket = (await console.event("ticket.created"))["ticket"]
    assert (ticket["category"], ticket["grid"], ticket["channel"]) == ("repair", "3号楼", "wechat")
    assert ticket["assignee"]["name"] == "王建国"
    # The bot's one line, naming who is coming, went out as a customer-service message.
    await fake.wait_for(lambda f: len(f.sent_texts(OPENID)) == 1)
    assert "王建国" in fake.sent_texts(OPENID)[0]

    status, reply = await plain.api(
        "POST", f"/api/tickets/{ticket['id']}/reply", token, json={"text": "您好，我马上到。"}
    )
    assert (status, reply["delivery"]) == (200, "sent")
    assert fake.sent_texts(OPENID)[-1] == "您好，我马上到。"
    assert len(fake.calls(OA_TOKEN)) == 1


async def test_the_resident_on_wechat_hears_who_took_the_request_and_the_note(
    plain: Service, fake: FakeWechat
) -> None:
    token, _, ticket = await leak_reported(plain, fake)
    url = f"/api/tickets/{ticket['id']}"

    status, _ = await plain.api("POST", f"{url}/claim", token)

    assert status == 200
    await fake.wait_for(lambda f: len(f.sent_texts(OPENID)) == 2)
    assert fake.sent_texts(OPENID)[-1] == "王建国已经接单，会在这里直接回复您。"

    status, _ = await plain.api("POST", f"{url}/resolve", token, json={"note": "换了阀门"})

    assert status == 200
    await fake.wait_for(lambda f: len(f.sent_texts(OPENID)) == 3)
    assert "王建国说：“换了阀门”\n这次办得怎么样？回复1满意" in fake.sent_texts(OPENID)[-1]


async def test_safe_mode_decrypts_inbound_encrypts_the_welcome_and_accepts_the_old_key(
    safe: Service, fake: FakeWechat
) -> None:
    pusher = WechatPusher(TOKEN, fake.appid, AES_KEY)
    status, body = await push(safe, pusher, message_xml(OPENID, "event", None, Event="subscribe"))
    assert status == 200
    assert "<Encrypt>" in body and WELCOME_TEXT not in body
    reply = pusher.read_reply(body)
    assert (reply["ToUserName"], reply["Content"]) == (OPENID, WELCOME_TEXT)

    token = await safe.login("王建国")
    console = await safe.console(token)
    # A message encrypted with the key being rotated out is still understood.
    old = WechatPusher(TOKEN, fake.appid, OLD_AES_KEY)
    status, body = await push(safe, old, text_xml(OPENID, LEAK, old.next_msg_id()))
    assert (status, body) == (200, "success")
    ticket = (await console.event("ticket.created"))["ticket"]
    status, _ = await safe.api(
        "POST", f"/api/tickets/{ticket['id']}/reply", token, json={"text": "收到，这就来。"}
    )
    assert status == 200
    assert "收到，这就来。" in fake.sent_texts(OPENID)

    # Safe mode refuses plaintext, even correctly signed.
    status, _ = await push(safe, WechatPusher(TOKEN, fake.appid), text_xml(OPENID, "你好", 1))
    assert status == 403


async def test_three_retries_store_one_message_and_open_one_ticket(
    plain: Service, fake: FakeWechat
) -> None:
    pusher = WechatPusher(TOKEN, fake.appid)
    xml = text_xml(OPENID, LEAK, pusher.next_msg_id())
    answers = await asyncio.gather(*(push(plain, pusher, xml) for _ in range(4)))
    assert answers == [(200, "success")] * 4
    event = message_xml(OPENID, "event", None, Event="subscribe", CreateTime=1700000000)
    for _ in range(3):
        assert (await push(plain, pusher, event))[0] == 200
    await plain.client.app[router_key].drain()

    assert await count(plain, Message) == 2 + 1 + 1  # text, event, the bot's line, the welcome
    assert await count(plain, Ticket) == 1


async def test_a_retry_after_a_restart_is_still_a_duplicate(
    settings: Settings, fake: FakeWechat, aiohttp_client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    configured = wechat_settings(settings, fake)
    pusher = WechatPusher(TOKEN, fake.appid)
    xml = text_xml(OPENID, LEAK, pusher.next_msg_id())
    first = await start(aiohttp_client, configured)
    assert (await push(first, pusher, xml)) == (200, "success")
    await first.client.app[router_key].drain()
    await first.client.close()

    second = await start(aiohttp_client, configured)
    assert (await push(second, pusher, xml)) == (200, "success")
    await second.client.app[router_key].drain()
    assert await count(second, Ticket) == 1
    async with second.client.app[sessions_key]() as session:
        inbound = await session.scalar(
            select(func.count()).select_from(Message).where(Message.direction == "in")
        )
    assert inbound == 1


async def test_voice_uses_recognition_and_an_untranscribed_voice_goes_to_a_person(
    plain: Service, fake: FakeWechat
) -> None:
    pusher = WechatPusher(TOKEN, fake.appid)
    token = await plain.login("陈红梅")
    console = await plain.console(token)
    heard = message_xml(
        OPENID,
        "voice",
        pusher.next_msg_id(),
        MediaId="media-voice-1",
        Format="amr",
        Recognition="我家厨房水管漏水了3号楼2单元501",
    )
    assert (await push(plain, pusher, heard))[0] == 200
    ticket = (await console.event("ticket.created"))["ticket"]
    assert ticket["category"] == "repair"

    other = "oRes1dentLi00000000000002"
    mute = message_xml(
        other, "voice", pusher.next_msg_id(), MediaId="media-voice-2", Format="amr", Recognition=""
    )
    assert (await push(plain, pusher, mute))[0] == 200
    ticket = (await console.event("ticket.created"))["ticket"]
    assert ticket["category"] == "unclassified"
    status, detail = await plain.api("GET", f"/api/tickets/{ticket['id']}", token)
    assert status == 200
    voice = detail["messages"][0]
    assert (voice["kind"], voice["media"]["media_id"]) == ("voice", "media-voice-2")


async def test_a_text_of_only_spaces_is_kept_and_opens_nothing(
    plain: Service, fake: FakeWechat
) -> None:
    pusher = WechatPusher(TOKEN, fake.appid)
    blank = text_xml(OPENID, " \n\u3000 ", pusher.next_msg_id())
    assert (await push(plain, pusher, blank))[0] == 200
    await plain.client.app[router_key].drain()
    async with plain.client.app[sessions_key]() as session:
        kept = (await session.scalars(select(Message).where(Message.direction == "in"))).one()
    assert kept.handled_at is not None and kept.ticket_id is None
    assert await count(plain, Ticket) == 0
    assert fake.calls(CUSTOM_SEND) == []

    # The resident's next words are read as ever.
    assert (await push(plain, pusher, text_xml(OPENID, LEAK, pusher.next_msg_id())))[0] == 200
    await plain.client.app[router_key].drain()
    assert await count(plain, Ticket) == 1


async def test_photos_start_a_ticket_or_join_the_open_one_and_a_location_is_its_address(
    plain: Service, fake: FakeWechat
) -> None:
    pusher = WechatPusher(TOKEN, fake.appid)
    token = await plain.login("陈红梅")
    console = await plain.console(token)
    photo = message_xml(
        OPENID, "image", pusher.next_msg_id(), PicUrl="http://mmbiz/p1.jpg", MediaId="pic-1"
    )
    assert (await push(plain, pusher, photo))[0] == 200
    ticket = (await console.event("ticket.created"))["ticket"]
    assert ticket["category"] == "unclassified"

    second = message_xml(
        OPENID, "image", pusher.next_msg_id(), PicUrl="http://mmbiz/p2.jpg", MediaId="pic-2"
    )
    assert (await push(plain, pusher, second))[0] == 200
    relayed = await console.resident_wrote()
    assert relayed["message"]["media"]["url"] == "http://mmbiz/p2.jpg"

    place = message_xml(
        OPENID,
        "location",
        pusher.next_msg_id(),
        Location_X="31.2304",
        Location_Y="121.4737",
        Scale=15,
        Label="幸福小区3号楼",
    )
    assert (await push(plain, pusher, place))[0] == 200
    located = await console.resident_wrote()
    assert located["ticket"]["entities"]["address"] == "幸福小区3号楼"
    status, detail = await plain.api("GET", f"/api/tickets/{ticket['id']}", token)
    assert [m["kind"] for m in detail["messages"] if m["sender_kind"] == "resident"] == [
        "image",
        "image",
        "location",
    ]
    assert await count(plain, Ticket) == 1


def asked_for_open_ticket(statements: list[str]) -> list[str]:
    lookup = re.compile(r"SELECT tickets\.id\s+FROM tickets\s+WHERE tickets\.conversation_id")
    return [s for s in statements if lookup.match(s)]


async def test_a_new_residents_first_message_asks_for_no_open_ticket_and_the_next_finds_it(
    plain: Service, fake: FakeWechat
) -> None:
    pusher = WechatPusher(TOKEN, fake.appid)
    console = await plain.console(await plain.login("王建国"))
    router = plain.client.app[router_key]
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    listen(Engine, "before_cursor_execute", record)
    try:
        assert (await push(plain, pusher, text_xml(OPENID, LEAK, pusher.next_msg_id())))[0] == 200
        ticket = (await console.event("ticket.created"))["ticket"]
        await router.drain()
        first, statements[:] = list(statements), []
        again = text_xml(OPENID, "水还在往下滴 快点来", pusher.next_msg_id())
        assert (await push(plain, pusher, again))[0] == 200
        relayed = await console.resident_wrote()
        await router.drain()
    finally:
        remove(Engine, "before_cursor_execute", record)

    # Created by that very message, the resident cannot have a ticket: nobody asks.
    assert first and not asked_for_open_ticket(first)
    assert len(asked_for_open_ticket(statements)) == 1
    assert relayed["ticket"]["id"] == ticket["id"]
    assert await count(plain, Ticket) == 1


async def test_unsubscribe_marks_the_resident_inactive(plain: Service, fake: FakeWechat) -> None:
    pusher = WechatPusher(TOKEN, fake.appid)
    for event in ("subscribe", "unsubscribe"):
        xml = message_xml(OPENID, "event", None, Event=event, CreateTime=1700000000)
        assert (await push(plain, pusher, xml))[0] == 200
    await plain.client.app[router_key].drain()
    async with plain.client.app[sessions_key]() as session:
        resident = await session.scalar(select(Resident).where(Resident.external_id == OPENID))
    assert resident is not None and resident.active is False


async def test_closed_window_keeps_the_reply_and_asks_the_member_to_phone(
    plain: Service, fake: FakeWechat
) -> None:
    token, console, ticket = await leak_reported(plain, fake)

    fake.closed_windows.add(OPENID)
    sends_before = len(fake.calls(CUSTOM_SEND))
    status, reply = await plain.api(
        "POST", f"/api/tickets/{ticket['id']}/reply", token, json={"text": "明早九点到。"}
    )
    assert (status, reply["delivery"]) == (200, "undeliverable")
    notice = await console.event("message.undelivered")
    assert "请电话联系" in notice["notice"] and "13900001234" in notice["notice"]
    assert notice["message"]["text"] == "明早九点到。"
    # Refused for good, so not retried; and kept in the ticket.
    assert len(fake.calls(CUSTOM_SEND)) == sends_before + 1
    _, detail = await plain.api("GET", f"/api/tickets/{ticket['id']}", token)
    assert detail["messages"][-1]["delivery"] == "undeliverable"


async def test_a_stale_token_is_refreshed_once_and_the_message_sent_once(
    plain: Service, fake: FakeWechat
) -> None:
    token, console, ticket = await leak_reported(plain, fake)

    fake.expire_token(errcode=40001)
    status, reply = await plain.api(
        "POST", f"/api/tickets/{ticket['id']}/reply", token, json={"text": "好的，稍等。"}
    )
    assert (status, reply["delivery"]) == (200, "sent")
    assert fake.sent_texts(OPENID).count("好的，稍等。") == 1
    assert len(fake.calls(OA_TOKEN)) == 2


async def test_a_reply_left_unsent_by_a_crash_goes_out_after_the_restart(
    settings: Settings, fake: FakeWechat, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    configured = wechat_settings(settings, fake)
    pusher = WechatPusher(TOKEN, fake.appid)
    first = await start(aiohttp_client, configured)
    assert (await push(first, pusher, text_xml(OPENID, LEAK, pusher.next_msg_id())))[0] == 200
    await first.client.app[router_key].drain()
    # The process dies between storing a member's reply and WeChat accepting it.
    async with first.client.app[sessions_key]() as session, session.begin():
        ticket_id = await session.scalar(select(Ticket.id))
        await store_outbound(session, ChatRef("wechat", "private", OPENID, OPENID), "我到楼下了")
    await first.client.close()
    assert "我到楼下了" not in fake.sent_texts(OPENID)

    second = await start(aiohttp_client, configured)
    await resume_after_restart(second.client.app)
    assert fake.sent_texts(OPENID).count("我到楼下了") == 1
    assert ticket_id is not None


async def test_a_platform_that_keeps_failing_leaves_the_reply_failed_and_tells_the_member(
    plain: Service, fake: FakeWechat
) -> None:
    token, console, ticket = await leak_reported(plain, fake)

    fake.fail(CUSTOM_SEND, status=500, times=3)
    status, reply = await plain.api(
        "POST", f"/api/tickets/{ticket['id']}/reply", token, json={"text": "我下午到。"}
    )
    assert (status, reply["delivery"]) == (200, "failed")
    assert "请电话联系" in (await console.event("message.undelivered"))["notice"]


async def test_a_callback_while_the_database_is_gone_is_503_and_the_retry_is_kept(
    plain: Service, fake: FakeWechat, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    pusher = WechatPusher(TOKEN, fake.appid)
    call = pusher.call(text_xml(OPENID, LEAK, pusher.next_msg_id()))

    async def database_restarting(*_args: object) -> None:
        raise OperationalError("INSERT INTO messages", {}, ConnectionRefusedError(111, "refused"))

    with monkeypatch.context() as patched:
        patched.setattr(router_module, "store_inbound", database_restarting)
        refused = await plain.client.post("/channels/wechat", params=call.params, data=call.body)
    assert (refused.status, refused.headers["Retry-After"]) == (503, "5")
    assert "the database does not answer" in caplog.text

    # WeChat retries the same callback; now it is stored, acknowledged and routed.
    retried = await plain.client.post("/channels/wechat", params=call.params, data=call.body)
    assert (retried.status, await retried.text()) == (200, "success")
    await plain.client.app[router_key].drain()
    assert await count(plain, Ticket) == 1
