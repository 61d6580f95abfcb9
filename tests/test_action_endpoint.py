"""How the agent reaches our custom actions: in this process without HTTP by default, over
HTTP when an action server is configured (`rasa run actions`)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from rasa.core.actions.action import ActionExecutionRejection as RasaRejection
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from rasa_sdk.interfaces import ActionExecutionRejection

from actions.actions import build_actions
from actions.handoff_client import HttpHandoffClient
from bot.app import action_endpoint, create_app
from bot.core.handoff import HandoffRequest, HandoffResult
from bot.demo import seed
from bot.settings import Settings
from bot.web.internal import InProcessActionEndpoint
from tests.helpers import Service

LEAK = "我家厨房水管漏水了，3号楼2单元501"


class RecordingClient:
    def __init__(self) -> None:
        self.requests: list[HandoffRequest] = []

    async def open_ticket(self, request: HandoffRequest) -> HandoffResult:
        self.requests.append(request)
        return HandoffResult(ticket_id=7, reply="已请3号楼网格员王建国来帮您")


class ActionRefusing(Action):
    def name(self) -> str:
        return "action_refusing"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        raise ActionExecutionRejection(self.name(), "not for this message")


def endpoint(*actions: Action) -> InProcessActionEndpoint:
    executor = ActionExecutor()
    for action in actions:
        executor.register_action(action)
    return InProcessActionEndpoint(executor)


def repair_tracker() -> DialogueStateTracker:
    said = UserUttered(
        LEAK,
        intent={"name": "repair", "confidence": 0.93},
        metadata={"channel": "webchat", "chat_type": "private", "message_id": 3},
    )
    return DialogueStateTracker.from_events("webchat:u1", [said])


async def run(action_name: str, endpoint: InProcessActionEndpoint) -> list[Any]:
    return await RemoteAction(action_name, endpoint).run(
        CollectingOutputChannel(),
        TemplatedNaturalLanguageGenerator({}),
        repair_tracker(),
        Domain.empty(),
    )


async def test_rasa_runs_an_in_process_action_and_gets_its_lines_and_events() -> None:
    client = RecordingClient()
    [action_handoff, _] = build_actions(client)

    events = await run("action_handoff", endpoint(action_handoff))

    # The endpoint has no URL to call: an HTTP request would have failed.
    assert [type(e) for e in events] == [BotUttered]
    assert events[0].text == "已请3号楼网格员王建国来帮您"
    # The router learns from the line which ticket the turn opened.
    assert events[0].data["custom"] == {"ticket_id": 7}
    [request] = client.requests
    assert (request.conversation_id, request.intent, request.text) == ("webchat:u1", "repair", LEAK)
    assert request.origin.message_id == 3


async def test_a_refusing_action_is_a_rejection_to_rasa_as_over_http() -> None:
    with pytest.raises(RasaRejection):
        await run("action_refusing", endpoint(ActionRefusing()))


async def test_an_unknown_action_fails_as_over_http() -> None:
    with pytest.raises(RasaException, match="Failed to execute custom action"):
        await run("action_nobody_wrote", endpoint(ActionRefusing()))


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
