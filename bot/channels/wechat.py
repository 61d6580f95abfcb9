"""The WeChat Official Account (公众号): `GET|POST /channels/wechat`.

Plain mode checks `signature`; safe mode (an EncodingAESKey is set) also requires
`encrypt_type=aes`, checks `msg_signature` and decrypts with the appid as receive id.
Everything said to a resident afterwards goes out through the customer-service message API.
"""

from __future__ import annotations

import logging
from typing import Protocol

from aiohttp import web

from bot.channels.callbacks import (
    SUCCESS,
    accept,
    check_plain_signature,
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
from bot.channels.wechat_crypto import MessageCrypto, SignatureError
from bot.channels.wechat_errors import WechatApiError
from bot.channels.wechat_xml import parse_message
from bot.core.chat import ChatMessage, ChatRef
from bot.settings import WechatSettings
from bot.typedefs import settings_key

logger = logging.getLogger(__name__)

CHANNEL = "wechat"


def _settings(request: web.Request) -> WechatSettings:
    settings = request.app[settings_key].wechat
    require_configured(request, settings.callback)
    return settings


async def handshake(request: web.Request) -> web.Response:
    """WeChat checks the URL with a plain signature, in safe mode too, and expects echostr."""
    settings = _settings(request)
    with refusing_bad_input(request):
        check_plain_signature(request, settings.callback.token)
        answer = echostr(request)
    return web.Response(text=answer)


async def callback(request: web.Request) -> web.Response:
    settings = _settings(request)
    crypto = crypto_for(settings.callback, settings.appid)
    body = await request.read()
    with refusing_bad_input(request):
        fields = await _message_fields(request, settings, crypto, body)
        inbound = inbound_from_xml(CHANNEL, fields)
    if inbound is None:
        return web.Response(text=SUCCESS)
    stored = await accept(request.app, inbound)
    if stored is not None and inbound.kind == "subscribe":
        return await welcome(request, fields, inbound, crypto)
    return web.Response(text=SUCCESS)


async def _message_fields(
    request: web.Request, settings: WechatSettings, crypto: MessageCrypto | None, body: bytes
) -> dict[str, str]:
    check_plain_signature(request, settings.callback.token)
    await refuse_replay(request, body)
    if crypto is None:
        return parse_xml_fields(body)
    if request.query.get("encrypt_type") != "aes":
        raise SignatureError("plain message while safe mode is on")
    envelope = parse_message(body)
    return parse_xml_fields(decrypt_signed(request, crypto, envelope["Encrypt"]))


class TextSender(Protocol):
    async def send_text(self, user_id: str, text: str) -> None: ...


class ApiSender:
    """Sends a stored line to one resident through a platform's message API (WeChat's
    customer-service messages, a WeCom app's messages)."""

    def __init__(self, api: TextSender) -> None:
        self._api = api

    async def deliver(self, chat: ChatRef, message: ChatMessage) -> None:
        try:
            await self._api.send_text(chat.user_id, message.text)
        except WechatApiError as error:
            raise delivery_error(error) from None


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/channels/wechat", handshake, name="wechat-handshake")
    app.router.add_post("/channels/wechat", callback, name="wechat-callback")
