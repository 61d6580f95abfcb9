"""Shared fixtures: a tiny model trained once per session, the service on a fresh database,
and the ticket service alone (`tickets`) for tests that need no model."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from rasa.core.processor import MessageProcessor

from bot.app import create_app
from bot.conversation.delivery import Delivery
from bot.core.clock import FakeClock
from bot.db.engine import create_engine, create_session_factory
from bot.db.migrate import upgrade_async
from bot.demo import DEMO_PASSWORD, seed
from bot.handoff.schedule import LOCAL
from bot.handoff.service import TicketService
from bot.handoff.timers import Timers
from bot.metrics import Metrics
from bot.settings import Settings
from tests.fakes import Desk, RecordingHub, RecordingSender
from tests.helpers import Service, start_service

os.environ["RASA_TELEMETRY_ENABLED"] = "false"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
TINY_EPOCHS = 25
MODEL_INPUTS = ["config.yml", "domain.yml", "data"]


def _inputs_digest() -> str:
    digest = hashlib.sha256(str(TINY_EPOCHS).encode())
    for name in MODEL_INPUTS:
        path = ROOT / name
        for file in sorted(path.rglob("*.yml")) if path.is_dir() else [path]:
            digest.update(file.relative_to(ROOT).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's config and data with fewer epochs; reused while its inputs are unchanged."""
    cache = ROOT / "var" / "test-models" / f"{_inputs_digest()}.tar.gz"
    if cache.exists():
        return cache
    work = tmp_path_factory.mktemp("model")
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    for component in config["pipeline"]:
        if "epochs" in component:
            component["epochs"] = min(component["epochs"], TINY_EPOCHS)
    (work / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
    subprocess.run(
        [
            sys.executable, "-m", "rasa", "train",
            "--config", str(work / "config.yml"),
            "--domain", "domain.yml",
            "--data", "data",
            "--out", str(work),
            "--fixed-model-name", "tiny",
            "--quiet",
        ],
        cwd=ROOT,
        check=True,
    )  # fmt: skip
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / "tiny.tar.gz", cache)
    return cache


@pytest.fixture(scope="session", autouse=True)
def model_graphs_loaded_once() -> Iterator[None]:
    """Every test's service loads its model archive, and the loaded prediction graph is the
    same each time; sharing it saves seconds per test. Agents, trackers and locks stay per
    service."""
    load = MessageProcessor._load_model
    loaded: dict[str, tuple[Any, ...]] = {}

    def load_once(model_path: str | Path) -> tuple[Any, ...]:
        key = os.path.abspath(model_path)
        if key not in loaded:
            loaded[key] = load(model_path)
        return loaded[key]

    MessageProcessor._load_model = staticmethod(load_once)  # type: ignore[method-assign]
    yield
    MessageProcessor._load_model = staticmethod(load)  # type: ignore[method-assign]


@pytest.fixture
def settings(tmp_path: Path, trained_model: Path, unused_tcp_port: int) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        port=unused_tcp_port,
        model_path=trained_model,
        models_dir=tmp_path / "models",
        internal_token="internal-test-token",
    )


@pytest.fixture
async def service(settings: Settings, aiohttp_client) -> AsyncIterator[Service]:  # type: ignore[no-untyped-def]
    """The whole service with the demo grids and members, listening on its configured port."""
    client: TestClient = await aiohttp_client(
        create_app(settings), server_kwargs={"port": settings.port}
    )
    await seed(settings)
    yield Service(client, settings, DEMO_PASSWORD)


# A Friday, mid-morning in Beijing: everyone in the demo is on duty.
MORNING = datetime(2026, 11, 27, 10, tzinfo=LOCAL)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MORNING)


@pytest.fixture
async def timed(settings: Settings, clock: FakeClock, aiohttp_client) -> Service:  # type: ignore[no-untyped-def]
    """The service on the injected `clock`."""
    return await start_service(aiohttp_client, settings, clock)


@pytest.fixture
async def tickets(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Desk]:
    """The real ticket service on a migrated SQLite database with the demo's grids and
    members, the fake clock, and recording chats and consoles: no model, no HTTP."""
    url = f"sqlite+aiosqlite:///{tmp_path}/tickets.db"
    await upgrade_async(url)
    await seed(Settings(database_url=url))
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    chats, hub = RecordingSender(), RecordingHub()
    delivery = Delivery(sessions)
    delivery.register("webchat", chats)
    service = TicketService(sessions, delivery, hub, Metrics.create(), clock)
    yield Desk(service, Timers(service), clock, chats, hub, sessions)
    await engine.dispose()
