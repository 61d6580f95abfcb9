"""Async clients for the WeChat Official Account and WeCom HTTP APIs the service calls.

Every client runs on one shared `aiohttp.ClientSession` handed in by the app; none is created
here. All calls follow one policy:

- An access token per app comes from one `AccessTokenCache` (`bot.channels.wechat_tokens`):
  fetched once, refreshed shortly before it expires, and refreshed when an API answers
  40001 / 42001 / 40014, after which the call is tried again.
- HTTP 5xx, timeouts, connection errors and answers that are not JSON are tried again after a
  short, growing pause.
- At most `attempts` tries in all. Then `ApiUnavailable` (errcode -1) when the transport
  failed, or `WechatApiError` with the token errcode when the token kept being refused.
- Business errors are raised at once, never retried: `WindowClosed` when the message cannot
  reach the person by this route, `RateLimited` for 45009, `WechatApiError` for the rest (the
  family is in `bot.channels.wechat_errors`).

A timed-out send may still have been delivered (the answer, not the request, was lost), so a
retried send can reach the person twice: delivery is at least once.

Logs carry neither tokens, secrets, webhook keys, response URLs nor message contents, and user
ids only shortened.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from bot.channels.wechat_errors import (
    NO_ERRCODE,
    TOKEN_ERRORS,
    ApiUnavailable,
    WechatApiError,
    WindowClosed,
    errcode_of,
    errmsg_of,
    error_for,
)
from bot.channels.wechat_tokens import AccessTokenCache, token_from
from bot.cluster.tokens import SharedTokens
from bot.core.clock import Clock

__all__ = [
    "GroupRobot",
    "OfficialAccountApi",
    "WecomApi",
    "post_robot_response",
    "truncate_utf8",
]

logger = logging.getLogger(__name__)

Payload = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]

WEBHOOK_MARKDOWN_MAX_BYTES = 4096
EXTERNAL_USER_PREFIXES = ("wm", "wo")


class _Transient(Exception):
    """One try failed in a way another try may fix; the text is safe to log."""


class _TokenRejected(Exception):
    """The API refused the access token we sent; it has been invalidated already."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


def truncate_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` whose UTF-8 encoding fits in `max_bytes`."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    # Cutting bytes may split the last character; "ignore" drops only that partial tail.
    return encoded[:max_bytes].decode("utf-8", "ignore")


def _mask(value: str) -> str:
    """Enough of an id to tell log lines apart, not enough to identify a person."""
    return f"{value[:4]}***" if len(value) > 6 else "***"


def _raise_unless_ok(payload: Mapping[str, Any], what: str, recipient: str) -> None:
    if errcode_of(payload) == 0:
        return
    error = error_for(payload)
    logger.warning("%s to %s not delivered: errcode %d", what, _mask(recipient), error.errcode)
    raise error


def _parse(raw: bytes) -> Payload:
    try:
        payload = json.loads(raw.decode("utf-8"))
    except ValueError:  # covers UnicodeDecodeError and JSONDecodeError
        raise _Transient("the answer is not JSON") from None
    if not isinstance(payload, dict):
        raise _Transient("the answer is not a JSON object")
    return payload


async def _exchange(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    timeout: float,
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> Payload:
    """One HTTP request and its JSON answer; transport failures become `_Transient`."""
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = None if data is None else {"Content-Type": "application/json; charset=utf-8"}
    try:
        async with http.request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            status = response.status
            raw = await response.read()
    except TimeoutError:
        raise _Transient(f"no answer within {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        # Only the class name: some aiohttp errors quote the URL, and the URL holds the token.
        raise _Transient(type(exc).__name__) from None
    if status >= 500:
        raise _Transient(f"HTTP {status}")
    if status >= 400:
        raise WechatApiError(NO_ERRCODE, f"HTTP {status}")
    return _parse(raw)


class _Retry:
    """Bounded tries: a fresh token at once after a token error, a short pause after a
    transport failure."""

    def __init__(self, attempts: int, backoff: float, sleep: Sleep) -> None:
        self.attempts = max(1, attempts)
        self._backoff = backoff
        self._sleep = sleep

    async def run(self, what: str, once: Callable[[], Awaitable[Payload]]) -> Payload:
        failure: WechatApiError = ApiUnavailable(NO_ERRCODE, f"{what}: not tried")
        for attempt in range(1, self.attempts + 1):
            try:
                return await once()
            except _TokenRejected as exc:
                failure = WechatApiError(exc.errcode, exc.errmsg)
                logger.warning(
                    "%s: access token refused (errcode %d), try %d of %d",
                    what, exc.errcode, attempt, self.attempts,
                )  # fmt: skip
            except _Transient as exc:
                failure = ApiUnavailable(NO_ERRCODE, f"{what}: {exc} (try {attempt})")
                logger.warning("%s failed: %s, try %d of %d", what, exc, attempt, self.attempts)
                if attempt < self.attempts:
                    await self._sleep(self._backoff * 2 ** (attempt - 1))
        raise failure


class _TokenApi:
    """What the Official Account and WeCom app clients share: a token cache and retries."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        token_path: str,
        token_params: Mapping[str, str],
        *,
        attempts: int = 3,
        timeout: float = 5.0,
        backoff: float = 0.2,
        sleep: Sleep = asyncio.sleep,
        clock: Clock | None = None,
        shared_tokens: SharedTokens | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._retry = _Retry(attempts, backoff, sleep)
        self._token_path = token_path
        self._token_params = dict(token_params)
        # Named by endpoint and app id (never the secret), so each app has its own token.
        app_id = self._token_params.get("appid") or self._token_params.get("corpid", "")
        app = f"{self._base_url}{token_path}:{app_id}"
        shared = (shared_tokens, app) if shared_tokens is not None else None
        self.tokens = AccessTokenCache(self._fetch_token, clock=clock, shared=shared)

    async def _fetch_token(self) -> tuple[str, int]:
        return token_from(await self._get_without_token(self._token_path, self._token_params))

    async def _get_without_token(self, path: str, params: Mapping[str, str]) -> Payload:
        url = self._base_url + path
        return await _exchange(self._http, "GET", url, params=params, timeout=self._timeout)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Payload:
        """Calls an API with the current token and returns its answer, business errors
        included; token errors and transport failures are handled here."""
        url = self._base_url + path

        async def once() -> Payload:
            token = await self.tokens.get()
            query = {**(params or {}), "access_token": token}
            payload = await _exchange(
                self._http, method, url, params=query, body=body, timeout=self._timeout
            )
            if errcode_of(payload) in TOKEN_ERRORS:
                await self.tokens.invalidate(token)
                raise _TokenRejected(errcode_of(payload), errmsg_of(payload))
            return payload

        return await self._retry.run(f"{method} {path}", once)


class OfficialAccountApi(_TokenApi):
    """Customer-service messages of a WeChat Official Account (公众号). Keyword options
    (attempts, timeout, backoff, sleep, clock) as for every client here."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, appid: str, secret: str, **options: Any
    ) -> None:
        params = {"grant_type": "client_credential", "appid": appid, "secret": secret}
        super().__init__(http, base_url, "/cgi-bin/token", params, **options)

    async def send_text(self, openid: str, text: str) -> None:
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        payload = await self._call("POST", "/cgi-bin/message/custom/send", body=body)
        _raise_unless_ok(payload, "customer-service message", openid)


class WecomApi(_TokenApi):
    """A WeCom (企业微信) self-built app: messages to members and names of members and
    external contacts."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        corpid: str,
        secret: str,
        agentid: int,
        **options: Any,
    ) -> None:
        self._agentid = agentid
        params = {"corpid": corpid, "corpsecret": secret}
        super().__init__(http, base_url, "/cgi-bin/gettoken", params, **options)

    async def send_text(self, userid: str, text: str) -> None:
        body = {
            "touser": userid,
            "msgtype": "text",
            "agentid": self._agentid,
            "text": {"content": text},
        }
        payload = await self._call("POST", "/cgi-bin/message/send", body=body)
        _raise_unless_ok(payload, "app message", userid)
        # With several recipients WeCom answers 0 and lists the ones it skipped.
        if userid in str(payload.get("invaliduser") or "").split("|"):
            logger.warning("app message to %s not delivered: invalid user", _mask(userid))
            raise WindowClosed(81013, "invaliduser")

    async def user_name(self, userid: str) -> str | None:
        """A member's or an external contact's name (by the id's prefix); None when unknown."""
        if userid.startswith(EXTERNAL_USER_PREFIXES):
            payload = await self._call(
                "GET", "/cgi-bin/externalcontact/get", params={"external_userid": userid}
            )
            contact = payload.get("external_contact")
            name = contact.get("name") if isinstance(contact, dict) else None
        else:
            payload = await self._call("GET", "/cgi-bin/user/get", params={"userid": userid})
            name = payload.get("name")
        if errcode_of(payload) != 0:
            logger.info("no name for %s: errcode %d", _mask(userid), errcode_of(payload))
            return None
        return name if isinstance(name, str) and name else None


async def post_robot_response(
    http: aiohttp.ClientSession, response_url: str, markdown: str, *, timeout: float = 5.0
) -> None:
    """Answers a WeCom intelligent-robot callback through its one-use `response_url`.

    Tried once only: after a lost answer the URL may already be used up, and a second post
    would be refused anyway.
    """
    body = {"msgtype": "markdown", "markdown": {"content": markdown}}
    try:
        payload = await _exchange(http, "POST", response_url, body=body, timeout=timeout)
    except _Transient as exc:
        logger.warning("robot response failed: %s", exc)
        raise ApiUnavailable(NO_ERRCODE, f"robot response: {exc}") from None
    _raise_unless_ok(payload, "robot response", "response_url")


class GroupRobot:
    """A WeCom group robot webhook (send only), used to notify volunteers in their group."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        key: str,
        *,
        attempts: int = 3,
        timeout: float = 5.0,
        backoff: float = 0.2,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + "/cgi-bin/webhook/send"
        self._key = key
        self._timeout = timeout
        self._retry = _Retry(attempts, backoff, sleep)

    async def send_markdown(self, content: str) -> None:
        """Sends markdown, cut to 4096 UTF-8 bytes; 45009 raises RateLimited untried, since
        the robot's limit is per minute and the caller's queue is the place to wait."""
        fitted = truncate_utf8(content, WEBHOOK_MARKDOWN_MAX_BYTES)
        body = {"msgtype": "markdown", "markdown": {"content": fitted}}
        params = {"key": self._key}

        async def once() -> Payload:
            return await _exchange(
                self._http, "POST", self._url, params=params, body=body, timeout=self._timeout
            )

        payload = await self._retry.run("POST /cgi-bin/webhook/send", once)
        _raise_unless_ok(payload, "group robot message", "webhook")
