"""Async clients for the WeChat Official Account and WeCom HTTP APIs the service calls.

Every client runs on one shared `aiohttp.ClientSession` handed in by the app; none is created
here. All calls follow one policy:

- An access token per app comes from one `AccessTokenCache`: fetched once, refreshed shortly
  before it expires, and refreshed when an API answers 40001 / 42001 / 40014, after which the
  call is tried again.
- HTTP 5xx, timeouts, connection errors and answers that are not JSON are tried again after a
  short, growing pause.
- At most `attempts` tries in all. Then `ApiUnavailable` (errcode -1) when the transport
  failed, or `WechatApiError` with the token errcode when the token kept being refused.
- Business errors are raised at once, never retried: `WindowClosed` when the message cannot
  reach the person by this route, `RateLimited` for 45009, `WechatApiError` for the rest.

A timed-out send may still have been delivered (the answer, not the request, was lost), so a
retried send can reach the person twice: delivery is at least once.

Logs carry neither tokens, secrets, webhook keys, response URLs nor message contents, and user
ids only shortened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

__all__ = [
    "TOKEN_ERRORS",
    "UNREACHABLE",
    "AccessTokenCache",
    "ApiUnavailable",
    "GroupRobot",
    "OfficialAccountApi",
    "RateLimited",
    "WechatApiError",
    "WecomApi",
    "WindowClosed",
    "post_robot_response",
    "truncate_utf8",
]

logger = logging.getLogger(__name__)

Payload = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

# 40001 invalid or not the latest, 42001 expired, 40014 malformed: a fresh token fixes these.
TOKEN_ERRORS = frozenset({40001, 42001, 40014})
# Official Account: 45015 the 48-hour window is closed, 45047 the customer-service quota for this
# user is used up, 48001 API not authorised. WeCom: 48002 API forbidden for this app, 81013 every
# recipient is invalid or outside the app's visible range.
UNREACHABLE = frozenset({45015, 45047, 48001, 48002, 81013})
FREQ_LIMIT = 45009
WEBHOOK_MARKDOWN_MAX_BYTES = 4096
NO_ERRCODE = -1
DEFAULT_EXPIRES_IN = 7200
EXTERNAL_USER_PREFIXES = ("wm", "wo")


class WechatApiError(Exception):
    """A non-zero errcode from the API, or errcode -1 when no usable answer came at all."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        return f"errcode {self.errcode}: {self.errmsg}"


class WindowClosed(WechatApiError):
    """The message cannot reach the person by this route now; retrying will not help."""


class RateLimited(WechatApiError):
    """45009: too many calls; the caller should queue and send later."""


class ApiUnavailable(WechatApiError):
    """HTTP 5xx, timeouts, connection errors or non-JSON answers on every try (errcode -1)."""


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


def _errcode(payload: Mapping[str, Any]) -> int:
    try:
        return int(payload.get("errcode", 0) or 0)
    except (TypeError, ValueError):
        return NO_ERRCODE


def _errmsg(payload: Mapping[str, Any]) -> str:
    return str(payload.get("errmsg", ""))


def _error_for(payload: Mapping[str, Any]) -> WechatApiError:
    errcode, errmsg = _errcode(payload), _errmsg(payload)
    if errcode in UNREACHABLE:
        return WindowClosed(errcode, errmsg)
    if errcode == FREQ_LIMIT:
        return RateLimited(errcode, errmsg)
    return WechatApiError(errcode, errmsg)


def _raise_unless_ok(payload: Mapping[str, Any], what: str, recipient: str) -> None:
    if _errcode(payload) == 0:
        return
    error = _error_for(payload)
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


class AccessTokenCache:
    """One token per app, refreshed in one place: early (before expiry, when less than
    `refresh_margin` seconds are left), and when an API call reports 40001/42001/40014.
    Concurrent callers share one refresh (asyncio.Lock, single flight).

    Callers queued behind a refresh that failed get that same failure instead of each trying
    the token endpoint again. An early refresh that fails leaves the current token in use
    until it really expires.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[str, int]]],
        *,
        clock: Clock = time.monotonic,
        refresh_margin: float = 300.0,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin = refresh_margin
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0
        # Fetches ended (well or not): tells a waiter whether one ended while it queued.
        self._finished = 0
        self._failure: Exception | None = None

    async def get(self) -> str:
        token = self._fresh()
        if token is not None:
            return token
        finished_before = self._finished
        async with self._lock:
            token = self._fresh()
            if token is not None:
                return token
            if self._finished != finished_before and self._failure is not None:
                return self._fallback(self._failure)
            return await self._refresh()

    def invalidate(self, token: str) -> None:
        """Drops `token` only if it is still the cached one, so that several callers failing
        with the same old token cause one refresh, not one each."""
        if token == self._token:
            self._token = None
            logger.info("access token invalidated")

    def _fresh(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    async def _refresh(self) -> str:
        # Cleared first so that a cancelled fetch never hands an older failure to waiters.
        self._failure = None
        try:
            token, expires_in = await self._fetch()
        except Exception as exc:
            self._failure = exc
            return self._fallback(exc)
        finally:
            self._finished += 1
        now = self._clock()
        # Short-lived tokens would otherwise be "due for refresh" the moment they arrive.
        margin = min(self._margin, expires_in / 2)
        self._token = token
        self._refresh_at = now + expires_in - margin
        self._expires_at = now + expires_in
        logger.info("access token fetched, valid for %d s", expires_in)
        return token

    def _fallback(self, failure: Exception) -> str:
        if self._token is not None and self._clock() < self._expires_at:
            logger.warning(
                "access token refresh failed (%s); the current one is used until it expires",
                type(failure).__name__,
            )
            return self._token
        raise failure


def _token_from(payload: Mapping[str, Any]) -> tuple[str, int]:
    token = payload.get("access_token")
    if _errcode(payload) != 0:
        raise _error_for(payload)
    if not isinstance(token, str) or not token:
        raise WechatApiError(NO_ERRCODE, "the token answer has no access_token")
    try:
        expires_in = int(payload.get("expires_in", DEFAULT_EXPIRES_IN))
    except (TypeError, ValueError):
        expires_in = DEFAULT_EXPIRES_IN
    return token, max(1, expires_in)


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
        clock: Clock = time.monotonic,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._retry = _Retry(attempts, backoff, sleep)
        self._token_path = token_path
        self._token_params = dict(token_params)
        self.tokens = AccessTokenCache(self._fetch_token, clock=clock)

    async def _fetch_token(self) -> tuple[str, int]:
        return _token_from(await self._get_without_token(self._token_path, self._token_params))

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
            if _errcode(payload) in TOKEN_ERRORS:
                self.tokens.invalidate(token)
                raise _TokenRejected(_errcode(payload), _errmsg(payload))
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
        if _errcode(payload) != 0:
            logger.info("no name for %s: errcode %d", _mask(userid), _errcode(payload))
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
