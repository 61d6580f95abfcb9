"""The aiohttp application factory: `create_app(settings)`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial

import aiohttp
from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

from bot.channels import wechat as wechat_channel
from bot.channels import wecom as wecom_channel
from bot.channels.notify import RobotNotifier
from bot.channels.replay import ReplayGuard
from bot.channels.webchat import views as webchat_views
from bot.channels.webchat.identity import ResidentCookies
from bot.channels.webchat.sockets import CHANNEL as WEBCHAT
from bot.channels.webchat.sockets import WebchatSockets
from bot.channels.wechat import ApiSender
from bot.channels.wechat_api import GroupRobot, OfficialAccountApi, WecomApi, post_robot_response
from bot.channels.wecom import RobotSender
from bot.channels.wecom_names import ResidentNames
from bot.cluster.bus import Bus
from bot.cluster.redis import SharedRedis
from bot.cluster.throttle import Throttle
from bot.cluster.tokens import SharedTokens
from bot.conversation.delivery import Delivery
from bot.conversation.engine import RasaEngine, latest_model, lock_store_for
from bot.conversation.rasa_patches import InProcessActionEndpoint
from bot.conversation.router import Router
from bot.conversation.tracker_store import EventsTrackerStore
from bot.core.chat import Intake
from bot.core.clock import Clock, SystemClock
from bot.db.engine import create_engine, create_session_factory
from bot.db.migrate import upgrade_async
from bot.db.secrets import service_secret
from bot.handoff.journal import Journal
from bot.handoff.ledger import Timeouts
from bot.handoff.possible import PossibleRequests
from bot.handoff.push import MemberHub
from bot.handoff.service import TicketService
from bot.handoff.timers import Timers
from bot.metrics import Metrics
from bot.ops.switch import ModelWatcher, model_to_run
from bot.retention import RetentionJob
from bot.settings import Settings
from bot.typedefs import (
    bus_key,
    clock_key,
    delivery_key,
    engine_key,
    executor_key,
    http_key,
    hub_key,
    identity_throttle_key,
    intake_key,
    login_guard_key,
    metrics_key,
    notifier_key,
    ops_jobs_key,
    passwords_key,
    possible_key,
    rasa_key,
    redis_key,
    replay_key,
    resident_cookies_key,
    resident_names_key,
    router_key,
    sessions_key,
    settings_key,
    tickets_key,
    timers_key,
    upload_throttle_key,
    webchat_sockets_key,
    worker_key,
)
from bot.web import accounts, api, internal, open311, ops, overview, pages
from bot.web.auth import LoginGuard, PasswordChecker
from bot.web.middleware import error_middleware, security_headers

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
# The name of the database-held key that signs residents' webchat identities.
WEBCHAT_KEY = "webchat_identity"
# Photos and voice clips one webchat resident may send an hour: many for a request, few for
# filling the database.
UPLOADS_PER_HOUR = 30


def dumps_utf8(data: object) -> str:
    """Chinese stays readable on the wire; WeChat's APIs expect UTF-8 JSON."""
    return json.dumps(data, ensure_ascii=False)


async def database(app: web.Application) -> AsyncIterator[None]:
    url = app[settings_key].database_url
    await upgrade_async(url)
    app[engine_key] = engine = create_engine(url)
    app[sessions_key] = create_session_factory(engine)
    yield
    await engine.dispose()


async def cluster(app: web.Application) -> AsyncIterator[None]:
    """Redis, when configured, and the bus every worker hears (`bot.cluster`)."""
    app[redis_key] = redis = SharedRedis(app[settings_key].redis_url)
    await redis.open()
    app[bus_key] = bus = Bus(redis, app[worker_key])
    bus.start()
    yield
    await bus.close()
    await redis.close()


async def trust(app: web.Application) -> AsyncIterator[None]:
    """Passwords checked off the event loop, login throttling, residents' signed cookies."""
    settings, clock = app[settings_key], app[clock_key]
    app[passwords_key] = PasswordChecker()
    app[login_guard_key] = LoginGuard(clock, app[redis_key])
    key = await service_secret(app[sessions_key], WEBCHAT_KEY)
    secure = settings.public_url.startswith("https://")
    app[resident_cookies_key] = ResidentCookies(key, secure)
    per_hour = settings.webchat_identities_per_hour
    app[identity_throttle_key] = Throttle(
        "webchat-identity", per_hour, timedelta(hours=1), clock, app[redis_key]
    )
    app[upload_throttle_key] = Throttle(
        "webchat-upload", UPLOADS_PER_HOUR, timedelta(hours=1), clock, app[redis_key]
    )
    app[replay_key] = ReplayGuard(clock, app[redis_key])
    yield


async def handoff(app: web.Application) -> AsyncIterator[None]:
    sessions = app[sessions_key]
    app[hub_key] = hub = MemberHub(app[bus_key], Journal(sessions, app[clock_key]))
    app[webchat_sockets_key] = webchat = WebchatSockets(app[bus_key])
    settings = app[settings_key]
    lease = timedelta(seconds=settings.routing_lease_s)
    app[delivery_key] = delivery = Delivery(sessions, app[worker_key], app[clock_key], lease)
    delivery.register(WEBCHAT, webchat)

    timeouts = Timeouts(
        claim=timedelta(seconds=settings.claim_timeout_s),
        urgent_claim=timedelta(seconds=settings.urgent_claim_timeout_s),
        line_claim=lease,
        urgent_repeat=timedelta(seconds=settings.urgent_repeat_s),
    )
    app[tickets_key] = tickets = TicketService(
        sessions,
        delivery,
        hub,
        app[metrics_key],
        app[clock_key],
        timeouts,
        settings.possibly_urgent_below,
    )
    delivery.on_failure(tickets.residents.report_undelivered)
    app[possible_key] = PossibleRequests(
        sessions,
        tickets.opening,
        delivery,
        hub,
        app[clock_key],
        settings.possible_request_threshold,
    )
    internal.setup(app, tickets)
    yield


async def platforms(app: web.Application) -> AsyncIterator[None]:
    """Senders for the WeChat-family channels that are configured, and the group robot."""
    settings, clock = app[settings_key], app[clock_key]
    async with aiohttp.ClientSession(json_serialize=dumps_utf8) as http:
        app[http_key] = http
        wechat, wecom = settings.wechat, settings.wecom
        delivery = app[delivery_key]
        redis = app[redis_key]
        tokens = SharedTokens(redis) if redis.configured else None
        if wechat.appid and wechat.secret:
            oa = OfficialAccountApi(
                http,
                wechat.api_base,
                wechat.appid,
                wechat.secret,
                clock=clock,
                shared_tokens=tokens,
            )
            delivery.register(wechat_channel.CHANNEL, ApiSender(oa))
        wecom_api = None
        if wecom.corpid and wecom.secret:
            wecom_api = WecomApi(
                http,
                wecom.api_base,
                wecom.corpid,
                wecom.secret,
                wecom.agentid,
                clock=clock,
                shared_tokens=tokens,
            )
            delivery.register(wecom_channel.CHANNEL, ApiSender(wecom_api))
        app[resident_names_key] = ResidentNames(wecom_api)
        delivery.register(
            wecom_channel.ROBOT_CHANNEL,
            RobotSender(app[sessions_key], partial(post_robot_response, http)),
        )
        notifier = None
        if wecom.webhook_key:
            robot = GroupRobot(http, wecom.api_base, wecom.webhook_key)
            notifier = RobotNotifier(app[sessions_key], robot, f"{settings.public_url}/console/")
            app[tickets_key].on_opened(notifier.enqueue)
            app[notifier_key] = notifier
            await notifier.start()
        yield
        if notifier is not None:
            await notifier.close()


async def timers(app: web.Application) -> AsyncIterator[None]:
    """Claim timeouts and survey deadlines; they live in the database, so this resumes them."""
    app[timers_key] = ticket_timers = Timers(app[tickets_key])
    ticket_timers.start()
    yield
    await ticket_timers.close()


async def retention_job(app: web.Application) -> AsyncIterator[None]:
    """Erases the words of conversations that ended `retention_days` ago, once a day."""
    job = RetentionJob(app[sessions_key], app[clock_key], app[settings_key].retention_days)
    job.start()
    yield
    await job.close()


def action_endpoint(app: web.Application) -> EndpointConfig:
    """An external action server when one is configured (`rasa run actions`), else our
    actions in this process."""
    settings = app[settings_key]
    if settings.action_endpoint:
        return EndpointConfig(url=settings.action_endpoint)
    return InProcessActionEndpoint(app[executor_key])


async def dialogue(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    sessions = app[sessions_key]
    model = await model_to_run(
        sessions, lambda: settings.model_path or latest_model(settings.models_dir)
    )
    engine = await RasaEngine.load(
        model,
        EventsTrackerStore(app[engine_key]),
        action_endpoint(app),
        lock_store_for(settings.redis_url, settings.routing_lease_s),
    )
    app[rasa_key] = engine
    app[router_key] = router = Router(
        sessions,
        engine,
        app[tickets_key].desk(),
        app[delivery_key],
        app[metrics_key],
        app[possible_key],
        app[clock_key],
        app[worker_key],
        app[bus_key],
        timedelta(seconds=settings.routing_lease_s),
        app[redis_key],
    )
    app[intake_key] = Intake(router.accept, router.process_later)
    watcher = ModelWatcher(sessions, engine, settings.model_poll_s)
    watcher.start()
    router.work.start()
    app[delivery_key].start_sweeping()
    yield
    await app[delivery_key].close()
    await router.work.close()
    await watcher.close()


async def ops_jobs(app: web.Application) -> AsyncIterator[None]:
    """A training started from /ops/models does not outlive the service that started it."""
    jobs: list[Process] = []
    app[ops_jobs_key] = jobs
    yield
    for job in jobs:
        if job.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.pid, signal.SIGTERM)
            await job.wait()


async def close_sockets(app: web.Application) -> None:
    """On shutdown, before the server waits for open requests to end: each console and webchat
    socket is one, and would otherwise hold the stopping process (its page looking connected
    to it) until the shutdown timeout. Closed, the pages say 连接中… and reconnect, to the
    new process or another worker, and a console replays what it missed."""
    await asyncio.gather(app[hub_key].close_all(), app[webchat_sockets_key].close_all())


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    """The service; `clock` is for tests and benchmarks that move time themselves.

    The resource contexts open in order and close in reverse, and each uses what the ones
    before it opened: `database` the sessions every other needs; `cluster` Redis and the bus
    (the hub, webchat sockets, throttles and routing share through them); `trust` the login
    and cookie guards; `handoff` the consoles' hub, delivery and the ticket service; `platforms`
    the WeChat-family senders (registered on delivery) and the group robot (told of new
    tickets); `timers` the claim and survey timers (on the ticket service); `dialogue` the
    model, the router and the intake channels hand messages to. So on shutdown the consoles' and
    webchats' sockets close first (`close_sockets`, before the server waits for requests to
    end), then the router finishes what it routes before the timers stop, the bus and Redis
    close and the database is disposed.
    """
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    # aiohttp 3.9 types the signal as taking a handler of handlers; this handler is right.
    app.on_response_prepare.append(security_headers)  # type: ignore[arg-type]
    app[settings_key] = settings
    app[clock_key] = clock or SystemClock()
    app[worker_key] = f"{socket.gethostname()}:{os.getpid()}"
    app[metrics_key] = Metrics.create()
    pages.setup_routes(app)
    webchat_views.setup_routes(app)
    wechat_channel.setup_routes(app)
    wecom_channel.setup_routes(app)
    accounts.setup_routes(app)
    api.setup_routes(app)
    ops.setup_routes(app)
    overview.setup_routes(app)
    internal.setup_routes(app)
    open311.setup_routes(app)
    app.cleanup_ctx.extend(
        [database, cluster, trust, handoff, platforms, timers, dialogue, retention_job, ops_jobs]
    )
    app.on_shutdown.append(close_sockets)  # type: ignore[arg-type]  # as on_response_prepare
    return app


async def resume_after_restart(app: web.Application) -> None:
    """Route messages acknowledged before the last stop; needs the server to be listening,
    because an external action server opens tickets through `/internal/handoff`."""
    app[router_key].work.wake()
    sent = await app[delivery_key].resume_pending()
    if sent:
        logger.info("handed on %d message(s) left unsent by the last stop", sent)
