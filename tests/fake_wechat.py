"""A fake WeChat / WeCom API server on 127.0.0.1, for the tests and the benchmark.

It speaks the part of the protocols that `bot.channels.wechat_api` calls, checks what the real
servers check (credentials, access tokens, message bodies, limits) and records every call. It
imports nothing from pytest, so scripts can use it too:

    async with FakeWechat() as fake:
        api = OfficialAccountApi(http, fake.base_url, fake.appid, fake.secret)

Choices where the real servers are vague, or too slow to test against:
- A newly issued token supersedes the app's older ones; a superseded token keeps working for
  `previous_token_grace` seconds (300: WeChat says "about 5 minutes"; 0 = at once), then
  answers 40001. A token lives `token_ttl` seconds, then answers 42001. A token of the other
  app answers 40014, a missing one 41001. `expire_token()` makes every token issued so far
  answer 42001 (or the errcode given) at once.
- WeCom's gettoken answers 40013 for a wrong corpid and 40001 for a wrong secret, as WeCom does.
- A slow answer (`delay`, or `fail(path, delay=...)`) is slow after the work is done, like a
  real answer lost on its way back: a client that times out and sends again delivers twice.
  Injected errors (`fail(path, errcode=...)` / `status=...`) replace the work instead.
- An aibot response_url works once within an hour; a second use, an expired or unknown code
  answers 40078 ("invalid state"; the real errcode is undocumented).
- The webhook accepts `webhook_limit` (20) messages per rolling `webhook_window` (60 s), then
  answers 45009; refused calls do not count.
- Customer-service messages: openids in `closed_windows` answer 45015; with `cs_quota` set, a
  user's messages past the quota answer 45047 until `user_wrote(openid)`. WeCom userids in
  `unreachable` answer 81013; a wrong agentid 40056.
- Time comes from `clock` (time.monotonic unless given), so tests can move it forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Answer = dict[str, Any]
Handler = Callable[["Received"], Answer]

OA_TOKEN = "/cgi-bin/token"
WECOM_TOKEN = "/cgi-bin/gettoken"
CUSTOM_SEND = "/cgi-bin/message/custom/send"
WECOM_SEND = "/cgi-bin/message/send"
USER_GET = "/cgi-bin/user/get"
EXTERNAL_GET = "/cgi-bin/externalcontact/get"
AIBOT_RESPONSE = "/cgi-bin/aibot/response"
WEBHOOK_SEND = "/cgi-bin/webhook/send"
PATHS = frozenset(
    {OA_TOKEN, WECOM_TOKEN, CUSTOM_SEND, WECOM_SEND, USER_GET, EXTERNAL_GET}
    | {AIBOT_RESPONSE, WEBHOOK_SEND}
)

RESPONSE_URL_INVALID = 40078
RESPONSE_URL_TTL = 3600.0
WEBHOOK_MAX_BYTES = {"markdown": 4096, "text": 2048}
NOT_LATEST = "invalid credential, access_token is invalid or not latest"


def _err(errcode: int, errmsg: str) -> Answer:
    return {"errcode": errcode, "errmsg": errmsg}


def _ok(**extra: Any) -> Answer:
    return {"errcode": 0, "errmsg": "ok", **extra}


@dataclass
class Received:
    """One call as the fake saw it, whatever it answered."""

    path: str
    query: dict[str, str]
    body: dict[str, Any]
    method: str = "GET"
    raw: bytes = b""
    json_ok: bool = True
    # What the fake answered: HTTP status, and the errcode when it answered JSON.
    status: int = 200
    errcode: int | None = None


@dataclass
class Delivery:
    """A text message the fake accepted for a person."""

    path: str
    touser: str
    content: str


@dataclass
class _Token:
    app: str
    expires_at: float
    superseded_at: float | None = None
    forced_errcode: int | None = None


@dataclass
class _Failure:
    errcode: int | None
    status: int | None
    delay: float


@dataclass
class _ResponseCode:
    expires_at: float
    used: bool = False


def _content(body: dict[str, Any], kind: str) -> str:
    part = body.get(kind)
    content = part.get("content") if isinstance(part, dict) else None
    return content if isinstance(content, str) else ""


def _text_error(body: dict[str, Any]) -> Answer | None:
    touser = body.get("touser")
    if not isinstance(touser, str) or not touser:
        return _err(40003, "invalid openid")
    if body.get("msgtype") != "text":
        return _err(40008, "invalid message type")
    if not _content(body, "text"):
        return _err(44004, "empty content")
    return None


def _webhook_body_error(body: dict[str, Any]) -> Answer | None:
    msgtype = body.get("msgtype")
    if msgtype not in WEBHOOK_MAX_BYTES:
        return _err(40008, "invalid message type")
    content = _content(body, msgtype)
    if not content:
        return _err(44004, "empty content")
    limit = WEBHOOK_MAX_BYTES[msgtype]
    if len(content.encode("utf-8")) > limit:
        return _err(40058, f"{msgtype}.content exceed max length {limit}")
    return None


def _parse_body(raw: bytes) -> tuple[dict[str, Any], bool]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        return {}, False
    return (body, True) if isinstance(body, dict) else ({}, False)


async def _record(request: web.Request) -> Received:
    raw = await request.read()
    body, json_ok = _parse_body(raw) if request.method == "POST" else ({}, True)
    return Received(
        path=request.path,
        query=dict(request.query),
        body=body,
        method=request.method,
        raw=raw,
        json_ok=json_ok,
    )


def _dumps(answer: Answer) -> str:
    return json.dumps(answer, ensure_ascii=False)


class FakeWechat:
    """The fake server; every public attribute may be changed while it runs."""

    def __init__(
        self,
        *,
        appid: str = "wx0fake0000000001",
        secret: str = "fake-oa-secret",
        corpid: str = "ww0fake0000000001",
        corp_secret: str = "fake-corp-secret",
        agentid: int = 1000002,
        webhook_key: str = "fake-robot-key",
        users: dict[str, str] | None = None,
        external_contacts: dict[str, str] | None = None,
        token_ttl: int = 7200,
        previous_token_grace: float = 300.0,
        cs_quota: int | None = None,
        webhook_limit: int = 20,
        webhook_window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.appid = appid
        self.secret = secret
        self.corpid = corpid
        self.corp_secret = corp_secret
        self.agentid = agentid
        self.webhook_key = webhook_key
        self.users = dict(users or {})
        self.external_contacts = dict(external_contacts or {})
        self.token_ttl = token_ttl
        self.previous_token_grace = previous_token_grace
        self.cs_quota = cs_quota
        self.webhook_limit = webhook_limit
        self.webhook_window = webhook_window
        self.clock = clock
        self.closed_windows: set[str] = set()
        self.unreachable: set[str] = set()
        self.delay: dict[str, float] = {}
        self.received: list[Received] = []
        self.deliveries: list[Delivery] = []
        self.robot_responses: list[Received] = []
        self.webhook_messages: list[Received] = []
        self.token_requests = 0
        self.base_url = ""
        self._tokens: dict[str, _Token] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._cs_counts: Counter[str] = Counter()
        self._webhook_times: deque[float] = deque()
        self._response_codes: dict[str, _ResponseCode] = {}
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    # Lifecycle

    async def start(self) -> str:
        """Listens on a free port of 127.0.0.1; returns the base URL."""
        if self._runner is not None:
            return self.base_url
        self._closing = asyncio.Event()
        runner = web.AppRunner(self._make_app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
        except BaseException:
            await runner.cleanup()
            raise
        host, port = runner.addresses[0][:2]
        self._runner = runner
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is None:
            return
        self._closing.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> FakeWechat:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # What tests set up

    def fail(
        self,
        path: str,
        *,
        errcode: int | None = None,
        status: int | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """The next `times` calls to `path` answer `errcode` (HTTP 200 JSON) or the HTTP
        `status` instead of doing the work, and/or answer `delay` seconds late."""
        if path not in PATHS:
            raise ValueError(f"unknown path {path!r}")
        if errcode is not None and status is not None:
            raise ValueError("give errcode or status, not both")
        if errcode is None and status is None and delay <= 0:
            raise ValueError("give errcode, status or delay")
        queue = self._failures.setdefault(path, deque())
        queue.extend(_Failure(errcode, status, delay) for _ in range(times))

    def expire_token(self, *, errcode: int = 42001) -> None:
        """Every token issued so far answers `errcode` from now on (42001, or 40001)."""
        for token in self._tokens.values():
            if token.forced_errcode is None:
                token.forced_errcode = errcode

    def response_url(self, code: str | None = None) -> str:
        """A URL on this server usable once, within an hour, as an aibot response_url."""
        if not self.base_url:
            raise RuntimeError("start the fake first")
        code = code or secrets.token_urlsafe(12)
        self._response_codes[code] = _ResponseCode(self.clock() + RESPONSE_URL_TTL)
        return f"{self.base_url}{AIBOT_RESPONSE}?response_code={code}"

    def user_wrote(self, openid: str) -> None:
        """The person wrote to the account: the 48-hour window and the quota start afresh."""
        self.closed_windows.discard(openid)
        self._cs_counts.pop(openid, None)

    # What tests read

    def calls(self, path: str) -> list[Received]:
        return [call for call in self.received if call.path == path]

    def sent_texts(self, touser: str | None = None) -> list[str]:
        """Contents of customer-service and WeCom app messages accepted, oldest first."""
        return [d.content for d in self.deliveries if touser is None or d.touser == touser]

    async def wait_for(self, predicate: Callable[[FakeWechat], bool], timeout: float = 5.0) -> None:
        """Polls until `predicate(self)` holds, e.g. for a send made in the background."""
        # Real time, not self.clock: a test may have frozen that.
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"fake WeChat: condition not met within {timeout} s")
            await asyncio.sleep(0.01)

    # Serving

    def _make_app(self) -> web.Application:
        routes: list[tuple[str, str, Handler]] = [
            ("GET", OA_TOKEN, self._oa_token),
            ("GET", WECOM_TOKEN, self._wecom_token),
            ("POST", CUSTOM_SEND, self._custom_send),
            ("POST", WECOM_SEND, self._wecom_send),
            ("GET", USER_GET, self._user_get),
            ("GET", EXTERNAL_GET, self._external_get),
            ("POST", AIBOT_RESPONSE, self._aibot_response),
            ("POST", WEBHOOK_SEND, self._webhook_send),
        ]
        app = web.Application()
        for method, path, handler in routes:
            app.router.add_route(method, path, self._view(handler))
        return app

    def _view(self, handler: Handler) -> Callable[[web.Request], Any]:
        async def view(request: web.Request) -> web.StreamResponse:
            call = await _record(request)
            self.received.append(call)
            failure = self._next_failure(call.path)
            response = self._respond(call, handler, failure)
            pause = self.delay.get(call.path, 0.0) + (failure.delay if failure else 0.0)
            if pause > 0:
                await self._pause(pause)
            return response

        return view

    def _next_failure(self, path: str) -> _Failure | None:
        queue = self._failures.get(path)
        return queue.popleft() if queue else None

    def _respond(self, call: Received, handler: Handler, failure: _Failure | None) -> web.Response:
        if failure is not None and failure.status is not None:
            call.status = failure.status
            return web.Response(status=failure.status, text="fake outage")
        if failure is not None and failure.errcode is not None:
            answer = _err(failure.errcode, "injected by the test")
        elif not call.json_ok:
            answer = _err(47001, "data format error")
        else:
            answer = handler(call)
        call.errcode = int(answer.get("errcode", 0))
        return web.json_response(answer, dumps=_dumps)

    async def _pause(self, seconds: float) -> None:
        # Ends early when the server closes, so no teardown waits out a long delay.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    # Access tokens

    def _issue(self, app: str) -> str:
        now = self.clock()
        for token in self._tokens.values():
            if token.app == app and token.superseded_at is None:
                token.superseded_at = now
        self.token_requests += 1
        value = f"{app.upper()}_TOKEN_{self.token_requests}_{secrets.token_urlsafe(16)}"
        self._tokens[value] = _Token(app=app, expires_at=now + self.token_ttl)
        return value

    def _token_error(self, call: Received, app: str) -> Answer | None:
        value = call.query.get("access_token", "")
        if not value:
            return _err(41001, "access_token missing")
        token = self._tokens.get(value)
        if token is None:
            return _err(40001, NOT_LATEST)
        if token.app != app:
            return _err(40014, "invalid access_token")
        if token.forced_errcode is not None:
            return _err(token.forced_errcode, "access_token revoked by the test")
        now = self.clock()
        superseded = token.superseded_at
        if superseded is not None and now >= superseded + self.previous_token_grace:
            return _err(40001, NOT_LATEST)
        if now >= token.expires_at:
            return _err(42001, "access_token expired")
        return None

    def _oa_token(self, call: Received) -> Answer:
        query = call.query
        if query.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        if query.get("appid") != self.appid:
            return _err(40013, "invalid appid")
        if query.get("secret") != self.secret:
            return _err(40125, "invalid appsecret")
        return {"access_token": self._issue("oa"), "expires_in": self.token_ttl}

    def _wecom_token(self, call: Received) -> Answer:
        if call.query.get("corpid") != self.corpid:
            return _err(40013, "invalid corpid")
        if call.query.get("corpsecret") != self.corp_secret:
            return _err(40001, "invalid credential")
        return _ok(access_token=self._issue("wecom"), expires_in=self.token_ttl)

    # Messages to people

    def _deliver(self, call: Received, touser: str) -> None:
        self.deliveries.append(Delivery(call.path, touser, _content(call.body, "text")))

    def _custom_send(self, call: Received) -> Answer:
        error = self._token_error(call, "oa") or _text_error(call.body)
        if error is not None:
            return error
        touser = call.body["touser"]
        if touser in self.closed_windows:
            return _err(45015, "response out of time limit or subscription is canceled")
        if self.cs_quota is not None and self._cs_counts[touser] >= self.cs_quota:
            return _err(45047, "out of response count limit")
        self._cs_counts[touser] += 1
        self._deliver(call, touser)
        return _ok()

    def _wecom_send(self, call: Received) -> Answer:
        error = self._token_error(call, "wecom") or _text_error(call.body)
        if error is not None:
            return error
        if str(call.body.get("agentid")) != str(self.agentid):
            return _err(40056, "invalid agentid")
        touser = call.body["touser"]
        if touser in self.unreachable:
            return _err(81013, "user & party & tag all invalid")
        self._deliver(call, touser)
        return _ok(invaliduser="", msgid=f"fake-msg-{len(self.deliveries)}")

    # WeCom names

    def _user_get(self, call: Received) -> Answer:
        error = self._token_error(call, "wecom")
        if error is not None:
            return error
        userid = call.query.get("userid", "")
        if userid not in self.users:
            return _err(60111, "userid not found")
        return _ok(userid=userid, name=self.users[userid])

    def _external_get(self, call: Received) -> Answer:
        error = self._token_error(call, "wecom")
        if error is not None:
            return error
        userid = call.query.get("external_userid", "")
        if userid not in self.external_contacts:
            return _err(84061, "not external contact")
        contact = {"external_userid": userid, "name": self.external_contacts[userid], "type": 1}
        return _ok(external_contact=contact, follow_user=[])

    # Robots

    def _aibot_response(self, call: Received) -> Answer:
        code = self._response_codes.get(call.query.get("response_code", ""))
        if code is None or code.used or self.clock() >= code.expires_at:
            return _err(RESPONSE_URL_INVALID, "response_url used, expired or unknown")
        if call.body.get("msgtype") != "markdown":
            return _err(40008, "invalid message type")
        if not _content(call.body, "markdown"):
            return _err(44004, "empty content")
        code.used = True
        self.robot_responses.append(call)
        return _ok()

    def _webhook_send(self, call: Received) -> Answer:
        if call.query.get("key") != self.webhook_key:
            return _err(93000, "invalid webhook url")
        error = _webhook_body_error(call.body)
        if error is not None:
            return error
        now = self.clock()
        while self._webhook_times and self._webhook_times[0] <= now - self.webhook_window:
            self._webhook_times.popleft()
        if len(self._webhook_times) >= self.webhook_limit:
            return _err(45009, "api freq out of limit")
        self._webhook_times.append(now)
        self.webhook_messages.append(call)
        return _ok()
