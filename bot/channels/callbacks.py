"""What the WeChat-family callbacks share: checking who is calling, reading and decrypting the
body, turning an XML message into an `Inbound`, and answering bad input with a clear 4xx.

WeChat gives up on a callback after 5 seconds and retries it three times; every channel here
stores the message, answers at once, and routes it in the background.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from bot.channels.wechat_crypto import (
    DecryptError,
    MessageCrypto,
    ReceiverError,
    SignatureError,
    check_signature,
)
from bot.channels.wechat_errors import ApiUnavailable, WechatApiError
from bot.channels.wechat_xml import XmlError, parse_message, render_message
from bot.core.chat import ChatRef, DeliveryFailed, Inbound, Media, StoredInbound, Undeliverable
from bot.settings import CallbackSecrets
from bot.typedefs import delivery_key, intake_key, replay_key

logger = logging.getLogger(__name__)

FOLLOW_EVENTS = {"subscribe", "unsubscribe"}
SUCCESS = "success"
WELCOME_TEXT = (
    "您好，欢迎关注社区暖心助手！有事直接在这里说，打字、发语音、发照片都行，"
    "社区的党员志愿者会亲自回复您。"
)


@contextmanager
def refusing_bad_input(request: web.Request) -> Iterator[None]:
    """Protocol failures become 4xx with a log line; nothing half-done is kept."""
    try:
        yield
    except (SignatureError, ReceiverError) as refused:
        logger.warning("%s %s refused: %s", request.method, request.path, refused)
        raise web.HTTPForbidden(text="forbidden") from None
    except (DecryptError, ValueError) as bad:
        # XmlError, UnicodeDecodeError and JSONDecodeError are ValueErrors too.
        logger.warning("%s %s bad input: %s", request.method, request.path, bad)
        raise web.HTTPBadRequest(text="bad request") from None
    except KeyError as missing:
        logger.warning("%s %s lacks %s", request.method, request.path, missing)
        raise web.HTTPBadRequest(text="bad request") from None


def require_configured(request: web.Request, keys: CallbackSecrets) -> None:
    if not keys.configured:
        logger.warning("%s called but the channel is not configured", request.path)
        raise web.HTTPNotFound(text="channel not configured")


def query(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise SignatureError(f"missing {name}")
    return value


def check_plain_signature(request: web.Request, token: str) -> None:
    check_signature(
        query(request, "signature"), token, query(request, "timestamp"), query(request, "nonce")
    )


async def refuse_replay(request: web.Request, body: bytes) -> None:
    """A stale timestamp or a nonce reused with another body (`bot.channels.replay`)."""
    await request.app[replay_key].check(
        request.path, query(request, "timestamp"), query(request, "nonce"), body
    )


def echostr(request: web.Request) -> str:
    # A '+' of base64 that arrived unescaped was decoded as a space on its way here.
    return query(request, "echostr").replace(" ", "+")


def decrypt_signed(request: web.Request, crypto: MessageCrypto, encrypted: str) -> bytes:
    return crypto.verify_and_decrypt(
        query(request, "msg_signature"),
        query(request, "timestamp"),
        query(request, "nonce"),
        encrypted,
    )


def crypto_for(keys: CallbackSecrets, receive_id: str) -> MessageCrypto | None:
    if not keys.aes_keys:
        return None
    return MessageCrypto(keys.token, keys.aes_keys, receive_id)


def inbound_from_xml(channel: str, fields: Mapping[str, str]) -> Inbound | None:
    """A WeChat or WeCom app message as an `Inbound`; None for what we do not act on."""
    user = fields["FromUserName"]
    created = fields["CreateTime"]
    chat = ChatRef(channel, "private", user, user)
    kind = fields["MsgType"]
    # Events carry no MsgId; the sender and second of the event identify a retry (with the
    # event's name, so that leaving and coming back within a second are two events).
    msg_id = fields.get("MsgId") or f"{user}:{created}:{fields.get('Event', '')}"
    base: dict[str, Any] = {"chat": chat, "platform_msg_id": msg_id, "user_name": ""}
    if kind == "text":
        return Inbound(**base, text=fields.get("Content", ""))
    if kind == "voice":
        media = Media(media_id=fields.get("MediaId", ""), format=fields.get("Format", ""))
        return Inbound(**base, text=fields.get("Recognition", ""), kind="voice", media=media)
    if kind == "image":
        media = Media(media_id=fields.get("MediaId", ""), url=fields.get("PicUrl", ""))
        return Inbound(**base, text="", kind="image", media=media)
    if kind == "location":
        media = Media(
            latitude=float(fields["Location_X"]),
            longitude=float(fields["Location_Y"]),
            label=fields.get("Label", ""),
        )
        return Inbound(**base, text=media.label, kind="location", media=media)
    if kind == "event" and fields.get("Event") in FOLLOW_EVENTS:
        if fields["Event"] == "subscribe":
            return Inbound(**base, text="", kind="subscribe")
        return Inbound(**base, text="", kind="unsubscribe")
    logger.info("%s: %s message (%s) not handled", channel, kind, fields.get("Event", "-"))
    return None


def parse_xml_fields(body: bytes) -> dict[str, str]:
    fields = parse_message(body)
    for required in ("FromUserName", "CreateTime", "MsgType"):
        if not fields.get(required):
            raise XmlError(f"no {required}")
    return fields


def delivery_error(error: WechatApiError) -> Exception:
    """A platform's refusal as the delivery outcome: worth retrying later, or not at all
    (45015/45047: the window is closed or the quota used; a spent response_url)."""
    if isinstance(error, ApiUnavailable):
        return DeliveryFailed(str(error))
    return Undeliverable(str(error))


async def accept(app: web.Application, inbound: Inbound) -> StoredInbound | None:
    """Store before acknowledging; route after. None for a retry already stored."""
    return await app[intake_key].accept(inbound)


async def welcome(
    request: web.Request,
    fields: Mapping[str, str],
    inbound: Inbound,
    crypto: MessageCrypto | None,
) -> web.Response:
    """Greet a new follower in the callback's own answer: it arrives at once and costs none of
    the few customer-service messages a resident's 48-hour window allows."""
    await request.app[delivery_key].record(inbound.chat, WELCOME_TEXT)
    reply = render_message(
        {
            "ToUserName": fields["FromUserName"],
            "FromUserName": fields.get("ToUserName", ""),
            "CreateTime": int(time.time()),
            "MsgType": "text",
            "Content": WELCOME_TEXT,
        }
    )
    if crypto is not None:
        reply = crypto.encrypt_reply_xml(reply, str(int(time.time())), secrets.token_hex(8))
    return web.Response(text=reply, content_type="application/xml")
