"""The aiohttp application factory: `create_app(settings)`."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator

from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

from bot.channels.webchat import views as webchat_views
from bot.channels.webchat.sockets import CHANNEL as WEBCHAT
from bot.channels.webchat.sockets import WebchatSockets
from bot.conversation.delivery import Delivery
from bot.conversation.engine import RasaEngine, latest_model, tracker_store_for
from bot.conversation.router import Router
from bot.db.engine import create_engine, create_session_factory
from bot.db.migrate import upgrade_async
from bot.handoff.push import MemberHub
from bot.handoff.service import TicketService
from bot.metrics import Metrics
from bot.settings import Settings
from bot.typedefs import (
    action_token_key,
    delivery_key,
    hub_key,
    metrics_key,
    rasa_key,
    router_key,
    sessions_key,
    settings_key,
    tickets_key,
    webchat_sockets_key,
)
from bot.web import api, internal, pages
from bot.web.middleware import error_middleware

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


async def database(app: web.Application) -> AsyncIterator[None]:
    url = app[settings_key].database_url
    await upgrade_async(url)
    engine = create_engine(url)
    app[sessions_key] = create_session_factory(engine)
    yield
    await engine.dispose()


async def handoff(app: web.Application) -> AsyncIterator[None]:
    sessions = app[sessions_key]
    app[hub_key] = hub = MemberHub()
    app[webchat_sockets_key] = webchat = WebchatSockets()
    app[delivery_key] = delivery = Delivery(sessions)
    delivery.register(WEBCHAT, webchat)

    async def resume(conversation_id: str) -> None:
        await app[rasa_key].resume(conversation_id)

    app[tickets_key] = tickets = TicketService(sessions, delivery, hub, resume, app[metrics_key])
    internal.setup(app, tickets)
    yield
    await webchat.close_all()
    await hub.close_all()


def action_endpoint(app: web.Application) -> EndpointConfig:
    settings = app[settings_key]
    if settings.action_endpoint:
        return EndpointConfig(url=settings.action_endpoint)
    url = app.router["internal-actions"].url_for()
    return EndpointConfig(url=f"http://127.0.0.1:{settings.port}{url}", token=app[action_token_key])


async def dialogue(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    model = settings.model_path or latest_model(settings.models_dir)
    engine = await RasaEngine.load(
        model, tracker_store_for(settings.database_url), action_endpoint(app)
    )
    app[rasa_key] = engine
    app[router_key] = router = Router(
        app[sessions_key], engine, app[tickets_key], app[delivery_key], app[metrics_key]
    )
    yield
    await router.drain()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app[settings_key] = settings
    app[action_token_key] = secrets.token_urlsafe(24)
    app[metrics_key] = Metrics.create()
    pages.setup_routes(app)
    webchat_views.setup_routes(app)
    api.setup_routes(app)
    internal.setup_routes(app)
    app.cleanup_ctx.extend([database, handoff, dialogue])
    return app


async def resume_after_restart(app: web.Application) -> None:
    """Route messages acknowledged before the last stop; needs the server to be listening,
    because in-process actions are reached through the internal webhook."""
    count = await app[router_key].resume_unhandled()
    if count:
        logger.info("resuming %d message(s) left unrouted by the last stop", count)
