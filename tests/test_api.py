"""The handoff API refuses what it must, clearly, and shows each member only their tickets."""

from __future__ import annotations

import asyncio

import pytest

from bot.cli_people import member_token
from tests.helpers import Service


async def _ticket_from(service: Service, name: str, text: str, token: str) -> dict:
    console = await service.console(token)
    resident = await service.resident(name)
    await resident.say(text)
    return (await console.event("ticket.created"))["ticket"]


async def test_requests_without_a_valid_token_are_refused(service: Service) -> None:
    assert (await service.client.get("/api/tickets")).status == 401
    status, body = await service.api("GET", "/api/tickets", "not-a-token")
    assert status == 401 and body["error"] == "unauthorized" and body["message"]
    bad_login = await service.client.post("/api/login", json={"name": "王建国", "password": "x"})
    assert bad_login.status == 401
    ws = await service.client.get("/api/ws", params={"token": "nope"})
    assert ws.status == 401


async def test_a_member_sees_only_their_own_grid_and_the_secretary_sees_all(
    service: Service,
) -> None:
    wang = await service.login("王建国")
    zhang = await service.login("张志强")  # 东村
    secretary = await service.login("陈红梅")
    ticket = await _ticket_from(service, "张阿姨", "3号楼2单元的电梯坏了 停在五楼不动", wang)

    _, mine = await service.api("GET", "/api/tickets", wang)
    _, other = await service.api("GET", "/api/tickets", zhang)
    _, everything = await service.api("GET", "/api/tickets", secretary)
    assert [t["id"] for t in mine["tickets"]] == [ticket["id"]]
    assert other["tickets"] == []
    assert [t["id"] for t in everything["tickets"]] == [ticket["id"]]

    status, body = await service.api("GET", f"/api/tickets/{ticket['id']}", zhang)
    assert (status, body["error"]) == (403, "forbidden")
    status, _ = await service.api("POST", f"/api/tickets/{ticket['id']}/claim", zhang)
    assert status == 403
    assert (await service.api("GET", "/api/tickets/99999", wang))[0] == 404
    assert (await service.api("GET", "/api/tickets/abc", wang))[0] == 404


async def test_only_one_of_two_simultaneous_claims_wins(service: Service) -> None:
    wang = await service.login("王建国")
    li = await service.login("李秀英")  # same grid: the ticket is offered to both
    ticket = await _ticket_from(service, "张阿姨", "3号楼1单元楼道灯坏了", wang)

    results = await asyncio.gather(
        service.api("POST", f"/api/tickets/{ticket['id']}/claim", wang),
        service.api("POST", f"/api/tickets/{ticket['id']}/claim", li),
    )

    assert sorted(status for status, _ in results) == [200, 409]
    winner = next(body for status, body in results if status == 200)
    assert winner["status"] == "claimed"
    loser = next(body for status, body in results if status == 409)
    assert loser["error"] == "conflict" and "认领" in loser["message"]


async def test_illegal_transitions_and_bad_bodies_are_4xx(service: Service) -> None:
    wang = await service.login("王建国")
    ticket = await _ticket_from(service, "张阿姨", "3号楼2单元501卫生间下水道堵了", wang)
    url = f"/api/tickets/{ticket['id']}"

    assert (await service.api("POST", f"{url}/reply", wang, data="{not json"))[0] == 400
    assert (await service.api("POST", f"{url}/reply", wang, json={"text": ""}))[0] == 400
    assert (await service.api("POST", f"{url}/reply", wang, json=["x"]))[0] == 400
    assert (await service.api("GET", "/api/tickets?status=bogus", wang))[0] == 400
    assert (await service.api("POST", f"{url}/resolve", wang, json={"note": "好了"}))[0] == 200
    status, body = await service.api("POST", f"{url}/resolve", wang, json={"note": "again"})
    assert (status, body["error"]) == (409, "conflict")
    assert (await service.api("POST", f"{url}/claim", wang))[0] == 409
    assert (await service.api("POST", f"{url}/reply", wang, json={"text": "hi"}))[0] == 409


async def test_oversized_bodies_are_refused_with_413(service: Service) -> None:
    wang = await service.login("王建国")
    status, _ = await service.api(
        "POST", "/api/tickets/1/reply", wang, data=b"x" * (65 * 1024),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 413


async def test_internal_routes_refuse_callers_without_the_secret(service: Service) -> None:
    resp = await service.client.post(
        "/internal/handoff", json={}, headers={"Authorization": "Bearer wrong"}
    )
    assert resp.status == 403


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"conversation_id": "c", "intent": "repair", "confidence": 0.9, "text": "灯坏了"},
        {"conversation_id": "c", "intent": "repair", "confidence": "高", "text": "x", "origin": {}},
        {"conversation_id": "c", "intent": "repair", "confidence": 0.9, "text": "x", "origin": 7},
    ],
)
async def test_a_body_that_is_not_a_handoff_request_is_400(
    service: Service, body: dict[str, object]
) -> None:
    token = service.settings.internal_token
    resp = await service.client.post(
        "/internal/handoff", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 400


async def test_health_and_readiness(service: Service) -> None:
    assert (await service.client.get("/healthz")).status == 200
    ready = await service.client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["model"] == service.settings.model_path.name


async def test_a_token_printed_by_the_command_line_authenticates(service: Service) -> None:
    token = await member_token(service.settings, "王建国")
    status, me = await service.api("GET", "/api/me", token)
    assert (status, me["name"], me["grids"]) == (200, "王建国", ["3号楼"])


async def test_a_colleague_taking_over_is_announced_to_the_resident_and_to_consoles(
    service: Service,
) -> None:
    tokens = {name: await service.login(name) for name in ("王建国", "李秀英")}
    consoles = {name: await service.console(token) for name, token in tokens.items()}
    resident = await service.resident("张阿姨")
    await resident.say("3号楼1单元的楼道灯坏了 晚上黑乎乎的")
    ticket = (await consoles["王建国"].event("ticket.created"))["ticket"]
    named = ticket["assignee"]["name"]
    other = "李秀英" if named == "王建国" else "王建国"
    assert named in (await resident.hear("bot"))["text"]

    status, _ = await service.api("POST", f"/api/tickets/{ticket['id']}/claim", tokens[other])

    assert status == 200
    assert (await resident.hear("bot"))["text"] == f"{other}已经接单，会在这里直接回复您。"
    # The member first named no longer holds it; their console hears so, and a late claim
    # is a conflict, not a permission error.
    updated = (await consoles[named].event("ticket.updated"))["ticket"]
    assert (updated["status"], updated["assignee"]["name"]) == ("claimed", other)
    status, body = await service.api("POST", f"/api/tickets/{ticket['id']}/claim", tokens[named])
    assert (status, body["error"]) == (409, "conflict")
    status, _ = await service.api(
        "POST", f"/api/tickets/{ticket['id']}/reply", tokens[named], json={"text": "我来"}
    )
    assert status == 403
