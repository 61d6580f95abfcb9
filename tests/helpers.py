"""Small typed helpers that act as a resident in the webchat and as a member in the console."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app import create_app
from bot.channels.webchat.identity import COOKIE
from bot.core.clock import Clock
from bot.db.models import Grid, Member, Resident, Ticket
from bot.demo import DEMO_PASSWORD, seed
from bot.handoff.states import Status
from bot.settings import Settings
from bot.typedefs import router_key, sessions_key

WAIT_S = 15.0
# After the router has drained, what the service sent is already on loopback: a frame that
# has not arrived in this long was never sent.
IN_FLIGHT_S = 0.2


@dataclass
class Service:
    client: TestClient
    settings: Settings
    password: str

    async def login(self, name: str) -> str:
        resp = await self.client.post("/api/login", json={"name": name, "password": self.password})
        assert resp.status == 200, await resp.text()
        return (await resp.json())["token"]

    async def api(self, method: str, path: str, token: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        resp = await self.client.request(method, path, headers=headers, **kwargs)
        return resp.status, await resp.json()

    async def settle(self) -> None:
        """Wait until every accepted message has been routed."""
        await self.client.app[router_key].drain()

    async def identity(self, name: str) -> str:
        """A new webchat identity, as the page gets one: the cookie's value."""
        resp = await self.client.post("/webchat/api/session", json={"name": name})
        assert resp.status == 200, await resp.text()
        cookie = resp.cookies[COOKIE].value
        # Each resident of a test holds their own cookie; the client's jar holds none.
        self.client.session.cookie_jar.clear()
        return cookie

    async def invite(self, grid_code: str) -> str:
        """The room link's invite of a grid, as printed on its poster."""
        async with self.client.app[sessions_key]() as session:
            return await session.scalar(select(Grid.invite).where(Grid.code == grid_code))

    async def resident(self, name: str, chat: str = "private", cookie: str | None = None) -> Chat:
        """A resident in their private chat, or in a grid's room (`chat` = the grid's code)."""
        cookie = cookie or await self.identity(name)
        room = chat if chat == "private" else await self.invite(chat)
        ws = await self.client.ws_connect(
            "/webchat/ws", params={"chat": room}, headers={"Cookie": f"{COOKIE}={cookie}"}
        )
        history = await ws.receive_json(timeout=WAIT_S)
        assert history["type"] == "history"
        return Chat(ws, cookie, history["messages"], self.settle)

    async def console(self, token: str, since: int | None = None) -> Console:
        """A member's console, connected; reconnecting, with the last event id it saw."""
        status, body = await self.api("POST", "/api/ws-ticket", token)
        assert status == 200, body
        params = {"ticket": body["ticket"]}
        if since is not None:
            params["since"] = str(since)
        ws = await self.client.ws_connect("/api/ws", params=params)
        missed = []
        while (frame := await ws.receive_json(timeout=WAIT_S))["type"] != "ready":
            missed.append(frame)
        assert frame["missed"] == len(missed)
        return Console(ws, self.settle, missed, frame["last_event_id"])


async def _receive_until(
    ws: ClientWebSocketResponse, predicate: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        while True:
            frame = await ws.receive_json()
            if predicate(frame):
                return frame

    return await asyncio.wait_for(loop(), timeout)


async def _nothing_matches(
    ws: ClientWebSocketResponse, predicate: Callable[[dict[str, Any]], bool], wait: float
) -> bool:
    try:
        await _receive_until(ws, predicate, wait)
    except TimeoutError:
        return True
    return False


@dataclass
class Chat:
    ws: ClientWebSocketResponse
    # The resident's identity cookie: reconnecting with it is the same resident.
    cookie: str
    history: list[dict[str, Any]]
    settle: Callable[[], Awaitable[None]]

    @property
    def user_id(self) -> str:
        """The id the server issued in the cookie (the part before its first dot)."""
        return self.cookie.split(".", 1)[0]

    async def say(self, text: str, client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        await self.ws.send_json({"type": "message", "id": client_id, "text": text})
        await _receive_until(self.ws, lambda f: f == {"type": "ack", "id": client_id}, WAIT_S)
        return client_id

    async def hear(self, sender_kind: str, timeout: float = WAIT_S) -> dict[str, Any]:
        frame = await _receive_until(
            self.ws,
            lambda f: f["type"] == "message" and f["message"]["sender_kind"] == sender_kind,
            timeout,
        )
        return frame["message"]

    async def hears_nothing_from(self, sender_kind: str) -> bool:
        """Drain, then assert: once every message is routed, nothing more is on its way."""
        await self.settle()
        return await _nothing_matches(
            self.ws,
            lambda f: f["type"] == "message" and f["message"]["sender_kind"] == sender_kind,
            IN_FLIGHT_S,
        )


@dataclass
class Console:
    ws: ClientWebSocketResponse
    settle: Callable[[], Awaitable[None]]
    # Sent on connecting, before "ready": the events missed since the id it reconnected with.
    missed: list[dict[str, Any]]
    # The newest event's id when it connected.
    last_event_id: int

    async def event(self, kind: str, timeout: float = WAIT_S) -> dict[str, Any]:
        return await _receive_until(self.ws, lambda f: f["type"] == kind, timeout)

    async def resident_wrote(self, timeout: float = WAIT_S) -> dict[str, Any]:
        frame = await _receive_until(
            self.ws,
            lambda f: f["type"] == "ticket.message" and f["message"]["sender_kind"] == "resident",
            timeout,
        )
        return frame

    async def gets_nothing(self) -> bool:
        """Drain, then assert, as `Chat.hears_nothing_from`."""
        await self.settle()
        return await _nothing_matches(self.ws, lambda f: True, IN_FLIGHT_S)


async def request_reaches(
    service: Service, resident: Chat, text: str, member: str = "王建国"
) -> tuple[str, dict[str, Any]]:
    """The resident asks for something that goes to `member`: their token and the ticket, once
    the resident has been told who is coming."""
    token = await service.login(member)
    console = await service.console(token)
    await resident.say(text)
    ticket = (await console.event("ticket.created"))["ticket"]
    await resident.hear("bot")
    return token, ticket


async def start_service(aiohttp_client, settings: Settings, clock: Clock | None = None) -> Service:  # type: ignore[no-untyped-def]
    """The whole service with the demo grids and members, on its configured port."""
    client: TestClient = await aiohttp_client(
        create_app(settings, clock=clock), server_kwargs={"port": settings.port}
    )
    await seed(settings)
    return Service(client, settings, DEMO_PASSWORD)


def a_ticket(resident: Resident, grid: Grid | None, community_id: int, **fields: Any) -> Ticket:
    """A ticket as the service opens one for a resident's request in the webchat (楼道灯坏了,
    offered to a member), for tests that start from tickets already there; `fields` change it."""
    category = fields.pop("category", "repair")
    return Ticket(
        **{
            "conversation_id": f"webchat:{resident.external_id}",
            "resident": resident,
            "channel": "webchat",
            "chat_type": "private",
            "category": category,
            "intent": category,
            "confidence": 0.9,
            "text": "楼道灯坏了",
            "entities": {},
            "status": Status.ASSIGNED,
            "grid": grid,
            "community_id": community_id,
            **fields,
        }
    )


async def add_ticket(
    service: Service,
    grid_code: str,
    text: str,
    resident: str = "r1",
    holder: str | None = None,
    **fields: Any,
) -> int:
    """`a_ticket` put straight into the service's database, in the grid's community, offered
    to `holder` (or nobody) unless `fields` say otherwise; its resident (张阿姨 of that grid)
    made on first use."""
    async with service.client.app[sessions_key]() as session, session.begin():
        grid = await session.scalar(select(Grid).where(Grid.code == grid_code))
        person = await session.scalar(select(Resident).where(Resident.external_id == resident))
        if person is None:
            person = Resident(channel="webchat", external_id=resident, name="张阿姨", grid=grid)
        if holder is not None:
            fields["assignee"] = await session.scalar(select(Member).where(Member.name == holder))
        ticket = a_ticket(person, grid, grid.community_id, text=text, **fields)
        session.add(ticket)
        await session.flush()
        return ticket.id
