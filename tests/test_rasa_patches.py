"""Each patch of Rasa's internals (bot/conversation/rasa_patches.py) against the Rasa behaviour
it relies on or mirrors: a Rasa upgrade that changes that behaviour fails here, not in
production. docs/rasa-patches.md says what each patch replaces and why."""

from __future__ import annotations

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
from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import ActionExecutionRejection as RasaRejection
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import InMemoryTrackerStore
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
    Event,
    FollowupAction,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import ClientResponseError, EndpointConfig
from rasa_sdk.executor import ActionExecutor

from actions.actions import build_actions
from bot.conversation import rasa_patches
from bot.conversation.engine import RasaEngine
from bot.conversation.rasa_patches import (
    InProcessActionEndpoint,
    SequentialGraphRunner,
    action_response_validator,
    rasa_validate_action_result,
    speed_up_action_validation,
    validate_action_result,
)
from bot.core.handoff import HandoffRequest, HandoffResult
from tests import sdk_actions

ROOT = Path(__file__).resolve().parents[1]
LEAK = "我家厨房水管漏水了，3号楼2单元501"


def names(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


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
