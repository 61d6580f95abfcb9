"""WeCom (企业微信): the app callback `GET|POST /channels/wecom`, and the intelligent robot that
sits in residents' group chats, `GET|POST /channels/wecom/robot`.

Both are always encrypted. The app uses the corpid as receive id and speaks XML like the
Official Account; the robot uses an empty receive id and speaks JSON. The robot hears a group
only when @-mentioned, and may answer each message once through its `response_url`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web
from sqlalchemy.orm import sessionmaker

from bot.channels.callbacks import (
    accept,
    crypto_for,
    decrypt_signed,
    delivery_error,
    echostr,
    inbound_from_xml,
    parse_xml_fields,
    refuse_replay,
    refusing_bad_input,
    require_configured,
    welcome,
)
from bot.channels.wechat_crypto import MessageCrypto
from bot.channels.wechat_errors import WechatApiError
from bot.channels.wechat_xml import parse_message
from bot.conversation.messages import latest_reply_handle, spend_reply_handle
from bot.core.chat import ChatMessage, ChatRef, Inbound, Media, Undeliverable
from bot.settings import CallbackSecrets
from bot.typedefs import resident_names_key, settings_key

logger = logging.getLogger(__name__)

CHANNEL = "wecom"
ROBOT_CHANNEL = "wecom-robot"
# How a group message starts when it @-mentions the robot.
MENTION = re.compile(r"^\s*@\S+\s*")

# Posts markdown to a robot's response_url.
RobotPoster = Callable[[str, str], Awaitable[None]]


def _crypto(request: web.Request, keys: CallbackSecrets, receive_id: str) -> MessageCrypto:
    require_configured(request, keys)
    crypto = crypto_for(keys, receive_id)
    if crypto is None:
        logger.warning("%s has a token but no AES key; WeCom always encrypts", request.path)
        raise web.HTTPNotFound(text="channel not configured")
    return crypto


def _app_crypto(request: web.Request) -> MessageCrypto:
    settings = request.app[settings_key].wecom
    return _crypto(request, settings.callback, settings.corpid)


def _robot_crypto(request: web.Request) -> MessageCrypto:
    return _crypto(request, request.app[settings_key].wecom.robot, "")


async def _verify_url(request: web.Request, crypto: MessageCrypto) -> web.Response:
    """WeCom checks a callback URL with an encrypted echostr; the answer is its plaintext."""
    with refusing_bad_input(request):
        plain = decrypt_signed(request, crypto, echostr(request)).decode("utf-8")
    return web.Response(text=plain)


async def app_handshake(request: web.Request) -> web.Response:
    return await _verify_url(request, _app_crypto(request))


async def robot_handshake(request: web.Request) -> web.Response:
    return await _verify_url(request, _robot_crypto(request))


async def app_callback(request: web.Request) -> web.Response:
    crypto = _app_crypto(request)
    body = await request.read()
    with refusing_bad_input(request):
        envelope = parse_message(body)
        fields = parse_xml_fields(decrypt_signed(request, crypto, envelope["Encrypt"]))
        await refuse_replay(request, body)
        inbound = inbound_from_xml(CHANNEL, fields)
    if inbound is None:
        return web.Response(text="")
    inbound = replace(inbound, user_name=await request.app[resident_names_key].name(inbound))
    stored = await accept(request.app, inbound)
    if stored is not None and inbound.kind == "subscribe":
        return await welcome(request, fields, inbound, crypto)
    return web.Response(text="")


async def robot_callback(request: web.Request) -> web.Response:
    crypto = _robot_crypto(request)
    body = await request.read()
    with refusing_bad_input(request):
        envelope = json.loads(body.decode("utf-8"))
        if not isinstance(envelope, dict) or not isinstance(envelope.get("encrypt"), str):
            raise ValueError("no encrypt field")
        payload = json.loads(decrypt_signed(request, crypto, envelope["encrypt"]))
        await refuse_replay(request, body)
        inbound = inbound_from_robot(payload)
    if inbound is None:
        return web.Response(text="")
    inbound = replace(inbound, user_name=await request.app[resident_names_key].name(inbound))
    await accept(request.app, inbound)
    return web.Response(text="")


def inbound_from_robot(payload: Any) -> Inbound | None:
    """A robot callback as an `Inbound`; None for what we do not act on (files, events)."""
    if not isinstance(payload, dict):
        raise ValueError("robot payload is not an object")
    user = payload["from"]["userid"]
    if payload.get("chattype") == "group":
        chat = ChatRef(ROBOT_CHANNEL, "group", payload["chatid"], user)
    else:
        chat = ChatRef(ROBOT_CHANNEL, "private", user, user)
    base: dict[str, Any] = {
        "chat": chat,
        "platform_msg_id": payload["msgid"],
        "user_name": "",
        "reply_handle": payload.get("response_url"),
    }
    kind = payload.get("msgtype")
    if kind == "text":
        return Inbound(**base, text=_without_mention(payload["text"]["content"]))
    if kind == "mixed":
        return Inbound(**base, text=_without_mention(_mixed_text(payload["mixed"])))
    if kind == "voice":
        return Inbound(**base, text=payload["voice"].get("content", ""), kind="voice")
    if kind == "image":
        return Inbound(**base, text="", kind="image", media=Media(url=payload["image"]["url"]))
    logger.info("robot %s message not handled", kind)
    return None


def _without_mention(text: str) -> str:
    return MENTION.sub("", text, count=1)


def _mixed_text(mixed: dict[str, Any]) -> str:
    items = mixed.get("msg_item", [])
    return " ".join(i["text"]["content"] for i in items if i.get("msgtype") == "text")


class RobotSender:
    """Answers in a robot chat through the response_url of the resident's latest message.
    Each is good for one answer; with none left, a member must answer in the group."""

    def __init__(self, sessions: sessionmaker, post: RobotPoster) -> None:
        self._sessions = sessions
        self._post = post

    async def deliver(self, chat: ChatRef, message: ChatMessage) -> None:
        async with self._sessions() as session, session.begin():
            handle = await latest_reply_handle(session, chat)
            if handle is not None:
                await spend_reply_handle(session, handle[0])
        if handle is None:
            raise Undeliverable("no response_url left for this chat")
        try:
            await self._post(handle[1], message.text)
        except WechatApiError as error:
            raise delivery_error(error) from None


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/channels/wecom", app_handshake, name="wecom-handshake")
    app.router.add_post("/channels/wecom", app_callback, name="wecom-callback")
    app.router.add_get("/channels/wecom/robot", robot_handshake, name="wecom-robot-handshake")
    app.router.add_post("/channels/wecom/robot", robot_callback, name="wecom-robot-callback")
