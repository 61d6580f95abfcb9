"""The webchat refuses bad input clearly and never stores a message twice."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.channels.webchat.identity import COOKIE
from bot.db.models import Message
from bot.typedefs import sessions_key
from tests.helpers import WAIT_S, Service


async def _stored_count(service: Service) -> int:
    async with service.client.app[sessions_key]() as session:
        return await session.scalar(select(func.count()).select_from(Message))


async def test_bad_connection_parameters_are_4xx(service: Service) -> None:
    ws = "/webchat/ws"
    assert (await service.client.get(ws, params={"chat": "private"})).status == 401
    cookie = {"Cookie": f"{COOKIE}={await service.identity('张')}"}
    no_room = await service.client.get(ws, params={"chat": "nowhere"}, headers=cookie)
    assert no_room.status == 404
    foreign = await service.client.get(ws, headers={**cookie, "Origin": "https://evil.example"})
    assert foreign.status == 403


async def test_bad_frames_get_an_error_and_store_nothing(service: Service) -> None:
    chat = await service.resident("钱阿姨")
    before = await _stored_count(service)
    for frame in ("not json", '{"type": "message"}', '{"type":"message","id":"a b","text":"x"}',
                  '{"type":"message","id":"a1","text":""}', '["x"]'):  # fmt: skip
        await chat.ws.send_str(frame)
        reply = await chat.ws.receive_json(timeout=WAIT_S)
        assert reply["type"] == "error" and reply["message"]
    await chat.ws.send_json({"type": "message", "id": "big", "text": "长" * 2001})
    assert (await chat.ws.receive_json(timeout=WAIT_S))["type"] == "error"
    assert await _stored_count(service) == before


async def test_a_resent_message_is_stored_and_answered_once(service: Service) -> None:
    chat = await service.resident("钱阿姨")
    await chat.say("谢谢你们", client_id="same-id")
    await chat.hear("bot")
    await service.settle()
    count = await _stored_count(service)

    await chat.say("谢谢你们", client_id="same-id")  # a resend after a lost ack

    await service.settle()
    assert await _stored_count(service) == count
    assert await chat.hears_nothing_from("bot")


async def test_script_tags_are_kept_as_text(service: Service) -> None:
    chat = await service.resident("<b>钱</b>")
    await chat.say("<img src=x onerror=alert(1)>你好")
    own = await chat.hear("resident")
    assert own["text"] == "<img src=x onerror=alert(1)>你好"
    assert own["sender_name"] == "<b>钱</b>"
    page = await service.client.get("/webchat/")
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
