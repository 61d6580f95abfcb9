"""How an action server outside the service opens a ticket (the contract is `bot.core.handoff`).

In-process the service injects its own implementation; under `rasa run actions` the action
server reaches the service over HTTP (`BOT_INTERNAL_URL`, authenticated by `BOT_INTERNAL_TOKEN`).
"""

from __future__ import annotations

import os

import aiohttp

from bot.core.handoff import HandoffError, HandoffRequest, HandoffResult


class HttpHandoffClient:
    def __init__(self, base_url: str, token: str, timeout_s: float = 5.0) -> None:
        self._url = base_url.rstrip("/") + "/internal/handoff"
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    @classmethod
    def from_environment(cls) -> HttpHandoffClient:
        return cls(
            os.environ.get("BOT_INTERNAL_URL", "http://127.0.0.1:8080"),
            os.environ.get("BOT_INTERNAL_TOKEN", ""),
        )

    async def open_ticket(self, request: HandoffRequest) -> HandoffResult:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                async with session.post(self._url, json=request.to_json(), headers=headers) as resp:
                    if resp.status != 200:
                        raise HandoffError(f"service answered {resp.status}")
                    body = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as e:
            raise HandoffError(f"service unreachable: {e!r}") from e
        return HandoffResult(
            ticket_id=int(body["ticket_id"]), reply=str(body["reply"]), line=body.get("line")
        )
