"""Loopback-only routes between the service and Rasa custom actions.

- `/internal/actions/webhook`: rasa_sdk's executor, so the in-process agent runs our actions
  without a second process (`rasa run actions` serves the same actions on its own).
- `/internal/handoff`: how an external action server opens a ticket.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import asdict

from aiohttp import web
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

from actions.actions import build_actions
from actions.handoff_client import HandoffError, HandoffRequest, HandoffResult
from bot.handoff.service import TicketService
from bot.typedefs import action_token_key, executor_key, settings_key, tickets_key

logger = logging.getLogger(__name__)


class InProcessHandoffClient:
    """The action's handoff client when actions run inside the service."""

    def __init__(self, tickets: TicketService) -> None:
        self._tickets = tickets

    async def open_ticket(self, request: HandoffRequest) -> HandoffResult:
        try:
            return await self._tickets.open_ticket(request)
        except Exception as failed:
            # The action then tells the resident to send again instead of naming nobody.
            logger.exception("opening a ticket for %s failed", request.conversation_id)
            raise HandoffError(str(failed)) from failed


def _token_ok(presented: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())


async def action_webhook(request: web.Request) -> web.Response:
    if not _token_ok(request.query.get("token", ""), request.app[action_token_key]):
        logger.warning("action webhook called without the process token from %s", request.remote)
        raise web.HTTPForbidden(reason="internal route")
    try:
        result = await request.app[executor_key].run(await request.json())
    except ValueError as e:
        raise web.HTTPBadRequest(reason="not an action call") from e
    except ActionNotFoundException as e:
        return web.json_response({"error": e.message, "action_name": e.action_name}, status=404)
    except ActionExecutionRejection as e:
        return web.json_response({"error": e.message, "action_name": e.action_name}, status=400)
    return web.json_response(result)


async def handoff(request: web.Request) -> web.Response:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _token_ok(token, request.app[settings_key].internal_token):
        logger.warning("internal handoff refused from %s", request.remote)
        raise web.HTTPForbidden(reason="internal route")
    try:
        body = await request.json()
        handoff_request = HandoffRequest(**body)
    except (ValueError, TypeError) as e:
        raise web.HTTPBadRequest(reason="not a handoff request") from e
    return web.json_response(asdict(await request.app[tickets_key].open_ticket(handoff_request)))


def setup(app: web.Application, tickets: TicketService) -> None:
    executor = ActionExecutor()
    for action in build_actions(InProcessHandoffClient(tickets)):
        executor.register_action(action)
    app[executor_key] = executor


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/internal/actions/webhook", action_webhook, name="internal-actions")
    app.router.add_post("/internal/handoff", handoff, name="internal-handoff")
