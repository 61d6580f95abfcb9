"""`rasa run actions` mode: the SDK finds our actions, which reach the service over HTTP."""

from __future__ import annotations

import pytest
from rasa_sdk.executor import ActionExecutor
from sqlalchemy import select

from actions.handoff_client import HttpHandoffClient
from bot.core.handoff import HandoffError, HandoffRequest, Origin
from bot.db.nlu_models import Classification
from bot.typedefs import sessions_key
from tests.helpers import Service


def test_the_sdk_action_server_discovers_every_domain_action() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    assert {"action_handoff", "action_chitchat"} <= set(executor.actions)


async def test_an_external_action_server_opens_a_ticket_through_the_service(
    service: Service,
) -> None:
    token = await service.login("刘桂兰")
    console = await service.console(token)
    client = HttpHandoffClient(
        str(service.client.make_url("/")), service.settings.internal_token, timeout_s=10
    )

    result = await client.open_ticket(
        HandoffRequest(
            conversation_id="shell-session-1",
            intent="medical",
            confidence=0.88,
            text="东村的刘奶奶想约家庭医生上门 电话13900001234",
            origin=Origin.from_metadata({"channel": "cmdline"}, "shell-session-1"),
            model="20261207-000000-test.tar.gz",
        )
    )

    ticket = (await console.event("ticket.created"))["ticket"]
    assert ticket["id"] == result.ticket_id
    assert (ticket["category"], ticket["grid"]) == ("medical", "东村")
    assert "东村" in result.reply and ticket["assignee"]["name"] in result.reply
    # The model's reading went over HTTP with the request, and waits for review with the ticket.
    async with service.client.app[sessions_key]() as session:
        [reading] = (
            await session.scalars(
                select(Classification).where(Classification.ticket_id == result.ticket_id)
            )
        ).all()
    assert (reading.intent, reading.confidence) == ("medical", 0.88)
    assert reading.model == "20261207-000000-test.tar.gz"
    assert reading.text == "东村的刘奶奶想约家庭医生上门 电话139****1234"


async def test_a_wrong_internal_token_is_a_handoff_error(service: Service) -> None:
    client = HttpHandoffClient(str(service.client.make_url("/")), "wrong-token")
    with pytest.raises(HandoffError):
        await client.open_ticket(
            HandoffRequest("c", "repair", 0.9, "灯坏了", Origin.from_metadata({}, "c"))
        )


async def test_an_unclear_message_goes_to_a_person_as_unclassified(service: Service) -> None:
    token = await service.login("陈红梅")
    console = await service.console(token)
    client = HttpHandoffClient(str(service.client.make_url("/")), service.settings.internal_token)

    result = await client.open_ticket(
        HandoffRequest(
            "shell-session-2",
            "nlu_fallback",
            0.31,
            "那个 就是 你们管不管这个事",
            Origin.from_metadata({}, "shell-session-2"),
        )
    )

    ticket = (await console.event("ticket.created"))["ticket"]
    assert (ticket["category"], ticket["category_label"]) == ("unclassified", "未分类")
    # No grid is known, so the branch secretary takes it, by name.
    assert ticket["assignee"]["name"] == "陈红梅" and "陈红梅" in result.reply
