"""Every place the service replaces or bends Rasa 3.6.21's internals.

What each patch replaces, why (with the measured figures), and what to check when upgrading
Rasa are in docs/rasa-patches.md; tests/test_rasa_patches.py fails when the Rasa behaviour a
patch relies on changes.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import ExecutionContext, GraphNode, GraphNodeHook, GraphSchema
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.runner.interface import GraphRunner
from rasa.engine.storage.storage import ModelStorage
from rasa.utils.endpoints import ClientResponseError, EndpointConfig
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

# Graph runner --------------------------------------------------------------------------------

# A node's plan: its name and the names of the nodes or inputs it needs, in order.
Plan = list[tuple[str, tuple[str, ...]]]


class SequentialGraphRunner(GraphRunner):
    """Rasa's prediction graph, its own nodes run one after another in an order worked out
    once per set of targets.

    Why: `DaskGraphRunner.run` cut the schema down to the targets, built a dask graph and
    ordered it again for every parse and every policy prediction: about 1.3 ms of a 10 ms
    parse (docs/rasa-patches.md)."""

    def __init__(self, schema: GraphSchema, nodes: dict[str, GraphNode]) -> None:
        self._schema = schema
        self._nodes = nodes
        self._plans: dict[tuple[str, ...], Plan] = {}

    @classmethod
    def create(
        cls,
        graph_schema: GraphSchema,
        model_storage: ModelStorage,
        execution_context: ExecutionContext,
        hooks: list[GraphNodeHook] | None = None,
    ) -> SequentialGraphRunner:
        nodes = DaskGraphRunner._instantiate_nodes(
            graph_schema, model_storage, execution_context, hooks
        )
        return cls(graph_schema, nodes)

    @classmethod
    def taking_over(cls, runner: GraphRunner) -> GraphRunner:
        """The same loaded nodes as the dask runner Rasa's agent loaded; any other runner
        stays as it is."""
        if not isinstance(runner, DaskGraphRunner):
            return runner
        return cls(runner._graph_schema, runner._instantiated_nodes)

    def run(
        self, inputs: dict[str, Any] | None = None, targets: list[str] | None = None
    ) -> dict[str, Any]:
        targets = targets or self._schema.target_names
        # As dask hands them on: each node's output, and each input, as (name, value).
        results: dict[str, Any] = {name: (name, value) for name, value in (inputs or {}).items()}
        try:
            for name, needs in self._plan(targets):
                # A name nothing provides goes through as itself; the node then refuses it.
                results[name] = self._nodes[name](*(results.get(need, need) for need in needs))
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e
        return dict(results[target] for target in targets)

    def _plan(self, targets: list[str]) -> Plan:
        key = tuple(targets)
        if key not in self._plans:
            self._plans[key] = self._dependencies_first(targets)
        return self._plans[key]

    def _dependencies_first(self, targets: list[str]) -> Plan:
        nodes = self._schema.nodes
        plan: Plan = []
        planned: set[str] = set()

        def add(name: str) -> None:
            if name in planned or name not in nodes:
                return
            needs = tuple(nodes[name].needs.values())
            for need in needs:
                add(need)
            planned.add(name)
            plan.append((name, needs))

        for target in targets:
            add(target)
        return plan


# Action server answers -----------------------------------------------------------------------

# Rasa's own check, still used for every answer the prebuilt validator refuses.
rasa_validate_action_result = RemoteAction._validate_action_result


class ActionAnswerValidator:
    """Rasa's schema for an action server's answer, with the class `jsonschema.validate` picks
    for it, built once; each event is checked against the one kind of event its name picks.

    Why: Rasa's schema says an event is one of 23 kinds (`oneOf`), so an event was checked
    against all 23 to find the one it is: 0.75 ms an answer of two events. Every kind names
    itself (its `event` is a `const`), so the kind an event's name picks is the only one it
    can be; an event with no such kind matches none, as `oneOf` finds too."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.validator_class = validator_for(schema)
        properties = schema["properties"]
        event = properties["events"]["items"]
        shared = {key: value for key, value in event.items() if key != "oneOf"}
        self._answer = self.validator_class(
            {**schema, "properties": {**properties, "events": {"type": "array"}}}
        )
        self._events = {
            kind["properties"]["event"]["const"]: self.validator_class({**shared, "allOf": [kind]})
            for kind in event["oneOf"]
        }

    def is_valid(self, answer: Any) -> bool:
        if not self._answer.is_valid(answer):
            return False
        return all(self._event_is_valid(event) for event in answer.get("events", []))

    def _event_is_valid(self, event: Any) -> bool:
        name = event.get("event") if isinstance(event, dict) else None
        validator = self._events.get(name) if isinstance(name, str) else None
        return validator is not None and validator.is_valid(event)


action_response_validator = ActionAnswerValidator(RemoteAction.action_response_format_spec())


def validate_action_result(action: RemoteAction, result: dict[str, Any]) -> bool:
    """`RemoteAction._validate_action_result` with a validator built once; Rasa's own check
    raises its errors. Why: most of a turn's CPU went to re-checking the schema
    (docs/rasa-patches.md)."""
    return action_response_validator.is_valid(result) or rasa_validate_action_result(action, result)


def speed_up_action_validation() -> None:
    RemoteAction._validate_action_result = validate_action_result


# Action endpoint -----------------------------------------------------------------------------


class InProcessActionEndpoint(EndpointConfig):
    """The endpoint `RemoteAction` posts each action call to, handing the call to rasa_sdk's
    executor in this process instead. Why: loopback HTTP's JSON cost a quarter of a turn's CPU
    (docs/rasa-patches.md).

    Actions get Rasa's own dicts, not a parsed copy: they must not change the tracker."""

    def __init__(self, executor: ActionExecutor) -> None:
        # Our actions never read the domain, so Rasa need not serialise it into every call.
        super().__init__(url="in-process", enable_selective_domain=True)
        self._executor = executor

    async def request(
        self,
        method: str = "post",
        subpath: str | None = None,
        content_type: str | None = "application/json",
        compress: bool = False,
        **kwargs: Any,
    ) -> Any:
        # Refusals get the action server's statuses, so Rasa treats them as over HTTP.
        try:
            return await self._executor.run(kwargs["json"])
        except ActionNotFoundException as e:
            raise _refusal(404, "Not Found", e.message, e.action_name) from e
        except ActionExecutionRejection as e:
            raise _refusal(400, "Bad Request", e.message, e.action_name) from e


def _refusal(status: int, reason: str, error: str, action_name: str) -> ClientResponseError:
    body = json.dumps({"error": error, "action_name": action_name})
    return ClientResponseError(status, reason, body)
