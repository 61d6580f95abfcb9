"""Operators close the loop: classifications are kept, members correct them, operators review,
export, train, evaluate, and switch models in the running service."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.db.engine import create_engine, create_session_factory
from bot.db.nlu_models import Classification, ModelEvent, OpsRun
from bot.ops import commands
from bot.ops.evaluation import load_examples, report_path, score
from bot.ops.export import export_accepted
from bot.ops.registry import activate, discover, gate, list_models, register, rollback
from bot.ops.runs import STALE_AFTER, RunLog, run_payload
from bot.settings import Settings
from bot.typedefs import ops_jobs_key, sessions_key
from tests.helpers import Service

ROOT = Path(__file__).resolve().parents[1]
LEAK_WITH_PHONE = "我家厨房水管漏水了，3号楼2单元501，电话13900001234"


async def test_each_reading_is_kept_and_a_members_correction_reaches_the_operators(
    service: Service,
) -> None:
    member = await service.login("王建国")
    console = await service.console(member)
    resident = await service.resident("张阿姨")
    await resident.say(LEAK_WITH_PHONE)
    ticket = (await console.event("ticket.created"))["ticket"]
    await service.settle()

    status, corrected = await service.api(
        "POST", f"/api/tickets/{ticket['id']}/category", member, json={"category": "complaint"}
    )
    assert (status, corrected["category"]) == (200, "complaint")
    _, detail = await service.api("GET", f"/api/tickets/{ticket['id']}", member)
    event = next(e for e in detail["events"] if e["kind"] == "category_corrected")
    assert "维修 → 投诉" in event["reason"]

    status, _ = await service.api("GET", "/api/ops/review", member)
    assert status == 403
    operator = await service.login("周晓燕")
    status, queue = await service.api("GET", "/api/ops/review", operator)
    assert status == 200
    [group] = queue["groups"]
    assert (group["predicted"], group["corrected"]) == (ticket["category"], "complaint")
    [item] = group["items"]
    assert item["model"] == service.settings.model_path.name
    assert 0 < item["confidence"] <= 1
    assert "13900001234" not in item["text"] and "139****1234" in item["text"]

    status, decided = await service.api(
        "POST", f"/api/ops/review/{item['id']}", operator, json={"action": "accept"}
    )
    assert (status, decided["label"]) == (200, "complaint")
    _, queue = await service.api("GET", "/api/ops/review", operator)
    assert queue["groups"] == []


async def test_a_correction_hands_an_unclaimed_request_to_a_member_with_the_new_skill(
    service: Service,
) -> None:
    wang, li = await service.login("王建国"), await service.login("李秀英")
    wang_console, li_console = await service.console(wang), await service.console(li)
    resident = await service.resident("张阿姨")
    await resident.say(LEAK_WITH_PHONE)
    ticket = (await wang_console.event("ticket.created"))["ticket"]
    assert "王建国" in (await resident.hear("bot"))["text"]
    await service.settle()

    status, corrected = await service.api(
        "POST", f"/api/tickets/{ticket['id']}/category", wang, json={"category": "medical"}
    )
    assert (status, corrected["assignee"]["name"], corrected["status"]) == (
        200,
        "李秀英",
        "assigned",
    )
    for console in (wang_console, li_console):
        updated = (await console.event("ticket.updated"))["ticket"]
        assert (updated["id"], updated["assignee"]["name"]) == (ticket["id"], "李秀英")
    assert "李秀英" in (await resident.hear("bot"))["text"]
    _, detail = await service.api("GET", f"/api/tickets/{ticket['id']}", li)
    moved = next(e for e in detail["events"] if e["kind"] == "redispatch")
    assert moved["actor"] == "王建国" and "改派给李秀英" in moved["reason"]


async def test_review_decisions_are_checked(service: Service, tmp_path: Path) -> None:
    member = await service.login("王建国")
    console = await service.console(member)
    await (await service.resident("李大爷")).say(LEAK_WITH_PHONE)
    ticket = (await console.event("ticket.created"))["ticket"]
    await service.settle()
    status, _ = await service.api(
        "POST", f"/api/tickets/{ticket['id']}/category", member, json={"category": "weather"}
    )
    assert status == 400
    await service.api(
        "POST", f"/api/tickets/{ticket['id']}/category", member, json={"category": "medical"}
    )
    operator = await service.login("周晓燕")
    [group] = (await service.api("GET", "/api/ops/review", operator))[1]["groups"]
    item_id = group["items"][0]["id"]
    status, _ = await service.api(
        "POST", f"/api/ops/review/{item_id}", operator, json={"action": "relabel", "intent": "x"}
    )
    assert status == 400
    status, decided = await service.api(
        "POST", f"/api/ops/review/{item_id}", operator, json={"action": "not_request"}
    )
    assert (status, decided["review"], decided["label"]) == (200, "accepted", "chitchat")
    async with service.client.app[sessions_key]() as session, session.begin():
        await export_accepted(session, copied_project(tmp_path))
    status, refused = await service.api(
        "POST", f"/api/ops/review/{item_id}", operator, json={"action": "skip"}
    )
    assert status == 409 and "already in the training data" in refused["detail"]


async def test_confident_readings_members_corrected_come_first_and_decisions_can_be_undone(
    service: Service, tmp_path: Path
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=1)
    async with service.client.app[sessions_key]() as session, session.begin():
        for text, confidence in (("楼道灯不亮", 0.3), ("电梯响", 0.4), ("水压小", 0.5)):
            session.add(
                Classification(text=text, intent="repair", confidence=confidence, model="m")
            )
        # A member corrected both canteen readings to medical; the model was sure of one.
        sure, unsure = (
            Classification(text=text, intent="canteen", confidence=confidence, model="m",
                           corrected_intent="medical", created_at=at)
            for text, confidence, at in (
                ("阿姨头晕想找人量血压", 0.95, long_ago),
                ("想订个饭再量个血压", 0.5, datetime.now(UTC)),
            )
        )  # fmt: skip
        session.add_all([sure, unsure])
    operator = await service.login("周晓燕")

    first, second = (await service.api("GET", "/api/ops/review", operator))[1]["groups"]
    assert (first["corrected"], len(first["items"]), len(second["items"])) == ("medical", 2, 3)
    assert [(i["id"], i["confident_miss"]) for i in first["items"]] == [
        (sure.id, True),
        (unsure.id, False),
    ]
    assert not any(i["confident_miss"] for i in second["items"])

    decide, undo = f"/api/ops/review/{sure.id}", f"/api/ops/review/{sure.id}/undo"
    status, decided = await service.api(
        "POST", decide, operator, json={"action": "relabel", "intent": "urgent"}
    )
    assert (status, decided["label"]) == (200, "urgent")
    status, undone = await service.api("POST", undo, operator)
    assert (status, undone["review"], undone["label"]) == (200, "pending", None)
    back = (await service.api("GET", "/api/ops/review", operator))[1]["groups"][0]["items"][0]
    assert (back["id"], back["corrected_intent"]) == (sure.id, "medical")
    status, _ = await service.api("POST", undo, operator)
    assert status == 409

    await service.api("POST", decide, operator, json={"action": "accept"})
    async with service.client.app[sessions_key]() as session, session.begin():
        await export_accepted(session, copied_project(tmp_path))
    status, refused = await service.api("POST", undo, operator)
    assert status == 409 and "already in the training data" in refused["detail"]


def test_the_gate_refuses_a_lower_macro_f1_or_urgent_recall() -> None:
    active = {"macro_f1": 0.950, "urgent_recall": 0.97}
    assert gate({"macro_f1": 0.946, "urgent_recall": 0.97}, active) == []
    assert gate({"macro_f1": 0.960, "urgent_recall": 0.98}, active) == []
    [f1_reason] = gate({"macro_f1": 0.944, "urgent_recall": 0.99}, active)
    assert "macro-F1" in f1_reason
    [urgent_reason] = gate({"macro_f1": 0.990, "urgent_recall": 0.96}, active)
    assert "紧急求助召回率 0.960" in urgent_reason


def copied_project(where: Path) -> Path:
    project = where / "project"
    shutil.copytree(ROOT / "data", project / "data")
    return project


async def test_export_adds_masked_new_examples_to_the_intents_own_file(
    tmp_path: Path, database_url: str
) -> None:
    project = copied_project(tmp_path)
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    held_out = load_examples(project / "data" / "test")[0]
    new_text = "我妈想约个助浴阿姨每周来一次，电话13800001234"
    rows = [
        (new_text, "medical"),
        (new_text, "medical"),
        (held_out[0], held_out[1]),
        ("天天下雨 衣服都晒不干", "chitchat"),
    ]
    async with sessions() as session, session.begin():
        for text, label in rows:
            session.add(
                Classification(
                    text=text, intent="canteen", confidence=0.4, model="m", review="accepted",
                    label=label,
                )
            )  # fmt: skip
    before = load_examples(project / "data" / "nlu")
    async with sessions() as session, session.begin():
        result = await export_accepted(session, project)
    async with sessions() as session, session.begin():
        again = await export_accepted(session, project)
        exported = (await session.scalars(select(Classification.exported_at))).all()
    await engine.dispose()

    assert dict(result.written) == {"medical": 1, "chitchat": 1}
    assert result.already_known == 2
    assert not again.written and all(exported)
    after = load_examples(project / "data" / "nlu")
    assert len(after) == len(before) + 2
    assert ("我妈想约个助浴阿姨每周来一次，电话138****1234", "medical") in after
    assert "13800001234" not in (project / "data" / "nlu" / "medical.yml").read_text()
    assert "天天下雨 衣服都晒不干" in (project / "data" / "nlu" / "chitchat.yml").read_text()


async def test_the_model_list_shows_the_running_model_and_archives_found_in_models(
    service: Service,
) -> None:
    service.settings.models_dir.mkdir()
    (service.settings.models_dir / "copied.tar.gz").symlink_to(service.settings.model_path)
    operator = await service.login("周晓燕")
    status, listed = await service.api("GET", "/api/ops/models", operator)
    assert status == 200
    by_name = {m["name"]: m for m in listed["models"]}
    running = by_name[service.settings.model_path.name]
    assert running["active"] and running["activated_by"] == "服务启动"
    assert running["examples"] == 0 and not by_name["copied.tar.gz"]["active"]
    status, _ = await service.api("POST", "/api/ops/models/rollback", operator)
    assert status == 409
    status, _ = await service.api("POST", "/api/ops/models/nosuch/activate", operator, json={})
    assert status == 404
    async with service.client.app[sessions_key]() as session:
        events = (await session.execute(select(ModelEvent.kind, ModelEvent.actor))).all()
    assert events == [
        ("registered", "服务启动"),
        ("activated", "服务启动"),
        ("registered", "在 models/ 里发现"),
    ]


async def test_the_report_and_its_charts_are_in_chinese_without_server_paths(
    service: Service, tmp_path: Path
) -> None:
    service.settings.models_dir.mkdir()
    (service.settings.models_dir / "scored.tar.gz").symlink_to(service.settings.model_path)
    gold = ["repair", "repair", "urgent", "chitchat"]
    report = score(
        gold, [("repair", 0.9), ("medical", 0.7), ("urgent", 0.8), ("nlu_fallback", 0.3)]
    )
    report.update(model="scored.tar.gz", test_data=str(tmp_path / "data" / "test"), parse_ms=5.0)
    report_path(service.settings.models_dir / "scored.tar.gz").write_text(json.dumps(report))
    operator = await service.login("周晓燕")
    base = "/api/ops/models/scored"

    status, shown = await service.api("GET", f"{base}/report", operator)
    assert (status, shown["misroute"]) == (200, 1 / 3)
    assert str(tmp_path) not in json.dumps(shown)
    headers = {"Authorization": f"Bearer {operator}"}
    confusion = await service.client.get(f"{base}/confusion.svg", headers=headers)
    assert (confusion.status, confusion.content_type) == (200, "image/svg+xml")
    drawn = await confusion.text()
    assert all(label in drawn for label in ("模型的判断", "正确的类别", "维修", "紧急", "未分类"))
    assert "repair" not in drawn
    f1 = await (await service.client.get(f"{base}/f1.svg", headers=headers)).text()
    assert "各类求助认得准不准" in f1 and "闲聊" in f1
    missing = await service.client.get(f"{base}/confusion.png", headers=headers)
    assert missing.status == 404


async def test_a_training_started_from_the_page_runs_once_and_shows_its_steps(
    service: Service,
) -> None:
    operator = await service.login("周晓燕")
    status, listed = await service.api("GET", "/api/ops/models", operator)
    assert (status, listed["waiting_examples"]) == (200, 0)
    status, _ = await service.api("POST", "/api/ops/models/train", operator)
    assert status == 202
    status, _ = await service.api("POST", "/api/ops/models/train", operator)
    assert status == 409

    async def training_listed() -> dict:
        while True:
            runs = (await service.api("GET", "/api/ops/models", operator))[1]["runs"]
            if runs and runs[0]["steps"][1]["status"] == "running":
                return runs[0]
            await asyncio.sleep(0.2)

    run = await asyncio.wait_for(training_listed(), 60)
    assert (run["status"], run["started_by"]) == ("running", "周晓燕")
    export, train, scoring = run["steps"]
    assert (export["name"], export["status"], export["detail"]) == (
        "export",
        "succeeded",
        {"written": {}, "already_known": 0},
    )
    assert (train["name"], scoring["name"], scoring["status"]) == ("train", "evaluate", "waiting")
    assert train["seconds"] >= 0 and run["seconds"] >= train["seconds"]
    # What the page shows is steps in words: no raw output with the server's paths.
    assert "output" not in run
    # Training yields the CPU to the service that answers residents.
    [job] = service.client.app[ops_jobs_key]
    assert os.getpriority(os.PRIO_PROCESS, job.pid) == service.settings.training_nice


async def test_after_each_training_old_models_go_but_never_the_active_or_previous_one(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    old = [f"2026120{day}-000000-candidate" for day in range(1, 6)]
    for age, name in enumerate(reversed(old), start=1):
        archive = models_dir / f"{name}.tar.gz"
        archive.write_bytes(b"an archive")
        archive.with_name(f"{name}.confusion.png").write_bytes(b"a chart")
        os.utime(archive, (1e9 - age, 1e9 - age))
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    async with sessions() as session, session.begin():
        await discover(session, models_dir)
        for name in (old[0], old[1]):
            await activate(session, models_dir / f"{name}.tar.gz", "周晓燕", force=True)

    async def fake_training(log: RunLog, sessions: Any, project: Path, out: Path, by: str) -> Path:
        archive = out / "20261209-000000-candidate.tar.gz"
        archive.write_bytes(b"a new archive")
        async with sessions() as session, session.begin():
            await register(session, archive, by)
        return archive

    monkeypatch.setattr(commands, "train_candidate", fake_training)
    settings = Settings(database_url=database_url, models_dir=models_dir, keep_models=2)
    lines: list[str] = []
    await commands.train_from_corrections(
        sessions, settings, tmp_path, "周晓燕", export=False, evaluate=False, on_line=lines.append
    )

    # Kept: the active (old[1]), the previous (old[0]) and the two newest.
    assert sorted(path.name for path in models_dir.glob("*.tar.gz")) == [
        f"{old[0]}.tar.gz",
        f"{old[1]}.tar.gz",
        f"{old[4]}.tar.gz",
        "20261209-000000-candidate.tar.gz",
    ]
    assert not (models_dir / f"{old[2]}.confusion.png").exists()
    async with sessions() as session, session.begin():
        listed = [m.name for m in await list_models(session)]
        pruned = (
            await session.scalars(select(ModelEvent.model_name).where(ModelEvent.kind == "pruned"))
        ).all()
        back = await rollback(session, "周晓燕")
    await engine.dispose()
    assert f"{old[2]}.tar.gz" not in listed and len(listed) == 4
    assert sorted(pruned) == [f"{old[2]}.tar.gz", f"{old[3]}.tar.gz"]
    assert any("pruned 2 old model" in line for line in lines)
    assert back.name == f"{old[0]}.tar.gz"


async def test_a_correction_to_urgent_brings_the_claim_deadline_forward(service: Service) -> None:
    member = await service.login("王建国")
    console = await service.console(member)
    await (await service.resident("孙大爷")).say("楼道的灯坏了，3号楼")
    ticket = (await console.event("ticket.created"))["ticket"]
    await service.settle()
    assert ticket["category"] != "urgent"
    before = datetime.fromisoformat(ticket["claim_deadline"])

    status, corrected = await service.api(
        "POST", f"/api/tickets/{ticket['id']}/category", member, json={"category": "urgent"}
    )
    assert status == 200
    deadline = datetime.fromisoformat(corrected["claim_deadline"])
    assert deadline < before
    assert deadline - datetime.now(UTC) <= timedelta(
        seconds=service.settings.urgent_claim_timeout_s
    )


def test_a_run_not_heard_from_shows_as_stalled() -> None:
    now = datetime.now(UTC)
    run = OpsRun(id=1, kind="train", status="running", started_by="周晓燕", started_at=now,
                 updated_at=now - STALE_AFTER - timedelta(seconds=1), output="")  # fmt: skip
    assert run_payload(run)["status"] == "stalled"
    run.updated_at = now
    assert run_payload(run)["status"] == "running"
