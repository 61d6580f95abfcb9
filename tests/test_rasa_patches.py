"""Each patch of Rasa's internals (bot/conversation/rasa_patches.py) against the Rasa behaviour
it relies on or mirrors: a Rasa upgrade that changes that behaviour fails here, not in
production. docs/rasa-patches.md says what each patch replaces and why."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import ActionExecutionRejection as RasaRejection
from rasa.core.actions.action import RemoteAction
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import (
    FailSafeTrackerStore,
    InMemoryTrackerStore,
    SQLTrackerStore,
    TrackerStore,
)
from rasa.engine.constants import PLACEHOLDER_MESSAGE
from rasa.engine.exceptions import GraphRunError
from rasa.engine.loader import load_predict_graph_runner
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.runner.interface import GraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    Event,
    FollowupAction,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import ClientResponseError, EndpointConfig
from rasa_sdk.executor import ActionExecutor
from sqlalchemy.pool import QueuePool

from actions.actions import build_actions
from bot.conversation import rasa_patches
from bot.conversation.engine import RasaEngine
from bot.conversation.rasa_patches import (
    BatchedSQLTrackerStore,
    InProcessActionEndpoint,
    SequentialGraphRunner,
    ThreadedTrackerStore,
    _event_row,
    _run_through,
    action_response_validator,
    keep_sqlite_connections,
    rasa_validate_action_result,
    speed_up_action_validation,
    tracker_store_for,
    validate_action_result,
)
from bot.core.handoff import HandoffRequest, HandoffResult
from tests import sdk_actions

ROOT = Path(__file__).resolve().parents[1]
LEAK = "我家厨房水管漏水了，3号楼2单元501"


def names(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


# BatchedSQLTrackerStore: the rows of SQLTrackerStore.save in one INSERT ----------------------
# These hold our store to Rasa's on SQLite files whatever BOT_TEST_DATABASE_URL says: they
# compare two stores' rows and events, not a database; on PostgreSQL the service's store runs
# in every end-to-end test and in test_migrations.py.


class RecordingBroker:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.published.append(event)


def conversation() -> DialogueStateTracker:
    return DialogueStateTracker.from_events(
        "wechat:o1",
        [
            ActionExecuted("action_session_start", timestamp=2.0),
            SessionStarted(timestamp=2.0),
            ActionExecuted("action_listen", timestamp=3.0),
            UserUttered(
                "我家水管漏了",
                intent={"name": "repair", "confidence": 0.93},
                metadata={"channel": "wechat", "message_id": 3},
                timestamp=4.0,
            ),
        ],
    )


async def saved_rows(store: SQLTrackerStore) -> list[tuple[object, ...]]:
    tracker = conversation()
    await store.save(tracker)
    # The next save adds only what is new since.
    tracker.update(ActionExecuted("action_handoff", timestamp=5.0))
    tracker.update(BotUttered("已请3号楼网格员王建国来帮您", timestamp=6.0))
    tracker.update(ConversationPaused(timestamp=7.0))
    await store.save(tracker)
    return await saved_rows_of(store)


async def saved_rows_of(store: SQLTrackerStore) -> list[tuple[object, ...]]:
    table = store.SQLEvent.__table__
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.select(table).order_by(table.c.id))]


def statements_run(store: SQLTrackerStore) -> list[str]:
    """The SQL the store sends from now on, statement by statement."""
    run: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *a: run.append(a[2]))
    return run


async def test_batched_saves_write_the_rows_and_publish_the_events_rasa_does(
    tmp_path: Path,
) -> None:
    domain = Domain.empty()
    rasa_broker, our_broker = RecordingBroker(), RecordingBroker()
    rasa_store = SQLTrackerStore(
        domain, dialect="sqlite", db=str(tmp_path / "rasa.db"), event_broker=rasa_broker
    )
    ours = BatchedSQLTrackerStore(
        domain, dialect="sqlite", db=str(tmp_path / "ours.db"), event_broker=our_broker
    )

    expected = await saved_rows(rasa_store)
    assert len(expected) == 7
    # Every column of Rasa's `events` table, a new one included.
    assert await saved_rows(ours) == expected
    assert our_broker.published == rasa_broker.published and len(rasa_broker.published) == 7

    retrieved = await ours.retrieve("wechat:o1")
    assert retrieved is not None and retrieved.is_paused()
    rasas = await rasa_store.retrieve("wechat:o1")
    assert rasas is not None and retrieved.events == rasas.events


async def test_saving_a_tracker_without_events_writes_and_publishes_nothing_as_in_rasa(
    tmp_path: Path,
) -> None:
    stores = []
    for cls in (SQLTrackerStore, BatchedSQLTrackerStore):
        broker = RecordingBroker()
        store = cls(Domain.empty(), dialect="sqlite", db=str(tmp_path / f"{cls.__name__}.db"))
        store.event_broker = broker
        # A conversation with events stored, and a new one.
        await store.save(conversation())
        broker.published.clear()
        stores.append((store, broker, statements_run(store)))
    for sender in ("wechat:o1", "wechat:new"):
        for store, _, _ in stores:
            await store.save(DialogueStateTracker(sender, []))

    (rasa_store, rasa_broker, rasas), (ours, our_broker, our_statements) = stores
    assert rasas and not our_statements
    assert await saved_rows_of(ours) == await saved_rows_of(rasa_store)
    assert rasa_broker.published == our_broker.published == []


async def test_a_turn_saves_what_rasa_saves_without_counting_the_events_it_just_read(
    tmp_path: Path,
) -> None:
    """Rasa's turn: read (or create) the tracker, add events, save it. Ours writes the same
    rows and does not ask the database how many events it has; a tracker it did not read
    still gets counted."""

    async def turns(store: SQLTrackerStore) -> list[tuple[object, ...]]:
        new = await store.get_or_create_tracker("wechat:o1", append_action_listen=False)
        for event in conversation().events:
            new.update(event)
        await store.save(new)
        for second in (10.0, 20.0):
            tracker = await store.retrieve("wechat:o1")
            assert tracker is not None
            tracker.update(ActionExecuted("action_handoff", timestamp=second))
            tracker.update(BotUttered("已请3号楼网格员王建国来帮您", timestamp=second + 1))
            await store.save(tracker)
        # Saved again without a read in between: the count decides.
        tracker.update(ConversationPaused(timestamp=30.0))
        await store.save(tracker)
        # A tracker made elsewhere, not the one read.
        elsewhere = await store.retrieve("wechat:o1")
        assert elsewhere is not None
        copy = elsewhere.copy()
        copy.update(ConversationResumed(timestamp=40.0))
        await store.save(copy)
        return await saved_rows_of(store)

    rasa_store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "rasa.db"))
    ours = BatchedSQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "ours.db"))
    rasas, ours_run = statements_run(rasa_store), statements_run(ours)

    expected = await turns(rasa_store)
    assert len(expected) == 4 + 4 + 1 + 1
    assert await turns(ours) == expected
    # Rasa counts at every save, the new tracker's empty one included.
    assert len([s for s in rasas if "count(" in s]) == 6
    # The tracker saved twice and the copy: counted. The saves after a read: not.
    assert len([s for s in ours_run if "count(" in s]) == 2


async def test_reading_a_conversation_gives_rasas_trackers_latest_session_or_all(
    tmp_path: Path,
) -> None:
    """Two sessions, events at the same second as the second session's start, and a
    conversation never stored: the latest session and the whole conversation as Rasa reads
    them."""
    domain = Domain.from_yaml("slots:\n  ticket:\n    type: any\n    mappings: []\n")
    second_session = [
        ActionExecuted("action_session_start", timestamp=50.0),
        SessionStarted(timestamp=50.0),
        SlotSet("ticket", 9, timestamp=50.0),
        ActionExecuted("action_listen", timestamp=51.0),
        UserUttered("电梯又坏了", intent={"name": "repair", "confidence": 0.9}, timestamp=52.0),
    ]
    readings = []
    for cls in (SQLTrackerStore, BatchedSQLTrackerStore):
        store = cls(domain, dialect="sqlite", db=str(tmp_path / f"{cls.__name__}.db"))
        tracker = conversation()
        await store.save(tracker)
        for event in second_session:
            tracker.update(event)
        await store.save(tracker)
        latest, whole = (
            await store.retrieve("wechat:o1"),
            await store.retrieve_full_tracker("wechat:o1"),
        )
        assert latest is not None and whole is not None
        readings.append(
            (
                [e.as_dict() for e in latest.events],
                [e.as_dict() for e in whole.events],
                latest.get_slot("ticket"),
                await store.retrieve("wechat:nobody"),
                await store.retrieve_full_tracker("wechat:nobody"),
            )
        )

    rasas, ours = readings
    assert ours == rasas
    assert len(rasas[0]) == len(second_session) and len(rasas[1]) == 4 + len(second_session)
    assert rasas[2:] == (9, None, None)


def test_the_batched_store_uses_rasas_names_as_they_are() -> None:
    assert names(SQLTrackerStore._additional_events) == ["self", "session", "tracker"]
    assert inspect.iscoroutinefunction(SQLTrackerStore.stream_events)
    assert names(SQLTrackerStore.stream_events) == ["self", "tracker"]
    assert names(SQLTrackerStore.session_scope) == ["self"]
    row = _event_row("s", ActionExecuted("action_listen", timestamp=1.0))
    assert set(SQLTrackerStore.SQLEvent.__table__.columns.keys()) == {"id", *row}


# ThreadedTrackerStore and _run_through: Rasa's SQL store never waits -------------------------


async def test_rasas_sql_store_coroutines_finish_in_one_step_as_when_awaited(
    tmp_path: Path,
) -> None:
    rasa_store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "rasa.db"))
    tracker = conversation()

    assert _run_through(rasa_store.save(tracker)) is None
    stepped = _run_through(rasa_store.retrieve("wechat:o1"))
    assert stepped is not None and stepped == await rasa_store.retrieve("wechat:o1")
    assert stepped.events == tracker.events
    full = _run_through(rasa_store.retrieve_full_tracker("wechat:o1"))
    assert full == await rasa_store.retrieve_full_tracker("wechat:o1")
    assert list(_run_through(rasa_store.keys())) == list(await rasa_store.keys()) == ["wechat:o1"]
    assert _run_through(rasa_store.retrieve("nobody")) is None

    # And through the worker thread, as the service runs it.
    threaded = ThreadedTrackerStore(
        BatchedSQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "ours.db"))
    )
    await threaded.save(tracker)
    assert await threaded.retrieve("wechat:o1") == stepped
    assert await threaded.retrieve_full_tracker("wechat:o1") == full
    assert list(await threaded.keys()) == ["wechat:o1"]


def test_a_tracker_store_coroutine_that_waits_is_refused_and_closed() -> None:
    finished: list[str] = []

    async def waits() -> None:
        try:
            await asyncio.sleep(0)
        finally:
            finished.append("closed")

    with pytest.raises(RuntimeError, match="waited for I/O"):
        _run_through(waits())
    assert finished == ["closed"]


def test_the_threaded_store_forwards_every_method_rasa_calls_on_it(tmp_path: Path) -> None:
    def own_async_methods(cls: type) -> set[str]:
        return {
            name
            for name, member in vars(cls).items()
            if inspect.iscoroutinefunction(member) and not name.startswith("_")
        }

    forwarded = own_async_methods(ThreadedTrackerStore)
    assert forwarded == {"retrieve", "retrieve_full_tracker", "save", "keys"}
    # Whatever Rasa's SQL store does itself runs in the thread...
    assert own_async_methods(SQLTrackerStore) == forwarded
    # ...and the wrapper Agent puts around every store calls nothing else on it.
    assert own_async_methods(FailSafeTrackerStore) <= forwarded

    # The agent gives the store the model's domain through the setter we forward.
    inner = BatchedSQLTrackerStore(dialect="sqlite", db=str(tmp_path / "ours.db"))
    threaded = ThreadedTrackerStore(inner)
    domain = Domain.from_dict({"intents": ["repair"]})
    wrapped = Agent._create_tracker_store(threaded, domain)
    assert isinstance(wrapped, FailSafeTrackerStore) and wrapped._tracker_store is threaded
    assert inner.domain is domain and threaded.domain is domain
    assert names(TrackerStore.__init__)[:3] == ["self", "domain", "event_broker"]


def test_the_service_tracker_store_writes_to_the_service_database(
    empty_database_url: str,
) -> None:
    store = tracker_store_for(empty_database_url)
    assert isinstance(store, ThreadedTrackerStore)
    inner = store._store
    assert isinstance(inner, BatchedSQLTrackerStore)
    ours = sa.engine.make_url(empty_database_url)
    theirs = inner.engine.url
    assert (theirs.host, theirs.port, theirs.database) == (ours.host, ours.port, ours.database)
    if theirs.get_backend_name() == "sqlite":
        assert isinstance(inner.engine.pool, QueuePool)


async def test_the_sqlite_store_keeps_the_connections_rasas_opens_for_every_session(
    tmp_path: Path,
) -> None:
    def connections_opened(store: SQLTrackerStore) -> list[object]:
        opened: list[object] = []
        sa.event.listen(store.engine, "connect", lambda connection, _: opened.append(connection))
        return opened

    rasa_store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "rasa.db"))
    ours = BatchedSQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "ours.db"))
    keep_sqlite_connections(ours)
    rasas_opened, ours_opened = connections_opened(rasa_store), connections_opened(ours)

    found = []
    for store in (rasa_store, ours):
        await store.save(conversation())
        # One worker thread after another, as the service runs the store.
        for _ in range(2):
            found.append(await asyncio.to_thread(_run_through, store.retrieve("wechat:o1")))
    # Rasa opens a connection for each session; if it pools them itself, drop the patch.
    assert len(rasas_opened) == 3
    assert len(ours_opened) == 1
    assert found[0] is not None and all(tracker == found[0] for tracker in found)


# The action-validation speed-up: Rasa's schema, Rasa's verdicts ----------------------------

ANSWERS: list[Any] = [
    {},
    {"events": [], "responses": []},
    {
        "events": [
            {"event": "slot", "timestamp": None, "name": "ticket", "value": 7},
            {"event": "followup", "name": "action_listen"},
            {"event": "bot", "text": "已请王建国来帮您", "data": {"custom": {"ticket_id": 7}}},
            {"event": "action", "name": "action_listen"},
            {"event": "pause"},
            {"event": "resume"},
            {"event": "restart"},
            {"event": "reset_slots"},
        ],
        "responses": [{"text": "好的", "buttons": [], "custom": {"ticket_id": 7}}],
    },
    # Rasa's schema leaves an action's name optional.
    {"events": [{"event": "action"}]},
    {"events": "not a list"},
    {"events": [{"name": "ticket"}]},
    {"events": [{"event": "no_such_event"}]},
    {"events": [{"event": "slot", "timestamp": "yesterday", "name": "ticket"}]},
    {"responses": [1]},
    {"responses": {"text": "好的"}},
    [],
    None,
]


def rasa_verdict(check: Any, answer: Any) -> str:
    action = RemoteAction("action_echo", None)
    try:
        assert check(action, answer) is True
        return "accepted"
    except ValidationError as refused:
        return f"rejected: {refused.message}"


def test_the_prebuilt_validation_accepts_and_rejects_what_rasa_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Rasa's own check, not an earlier patch.
    assert rasa_validate_action_result.__module__ == "rasa.core.actions.action"
    assert rasa_validate_action_result.__qualname__ == "RemoteAction._validate_action_result"
    assert names(rasa_validate_action_result) == ["self", "result"]

    verdicts = [rasa_verdict(rasa_validate_action_result, answer) for answer in ANSWERS]
    assert [rasa_verdict(validate_action_result, answer) for answer in ANSWERS] == verdicts
    assert verdicts[:4] == ["accepted"] * 4
    assert all("Failed to validate Action server response" in v for v in verdicts[4:])

    monkeypatch.setattr(RemoteAction, "_validate_action_result", rasa_validate_action_result)
    speed_up_action_validation()
    speed_up_action_validation()
    assert RemoteAction._validate_action_result is validate_action_result


def test_the_prebuilt_validator_checks_rasas_schema_as_jsonschema_validate_would() -> None:
    schema = RemoteAction.action_response_format_spec()
    assert action_response_validator.schema == schema
    # `jsonschema.validate`, which Rasa calls, picks its validator class the same way.
    assert action_response_validator.validator_class is validator_for(schema)
    assert names(RemoteAction.action_response_format_spec) == []


def test_checking_each_event_by_its_kind_gives_the_whole_schemas_verdicts() -> None:
    schema = RemoteAction.action_response_format_spec()
    whole = validator_for(schema)(schema)
    kinds = [
        kind["properties"]["event"]["const"]
        for kind in schema["properties"]["events"]["items"]["oneOf"]
    ]
    variants: list[Any] = [
        {},
        {"timestamp": 1.5, "metadata": {"k": 1}},
        {"timestamp": "yesterday"},
        {"metadata": "none"},
        {"name": "action_listen", "text": "好的", "value": 3},
        {"name": 7, "text": 8, "value": None},
        {"parse_data": {"intent": {"name": "repair", "confidence": "high"}}},
        {"entities": [{"entity": "address"}]},
    ]
    events = [{"event": kind, **variant} for kind in kinds for variant in variants]
    events += [{"event": "no_such_event"}, {"event": 5}, {"name": "x"}, "slot", None, []]
    answers = [{"events": [event]} for event in events]
    answers += [{"events": [{"event": "pause"}, event]} for event in events]

    verdicts = [whole.is_valid(answer) for answer in answers]
    assert [action_response_validator.is_valid(answer) for answer in answers] == verdicts
    assert 0 < sum(verdicts) < len(answers)


async def test_rasa_still_validates_every_action_answer_through_the_patched_method(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[Any] = []

    class Counting:
        def is_valid(self, result: Any) -> bool:
            checked.append(result)
            return action_response_validator.is_valid(result)

    monkeypatch.setattr(RemoteAction, "_validate_action_result", validate_action_result)
    monkeypatch.setattr(rasa_patches, "action_response_validator", Counting())

    events = await run("action_echo", sdk_endpoint())

    assert len(checked) == 1 and checked[0]["events"][0]["event"] == "slot"
    assert [type(e) for e in events] == [BotUttered, SlotSet, FollowupAction]


# InProcessActionEndpoint: what the HTTP action server protocol gives Rasa -----------------------


class RecordingClient:
    def __init__(self) -> None:
        self.requests: list[HandoffRequest] = []

    async def open_ticket(self, request: HandoffRequest) -> HandoffResult:
        self.requests.append(request)
        return HandoffResult(ticket_id=7, reply="已请3号楼网格员王建国来帮您")


def sdk_endpoint() -> InProcessActionEndpoint:
    executor = ActionExecutor()
    for action in sdk_actions.ACTIONS:
        executor.register_action(action)
    return InProcessActionEndpoint(executor)


def repair_tracker() -> DialogueStateTracker:
    said = UserUttered(
        LEAK,
        intent={"name": "repair", "confidence": 0.93},
        metadata={"channel": "webchat", "chat_type": "private", "message_id": 3},
        input_channel="webchat",
    )
    return DialogueStateTracker.from_events("webchat:u1", [said])


async def run(action_name: str, endpoint: EndpointConfig) -> list[Event]:
    return await RemoteAction(action_name, endpoint).run(
        CollectingOutputChannel(),
        TemplatedNaturalLanguageGenerator({}),
        repair_tracker(),
        Domain.empty(),
    )


def without_timestamps(events: list[Event]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.as_dict().items() if k != "timestamp"} for e in events]


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """rasa_sdk's own action server (what `rasa run actions` starts) serving tests.sdk_actions."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("sdk") / "server.log"
    command = [sys.executable, "-m", "rasa_sdk", "--actions", "tests.sdk_actions"]
    with log.open("wb") as output:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "SANIC_HOST": "127.0.0.1"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"rasa_sdk did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield f"{url}/webhook"
    finally:
        server.terminate()
        server.wait(timeout=10)


def over_http(url: str) -> EndpointConfig:
    # The same domain setting as in process, so both actions get the same call.
    return EndpointConfig(url=url, enable_selective_domain=True)


async def test_rasa_runs_an_in_process_action_and_gets_its_lines_and_events() -> None:
    client = RecordingClient()
    executor = ActionExecutor()
    for action in build_actions(client):
        executor.register_action(action)

    events = await run("action_handoff", InProcessActionEndpoint(executor))

    # The endpoint has no URL to call: an HTTP request would have failed. The action ends
    # the turn itself: the bot listens next.
    assert [type(e) for e in events] == [BotUttered, FollowupAction]
    assert events[1].action_name == "action_listen"
    # The router learns which ticket the turn opened; the line itself went out with it.
    assert events[0].text is None
    assert events[0].data["custom"] == {
        "ticket_id": 7,
        "told": "已请3号楼网格员王建国来帮您",
        "line": None,
    }
    [request] = client.requests
    assert (request.conversation_id, request.intent, request.text) == ("webchat:u1", "repair", LEAK)
    assert request.origin.message_id == 3


async def test_rasa_gets_the_same_events_in_process_as_from_the_sdk_action_server(
    sdk_server: str,
) -> None:
    in_process = await run("action_echo", sdk_endpoint())
    from_server = await run("action_echo", over_http(sdk_server))

    assert without_timestamps(in_process) == without_timestamps(from_server)
    assert [type(e) for e in in_process] == [BotUttered, SlotSet, FollowupAction]
    said = in_process[0]
    assert said.text == f"webchat:u1: {LEAK}"
    assert said.data["custom"]["metadata"]["message_id"] == 3
    assert said.data["custom"]["channel"] == "webchat"
    assert said.data["custom"]["domain"] == {}


async def test_refusals_reach_rasa_with_the_sdk_action_servers_statuses(sdk_server: str) -> None:
    ours, server = sdk_endpoint(), over_http(sdk_server)
    for action_name, status in (("action_refusing", 400), ("action_nobody_wrote", 404)):
        call = RemoteAction(action_name, ours)._action_call_format(repair_tracker(), Domain.empty())
        refusals = []
        for endpoint in (ours, server):
            with pytest.raises(ClientResponseError) as refused:
                await endpoint.request(json=call, method="post")
            error = refused.value
            refusals.append((error.status, error.message, json.loads(error.text)))
        assert refusals[0] == refusals[1]
        assert refusals[0][0] == status and refusals[0][2]["action_name"] == action_name

    # And Rasa makes the same of them as over HTTP.
    for endpoint in (ours, server):
        with pytest.raises(RasaRejection, match="not for this message"):
            await run("action_refusing", endpoint)
        with pytest.raises(RasaException, match="Failed to execute custom action") as failed:
            await run("action_nobody_wrote", endpoint)
        assert not isinstance(failed.value, RasaRejection)


def test_the_in_process_endpoint_overrides_rasas_request_and_skips_the_domain() -> None:
    ours = inspect.signature(InProcessActionEndpoint.request).parameters
    rasas = inspect.signature(EndpointConfig.request).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in rasas.values()
    ]
    assert names(ClientResponseError.__init__) == ["self", "status", "message", "text"]

    # Rasa leaves the domain out of an action call when the endpoint says so.
    domain = Domain.from_dict({"intents": ["repair"], "actions": ["action_echo"]})
    call = RemoteAction("action_echo", sdk_endpoint())._action_call_format(repair_tracker(), domain)
    assert "domain" not in call and call["next_action"] == "action_echo"
    assert "domain" in RemoteAction("action_echo", EndpointConfig("http://h"))._action_call_format(
        repair_tracker(), domain
    )


# SequentialGraphRunner: the prediction graph without dask ------------------------------------

READ_AND_DECIDED = [
    LEAK,
    "小区停水两天了 啥时候来水",
    "今天中午吃啥",
    "我爸摔倒了起不来",
    "楼下太吵了",
    "谢谢",
    "嗯",
]


async def read_and_decide(
    processor: MessageProcessor, runner: GraphRunner, text: str
) -> tuple[dict[str, Any], PolicyPrediction]:
    processor.graph_runner = runner
    parsed = await processor.parse_message(UserMessage(text))
    heard = UserUttered(text, parsed["intent"], parsed["entities"], parse_data=parsed)
    tracker = DialogueStateTracker.from_events(
        "wechat:o1", [ActionExecuted("action_listen"), heard], slots=processor.domain.slots
    )
    return parsed, processor._predict_next_with_tracker(tracker)


async def test_the_service_reads_and_decides_through_its_runner_as_through_dasks(
    trained_model: Path,
) -> None:
    engine = await RasaEngine.load(
        trained_model, InMemoryTrackerStore(Domain.empty()), EndpointConfig("http://unused")
    )
    processor = engine.agent.processor
    assert processor is not None
    ours = processor.graph_runner
    assert isinstance(ours, SequentialGraphRunner)
    _, _, dasks = MessageProcessor._load_model(str(trained_model))
    assert isinstance(dasks, DaskGraphRunner)

    decided = set()
    for text in READ_AND_DECIDED:
        parsed, prediction = await read_and_decide(processor, ours, text)
        assert (parsed, prediction) == await read_and_decide(processor, dasks, text)
        decided.add(processor.domain.action_names_or_texts[prediction.max_confidence_index])
    assert {"action_handoff", "action_chitchat"} <= decided

    # A graph run without the message it needs fails the same way through both.
    for runner in (ours, dasks):
        with pytest.raises(GraphRunError, match="Missing input"):
            runner.run(inputs={}, targets=[processor.model_metadata.nlu_target])


def test_rasas_loader_builds_the_runner_from_a_model_archive_too(
    trained_model: Path, tmp_path: Path
) -> None:
    metadata, runner = load_predict_graph_runner(
        tmp_path, trained_model, LocalModelStorage, SequentialGraphRunner
    )
    assert isinstance(runner, SequentialGraphRunner)
    assert SequentialGraphRunner.taking_over(runner) is runner
    target = metadata.nlu_target
    read = runner.run(inputs={PLACEHOLDER_MESSAGE: [UserMessage(LEAK)]}, targets=[target])
    assert read[target][0].get("intent")["name"] == "repair"
