"""Hostile or broken callbacks get a clear 4xx, are logged, and change nothing."""

from __future__ import annotations

import base64
import logging
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import func, select

from bot.channels.wechat_crypto import MessageCrypto, sha1_signature
from bot.channels.wechat_xml import render_message
from bot.db.models import Message
from bot.settings import Settings
from bot.typedefs import router_key, sessions_key
from tests.fake_wechat import FakeWechat
from tests.helpers import Service
from tests.test_wechat_channel import OPENID, TOKEN, start, wechat_settings
from tests.wechat_pusher import AES_KEY, WechatPusher, text_xml


@pytest.fixture
async def fake() -> AsyncIterator[FakeWechat]:
    async with FakeWechat() as server:
        yield server


@pytest.fixture
async def plain(settings: Settings, fake: FakeWechat, aiohttp_client) -> Service:  # type: ignore[no-untyped-def]
    return await start(aiohttp_client, wechat_settings(settings, fake))


@pytest.fixture
async def safe(settings: Settings, fake: FakeWechat, aiohttp_client) -> Service:  # type: ignore[no-untyped-def]
    return await start(aiohttp_client, wechat_settings(settings, fake, (AES_KEY,)))


def fresh() -> dict[str, str]:
    """A current timestamp and a nonce of its own, as WeChat stamps each call."""
    return {"timestamp": str(int(time.time())), "nonce": secrets.token_hex(5)}


def signed(body: bytes) -> dict[str, str]:
    params = fresh()
    params["signature"] = sha1_signature(TOKEN, params["timestamp"], params["nonce"])
    return params


async def post_raw(service: Service, params: dict[str, str], body: bytes) -> int:
    resp = await service.client.post("/channels/wechat", params=params, data=body)
    return resp.status


async def stored_messages(service: Service) -> int:
    await service.client.app[router_key].drain()
    async with service.client.app[sessions_key]() as session:
        return int(await session.scalar(select(func.count()).select_from(Message)))


def encrypted_call(crypto_text: str, token: str = TOKEN) -> tuple[dict[str, str], bytes]:
    params = {**fresh(), "encrypt_type": "aes"}
    params["signature"] = sha1_signature(token, params["timestamp"], params["nonce"])
    params["msg_signature"] = sha1_signature(
        token, params["timestamp"], params["nonce"], crypto_text
    )
    body = render_message({"ToUserName": "gh_community", "Encrypt": crypto_text})
    return params, body.encode()


async def test_missing_or_wrong_signature_is_403(plain: Service, caplog) -> None:  # type: ignore[no-untyped-def]
    xml = text_xml(OPENID, "水管漏了", 1).encode()
    caplog.set_level(logging.WARNING, logger="bot.channels.callbacks")
    assert await post_raw(plain, {}, xml) == 403
    wrong = signed(xml) | {"signature": "0" * 40}
    assert await post_raw(plain, wrong, xml) == 403
    assert "refused" in caplog.text
    assert await stored_messages(plain) == 0


async def test_doctype_external_entity_is_400_and_reads_no_file(
    plain: Service, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file://{secret}">]>'
        f"<xml><ToUserName>gh</ToUserName><FromUserName>{OPENID}</FromUserName>"
        "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&x;</Content>"
        "<MsgId>9</MsgId></xml>"
    ).encode()
    assert await post_raw(plain, signed(xxe), xxe) == 400
    assert await stored_messages(plain) == 0


async def test_entity_expansion_is_400(plain: Service) -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "hahahahahaha">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b"<xml><Content>&c;</Content></xml>"
    )
    assert await post_raw(plain, signed(laughs), laughs) == 400


async def test_body_over_64_kib_is_413(plain: Service) -> None:
    huge = text_xml(OPENID, "漏" * 30_000, 2).encode()
    assert len(huge) > 64 * 1024
    assert await post_raw(plain, signed(huge), huge) == 413
    assert await stored_messages(plain) == 0


async def test_invalid_utf8_and_broken_xml_are_400(plain: Service) -> None:
    broken = text_xml(OPENID, "水管", 3).encode().replace("水".encode(), b"\xff\xfe\xfd")
    assert await post_raw(plain, signed(broken), broken) == 400
    truncated = text_xml(OPENID, "水管", 4).encode()[:-10]
    assert await post_raw(plain, signed(truncated), truncated) == 400
    assert await stored_messages(plain) == 0


async def test_unknown_message_type_is_acknowledged_and_logged(plain: Service, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="bot.channels.callbacks")
    video = render_message(
        {
            "ToUserName": "gh",
            "FromUserName": OPENID,
            "CreateTime": 1,
            "MsgType": "shortvideo",
            "MediaId": "m",
            "MsgId": 5,
        }
    ).encode()
    resp = await plain.client.post("/channels/wechat", params=signed(video), data=video)
    assert (resp.status, await resp.text()) == (200, "success")
    assert "shortvideo message" in caplog.text
    assert await stored_messages(plain) == 0


async def test_undecryptable_payload_is_400(safe: Service) -> None:
    params, body = encrypted_call("this is not base64 ciphertext!!")
    assert await post_raw(safe, params, body) == 400
    assert await stored_messages(safe) == 0


async def test_message_for_another_appid_is_403(safe: Service) -> None:
    other = MessageCrypto(TOKEN, [AES_KEY], "wx0another0app00001")
    params, body = encrypted_call(other.encrypt(text_xml(OPENID, "你好", 6).encode()))
    assert await post_raw(safe, params, body) == 403
    assert await stored_messages(safe) == 0


async def test_bad_padding_is_400(safe: Service, fake: FakeWechat) -> None:
    key = base64.b64decode(AES_KEY + "=")
    plain = b"0" * 16 + (5).to_bytes(4, "big") + b"hello" + fake.appid.encode()
    # Pad to a multiple of 32 with a pad byte of 0, which PKCS#7 never produces.
    padded = plain + b"\x00" * (32 - len(plain) % 32)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    crypto_text = base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()
    params, body = encrypted_call(crypto_text)
    assert await post_raw(safe, params, body) == 400


async def test_wrong_msg_signature_in_safe_mode_is_403(safe: Service, fake: FakeWechat) -> None:
    pusher = WechatPusher(TOKEN, fake.appid, AES_KEY)
    call = pusher.call(text_xml(OPENID, "你好", 7))
    params = call.params | {"msg_signature": "f" * 40}
    assert await post_raw(safe, params, call.body) == 403
    assert await stored_messages(safe) == 0


async def test_an_unconfigured_channel_is_404(service: Service) -> None:
    xml = text_xml(OPENID, "你好", 8).encode()
    assert await post_raw(service, signed(xml), xml) == 404


async def test_a_signed_query_from_long_ago_is_refused(plain: Service, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, logger="bot.channels.callbacks")
    xml = text_xml(OPENID, "水管漏了", 11).encode()
    old = {"timestamp": "978307200", "nonce": "n2001"}  # 2001-01-01
    old["signature"] = sha1_signature(TOKEN, old["timestamp"], old["nonce"])
    assert await post_raw(plain, old, xml) == 403
    early = {"timestamp": str(int(time.time()) + 301), "nonce": "n-future"}
    early["signature"] = sha1_signature(TOKEN, early["timestamp"], early["nonce"])
    assert await post_raw(plain, early, xml) == 403
    assert "timestamp" in caplog.text
    assert await stored_messages(plain) == 0


async def test_a_captured_query_cannot_carry_another_body(plain: Service) -> None:
    genuine = text_xml(OPENID, "水管漏了", 12).encode()
    query = signed(genuine)
    assert await post_raw(plain, query, genuine) == 200
    forged = text_xml("o-attacker", "我是王建国，把工单转给我", 13).encode()
    assert await post_raw(plain, query, forged) == 403
    # WeChat's own retry repeats query and body: answered, stored once.
    assert await post_raw(plain, query, genuine) == 200
    await plain.client.app[router_key].drain()
    async with plain.client.app[sessions_key]() as session:
        senders = (
            await session.scalars(select(Message.conversation_id).where(Message.direction == "in"))
        ).all()
    assert senders == [f"wechat:{OPENID}"]
