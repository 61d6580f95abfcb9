"""Shared fixtures: a tiny model trained once per session, the service on a fresh database
(SQLite, or PostgreSQL and Redis: tests/databases.py), and the ticket service alone
(`tickets`) for tests that need no model."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from rasa.core.processor import MessageProcessor

from bot.app import create_app
from bot.core.clock import FakeClock
from bot.db.engine import create_engine, create_session_factory
from bot.demo import DEMO_PASSWORD, seed
from bot.handoff.schedule import LOCAL
from bot.settings import Settings
from bot.web import auth
from tests.databases import Databases, databases_for, empty_redis, redis_url_from_env
from tests.fakes import Desk, desk_on
from tests.helpers import Service, start_service

os.environ["RASA_TELEMETRY_ENABLED"] = "false"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
TINY_EPOCHS = 6
# The linear second opinion's solver steps, half the project's.
TINY_ITERATIONS = 100
# One training example in this many: the tests need a model that reads plain requests right,
# not the project's accuracy (bench/nlu.py measures that).
TINY_SHARE = 2
# The trained components' own code (bot/rasa_*.py) decides what the archive holds, too.
MODEL_INPUTS = [
    "config.yml",
    "domain.yml",
    "data",
    *(f"bot/{path.name}" for path in sorted(ROOT.glob("bot/rasa_*.py"))),
]


def _inputs_digest() -> str:
    digest = hashlib.sha256(f"{TINY_EPOCHS}:{TINY_ITERATIONS}:{TINY_SHARE}".encode())
    for name in MODEL_INPUTS:
        path = ROOT / name
        for file in sorted(path.rglob("*.yml")) if path.is_dir() else [path]:
            digest.update(file.relative_to(ROOT).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _cached_model() -> Path:
    return ROOT / "var" / "test-models" / f"{_inputs_digest()}.tar.gz"


class TinyTraining:
    """`rasa train` of the project's config and data with fewer epochs, started as soon as
    the tests are collected: the tests that need no model run meanwhile (they are ordered
    first), and the first test that needs one waits for it."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="tiny-model-"))
        config = yaml.safe_load((ROOT / "config.yml").read_text())
        for component in config["pipeline"]:
            if "epochs" in component:
                component["epochs"] = min(component["epochs"], TINY_EPOCHS)
            if "max_iter" in component:
                component["max_iter"] = min(component["max_iter"], TINY_ITERATIONS)
        (self.work / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
        self._write_data(self.work / "data")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "rasa", "train",
                "--config", str(self.work / "config.yml"),
                "--domain", "domain.yml",
                "--data", str(self.work / "data"),
                "--out", str(self.work),
                "--fixed-model-name", "tiny",
                "--quiet",
            ],
            cwd=ROOT,
        )  # fmt: skip

    @staticmethod
    def _write_data(data: Path) -> None:
        """The rules, lookup tables and regexes as they are, and every other example of each
        intent (the held-out split stays out, as in every training)."""
        (data / "nlu").mkdir(parents=True)
        shutil.copy(ROOT / "data" / "rules.yml", data)
        for source in sorted((ROOT / "data" / "nlu").glob("*.yml")):
            kept, intent, examples = [], False, 0
            for line in source.read_text().splitlines():
                if not line.startswith(" "):
                    intent, examples = line.startswith("- intent:"), 0
                elif intent and line.startswith("    - "):
                    examples += 1
                    if examples % TINY_SHARE:
                        continue
                kept.append(line)
            (data / "nlu" / source.name).write_text("\n".join(kept) + "\n")

    def wait(self, cache: Path) -> Path:
        if self.process.wait() != 0:
            raise RuntimeError(f"training the test model failed ({self.process.returncode})")
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.work / "tiny.tar.gz", cache)
        shutil.rmtree(self.work, ignore_errors=True)
        return cache

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.work, ignore_errors=True)


TRAINING = pytest.StashKey[TinyTraining]()


def _needs_model(item: pytest.Item) -> bool:
    return "trained_model" in getattr(item, "fixturenames", ())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--storage-only",
        action="store_true",
        help="only the tests that use a database or Redis: `make test-pg` runs these again on "
        "PostgreSQL and Redis, the rest would run there as they did on SQLite",
    )


def _uses_storage(item: pytest.Item) -> bool:
    # The browser tests drive pages; what they store ran in the SQLite pass already.
    if item.get_closest_marker("browser"):
        return False
    return not {"databases", "shared_redis"}.isdisjoint(getattr(item, "fixturenames", ()))


def _keep_storage_tests(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselected = [i for i in items if not _uses_storage(i)]
    config.hook.pytest_deselected(items=deselected)
    items[:] = [i for i in items if _uses_storage(i)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("storage_only"):
        _keep_storage_tests(config, items)
    items.sort(key=_needs_model)
    if any(_needs_model(i) for i in items) and not _cached_model().exists():
        config.stash[TRAINING] = TinyTraining()


def pytest_unconfigure(config: pytest.Config) -> None:
    training = config.stash.get(TRAINING, None)
    if training is not None:
        training.stop()


@pytest.fixture(scope="session")
def trained_model(pytestconfig: pytest.Config) -> Path:
    """The tiny model; reused from var/test-models while its inputs are unchanged."""
    cache = _cached_model()
    if cache.exists():
        return cache
    training = pytestconfig.stash.get(TRAINING, None) or TinyTraining()
    pytestconfig.stash[TRAINING] = training
    return training.wait(cache)


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


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Argon2 as the service uses it, at its cheapest parameters: every service a test
    starts seeds six members and logs some in, and at the real cost (~0.1 s a hash) that
    was most of a test's setup. The real cost is the library's default, untouched here."""
    cheap = partial(PasswordHasher, time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "PasswordHasher", cheap)
        yield


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """SQLite files, or PostgreSQL databases when BOT_TEST_DATABASE_URL is set
    (tests/databases.py); the schema is migrated once, into the template each test copies."""
    databases = databases_for(tmp_path_factory.mktemp("databases"))
    yield databases
    databases.close()


@pytest.fixture
def database_url(databases: Databases) -> Iterator[str]:
    """A database of the test's own at the newest migration, dropped after it."""
    url = databases.create(migrated=True)
    yield url
    databases.drop(url)


@pytest.fixture
def empty_database_url(databases: Databases) -> Iterator[str]:
    """A database of the test's own with no tables yet, dropped after it."""
    url = databases.create(migrated=False)
    yield url
    databases.drop(url)


@pytest.fixture(scope="session")
def shared_redis() -> str:
    """BOT_TEST_REDIS_URL, checked once to name a Redis database of the tests' own."""
    return redis_url_from_env()


@pytest.fixture
def redis_url(shared_redis: str) -> str:
    """The Redis the service shares between workers, emptied for this test; "" (each
    worker's own memory) unless BOT_TEST_REDIS_URL is set."""
    if shared_redis:
        empty_redis(shared_redis)
    return shared_redis


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, redis_url: str, trained_model: Path, unused_tcp_port: int
) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
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
async def tickets(database_url: str, clock: FakeClock) -> AsyncIterator[Desk]:
    """The real ticket service on a migrated database with the demo's grids and members,
    the fake clock, and recording chats and consoles: no model, no HTTP."""
    await seed(Settings(database_url=database_url))
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    yield desk_on(sessions, clock)
    await engine.dispose()
