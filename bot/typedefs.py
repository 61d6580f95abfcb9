"""Typed keys for the objects the aiohttp app shares; the only way views reach them."""

from __future__ import annotations

from asyncio.subprocess import Process

from aiohttp import ClientSession, web
from rasa_sdk.executor import ActionExecutor
from sqlalchemy.orm import sessionmaker

from bot.channels.replay import ReplayGuard
from bot.channels.webchat.identity import ResidentCookies
from bot.channels.webchat.sockets import WebchatSockets
from bot.channels.wecom_names import ResidentNames
from bot.clock import Clock
from bot.conversation.delivery import Delivery
from bot.conversation.engine import RasaEngine
from bot.conversation.router import Router
from bot.handoff.notify import RobotNotifier
from bot.handoff.possible import PossibleRequests
from bot.handoff.push import MemberHub
from bot.handoff.service import TicketService
from bot.handoff.timers import Timers
from bot.metrics import Metrics
from bot.settings import Settings
from bot.throttle import Throttle
from bot.web.auth import LoginGuard, PasswordChecker

settings_key = web.AppKey("settings", Settings)
sessions_key = web.AppKey("sessions", sessionmaker)
rasa_key = web.AppKey("rasa", RasaEngine)
delivery_key = web.AppKey("delivery", Delivery)
hub_key = web.AppKey("member_hub", MemberHub)
tickets_key = web.AppKey("tickets", TicketService)
possible_key = web.AppKey("possible_requests", PossibleRequests)
router_key = web.AppKey("router", Router)
metrics_key = web.AppKey("metrics", Metrics)
webchat_sockets_key = web.AppKey("webchat_sockets", WebchatSockets)
# Runs our custom actions for the in-process Rasa agent.
executor_key = web.AppKey("action_executor", ActionExecutor)
clock_key = web.AppKey("clock", Clock)
timers_key = web.AppKey("timers", Timers)
# One HTTP client for every platform API the service calls.
http_key = web.AppKey("http", ClientSession)
resident_names_key = web.AppKey("resident_names", ResidentNames)
# Only present when a WeCom group robot webhook is configured.
notifier_key = web.AppKey("notifier", RobotNotifier)
# Training or evaluation started from /ops/models, one at a time.
ops_jobs_key = web.AppKey("ops_jobs", list[Process])
passwords_key = web.AppKey("passwords", PasswordChecker)
login_guard_key = web.AppKey("login_guard", LoginGuard)
resident_cookies_key = web.AppKey("resident_cookies", ResidentCookies)
# New webchat identities per address.
identity_throttle_key = web.AppKey("identity_throttle", Throttle)
# Nonces of WeChat-family callbacks seen in the last minutes.
replay_key = web.AppKey("callback_replays", ReplayGuard)
