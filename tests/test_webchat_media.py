"""Photos and voice clips from the webchat: they reach a person the way WeChat's do (a new
request, or the open one), are kept safely (checked, size-limited, randomly named, fetched only
by members who may see the ticket), and go with the words when the conversation expires."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientResponse
from sqlalchemy import func, select

from bot.app import UPLOADS_PER_HOUR
from bot.channels.webchat.identity import COOKIE
from bot.conversation.media import MAX_BYTES, MAX_UPLOAD
from bot.core.clock import FakeClock
from bot.db.models import MediaFile, Message
from bot.retention import RetentionJob
from bot.typedefs import sessions_key
from tests.helpers import Chat, Service, request_reaches

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + bytes(range(256)) * 8
LEAK = "我家厨房水管漏水了，3号楼2单元501"


async def upload(
    service: Service,
    cookie: str | None,
    body: bytes | io.BytesIO | AsyncIterator[bytes],
    content_type: str,
    *,
    chat: str = "private",
    client_id: str = "clip-1",
    **headers: str,
) -> ClientResponse:
    sent = {"Content-Type": content_type, **headers}
    if cookie is not None:
        sent["Cookie"] = f"{COOKIE}={cookie}"
    return await service.client.post(
        "/webchat/api/media", params={"chat": chat, "id": client_id}, data=body, headers=sent
    )


async def count(service: Service, model: Any) -> int:
    async with service.client.app[sessions_key]() as session:
        return int(await session.scalar(select(func.count()).select_from(model)))


async def fetch(service: Service, url: str, token: str | None) -> ClientResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await service.client.get(url, headers=headers)


async def test_a_photo_starts_a_request_a_person_sees(service: Service) -> None:
    secretary = await service.login("陈红梅")
    console = await service.console(secretary)
    resident = await service.resident("周阿姨")

    resp = await upload(service, resident.cookie, JPEG, "image/jpeg")

    assert resp.status == 201
    own = await resident.hear("resident")
    assert (own["kind"], own["own"], own["text"]) == ("image", True, "")
    ticket = (await console.event("ticket.created"))["ticket"]
    assert ticket["category"] == "unclassified"
    said = (await resident.hear("bot"))["text"]
    assert "陈红梅" in said
    _, detail = await service.api("GET", f"/api/tickets/{ticket['id']}", secretary)
    photo = detail["messages"][0]["media"]
    assert photo["format"] == "image/jpeg" and photo["url"].startswith("/api/media/")
    assert len(photo["media_id"]) >= 24  # random: the name says nothing

    shown = await fetch(service, photo["url"], secretary)
    assert (shown.status, shown.content_type) == (200, "image/jpeg")
    assert await shown.read() == JPEG
    assert shown.headers["Cache-Control"] == "private, no-store"
    # Only members who may see the ticket: not another grid's member, not the operator.
    assert (await fetch(service, photo["url"], await service.login("张志强"))).status == 403
    assert (await fetch(service, photo["url"], await service.login("周晓燕"))).status == 403
    assert (await fetch(service, photo["url"], None)).status == 401
    assert (await fetch(service, "/api/media/not-a-token", secretary)).status == 404


async def test_a_voice_clip_joins_the_open_request(service: Service) -> None:
    resident = await service.resident("张阿姨")
    wang, ticket = await request_reaches(service, resident, LEAK)
    console = await service.console(wang)

    resp = await upload(service, resident.cookie, WEBM, "audio/webm;codecs=opus")

    assert resp.status == 201
    relayed = await console.resident_wrote()
    assert relayed["ticket"]["id"] == ticket["id"]
    clip = relayed["message"]
    assert (clip["kind"], clip["text"], clip["media"]["format"]) == ("voice", "", "audio/webm")
    heard = await fetch(service, clip["media"]["url"], wang)
    assert (heard.status, heard.content_type, await heard.read()) == (200, "audio/webm", WEBM)
    assert await resident.hears_nothing_from("bot")


async def test_in_a_room_neighbours_see_that_a_photo_was_sent_not_where_it_is_kept(
    service: Service,
) -> None:
    resident = await service.resident("张阿姨", chat="b3")
    neighbour = await service.resident("赵奶奶", chat="b3")

    resp = await upload(
        service, resident.cookie, JPEG, "image/jpeg", chat=await service.invite("b3")
    )

    assert resp.status == 201
    seen = await neighbour.hear("resident")
    assert (seen["kind"], seen["own"], seen["sender_name"]) == ("image", False, "张阿姨")
    fetched = await fetch(service, seen["media"]["url"], None)
    assert fetched.status == 401


async def test_a_resent_upload_is_kept_once(service: Service) -> None:
    resident = await service.resident("周阿姨")
    first = await upload(service, resident.cookie, JPEG, "image/jpeg", client_id="same")
    again = await upload(service, resident.cookie, JPEG, "image/jpeg", client_id="same")

    assert (first.status, again.status) == (201, 200)
    assert (await again.json())["message_id"] is None
    await service.settle()
    assert await count(service, MediaFile) == 1


async def test_bad_uploads_get_a_clear_4xx_and_keep_nothing(service: Service) -> None:
    resident = await service.resident("周阿姨")
    cookie = resident.cookie
    before = await count(service, Message)
    too_big = b"\xff\xd8\xff" + bytes(MAX_BYTES["image"])

    async def streamed() -> AsyncIterator[bytes]:
        """No length said beforehand: refused once what came is over the limit."""
        for _ in range(MAX_UPLOAD // len(JPEG) + 2):
            yield JPEG

    cases = [
        (await upload(service, None, JPEG, "image/jpeg"), 401),
        (await upload(service, cookie, JPEG, "image/jpeg", chat="no-such-room"), 404),
        (await upload(service, cookie, JPEG, "image/jpeg", client_id="a b"), 400),
        (await upload(service, cookie, b"", "image/jpeg"), 400),
        (await upload(service, cookie, b"<svg onload=alert(1)>", "image/svg+xml"), 415),
        (await upload(service, cookie, b"just words", "text/plain"), 415),
        # A photo that says it is a voice clip, a clip that says it is a photo.
        (await upload(service, cookie, JPEG, "audio/webm"), 415),
        (await upload(service, cookie, WEBM, "image/jpeg"), 415),
        (await upload(service, cookie, io.BytesIO(too_big), "image/jpeg"), 413),
        (await upload(service, cookie, streamed(), "image/jpeg"), 413),
        (await upload(service, cookie, JPEG, "image/jpeg", Origin="https://evil.example"), 403),
    ]
    for resp, status in cases:
        body = await resp.json()
        assert (resp.status, bool(body["message"])) == (status, True), (status, body)
    assert (await cases[5][0].json())["message"] == "只能发照片或语音。"
    assert (await cases[8][0].json())["message"].startswith("太大了")
    await service.settle()
    assert await count(service, Message) == before
    assert await count(service, MediaFile) == 0


async def test_a_resident_sending_too_many_photos_is_told_so_and_when_to_send_again(
    timed: Service, clock: FakeClock
) -> None:
    resident = await timed.resident("周阿姨")
    for n in range(UPLOADS_PER_HOUR):
        sent = await upload(timed, resident.cookie, JPEG, "image/jpeg", client_id=f"p{n}")
        assert sent.status in (200, 201)
    clock.advance(minutes=10)

    held = await upload(timed, resident.cookie, JPEG, "image/jpeg", client_id="one-more")
    assert (held.status, held.headers["Retry-After"]) == (429, "3000")
    assert (await held.json())["message"] == "照片和语音发得太多了，请 50 分钟后再试。"
    await timed.settle()
    assert await count(timed, MediaFile) == UPLOADS_PER_HOUR


@pytest.fixture
def clock() -> FakeClock:
    # Rows are stamped with the wall clock: the fake one starts there.
    return FakeClock(datetime.now(UTC))


async def closed_photo_request(service: Service, resident: Chat) -> str:
    """The resident's photo went to 陈红梅, who resolved it; the resident rated it: the
    conversation has ended. Returns the photo's address."""
    secretary = await service.login("陈红梅")
    console = await service.console(secretary)
    await upload(service, resident.cookie, JPEG, "image/jpeg")
    ticket = (await console.event("ticket.created"))["ticket"]
    await service.settle()
    await service.api("POST", f"/api/tickets/{ticket['id']}/resolve", secretary, json={})
    await resident.say("满意")
    await service.settle()
    _, detail = await service.api("GET", f"/api/tickets/{ticket['id']}", secretary)
    assert detail["status"] == "closed"
    return str(detail["messages"][0]["media"]["url"])


async def test_photos_expire_with_the_words_of_their_conversation(
    timed: Service, clock: FakeClock
) -> None:
    url = await closed_photo_request(timed, await timed.resident("周阿姨"))
    async with timed.client.app[sessions_key]() as session, session.begin():
        # An upload whose message was never stored (the worker stopped in between).
        session.add(MediaFile(token="orphan", content_type="image/jpeg", size=3, data=b"abc"))
    job = RetentionJob(timed.client.app[sessions_key], clock, timed.settings.retention_days)
    assert (await job.run_once()).media_files == 0  # too recent

    clock.advance(days=timed.settings.retention_days + 1)
    erased = await job.run_once()

    assert erased.media_files == 2
    assert await count(timed, MediaFile) == 0
    secretary = await timed.login("陈红梅")
    assert (await fetch(timed, url, secretary)).status == 404
