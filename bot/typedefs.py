"""Typed keys for the objects the aiohttp app shares; the only way views reach them.

The classes are named for the type checker only: importing this module (every view and
channel does) must not import the layers those classes live in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from asyncio.subprocess import Process

    from aiohttp import ClientSession
    from rasa_sdk.executor import ActionExecutor
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.orm import sessionmaker

    from bot.channels.notify import RobotNotifier
    from bot.channels.replay import ReplayGuard
    from bot.channels.webchat.identity import ResidentCookies
    from bot.channels.webchat.sockets import WebchatSockets
    from bot.channels.wecom_names import ResidentNames
    from bot.cluster.bus import Bus
    from bot.cluster.redis import SharedRedis
    from bot.cluster.throttle import Throttle
    from bot.conversation.delivery import Delivery
    from bot.conversation.engine import RasaEngine
    from bot.conversation.router import Router
    from bot.core.chat import Intake
    from bot.core.clock import Clock
    from bot.handoff.possible import PossibleRequests
    from bot.handoff.push import MemberHub
    from bot.handoff.service import TicketService
    from bot.handoff.timers import Timers
    from bot.metrics import Metrics
    from bot.settings import Settings
    from bot.web.auth import LoginGuard, PasswordChecker

settings_key: web.AppKey[Settings] = web.AppKey("settings")
# This worker's name among several ("host:pid"): who claimed a message, who sent on the bus.
worker_key: web.AppKey[str] = web.AppKey("worker")
redis_key: web.AppKey[SharedRedis] = web.AppKey("redis")
bus_key: web.AppKey[Bus] = web.AppKey("bus")
engine_key: web.AppKey[AsyncEngine] = web.AppKey("engine")
sessions_key: web.AppKey[sessionmaker] = web.AppKey("sessions")
rasa_key: web.AppKey[RasaEngine] = web.AppKey("rasa")
delivery_key: web.AppKey[Delivery] = web.AppKey("delivery")
hub_key: web.AppKey[MemberHub] = web.AppKey("member_hub")
tickets_key: web.AppKey[TicketService] = web.AppKey("tickets")
possible_key: web.AppKey[PossibleRequests] = web.AppKey("possible_requests")
router_key: web.AppKey[Router] = web.AppKey("router")
# What channels hand inbound messages to; they never see the router.
intake_key: web.AppKey[Intake] = web.AppKey("intake")
metrics_key: web.AppKey[Metrics] = web.AppKey("metrics")
webchat_sockets_key: web.AppKey[WebchatSockets] = web.AppKey("webchat_sockets")
# Runs our custom actions for the in-process Rasa agent.
executor_key: web.AppKey[ActionExecutor] = web.AppKey("action_executor")
clock_key: web.AppKey[Clock] = web.AppKey("clock")
timers_key: web.AppKey[Timers] = web.AppKey("timers")
# One HTTP client for every platform API the service calls.
http_key: web.AppKey[ClientSession] = web.AppKey("http")
resident_names_key: web.AppKey[ResidentNames] = web.AppKey("resident_names")
# Only present when a WeCom group robot webhook is configured.
notifier_key: web.AppKey[RobotNotifier] = web.AppKey("notifier")
# Training or evaluation started from /ops/models, one at a time.
ops_jobs_key: web.AppKey[list[Process]] = web.AppKey("ops_jobs")
passwords_key: web.AppKey[PasswordChecker] = web.AppKey("passwords")
login_guard_key: web.AppKey[LoginGuard] = web.AppKey("login_guard")
resident_cookies_key: web.AppKey[ResidentCookies] = web.AppKey("resident_cookies")
# New webchat identities per address.
identity_throttle_key: web.AppKey[Throttle] = web.AppKey("identity_throttle")
# Photos and voice clips per webchat resident.
upload_throttle_key: web.AppKey[Throttle] = web.AppKey("upload_throttle")
# Nonces of WeChat-family callbacks seen in the last minutes.
replay_key: web.AppKey[ReplayGuard] = web.AppKey("callback_replays")
