"""How the agent reaches our custom actions: in this process without HTTP by default, over
HTTP when an action server is configured (`rasa run actions`). The in-process endpoint itself,
against rasa_sdk's own action server, is in tests/test_rasa_patches.py."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from rasa_sdk.executor import ActionExecutor

from actions.actions import build_actions
from actions.handoff_client import HttpHandoffClient
from bot.app import action_endpoint, create_app
from bot.conversation.rasa_patches import InProcessActionEndpoint
from bot.demo import seed
from bot.settings import Settings
from tests.helpers import Service

LEAK = "我家厨房水管漏水了，3号楼2单元501"


async def test_the_service_runs_actions_in_process_unless_an_action_server_is_configured(
    service: Service,
) -> None:
    assert isinstance(action_endpoint(service.client.app), InProcessActionEndpoint)

    external = create_app(service.settings.with_overrides(action_endpoint="http://h:5055/webhook"))
    configured = action_endpoint(external)
    assert not isinstance(configured, InProcessActionEndpoint)
    assert configured.url == "http://h:5055/webhook"


async def test_a_configured_action_server_is_called_over_http_and_opens_the_ticket(
    settings: Settings, aiohttp_client: Any
) -> None:
    # What `rasa run actions` serves: the project's actions, reaching the service over HTTP.
    executor = ActionExecutor()
    service_url = f"http://127.0.0.1:{settings.port}"
    for action in build_actions(HttpHandoffClient(service_url, settings.internal_token)):
        executor.register_action(action)
    called: list[str] = []

    async def webhook(request: web.Request) -> web.Response:
        action_call = await request.json()
        called.append(action_call["next_action"])
        return web.json_response(await executor.run(action_call))

    action_app = web.Application()
    action_app.router.add_post("/webhook", webhook)
    async with TestServer(action_app) as action_server:
        configured = settings.with_overrides(
            action_endpoint=str(action_server.make_url("/webhook"))
        )
        client = await aiohttp_client(create_app(configured), server_kwargs={"port": settings.port})
        await seed(configured)
        service = Service(client, configured, "")
        resident = await service.resident("张阿姨")

        await resident.say(LEAK)

        assert "王建国" in (await resident.hear("bot"))["text"]
        assert called == ["action_handoff"]
