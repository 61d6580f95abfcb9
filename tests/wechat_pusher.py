"""Plays WeChat's and WeCom's servers calling our callbacks: signed, and encrypted when the
account is in safe mode. Used by the tests and by `bench/wechat_callback.py`."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from bot.channels.wechat_crypto import MessageCrypto, sha1_signature
from bot.channels.wechat_xml import parse_message, render_message

ACCOUNT = "gh_community"
# Test keys: 43 characters of EncodingAESKey each, as the platforms issue them.
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


def text_xml(openid: str, content: str, msg_id: int, created: int | None = None) -> str:
    return render_message(
        {
            "ToUserName": ACCOUNT,
            "FromUserName": openid,
            "CreateTime": created or int(time.time()),
            "MsgType": "text",
            "Content": content,
            "MsgId": msg_id,
        }
    )


def message_xml(openid: str, msg_type: str, msg_id: int | None, **fields: str | int) -> str:
    """Any message or event; events have no MsgId (pass None)."""
    values: dict[str, str | int] = {
        "ToUserName": ACCOUNT,
        "FromUserName": openid,
        "CreateTime": int(fields.pop("CreateTime", time.time())),
        "MsgType": msg_type,
        **fields,
    }
    if msg_id is not None:
        values["MsgId"] = msg_id
    return render_message(values)


@dataclass
class SignedCall:
    params: dict[str, str]
    body: bytes


@dataclass
class WechatPusher:
    """Builds the query and body WeChat would send to `/channels/wechat`."""

    token: str
    appid: str
    aes_key: str | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(7_000_000_000_000))

    def next_msg_id(self) -> int:
        return next(self._ids)

    def handshake(self, echostr: str = "hello-wechat") -> dict[str, str]:
        params = self._stamp()
        params["signature"] = sha1_signature(self.token, params["timestamp"], params["nonce"])
        params["echostr"] = echostr
        return params

    def call(self, xml: str) -> SignedCall:
        params = self._stamp()
        params["signature"] = sha1_signature(self.token, params["timestamp"], params["nonce"])
        if self.aes_key is None:
            return SignedCall(params, xml.encode())
        crypto = MessageCrypto(self.token, [self.aes_key], self.appid)
        encrypted = crypto.encrypt(xml.encode())
        params["encrypt_type"] = "aes"
        params["msg_signature"] = crypto.signature(params["timestamp"], params["nonce"], encrypted)
        envelope = render_message({"ToUserName": ACCOUNT, "Encrypt": encrypted})
        return SignedCall(params, envelope.encode())

    def read_reply(self, body: str) -> dict[str, str]:
        """A passive reply as the resident's WeChat would show it (decrypted in safe mode)."""
        fields = parse_message(body.encode())
        if self.aes_key is None:
            return fields
        crypto = MessageCrypto(self.token, [self.aes_key], self.appid)
        plain = crypto.verify_and_decrypt(
            fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"]
        )
        return parse_message(plain)

    @staticmethod
    def _stamp() -> dict[str, str]:
        return {"timestamp": str(int(time.time())), "nonce": secrets.token_hex(5)}


@dataclass
class WecomPusher:
    """Builds WeCom's encrypted calls: the app (XML, corpid) and the robot (JSON, no id)."""

    token: str
    aes_key: str
    receive_id: str

    @property
    def crypto(self) -> MessageCrypto:
        return MessageCrypto(self.token, [self.aes_key], self.receive_id)

    def verify_url(self, echostr: str) -> dict[str, str]:
        encrypted = self.crypto.encrypt(echostr.encode())
        return self._signed(encrypted) | {"echostr": encrypted}

    def app_call(self, xml: str, agent_id: int = 1000002) -> SignedCall:
        encrypted = self.crypto.encrypt(xml.encode())
        envelope = render_message(
            {"ToUserName": self.receive_id, "AgentID": agent_id, "Encrypt": encrypted}
        )
        return SignedCall(self._signed(encrypted), envelope.encode())

    def robot_call(self, payload: dict[str, Any]) -> SignedCall:
        encrypted = self.crypto.encrypt(json.dumps(payload, ensure_ascii=False).encode())
        return SignedCall(self._signed(encrypted), json.dumps({"encrypt": encrypted}).encode())

    def _signed(self, encrypted: str) -> dict[str, str]:
        params = WechatPusher._stamp()
        params["msg_signature"] = self.crypto.signature(
            params["timestamp"], params["nonce"], encrypted
        )
        return params


def robot_text(
    msgid: str, userid: str, content: str, response_url: str, chatid: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "msgid": msgid,
        "aibotid": "AIBOT_COMMUNITY",
        "chattype": "group" if chatid else "single",
        "from": {"userid": userid},
        "response_url": response_url,
        "msgtype": "text",
        "text": {"content": content},
    }
    if chatid:
        payload["chatid"] = chatid
    return payload
