"""Small typed helpers that act as a resident in the webchat and as a member in the console."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient

from bot.settings import Settings
from bot.typedefs import router_key

WAIT_S = 15.0


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

    async def resident(self, name: str, chat: str = "private", user_id: str | None = None) -> Chat:
        user_id = user_id or f"u{uuid.uuid4().hex[:15]}"
        ws = await self.client.ws_connect(
            "/webchat/ws", params={"user_id": user_id, "name": name, "chat": chat}
        )
        history = await ws.receive_json(timeout=WAIT_S)
        assert history["type"] == "history"
        return Chat(ws, user_id, history["messages"])

    async def console(self, token: str) -> Console:
        return Console(await self.client.ws_connect("/api/ws", params={"token": token}))


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
    user_id: str
    history: list[dict[str, Any]]

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

    async def hears_nothing_from(self, sender_kind: str, wait: float = 1.5) -> bool:
        return await _nothing_matches(
            self.ws,
            lambda f: f["type"] == "message" and f["message"]["sender_kind"] == sender_kind,
            wait,
        )


@dataclass
class Console:
    ws: ClientWebSocketResponse

    async def event(self, kind: str, timeout: float = WAIT_S) -> dict[str, Any]:
        return await _receive_until(self.ws, lambda f: f["type"] == kind, timeout)

    async def resident_wrote(self, timeout: float = WAIT_S) -> dict[str, Any]:
        frame = await _receive_until(
            self.ws,
            lambda f: f["type"] == "ticket.message" and f["message"]["sender_kind"] == "resident",
            timeout,
        )
        return frame

    async def gets_nothing(self, wait: float = 1.0) -> bool:
        return await _nothing_matches(self.ws, lambda f: True, wait)
