"""Members' accounts: guessing is throttled and costs the service little, tokens expire and can
be revoked, and no long-lived token travels in a URL (issue findings 5 and 6)."""

from __future__ import annotations

import threading

import pytest

from bot.cli_people import change_password, remove_member
from bot.core.clock import FakeClock
from bot.demo import DEMO_PASSWORD
from bot.typedefs import passwords_key
from tests.helpers import Service


async def _login(service: Service, name: str, password: str) -> tuple[int, dict, dict]:
    resp = await service.client.post("/api/login", json={"name": name, "password": password})
    return resp.status, await resp.json(), dict(resp.headers)


async def test_wrong_passwords_lock_the_account_for_a_while(
    timed: Service, clock: FakeClock
) -> None:
    for _ in range(5):
        assert (await _login(timed, "王建国", "guess"))[0] == 401
    status, body, headers = await _login(timed, "王建国", DEMO_PASSWORD)
    assert status == 429
    assert body["error"] == "too_many_requests" and "分钟后再试" in body["message"]
    assert 0 < int(headers["Retry-After"]) <= 15 * 60
    assert (await _login(timed, "李秀英", DEMO_PASSWORD))[0] == 200  # others are not locked
    clock.advance(minutes=16)
    assert (await _login(timed, "王建国", DEMO_PASSWORD))[0] == 200


async def test_one_address_trying_many_names_is_throttled(timed: Service) -> None:
    for n in range(20):
        assert (await _login(timed, f"猜{n}", "guess"))[0] == 401
    assert (await _login(timed, "王建国", DEMO_PASSWORD))[0] == 429


async def test_an_unknown_name_costs_a_real_check_off_the_event_loop(
    timed: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[bool] = []
    checker = timed.client.app[passwords_key]
    verify = checker._verify

    def counted(stored: str, password: str) -> bool:
        checks.append(threading.current_thread() is not threading.main_thread())
        return verify(stored, password)

    monkeypatch.setattr(checker, "_verify", counted)
    assert (await _login(timed, "没有这个人", "guess"))[0] == 401
    assert (await _login(timed, "王建国", "guess"))[0] == 401
    assert checks == [True, True]  # one argon2 check each, both in a worker thread


async def test_tokens_expire_and_logout_revokes_them(timed: Service, clock: FakeClock) -> None:
    token = await timed.login("王建国")
    assert (await timed.api("GET", "/api/me", token))[0] == 200
    clock.advance(hours=timed.settings.token_hours, seconds=1)
    status, body = await timed.api("GET", "/api/me", token)
    assert status == 401 and body["message"]

    token = await timed.login("王建国")
    resp = await timed.client.post("/api/logout", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 204
    assert (await timed.api("GET", "/api/tickets", token))[0] == 401


async def test_a_socket_opens_with_a_one_time_ticket_not_the_token(timed: Service) -> None:
    token = await timed.login("王建国")
    assert (await timed.client.get("/api/ws", params={"token": token})).status == 401
    _, body = await timed.api("POST", "/api/ws-ticket", token)
    ws = await timed.client.ws_connect("/api/ws", params={"ticket": body["ticket"]})
    await ws.close()
    reused = await timed.client.get("/api/ws", params={"ticket": body["ticket"]})
    assert reused.status == 401


async def test_a_socket_ticket_lasts_a_minute(timed: Service, clock: FakeClock) -> None:
    token = await timed.login("王建国")
    _, body = await timed.api("POST", "/api/ws-ticket", token)
    clock.advance(seconds=61)
    assert (await timed.client.get("/api/ws", params={"ticket": body["ticket"]})).status == 401


async def test_a_password_change_ends_every_session(timed: Service) -> None:
    token = await timed.login("王建国")
    said = await change_password(timed.settings, "王建国", "新密码-2026")
    assert "1 session(s) ended" in said
    assert (await timed.api("GET", "/api/me", token))[0] == 401
    assert (await _login(timed, "王建国", DEMO_PASSWORD))[0] == 401
    assert (await _login(timed, "王建国", "新密码-2026"))[0] == 200


async def test_a_removed_member_can_do_nothing_and_is_offered_nothing(timed: Service) -> None:
    token = await timed.login("李秀英")
    assert "removed" in await remove_member(timed.settings, "李秀英")
    assert (await timed.api("GET", "/api/me", token))[0] == 401
    assert (await _login(timed, "李秀英", DEMO_PASSWORD))[0] == 401
    wang = await timed.login("王建国")
    _, body = await timed.api("GET", "/api/members", wang)
    assert "李秀英" not in [m["name"] for m in body["members"]]


async def test_the_secretary_reads_logins_and_failures_in_the_audit_log(timed: Service) -> None:
    await _login(timed, "王建国", "guess")
    await timed.login("王建国")
    secretary = await timed.login("陈红梅")
    status, body = await timed.api("GET", "/api/audit", secretary)
    assert status == 200
    actions = [(e["action"], e["actor"] or e["target"]) for e in body["entries"]]
    assert ("login_failed", "王建国") in actions and ("login", "王建国") in actions
    member = await timed.login("王建国")
    assert (await timed.api("GET", "/api/audit", member))[0] == 403
