"""Every worker runs the model the registry says is active, switching without a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot.conversation.engine import RasaEngine
from bot.ops.registry import activate, active_model

logger = logging.getLogger(__name__)


async def model_to_run(sessions: sessionmaker, configured_model: Callable[[], Path]) -> Path:
    """The active model if one is registered and on disk; otherwise the configured archive
    (BOT_MODEL_PATH, else the newest in models/), which then becomes the active one."""
    async with sessions() as session:
        active = await active_model(session)
    if active is not None and Path(active.path).is_file():
        return Path(active.path)
    configured = configured_model()
    try:
        async with sessions() as session, session.begin():
            await activate(session, configured, "服务启动", force=True)
    except IntegrityError:
        # Another worker registered it at the same moment.
        return await model_to_run(sessions, lambda: configured)
    return configured


class ModelWatcher:
    """Polls the registry; the database is what makes all workers follow one activation."""

    def __init__(self, sessions: sessionmaker, engine: RasaEngine, interval_s: float) -> None:
        self._sessions = sessions
        self._engine = engine
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def check(self) -> bool:
        """Switch to the active model if it is not the one running; True when it switched."""
        async with self._sessions() as session:
            active = await active_model(session)
        if active is None or active.name == self._engine.model_name:
            return False
        path = Path(active.path)
        if not path.is_file():
            logger.error("active model %s is not on this machine at %s", active.name, path)
            return False
        await self._engine.switch_to(path)
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check()
            except Exception:
                logger.exception("checking for a newly activated model failed")
