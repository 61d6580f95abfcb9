"""WeCom: the app callback, the intelligent robot in residents' groups, and the group robot
webhook that tells party members of new requests; all against the fake WeChat server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.db.models import Ticket
from bot.settings import CallbackSecrets, Settings, WecomSettings
from bot.typedefs import notifier_key, router_key, sessions_key
from tests.fake_wechat import WECOM_SEND, FakeWechat
from tests.helpers import Service
from tests.test_wechat_channel import LEAK, start
from tests.wechat_pusher import AES_KEY, WecomPusher, message_xml, robot_text

TOKEN = "wecom-app-token"
ROBOT_TOKEN = "wecom-robot-token"
ROBOT_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
RESIDENT = "wmResidentZhang0001"
GROUP = "wrGroupBuilding3"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWechat]:
    async with FakeWechat(external_contacts={RESIDENT: "张阿姨"}) as server:
        yield server


@pytest.fixture
async def wecom(settings: Settings, fake: FakeWechat, aiohttp_client) -> Service:  # type: ignore[no-untyped-def]
    configured = settings.with_overrides(
        wecom=WecomSettings(
            callback=CallbackSecrets(TOKEN, (AES_KEY,)),
            corpid=fake.corpid,
            secret=fake.corp_secret,
            agentid=fake.agentid,
            robot=CallbackSecrets(ROBOT_TOKEN, (ROBOT_KEY,)),
            webhook_key=fake.webhook_key,
            api_base=fake.base_url,
        )
    )
    return await start(aiohttp_client, configured)


def app_pusher(fake: FakeWechat) -> WecomPusher:
    return WecomPusher(TOKEN, AES_KEY, fake.corpid)


def robot_pusher() -> WecomPusher:
    return WecomPusher(ROBOT_TOKEN, ROBOT_KEY, "")


async def tickets(service: Service) -> int:
    await service.client.app[router_key].drain()
    async with service.client.app[sessions_key]() as session:
        return int(await session.scalar(select(func.count()).select_from(Ticket)))


async def test_url_verification_answers_the_decrypted_echostr(
    wecom: Service, fake: FakeWechat
) -> None:
    for path, pusher in (
        ("/channels/wecom", app_pusher(fake)),
        ("/channels/wecom/robot", robot_pusher()),
    ):
        resp = await wecom.client.get(path, params=pusher.verify_url("5927782489442352469"))
        assert (resp.status, await resp.text()) == (200, "5927782489442352469")
        forged = pusher.verify_url("1") | {"msg_signature": "0" * 40}
        assert (await wecom.client.get(path, params=forged)).status == 403


async def test_app_message_becomes_a_ticket_and_the_reply_goes_out_as_an_app_message(
    wecom: Service, fake: FakeWechat
) -> None:
    token = await wecom.login("王建国")
    console = await wecom.console(token)
    call = app_pusher(fake).app_call(message_xml("zhangsan", "text", 8801, Content=LEAK))
    resp = await wecom.client.post("/channels/wecom", params=call.params, data=call.body)
    assert resp.status == 200

    ticket = (await console.event("ticket.created"))["ticket"]
    assert (ticket["channel"], ticket["category"]) == ("wecom", "repair")
    status, _ = await wecom.api(
        "POST", f"/api/tickets/{ticket['id']}/reply", token, json={"text": "我这就过来。"}
    )
    assert status == 200
    sent = [
        (c.body["touser"], c.body["agentid"], c.body["text"]["content"])
        for c in fake.calls(WECOM_SEND)
    ]
    assert ("zhangsan", fake.agentid, "我这就过来。") in sent
    # The bot's line naming him goes out when its turn ends, perhaps after his reply.
    await fake.wait_for(lambda f: any("王建国" in text for text in f.sent_texts("zhangsan")))


async def test_app_message_for_another_corp_is_refused(wecom: Service, fake: FakeWechat) -> None:
    other = WecomPusher(TOKEN, AES_KEY, "ww0another0corp001")
    call = other.app_call(message_xml("zhangsan", "text", 8802, Content=LEAK))
    resp = await wecom.client.post("/channels/wecom", params=call.params, data=call.body)
    assert resp.status == 403
    assert await tickets(wecom) == 0


async def test_group_mention_becomes_a_ticket_answered_once_by_name(
    wecom: Service, fake: FakeWechat
) -> None:
    token = await wecom.login("王建国")
    console = await wecom.console(token)
    payload = robot_text("msg-g-1", RESIDENT, f"@社区小助手 {LEAK}", fake.response_url(), GROUP)
    call = robot_pusher().robot_call(payload)
    resp = await wecom.client.post("/channels/wecom/robot", params=call.params, data=call.body)
    assert resp.status == 200

    ticket = (await console.event("ticket.created"))["ticket"]
    assert (ticket["chat_type"], ticket["resident"]["name"]) == ("group", "张阿姨")
    # The mention is not part of the request; the phone shows masked until revealed.
    assert ticket["text"] == LEAK.replace("13900001234", "139****1234")
    await fake.wait_for(lambda f: len(f.robot_responses) == 1)
    line = fake.robot_responses[0].body["markdown"]["content"]
    assert line.startswith("@张阿姨") and "王建国" in line

    # The robot's answer is spent; a member's reply is kept and the console says so.
    status, reply = await wecom.api(
        "POST", f"/api/tickets/{ticket['id']}/reply", token, json={"text": "马上到"}
    )
    assert (status, reply["delivery"]) == (200, "undeliverable")
    notice = await console.event("message.undelivered")
    assert "13900001234" in notice["notice"]


async def test_group_chatter_to_the_robot_opens_no_ticket_and_gets_no_answer(
    wecom: Service, fake: FakeWechat
) -> None:
    payload = robot_text(
        "msg-g-2", RESIDENT, "@社区小助手 谢谢大家，辛苦了", fake.response_url(), GROUP
    )
    call = robot_pusher().robot_call(payload)
    resp = await wecom.client.post("/channels/wecom/robot", params=call.params, data=call.body)
    assert resp.status == 200
    assert await tickets(wecom) == 0
    assert fake.robot_responses == []


async def test_robot_refuses_bad_signature_and_the_app_receive_id(
    wecom: Service, fake: FakeWechat
) -> None:
    payload = robot_text("msg-g-3", RESIDENT, LEAK, fake.response_url(), GROUP)
    call = robot_pusher().robot_call(payload)
    forged = call.params | {"msg_signature": "0" * 40}
    resp = await wecom.client.post("/channels/wecom/robot", params=forged, data=call.body)
    assert resp.status == 403
    # Encrypted for the app (corpid as receive id), not for the robot.
    wrong = WecomPusher(ROBOT_TOKEN, ROBOT_KEY, fake.corpid).robot_call(payload)
    resp = await wecom.client.post("/channels/wecom/robot", params=wrong.params, data=wrong.body)
    assert resp.status == 403
    resp = await wecom.client.post(
        "/channels/wecom/robot", params=call.params, data=b'{"encrypt": 12}'
    )
    assert resp.status in (400, 403)
    assert await tickets(wecom) == 0


async def test_new_requests_reach_the_members_group_as_a_card(
    wecom: Service, fake: FakeWechat
) -> None:
    call = app_pusher(fake).app_call(message_xml("zhangsan", "text", 8803, Content=LEAK))
    assert (await wecom.client.post("/channels/wecom", params=call.params, data=call.body)).ok
    await wecom.client.app[router_key].drain()
    await wecom.client.app[notifier_key].drain()
    assert len(fake.webhook_messages) == 1
    card = fake.webhook_messages[0].body["markdown"]["content"]
    assert "维修" in card and "3号楼" in card
    # Masked with full-width stars, which markdown does not read as emphasis.
    assert "139＊＊＊＊1234" in card and "13900001234" not in card
    assert "/console/" in card
