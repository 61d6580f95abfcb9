"""The whole retraining loop on a small copy of the project: a member's correction becomes a
training example, a new model reads that sentence as corrected, the gate refuses the weaker
model, a forced switch reaches every worker with all messages answered, and rollback restores
the previous model."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app import create_app
from bot.db.nlu_models import ModelEvent, OpsRun
from bot.demo import DEMO_PASSWORD, seed
from bot.ops.commands import train_from_corrections
from bot.ops.evaluation import evaluate, load_examples
from bot.ops.registry import register
from bot.settings import Settings
from bot.typedefs import sessions_key
from tests.helpers import Service

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_PER_INTENT = 30
SMALL_EPOCHS = 40
# Home visits at lunchtime: a meal delivery (助餐) or home care (医疗)? Either reading is one a
# member may correct.
AMBIGUOUS = "老人家一个人住，能不能每天中午有人上门看看他"
PLAIN_CHAT = "你好"


def small_project(where: Path) -> Path:
    """The project's config, domain, rules and held-out split, with a slice of the training
    examples and fewer epochs, so that a training takes seconds."""
    project = where / "project"
    nlu = project / "data" / "nlu"
    nlu.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    for component in config["pipeline"]:
        if "epochs" in component:
            component["epochs"] = SMALL_EPOCHS
    (project / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
    shutil.copy(ROOT / "domain.yml", project)
    shutil.copy(ROOT / "data" / "rules.yml", project / "data")
    shutil.copytree(ROOT / "data" / "test", project / "data" / "test")
    shutil.copy(ROOT / "data" / "nlu" / "entities.yml", nlu)
    for source in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        blocks = [b for b in yaml.safe_load(source.read_text())["nlu"] if "intent" in b]
        if not blocks:
            continue
        text = 'version: "3.1"\nnlu:\n'
        for block in blocks:
            lines = block["examples"].splitlines()[:EXAMPLES_PER_INTENT]
            text += f"- intent: {block['intent']}\n  examples: |\n"
            text += "".join(f"    {line}\n" for line in lines)
        (nlu / source.name).write_text(text)
    return project


@pytest.fixture
async def workers(
    tmp_path: Path,
    settings: Settings,
    aiohttp_client: Callable[..., TestClient],
    unused_tcp_port_factory: Callable[[], int],
) -> AsyncIterator[list[Service]]:
    """Two workers of the service on one database, as `serve` would run on two machines."""
    services = []
    for port in (settings.port, unused_tcp_port_factory()):
        # Every resident of this test writes from the same address.
        worker = settings.with_overrides(
            port=port,
            models_dir=tmp_path / "models",
            model_poll_s=0.2,
            webchat_identities_per_hour=10_000,
        )
        client = await aiohttp_client(create_app(worker), server_kwargs={"port": port})
        services.append(Service(client, worker, DEMO_PASSWORD))
    await seed(settings)
    yield services


async def running_model(worker: Service) -> str:
    resp = await worker.client.get("/readyz")
    return (await resp.json())["model"]


async def until_running(workers: list[Service], name: str, timeout: float = 60) -> None:
    async def all_switched() -> None:
        while [await running_model(w) for w in workers] != [name] * len(workers):
            await asyncio.sleep(0.1)

    await asyncio.wait_for(all_switched(), timeout)


async def chatter_until(worker: Service, done: asyncio.Event) -> tuple[int, int]:
    """Residents keep writing while the model switches; returns (sent, answered)."""
    sent = answered = 0
    while not done.is_set():
        resident = await worker.resident(f"居民{sent}")
        await resident.say(PLAIN_CHAT)
        sent += 1
        await resident.hear("bot")
        answered += 1
    return sent, answered


async def test_a_correction_retrains_the_model_and_models_switch_safely(
    workers: list[Service], tmp_path: Path
) -> None:
    main, other = workers
    first_model = await running_model(main)
    secretary = await main.login("陈红梅")
    console = await main.console(secretary)
    await (await main.resident("赵奶奶")).say(AMBIGUOUS)
    ticket = (await console.event("ticket.created"))["ticket"]
    await main.settle()
    corrected = "medical" if ticket["category"] != "medical" else "canteen"

    # The member's one tap; the operator accepts it; export writes it into the data.
    await main.api(
        "POST", f"/api/tickets/{ticket['id']}/category", secretary, json={"category": corrected}
    )
    operator = await main.login("周晓燕")
    [group] = (await main.api("GET", "/api/ops/review", operator))[1]["groups"]
    await main.api("POST", f"/api/ops/review/{group['items'][0]['id']}", operator, json={
        "action": "accept"
    })  # fmt: skip
    # One run, as the page's button starts it: export, a candidate from the small data,
    # its scores; the active model is scored beside it.
    project = small_project(tmp_path)
    sessions = main.client.app[sessions_key]
    progress: list[str] = []
    candidate = await train_from_corrections(
        sessions, main.settings, project, "周晓燕", export=True, evaluate=True,
        on_line=progress.append,
    )  # fmt: skip
    assert (AMBIGUOUS, corrected) in load_examples(project / "data" / "nlu")
    assert any("candidate" in line for line in progress)
    async with sessions() as session:
        run = await session.scalar(select(OpsRun).order_by(OpsRun.id.desc()))
    assert [(s["name"], s["status"]) for s in run.steps] == [
        ("export", "succeeded"),
        ("train", "succeeded"),
        ("evaluate", "succeeded"),
    ]
    assert run.steps[0]["detail"]["written"] == {corrected: 1}
    assert (run.status, run.model_name) == ("succeeded", candidate.name)
    await evaluate(main.settings.model_path, project / "data" / "test")
    async with sessions() as session, session.begin():
        await register(session, main.settings.model_path, "周晓燕")

    # Trained on a slice of the data it is the weaker model: the gate says no.
    status, refused = await main.api(
        "POST", f"/api/ops/models/{candidate.name}/activate", operator, json={}
    )
    assert status == 409 and any("macro-F1" in r for r in refused["reasons"])
    assert await running_model(main) == first_model

    # Forced (and recorded), while residents keep writing to the first worker.
    done = asyncio.Event()
    traffic = asyncio.create_task(chatter_until(main, done))
    await asyncio.sleep(0.5)
    status, _ = await main.api(
        "POST",
        f"/api/ops/models/{candidate.name}/activate",
        operator,
        json={"force": True, "reason": "测试新例句"},
    )
    assert status == 200
    await until_running(workers, candidate.name)
    await asyncio.sleep(0.5)
    done.set()
    sent, answered = await asyncio.wait_for(traffic, 30)
    assert sent >= 3 and answered == sent

    # The new model reads the corrected sentence as the member said.
    await (await other.resident("钱奶奶")).say(AMBIGUOUS)
    await other.settle()
    _, listed = await main.api("GET", "/api/tickets?status=open", secretary)
    newest = max(listed["tickets"], key=lambda t: t["id"])
    assert (newest["text"], newest["category"]) == (AMBIGUOUS, corrected)

    status, back = await main.api("POST", "/api/ops/models/rollback", operator)
    assert (status, back["name"]) == (200, first_model)
    await until_running(workers, first_model)

    async with sessions() as session:
        events = (await session.execute(select(ModelEvent.kind, ModelEvent.actor))).all()
    assert ("refused", "周晓燕") in events
    assert ("forced", "周晓燕") in events
    assert ("rolled back", "周晓燕") in events
