"""Service settings, read once from the environment with safe defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/bot.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
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

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    port = int(env.get("BOT_PORT", "8080"))
    host = env.get("BOT_HOST", "127.0.0.1")
    model_path = env.get("BOT_MODEL_PATH")
    origins = env.get("BOT_ALLOWED_ORIGINS", "")
    return Settings(
        database_url=env.get("BOT_DATABASE_URL", DEFAULT_DATABASE_URL),
        host=host,
        port=port,
        models_dir=Path(env.get("BOT_MODELS_DIR", "models")),
        model_path=Path(model_path) if model_path else None,
        action_endpoint=env.get("BOT_ACTION_ENDPOINT") or None,
        internal_token=env.get("BOT_INTERNAL_TOKEN", ""),
        public_url=env.get("BOT_PUBLIC_URL", f"http://{host}:{port}"),
        allowed_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
        log_level=env.get("BOT_LOG_LEVEL", "INFO"),
    )
