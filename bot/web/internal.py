"""Our custom actions inside the service, and how an external action server opens a ticket.

- `setup`: the executor that runs the actions in process; the agent reaches it through
  `bot.conversation.rasa_patches.InProcessActionEndpoint` without HTTP (`rasa run actions`
  serves the same actions on its own, configured through `BOT_ACTION_ENDPOINT`).
- `/internal/handoff`: how an external action server opens a ticket.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from aiohttp import web
from rasa_sdk.executor import ActionExecutor

from actions.actions import build_actions
from bot.core.handoff import HandoffError, HandoffRequest, HandoffResult
from bot.handoff.opening import Opening
from bot.handoff.service import TicketService
from bot.typedefs import executor_key, settings_key, tickets_key
from bot.web.auth import bearer_token, secret_matches

logger = logging.getLogger(__name__)


class InProcessHandoffClient:
    """The action's handoff client when actions run inside the service."""

    def __init__(self, opening: Opening) -> None:
        self._opening = opening

    async def open_ticket(self, request: HandoffRequest) -> HandoffResult:
        try:
            return await self._opening.open_ticket(request)
        except Exception as failed:
            # The action then tells the resident to send again instead of naming nobody.
            logger.exception("opening a ticket for %s failed", request.conversation_id)
            raise HandoffError(str(failed)) from failed


async def handoff(request: web.Request) -> web.Response:
    if not secret_matches(bearer_token(request), request.app[settings_key].internal_token):
        logger.warning("internal handoff refused from %s", request.remote)
        raise web.HTTPForbidden(reason="internal route")
    try:
        body = await request.json()
        handoff_request = HandoffRequest.from_json(body)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise web.HTTPBadRequest(reason="not a handoff request") from e
    return web.json_response(
        asdict(await request.app[tickets_key].opening.open_ticket(handoff_request))
    )


def setup(app: web.Application, tickets: TicketService) -> None:
    executor = ActionExecutor()
    for action in build_actions(InProcessHandoffClient(tickets.opening)):
        executor.register_action(action)
    app[executor_key] = executor


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/internal/handoff", handoff, name="internal-handoff")
