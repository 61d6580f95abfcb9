"""A webchat resident is who the server says they are, and a room shows neighbours only what
they may see (issue findings 1-3)."""

from __future__ import annotations

from bot.channels.webchat.identity import COOKIE
from tests.helpers import WAIT_S, Service

PHONE = "13912345678"


async def _socket_status(service: Service, params: dict[str, str], cookie: str = "") -> int:
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    resp = await service.client.get("/webchat/ws", params=params, headers=headers)
    return resp.status


async def test_the_socket_needs_an_identity_the_server_signed(service: Service) -> None:
    # The old way in: an id the page made up.
    assert await _socket_status(service, {"user_id": "abcdefgh12", "name": "张"}) == 401
    real = await service.identity("张阿姨")
    user_id, name, _ = real.split(".")
    forged = f"{user_id}.{name}.{'A' * 43}"
    assert await _socket_status(service, {"chat": "private"}, forged) == 401
    resp = await service.client.get("/webchat/api/session", headers={"Cookie": f"{COOKIE}={real}"})
    assert (resp.status, (await resp.json())["name"]) == (200, "张阿姨")


async def test_the_identity_cookie_is_http_only_and_same_site(service: Service) -> None:
    resp = await service.client.post("/webchat/api/session", json={"name": "钱阿姨"})
    cookie = resp.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/webchat"


async def test_another_browser_cannot_read_or_write_her_private_chat(service: Service) -> None:
    her = await service.resident("张阿姨")
    await her.say(f"我家水管漏水了 电话{PHONE}")
    await her.hear("bot")
    stranger = await service.resident("张阿姨")  # the same name, another identity
    assert stranger.history == []
    assert stranger.user_id != her.user_id


async def test_payloads_carry_no_resident_ids_only_whether_a_line_is_ones_own(
    service: Service,
) -> None:
    me = await service.resident("李大爷", chat="b3")
    neighbour = await service.resident("赵奶奶", chat="b3")
    await me.say("大家早上好")
    mine, theirs = await me.hear("resident"), await neighbour.hear("resident")
    assert "user_id" not in mine and "user_id" not in theirs
    assert mine["own"] is True and theirs["own"] is False
    assert mine["verified"] is False
    again = await service.resident("赵奶奶", chat="b3", cookie=neighbour.cookie)
    assert all("user_id" not in m for m in again.history)
    assert [m["own"] for m in again.history if m["sender_kind"] == "resident"] == [False]


async def test_a_room_needs_its_invite_and_masks_numbers(service: Service) -> None:
    cookie = await service.identity("孙爷爷")
    assert await _socket_status(service, {"chat": "b3"}, cookie) == 404  # the grid's code
    assert (await service.client.get("/webchat/api/rooms")).status == 404  # no public list
    invite = await service.invite("b3")
    room = await service.client.get(f"/webchat/api/rooms/{invite}")
    assert await room.json() == {"id": invite, "name": "3号楼邻里群", "grid": "3号楼"}

    writer = await service.resident("张阿姨", chat="b3")
    reader = await service.resident("孙爷爷", chat="b3", cookie=cookie)
    await writer.say(f"有事打我电话{PHONE} 身份证110101195001011234")
    live = await reader.hear("resident")
    late = await service.resident("周奶奶", chat="b3")
    for text in (live["text"], *(m["text"] for m in late.history)):
        assert PHONE not in text and "19500101" not in text
    assert "139****5678" in live["text"]


async def test_names_of_the_bot_and_of_members_are_reserved(service: Service) -> None:
    for name in ("社区小助手", "王建国", "王 建国", "社区工作人员小王"):
        resp = await service.client.post("/webchat/api/session", json={"name": name})
        body = await resp.json()
        assert resp.status == 400 and body["message"], name
    resp = await service.client.post("/webchat/api/session", json={"name": "张" * 21})
    assert resp.status == 400


async def test_bot_and_member_lines_are_verified(service: Service) -> None:
    token = await service.login("王建国")
    console = await service.console(token)
    resident = await service.resident("张阿姨")
    await resident.say("3号楼2单元的电梯坏了 停在五楼不动")
    bot_line = await resident.hear("bot")
    assert bot_line["verified"] is True
    ticket = (await console.event("ticket.created"))["ticket"]
    await service.api("POST", f"/api/tickets/{ticket['id']}/claim", token)
    await service.api("POST", f"/api/tickets/{ticket['id']}/reply", token, json={"text": "马上到"})
    member_line = await resident.hear("member")
    assert member_line["verified"] is True and member_line["sender_name"] == "王建国"


async def test_a_name_change_renames_only_its_holder(service: Service) -> None:
    resident = await service.resident("钱阿姨")
    headers = {"Cookie": f"{COOKIE}={resident.cookie}"}
    resp = await service.client.post(
        "/webchat/api/session", json={"name": "钱奶奶"}, headers=headers
    )
    renamed = resp.cookies[COOKIE].value
    service.client.session.cookie_jar.clear()
    assert renamed.split(".")[0] == resident.user_id  # the same resident, a new display name
    again = await service.resident("钱奶奶", cookie=renamed)
    await again.say("谢谢你们")
    assert (await again.hear("resident", timeout=WAIT_S))["sender_name"] == "钱奶奶"


async def test_new_identities_from_one_address_are_limited(service: Service) -> None:
    statuses = []
    for n in range(12):
        resp = await service.client.post("/webchat/api/session", json={"name": f"居民{n}"})
        statuses.append(resp.status)
        service.client.session.cookie_jar.clear()
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429, 429]
    assert int(resp.headers["Retry-After"]) > 0 and (await resp.json())["message"]
