"""Every route against every role (`bot.handoff.roles`) and against no login; then the
visibility findings: "earlier requests", the operator, transfers, model names (issue
findings 7-9)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from bot.cli_people import NewMember, add_member
from bot.db.models import Member
from bot.handoff.roles import PERMISSIONS, Action
from bot.handoff.states import Status
from bot.typedefs import sessions_key
from bot.web import ops as ops_views
from tests.helpers import Service, add_ticket

ADMIN_PASSWORD = "admin-password-1"
ACCOUNTS = {
    "member": "王建国",
    "secretary": "陈红梅",
    "operator": "周晓燕",
    "admin": "管理员",
    "district": "孙街道",
}
# Accounts the demo does not seed: added with ADMIN_PASSWORD.
ADDED = ("admin", "district")

# Each API route's name and the action it needs; None: any logged-in member.
ROUTE_ACTIONS: dict[str, Action | None] = {
    "api-logout": None,
    "api-me": None,
    "api-my-phone": Action.HOLD,
    "api-ws-ticket": None,
    "api-audit": Action.AUDIT,
    "api-tickets": Action.TICKETS,
    "api-ticket": Action.TICKETS,
    "api-claim": Action.HOLD,
    "api-reply": Action.HOLD,
    "api-resolve": Action.HOLD,
    "api-transfer": Action.HOLD,
    "api-hand-back": Action.HOLD,
    "api-phone": Action.PHONE,
    "api-media": Action.TICKETS,
    "api-merge": Action.HOLD,
    "api-merge-candidates": Action.HOLD,
    "api-transfer-targets": Action.HOLD,
    "api-urgent-confirm": Action.HOLD,
    "api-urgent-deny": Action.HOLD,
    "api-split": Action.HOLD,
    "api-members": Action.MEMBERS,
    "api-possible-requests": Action.POSSIBLE,
    "api-possible-confirm": Action.POSSIBLE,
    "api-possible-dismiss": Action.POSSIBLE,
    "api-category": Action.CORRECT,
    "api-ops-review": Action.REVIEW,
    "api-ops-decide": Action.REVIEW,
    "api-ops-undo": Action.REVIEW,
    "api-ops-models": Action.MODELS,
    "api-ops-rollback": Action.MODELS,
    "api-ops-train": Action.MODELS,
    "api-ops-report": Action.MODELS,
    "api-ops-chart": Action.MODELS,
    "api-ops-eval": Action.MODELS,
    "api-ops-activate": Action.MODELS,
    "api-overview": Action.OVERVIEW,
    "api-overview-csv": Action.OVERVIEW,
}
# Routes that are not behind a member's login, and what guards them instead.
OPEN_ROUTES = {
    "api-login": "password, throttled",
    "api-ws": "one-time socket ticket",
}


async def _add_ticket(service: Service, grid_code: str, text: str, **fields: Any) -> int:
    """张阿姨's request, with her phone."""
    phone = {"phone": "13900001234"}
    return await add_ticket(service, grid_code, text, "r-auth", entities=phone, **fields)


@pytest.fixture
async def tokens(service: Service) -> dict[str, str]:
    tokens = {}
    for role, name in ACCOUNTS.items():
        if role in ADDED:
            new = NewMember(name, (), "", role, ADMIN_PASSWORD, None, "", None)
            await add_member(service.settings, new)
            resp = await service.client.post(
                "/api/login", json={"name": name, "password": ADMIN_PASSWORD}
            )
            tokens[role] = (await resp.json())["token"]
        else:
            tokens[role] = await service.login(name)
    return tokens


def _path(resource: Any, ticket_id: int) -> str:
    info = resource.get_info()
    if "path" in info:
        return info["path"]
    values = {
        "ticket_id": ticket_id,
        "possible_id": 1,
        "item_id": 1,
        "name": "no-such-model",
        "chart": "f1",
        "token": "no-such-file",
    }
    return info["formatter"].format(**values)


async def test_every_route_answers_each_role_as_the_roles_table_says(
    service: Service, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_training(app: Any, args: list[str]) -> None:
        return None

    monkeypatch.setattr(ops_views, "_start_job", no_training)
    ticket_id = await _add_ticket(service, "b3", "楼道灯坏了", broadcast=True)
    routes = [
        r
        for r in service.client.app.router.routes()
        if r.name and r.name.startswith("api-") and r.method != "HEAD"
    ]
    names = {r.name for r in routes}
    assert names == set(ROUTE_ACTIONS) | set(OPEN_ROUTES), "every API route needs a row here"
    cases = 0
    logout_last = sorted(routes, key=lambda r: r.name == "api-logout")
    for route in logout_last:
        if route.name in OPEN_ROUTES:
            continue
        action = ROUTE_ACTIONS[route.name]
        path = _path(route.resource, ticket_id)
        resp = await service.client.request(route.method, path, json={})
        assert resp.status == 401, (route.name, "anonymous")
        cases += 1
        for role, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"}
            resp = await service.client.request(route.method, path, json={}, headers=headers)
            body = await resp.json() if resp.content_type == "application/json" else None
            detail = body.get("detail", "") if isinstance(body, dict) else ""
            refused_for_role = resp.status == 403 and "may not" in detail
            allowed = action is None or action in PERMISSIONS[role]
            assert refused_for_role != allowed, (route.name, role, resp.status, body)
            assert resp.status != 401 and resp.status < 500, (route.name, role, resp.status)
            cases += 1
    assert cases == len(ROUTE_ACTIONS) * (len(tokens) + 1)


async def test_earlier_requests_follow_the_same_visibility(service: Service) -> None:
    east = await _add_ticket(service, "dongcun", "我最近血压高 想约家庭医生", status=Status.CLOSED)
    here = await _add_ticket(service, "b3", "楼道灯坏了")
    wang, secretary = await service.login("王建国"), await service.login("陈红梅")
    _, detail = await service.api("GET", f"/api/tickets/{here}", wang)
    assert detail["earlier"] == []
    _, detail = await service.api("GET", f"/api/tickets/{here}", secretary)
    assert [t["id"] for t in detail["earlier"]] == [east]


async def test_the_operator_sees_no_ticket_not_even_a_branch_wide_one(
    service: Service, tokens: dict[str, str]
) -> None:
    urgent = await _add_ticket(service, "b3", "老人摔倒了", broadcast=True, status=Status.ESCALATED)
    operator = tokens["operator"]
    assert (await service.api("GET", "/api/tickets", operator))[0] == 403
    for path in (f"/api/tickets/{urgent}/phone", f"/api/tickets/{urgent}/claim"):
        status, body = await service.api("POST", path, operator)
        assert status == 403 and "139" not in str(body)


async def test_tickets_go_only_to_members_who_may_hold_them(
    service: Service, tokens: dict[str, str]
) -> None:
    ticket = await _add_ticket(service, "b3", "楼道灯坏了")
    wang = tokens["member"]
    assert (await service.api("POST", f"/api/tickets/{ticket}/claim", wang))[0] == 200
    async with service.client.app[sessions_key]() as session:
        operator = await session.scalar(select(Member.id).where(Member.name == "周晓燕"))
        colleague = await session.scalar(select(Member.id).where(Member.name == "李秀英"))
    to_operator = {"to": operator, "reason": "请她看看"}
    status, _ = await service.api("POST", f"/api/tickets/{ticket}/transfer", wang, json=to_operator)
    assert status == 403
    to_colleague = {"to": colleague, "reason": "她更懂"}
    status, _ = await service.api(
        "POST", f"/api/tickets/{ticket}/transfer", wang, json=to_colleague
    )
    assert status == 200


async def test_model_names_never_reach_outside_the_models_folder(
    service: Service, tokens: dict[str, str], tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "stolen.tar.gz").write_bytes(b"not a model")
    (outside / "stolen.report.json").write_text("{}")
    relative = os.path.relpath(outside / "stolen", service.settings.models_dir)
    operator = tokens["operator"]
    for name in (str(outside / "stolen"), relative, "nope"):
        quoted = quote(name, safe="")
        for method, tail in (("GET", "report"), ("POST", "activate"), ("POST", "evaluate")):
            path = f"/api/ops/models/{quoted}/{tail}"
            status, _ = await service.api(method, path, operator, json={})
            assert status == 404, (name, tail, status)
