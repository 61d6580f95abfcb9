"""How Rasa reaches our custom actions, and how an external action server opens a ticket.

- `InProcessActionEndpoint`: the in-process agent's action endpoint, which hands each action
  call to rasa_sdk's executor without HTTP (`rasa run actions` serves the same actions on its
  own, configured through `BOT_ACTION_ENDPOINT`).
- `/internal/handoff`: how an external action server opens a ticket.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from aiohttp import web
from rasa.utils.endpoints import ClientResponseError, EndpointConfig
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

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


class InProcessActionEndpoint(EndpointConfig):
    """Rasa's `RemoteAction` posts each action call to its endpoint; this one gives the call to
    the executor in this process. Over loopback HTTP every turn encoded the whole tracker as
    JSON and parsed it back, a quarter of a turn's CPU on the event loop that also answers the
    callbacks.

    The action gets Rasa's own dicts, not a parsed copy, so actions must not change the
    tracker they are given (ours only read it). Refusals keep the status codes the action
    server protocol gives them, so that Rasa handles them as it would over HTTP.
    """

    def __init__(self, executor: ActionExecutor) -> None:
        # Our actions never read the domain, so Rasa need not serialise it into every call.
        super().__init__(url="in-process", enable_selective_domain=True)
        self._executor = executor

    async def request(
        self,
        method: str = "post",
        subpath: str | None = None,
        content_type: str | None = "application/json",
        compress: bool = False,
        **kwargs: Any,
    ) -> Any:
        try:
            return await self._executor.run(kwargs["json"])
        except ActionNotFoundException as e:
            raise _refusal(404, "Not Found", e.message, e.action_name) from e
        except ActionExecutionRejection as e:
            raise _refusal(400, "Bad Request", e.message, e.action_name) from e


def _refusal(status: int, reason: str, error: str, action_name: str) -> ClientResponseError:
    body = json.dumps({"error": error, "action_name": action_name})
    return ClientResponseError(status, reason, body)


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
