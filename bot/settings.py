"""Service settings, read once from the environment with safe defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/bot.db"
WECHAT_API = "https://api.weixin.qq.com"
WECOM_API = "https://qyapi.weixin.qq.com"


@dataclass(frozen=True)
class CallbackSecrets:
    """What a platform signs and encrypts its callbacks with. `aes_keys` holds the current
    EncodingAESKey first, then a previous one still accepted while a key rotation settles;
    empty means plain mode."""

    token: str = ""
    aes_keys: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.token)


@dataclass(frozen=True)
class WechatSettings:
    """The Official Account (公众号)."""

    callback: CallbackSecrets = field(default_factory=CallbackSecrets)
    appid: str = ""
    secret: str = ""
    api_base: str = WECHAT_API


@dataclass(frozen=True)
class WecomSettings:
    """WeCom (企业微信): the app residents or volunteers message, the intelligent robot that
    sits in residents' group chats, and the group robot webhook that notifies members."""

    callback: CallbackSecrets = field(default_factory=CallbackSecrets)
    corpid: str = ""
    secret: str = ""
    agentid: int = 0
    robot: CallbackSecrets = field(default_factory=CallbackSecrets)
    webhook_key: str = ""
    api_base: str = WECOM_API


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # Shared by several workers (`serve --workers N`): conversation locks, console events,
    # callback retry memory, token caches, throttles. Empty: one worker's own memory.
    redis_url: str = ""
    # Processes `serve` runs on one port; more than one needs PostgreSQL and Redis.
    workers: int = 1
    # A worker's claim on a message it routes; a worker killed mid-message leaves the message
    # to another worker this long after it claimed it (`bot.conversation.work`).
    routing_lease_s: float = 30.0
    host: str = "127.0.0.1"
    port: int = 8080
    models_dir: Path = Path("models")
    # A specific model archive; when unset the newest archive in models_dir is used.
    model_path: Path | None = None
    # External `rasa run actions` server; when unset actions run in this process.
    action_endpoint: str | None = None
    # Shared secret that an external action server presents to /internal/handoff.
    internal_token: str = ""
    public_url: str = "http://127.0.0.1:8080"
    # Origins allowed to open websockets; empty means "same host as the request".
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "INFO"
    # Unclaimed this long, a request goes to the next person in the chain.
    claim_timeout_s: int = 600
    urgent_claim_timeout_s: int = 60
    # After the whole branch was told, an unclaimed urgent request calls it again this often.
    urgent_repeat_s: int = 300
    # An urgent reading below this confidence goes to the grid's members first as 可能紧急
    # instead of paging the secretary (chosen by measurement, docs/nlu.md).
    possibly_urgent_below: float = 0.5
    # How often each worker checks which model is active (`python -m bot ops activate`).
    model_poll_s: float = 2.0
    # Model archives (~74 MB each) kept besides the active and the previous one: the newest
    # this many; older ones are deleted after each training.
    keep_models: int = 3
    # Training and evaluation run at this CPU niceness (19: the lowest priority), so the
    # service's answers to residents come first on the same cores.
    training_nice: int = 19
    # Classifications less confident than this go to the operators' review queue.
    review_below: float = 0.6
    # Read as chatter, a message still goes to a member as a possible request when the model
    # gives a request intent at least this much (chosen by measurement, docs/nlu.md).
    possible_request_threshold: float = 0.1
    # A console login lasts this long; logging out or a password change ends it sooner.
    token_hours: int = 72
    # Behind nginx every caller looks like 127.0.0.1: then the address the proxy saw, from
    # X-Forwarded-For, is the one login throttling counts.
    behind_proxy: bool = False
    # `/metrics` answers loopback callers, and others only with this bearer token.
    metrics_token: str = ""
    # New webchat identities one address may take an hour (a family, a community centre).
    webchat_identities_per_hour: int = 10
    # Closed this many days ago, a conversation's words are erased; statistics stay.
    retention_days: int = 180
    wechat: WechatSettings = field(default_factory=WechatSettings)
    wecom: WecomSettings = field(default_factory=WecomSettings)

    def with_overrides(self, **changes: object) -> Settings:
        # Values come from the command line and environment, already parsed; fields are
        # checked by name only, so the checker cannot know each value fits its field.
        return replace(self, **changes)  # type: ignore[arg-type]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    port = int(env.get("BOT_PORT", "8080"))
    host = env.get("BOT_HOST", "127.0.0.1")
    model_path = env.get("BOT_MODEL_PATH")
    origins = env.get("BOT_ALLOWED_ORIGINS", "")
    return Settings(
        database_url=env.get("BOT_DATABASE_URL", DEFAULT_DATABASE_URL),
        redis_url=env.get("BOT_REDIS_URL", ""),
        workers=int(env.get("BOT_WORKERS", "1")),
        routing_lease_s=float(env.get("BOT_ROUTING_LEASE", "30")),
        host=host,
        port=port,
        models_dir=Path(env.get("BOT_MODELS_DIR", "models")),
        model_path=Path(model_path) if model_path else None,
        action_endpoint=env.get("BOT_ACTION_ENDPOINT") or None,
        internal_token=env.get("BOT_INTERNAL_TOKEN", ""),
        public_url=env.get("BOT_PUBLIC_URL", f"http://{host}:{port}"),
        allowed_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
        log_level=env.get("BOT_LOG_LEVEL", "INFO"),
        claim_timeout_s=int(env.get("BOT_CLAIM_TIMEOUT", "600")),
        urgent_claim_timeout_s=int(env.get("BOT_URGENT_CLAIM_TIMEOUT", "60")),
        urgent_repeat_s=int(env.get("BOT_URGENT_REPEAT", "300")),
        possibly_urgent_below=float(env.get("BOT_POSSIBLY_URGENT_BELOW", "0.5")),
        model_poll_s=float(env.get("BOT_MODEL_POLL", "2")),
        keep_models=max(1, int(env.get("BOT_KEEP_MODELS", "3"))),
        training_nice=int(env.get("BOT_TRAINING_NICE", "19")),
        review_below=float(env.get("BOT_REVIEW_BELOW", "0.6")),
        possible_request_threshold=float(env.get("BOT_POSSIBLE_REQUEST_THRESHOLD", "0.1")),
        token_hours=int(env.get("BOT_TOKEN_HOURS", "72")),
        behind_proxy=env.get("BOT_BEHIND_PROXY", "") in ("1", "true", "yes"),
        metrics_token=env.get("BOT_METRICS_TOKEN", ""),
        retention_days=int(env.get("BOT_RETENTION_DAYS", "180")),
        webchat_identities_per_hour=int(env.get("BOT_WEBCHAT_IDENTITIES_PER_HOUR", "10")),
        wechat=WechatSettings(
            callback=_callback_secrets(env, "BOT_WECHAT"),
            appid=env.get("BOT_WECHAT_APPID", ""),
            secret=env.get("BOT_WECHAT_SECRET", ""),
            api_base=env.get("BOT_WECHAT_API_BASE", WECHAT_API).rstrip("/"),
        ),
        wecom=WecomSettings(
            callback=_callback_secrets(env, "BOT_WECOM"),
            corpid=env.get("BOT_WECOM_CORPID", ""),
            secret=env.get("BOT_WECOM_SECRET", ""),
            agentid=int(env.get("BOT_WECOM_AGENTID", "0")),
            robot=_callback_secrets(env, "BOT_WECOM_ROBOT"),
            webhook_key=env.get("BOT_WECOM_WEBHOOK_KEY", ""),
            api_base=env.get("BOT_WECOM_API_BASE", WECOM_API).rstrip("/"),
        ),
    )


def _callback_secrets(env: Mapping[str, str], prefix: str) -> CallbackSecrets:
    keys = (env.get(f"{prefix}_AES_KEY", ""), env.get(f"{prefix}_AES_KEY_PREVIOUS", ""))
    return CallbackSecrets(
        token=env.get(f"{prefix}_TOKEN", ""),
        aes_keys=tuple(k for k in keys if k) if keys[0] else (),
    )
