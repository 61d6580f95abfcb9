"""Who a webchat resident is: an id the server issues and signs into an HttpOnly cookie, never
one the page chooses. The display name rides in the same signed cookie; it names only its
holder, and names that would pass for the bot or a party member are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from aiohttp import web

COOKIE = "webchat_id"
COOKIE_PATH = "/webchat"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie
MAX_NAME = 20
# Words that only the bot or the branch's own people may carry in a name.
RESERVED_WORDS = ("小助手", "社区工作人员", "工作人员", "网格员", "书记", "客服", "官方", "管理员")


@dataclass(frozen=True)
class WebchatResident:
    user_id: str
    name: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ResidentCookies:
    def __init__(self, key: bytes, secure: bool) -> None:
        self._key = key
        self._secure = secure

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def read(self, request: web.Request) -> WebchatResident | None:
        value = request.cookies.get(COOKIE, "")
        payload, _, signature = value.rpartition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        user_id, _, name = payload.partition(".")
        try:
            return WebchatResident(user_id, _unb64(name).decode())
        except (ValueError, UnicodeDecodeError):
            return None

    def issue(self, response: web.StreamResponse, resident: WebchatResident) -> None:
        payload = f"{resident.user_id}.{_b64(resident.name.encode())}"
        response.set_cookie(
            COOKIE,
            f"{payload}.{self._sign(payload)}",
            max_age=COOKIE_MAX_AGE,
            path=COOKIE_PATH,
            httponly=True,
            samesite="Strict",
            secure=self._secure,
        )


def new_user_id() -> str:
    return secrets.token_urlsafe(12)


def name_is_reserved(name: str, taken: set[str]) -> bool:
    """The bot's or a member's name, or words that would pass for the branch's people."""
    squeezed = "".join(name.split())
    return squeezed in taken or any(word in squeezed for word in RESERVED_WORDS)
