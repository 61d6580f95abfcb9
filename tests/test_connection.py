"""An honest connection: a stopping server closes members' and residents' sockets at once, so
their pages say 连接中… and reconnect (to the new process, or another worker); a console that
reconnects gets the events it missed, from the last event id it saw, whichever worker it
reaches."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType

from bot.core.chat import ChatRef
from bot.core.handoff import HandoffRequest, Origin
from bot.handoff.journal import Journal
from bot.handoff.push import MemberHub
from bot.settings import Settings
from bot.typedefs import tickets_key
from tests.fakes import Desk
from tests.helpers import Service, start_service

LEAK = "我家厨房水管漏水了，3号楼2单元501"
FALL = "我爸在家摔倒了起不来，3号楼2单元501"


async def test_a_stopping_server_closes_consoles_and_webchats_at_once(
    settings: Settings,
    aiohttp_client,  # type: ignore[no-untyped-def]
) -> None:
    service = await start_service(aiohttp_client, settings)
    console = await service.console(await service.login("王建国"))
    chat = await service.resident("张阿姨")

    stopping = asyncio.create_task(service.client.server.close())
    try:
        # Not after the server's shutdown timeout (60 s), while the page looks connected.
        for ws in (console.ws, chat.ws):
            assert (await ws.receive(timeout=10)).type == WSMsgType.CLOSE
    finally:
        # Before the fixture's own close, which would run the cleanup a second time meanwhile.
        await stopping


async def _open(service: Service, user: str, text: str, intent: str = "repair") -> int:
    chat = ChatRef("webchat", "private", user, user)
    request = HandoffRequest(chat.conversation_id, intent, 0.9, text, Origin(chat))
    return (await service.client.app[tickets_key].opening.open_ticket(request)).ticket_id


async def test_a_console_that_reconnects_is_sent_what_it_missed(service: Service) -> None:
    wang = await service.login("王建国")
    console = await service.console(wang)
    assert console.missed == []
    first = await _open(service, "r-1", LEAK)
    seen = await console.event("ticket.created")
    assert seen["ticket"]["id"] == first and seen["id"] > console.last_event_id
    await console.ws.close()

    # While the phone is away: a new request in the grid, a colleague claims the first one,
    # and a request in another grid nobody in 3号楼 is told of.
    second = await _open(service, "r-2", FALL, "urgent")
    elsewhere = await _open(service, "r-3", "东村村口路灯坏了")
    li = await service.login("李秀英")
    assert (await service.api("POST", f"/api/tickets/{first}/claim", li))[0] == 200

    again = await service.console(wang, since=seen["id"])
    replayed = [(e["type"], e["ticket"]["id"]) for e in again.missed]
    assert ("ticket.created", second) in replayed
    assert ("ticket.updated", first) in replayed  # claimed: it leaves this console's list
    assert all(ticket_id != elsewhere for _, ticket_id in replayed)
    assert all(e["id"] > seen["id"] for e in again.missed)
    assert again.last_event_id >= max(e["id"] for e in again.missed)
    # Counting from there, nothing more is owed.
    latest = await service.console(wang, since=again.last_event_id)
    assert latest.missed == []


async def test_a_console_may_reconnect_to_any_worker(tickets: Desk) -> None:
    """Workers share no memory; the journal is in the database they share."""
    worker_a = MemberHub(journal=Journal(tickets.sessions, tickets.clock))
    worker_b = MemberHub(journal=Journal(tickets.sessions, tickets.clock))
    wang, zhang = await tickets.actor("王建国"), await tickets.actor("张志强")
    opened = await tickets.asks(FALL, "urgent")

    await worker_a.publish("ticket.created", await tickets.ticket(opened.ticket_id))

    missed = await worker_b.missed(wang, 0)
    assert [(e["type"], e["ticket"]["id"]) for e in missed] == [
        ("ticket.created", opened.ticket_id)
    ]
    assert missed[0]["id"] == await worker_b.latest()
    assert await worker_b.missed(zhang, 0) == []  # another grid's member was never sent it
    # Kept a quarter of an hour: a console away longer reloads its lists instead.
    tickets.clock.advance(minutes=16)
    assert await worker_b.missed(wang, 0) == []


async def test_a_console_gets_an_answer_to_its_ping_and_a_clear_no_to_a_bad_event_id(
    service: Service,
) -> None:
    token = await service.login("王建国")
    console = await service.console(token)
    await console.ws.send_str("ping")
    assert await console.event("pong")
    _, body = await service.api("POST", "/api/ws-ticket", token)
    resp = await service.client.get("/api/ws", params={"ticket": body["ticket"], "since": "x"})
    assert resp.status == 400
