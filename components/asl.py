"""A small typed builder for Amazon States Language (ASL) definitions, and the IAM statements they need.

What it provides:
- State classes (`Task`, `Pass`, `Wait`, `Choice`, `Parallel`, `Map`, `Succeed`, `Fail`), `Retry` / `Catch`, and typed
  Choice rules (`NumericGreaterThan`, `BooleanEquals`, `StringEquals`, `IsPresent`, `IsString`, `IsTimestamp`,
  `And`, `Or`, `Not`).
- Task factories for the service integrations the platform uses: `lambda_invoke`, `sns_publish`, `sqs_send_message`,
  `ecs_run_task` (`runTask.sync`), `glue_start_job_run` (`startJobRun.sync`), `emr_serverless_start_job_run`
  (`startJobRun.sync`), the EMR on EC2 cluster calls `emr_create_cluster` (`createCluster.sync`), `emr_add_step`
  (`addStep.sync`) and `emr_terminate_cluster` (`terminateCluster.sync`), `s3_get_object` and the Redshift Data API
  (`redshift_data_execute`, `redshift_data_describe`) (SDK integrations). Each factory records the IAM statements its
  Task needs.
- `StateMachine`: checks the graph when it is built (raising `DefinitionError`, a `ValueError`, that names the state),
  applies the reliability defaults (`TaskDefaults`: Retry with backoff 2.0, MaxDelaySeconds and full jitter, Catch
  `States.ALL` to the alert path, TimeoutSeconds), renders deterministic JSON (`to_dict`, `to_json`) and derives the
  least-privilege statements of its role (`required_permissions`).

It is pure Python with no pulumi import: components resolve ARNs with `Output.all(...).apply(...)` and build the machine
inside the apply, e.g. `Output.all(fn_arn, topic_arn).apply(lambda a: build(*a).to_json())`.

Defaults and nested scopes: a Task in a Parallel branch or a Map item processor gets the default Retry and
TimeoutSeconds, but no default Catch, because the alert path lives in the outer scope and a Catch may only target a
state of its own scope. Its error propagates to the enclosing Parallel/Map state, which gets the default Catch instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Statement = dict[str, Any]
JsonDict = dict[str, Any]

MAX_STATE_NAME_LENGTH = 80
ALL_ERRORS = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"


class DefinitionError(ValueError):
    """An ASL definition that Step Functions would reject or that could never finish; the message names the state."""


# ---------------------------------------------------------------------------------------------------------------------
# Retry and Catch
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    """One retrier. Defaults are the platform's: exponential backoff 2.0, capped delay and full jitter, so that many
    executions failing together do not retry in lockstep."""

    error_equals: tuple[str, ...]
    interval_seconds: int = 2
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: int = 60
    jitter_strategy: Literal["FULL", "NONE"] = "FULL"

    def __post_init__(self) -> None:
        if not self.error_equals:
            raise DefinitionError("Retry.error_equals must name at least one error")
        if ALL_ERRORS in self.error_equals and len(self.error_equals) > 1:
            raise DefinitionError("Retry: States.ALL must appear alone in error_equals")
        if self.interval_seconds < 1:
            raise DefinitionError(f"Retry.interval_seconds must be >= 1, got {self.interval_seconds}")
        if self.max_attempts < 0:
            raise DefinitionError(f"Retry.max_attempts must be >= 0, got {self.max_attempts}")
        if self.backoff_rate < 1.0:
            raise DefinitionError(f"Retry.backoff_rate must be >= 1.0, got {self.backoff_rate}")
        if self.max_delay_seconds < 1:
            raise DefinitionError(f"Retry.max_delay_seconds must be >= 1, got {self.max_delay_seconds}")
        if self.jitter_strategy not in ("FULL", "NONE"):
            raise DefinitionError(f"Retry.jitter_strategy must be FULL or NONE, got {self.jitter_strategy!r}")

    def worst_case_delays(self) -> int:
        """The longest total wait between attempts this retrier can add (full jitter only shortens it)."""
        return sum(
            min(int(self.interval_seconds * self.backoff_rate**attempt), self.max_delay_seconds)
            for attempt in range(self.max_attempts)
        )

    def to_dict(self) -> JsonDict:
        return {
            "ErrorEquals": list(self.error_equals),
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_attempts,
            "BackoffRate": self.backoff_rate,
            "MaxDelaySeconds": self.max_delay_seconds,
            "JitterStrategy": self.jitter_strategy,
        }


@dataclass(frozen=True)
class Catch:
    """A catcher: on a matching error go to `next`, keeping the error at `result_path` (so the input is not lost)."""

    next: str
    error_equals: tuple[str, ...] = (ALL_ERRORS,)
    result_path: str | None = "$.error"

    def to_dict(self) -> JsonDict:
        rendered: JsonDict = {"ErrorEquals": list(self.error_equals), "Next": self.next}
        if self.result_path is not None:
            rendered["ResultPath"] = self.result_path
        return rendered


def _check_path(value: str, what: str) -> None:
    if not value.startswith("$"):
        raise DefinitionError(f"{what} must be a JSONPath starting with '$', got {value!r}")


# ---------------------------------------------------------------------------------------------------------------------
# Choice rules
# ---------------------------------------------------------------------------------------------------------------------


class Condition:
    """A boolean expression of a Choice rule."""

    def to_dict(self) -> JsonDict:
        raise NotImplementedError


@dataclass(frozen=True)
class _Comparison(Condition):
    variable: str
    value: Any
    operator: ClassVar[str] = ""

    def __post_init__(self) -> None:
        _check_path(self.variable, f"{self.operator} variable")

    def to_dict(self) -> JsonDict:
        return {"Variable": self.variable, self.operator: self.value}


@dataclass(frozen=True)
class NumericGreaterThan(_Comparison):
    value: float
    operator: ClassVar[str] = "NumericGreaterThan"


@dataclass(frozen=True)
class BooleanEquals(_Comparison):
    value: bool
    operator: ClassVar[str] = "BooleanEquals"


@dataclass(frozen=True)
class StringEquals(_Comparison):
    value: str
    operator: ClassVar[str] = "StringEquals"


@dataclass(frozen=True)
class IsPresent(_Comparison):
    value: bool = True
    operator: ClassVar[str] = "IsPresent"


@dataclass(frozen=True)
class IsString(_Comparison):
    value: bool = True
    operator: ClassVar[str] = "IsString"


@dataclass(frozen=True)
class IsTimestamp(_Comparison):
    value: bool = True
    operator: ClassVar[str] = "IsTimestamp"


@dataclass(frozen=True, init=False)
class And(Condition):
    conditions: tuple[Condition, ...]

    def __init__(self, *conditions: Condition) -> None:
        if not conditions:
            raise DefinitionError("And needs at least one condition")
        object.__setattr__(self, "conditions", tuple(conditions))

    def to_dict(self) -> JsonDict:
        return {"And": [condition.to_dict() for condition in self.conditions]}


@dataclass(frozen=True, init=False)
class Or(Condition):
    conditions: tuple[Condition, ...]

    def __init__(self, *conditions: Condition) -> None:
        if not conditions:
            raise DefinitionError("Or needs at least one condition")
        object.__setattr__(self, "conditions", tuple(conditions))

    def to_dict(self) -> JsonDict:
        return {"Or": [condition.to_dict() for condition in self.conditions]}


@dataclass(frozen=True)
class Not(Condition):
    condition: Condition

    def to_dict(self) -> JsonDict:
        return {"Not": self.condition.to_dict()}


@dataclass(frozen=True)
class ChoiceRule:
    """When `condition` holds, go to `next`."""

    condition: Condition
    next: str

    def to_dict(self) -> JsonDict:
        return {**self.condition.to_dict(), "Next": self.next}


# ---------------------------------------------------------------------------------------------------------------------
# States
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TaskDefaults:
    """What a Task gets when it does not say otherwise. `catch_next` is the alert path (a state of the top-level scope);
    None means no default Catch."""

    retry: tuple[Retry, ...] = (Retry((TASK_FAILED, TIMEOUT), interval_seconds=5, max_attempts=3),)
    catch_next: str | None = None
    catch_result_path: str = "$.error"
    timeout_seconds: int = 900


@dataclass(frozen=True, kw_only=True)
class _State:
    name: str
    comment: str | None = None

    type_name: ClassVar[str] = ""
    terminal: ClassVar[bool] = False

    def transitions(self) -> Iterator[tuple[str, str]]:
        """(field, target) pairs for every transition this state declares."""
        return iter(())

    def can_end(self) -> bool:
        return self.terminal

    def render(self, defaults: TaskDefaults, top_level: bool) -> JsonDict:
        rendered: JsonDict = {"Type": self.type_name}
        if self.comment:
            rendered["Comment"] = self.comment
        return rendered


@dataclass(frozen=True, kw_only=True)
class _FlowState(_State):
    """A state that continues with `next` or ends the scope with `end=True` (exactly one of them)."""

    next: str | None = None
    end: bool = False
    input_path: str | None = None
    output_path: str | None = None

    def transitions(self) -> Iterator[tuple[str, str]]:
        if self.next is not None:
            yield "Next", self.next

    def can_end(self) -> bool:
        return self.end

    def render(self, defaults: TaskDefaults, top_level: bool) -> JsonDict:
        rendered = super().render(defaults, top_level)
        if self.input_path is not None:
            rendered["InputPath"] = self.input_path
        if self.output_path is not None:
            rendered["OutputPath"] = self.output_path
        if self.next is not None:
            rendered["Next"] = self.next
        if self.end:
            rendered["End"] = True
        return rendered


@dataclass(frozen=True, kw_only=True)
class Task(_FlowState):
    """A Task state. `retry`, `catch` and `timeout_seconds` left as None take the machine's `TaskDefaults`; pass `()`
    to opt out explicitly. `permissions` are the IAM statements the state machine role needs for this Task (not
    rendered)."""

    resource: str
    parameters: JsonDict | None = None
    result_selector: JsonDict | None = None
    result_path: str | None = None
    retry: tuple[Retry, ...] | None = None
    catch: tuple[Catch, ...] | None = None
    timeout_seconds: int | None = None
    heartbeat_seconds: int | None = None
    permissions: tuple[Statement, ...] = field(default=(), compare=False)

    type_name: ClassVar[str] = "Task"

    def effective_catch(self, defaults: TaskDefaults, top_level: bool) -> tuple[Catch, ...]:
        if self.catch is not None:
            return self.catch
        if top_level and defaults.catch_next is not None:
            return (Catch(defaults.catch_next, result_path=defaults.catch_result_path),)
        return ()

    def transitions(self) -> Iterator[tuple[str, str]]:
        yield from super().transitions()
        for index, catcher in enumerate(self.catch or ()):
            yield f"Catch[{index}].Next", catcher.next

    def render(self, defaults: TaskDefaults, top_level: bool) -> JsonDict:
        rendered = super().render(defaults, top_level)
        rendered["Resource"] = self.resource
        if self.parameters is not None:
            rendered["Parameters"] = self.parameters
        if self.result_selector is not None:
            rendered["ResultSelector"] = self.result_selector
        if self.result_path is not None:
            rendered["ResultPath"] = self.result_path
        timeout = self.timeout_seconds if self.timeout_seconds is not None else defaults.timeout_seconds
        rendered["TimeoutSeconds"] = timeout
        if self.heartbeat_seconds is not None:
            rendered["HeartbeatSeconds"] = self.heartbeat_seconds
        retry = self.retry if self.retry is not None else defaults.retry
        if retry:
            rendered["Retry"] = [retrier.to_dict() for retrier in retry]
        catch = self.effective_catch(defaults, top_level)
        if catch:
            rendered["Catch"] = [catcher.to_dict() for catcher in catch]
        return rendered


@dataclass(frozen=True, kw_only=True)
class Pass(_FlowState):
    result: Any = None
    parameters: JsonDict | None = None
    result_path: str | None = None

    type_name: ClassVar[str] = "Pass"

    def render(self, defaults: TaskDefaults, top_level: bool) -> JsonDict:
        rendered = super().render(defaults, top_level)
        if self.result is not None:
            rendered["Result"] = self.result
        if self.parameters is not None:
            rendered["Parameters"] = self.parameters
        if self.result_path is not None:
            rendered["ResultPath"] = self.result_path
        return rendered


@dataclass(frozen=True, kw_only=True)
class Wait(_FlowState):
    """Wait `seconds` before going on (a poll loop's pause)."""

    seconds: int

    type_name: ClassVar[str] = "Wait"

    def __post_init__(self) -> None:
        if self.seconds < 1:
            raise DefinitionError(f"Wait state {self.name!r}: Seconds must be >= 1, got {self.seconds}")

    def render(self, defaults: TaskDefaults, top_level: bool) -> JsonDict:
        rendered = super().render(defaults, top_level)
        rendered["Seconds"] = self.seconds
        return rendered


@dataclass(frozen=True, kw_only=True)
class Succeed(_State):
    type_name: ClassVar[str] = "Succeed"
    terminal: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Fail(_State):
    error: str | None = None
    cause: str | None = None

    type_name: ClassVar[str] = "Fail"
    terminal: ClassVar[bool] = True

    def render(self, defaults: TaskDefaults, top_level: bool) -> JsonDict:
        rendered = super().render(defaults, top_level)
        if self.error is not None:
            rendered["Error"] = self.error
        if self.cause is not None:
            rendered["Cause"] = self.cause
        return rendered


@dataclass(frozen=True, kw_only=True)
class Choice(_State):
    """The first rule that holds picks the next state; otherwise `default` (a Choice without a default fails the
    execution with States.NoChoiceMatched when no rule holds)."""

    choices: tuple[ChoiceRule, ...]
    default: str | None = None
    input_path: str | None = None
    output_path: str | None = None

    type_name: ClassVar[str] = "Choice"

    def transitions(self) -> Iterator[tuple[str, str]]:
        for index, rule in enumerate(self.choices):
            yield f"Choices[{index}].Next", rule.next
        if self.default is not None:
            yield "Default", self.default

    def render(self, defaults: TaskDefaults, top_level: bool) -> JsonDict:
        rendered = super().render(defaults, top_level)
        if self.input_path is not None:
            rendered["InputPath"] = self.input_path
        if self.output_path is not None:
            rendered["OutputPath"] = self.output_path
        rendered["Choices"] = [rule.to_dict() for rule in self.choices]
        if self.default is not None:
            rendered["Default"] = self.default
        return rendered


@dataclass(frozen=True)
class Branch:
    """A scope of states: the state machine's top level, a Parallel branch or a Map item processor. `start_at`
    defaults to the first state."""

    states: tuple[_State, ...]
    start_at: str | None = None

    @property
    def start(self) -> str:
        if self.start_at is not None:
            return self.start_at
        return self.states[0].name if self.states else ""

    def render(self, defaults: TaskDefaults, top_level: bool) -> JsonDict:
        return {
            "StartAt": self.start,
            "States": {state.name: state.render(defaults, top_level) for state in self.states},
        }


@dataclass(frozen=True, kw_only=True)
class _CompositeState(_FlowState):
    """Parallel and Map: a nested scope plus the state's own Retry/Catch (no default Retry: its Tasks retry)."""

    parameters: JsonDict | None = None
    result_selector: JsonDict | None = None
    result_path: str | None = None
    retry: tuple[Retry, ...] = ()
    catch: tuple[Catch, ...] | None = None

    def scopes(self) -> Iterator[tuple[str, Branch]]:
        return iter(())

    def transitions(self) -> Iterator[tuple[str, str]]:
        yield from super().transitions()
        for index, catcher in enumerate(self.catch or ()):
            yield f"Catch[{index}].Next", catcher.next

    def effective_catch(self, defaults: TaskDefaults, top_level: bool) -> tuple[Catch, ...]:
        if self.catch is not None:
            return self.catch
        if top_level and defaults.catch_next is not None:
            return (Catch(defaults.catch_next, result_path=defaults.catch_result_path),)
        return ()

    def render(self, defaults: TaskDefaults, top_level: bool) -> JsonDict:
        rendered = super().render(defaults, top_level)
        if self.parameters is not None:
            rendered["Parameters"] = self.parameters
        if self.result_selector is not None:
            rendered["ResultSelector"] = self.result_selector
        if self.result_path is not None:
            rendered["ResultPath"] = self.result_path
        if self.retry:
            rendered["Retry"] = [retrier.to_dict() for retrier in self.retry]
        catch = self.effective_catch(defaults, top_level)
        if catch:
            rendered["Catch"] = [catcher.to_dict() for catcher in catch]
        return rendered


@dataclass(frozen=True, kw_only=True)
class Parallel(_CompositeState):
    """Runs every branch on the same input; the output is the list of the branches' outputs, in branch order."""

    branches: tuple[Branch, ...]

    type_name: ClassVar[str] = "Parallel"

    def scopes(self) -> Iterator[tuple[str, Branch]]:
        for index, branch in enumerate(self.branches):
            yield f"branch {index} of Parallel {self.name!r}", branch

    def render(self, defaults: TaskDefaults, top_level: bool) -> JsonDict:
        rendered = super().render(defaults, top_level)
        rendered["Branches"] = [branch.render(defaults, top_level=False) for branch in self.branches]
        return rendered


@dataclass(frozen=True, kw_only=True)
class Map(_CompositeState):
    """Runs `item_processor` once per element of the array at `items_path` (inline mode), at most `max_concurrency`
    at a time (0 = no limit). `item_selector` builds each iteration's input (`$$.Map.Item.Value` is the element)."""

    item_processor: Branch
    items_path: str = "$"
    item_selector: JsonDict | None = None
    max_concurrency: int = 0

    type_name: ClassVar[str] = "Map"

    def scopes(self) -> Iterator[tuple[str, Branch]]:
        yield f"item processor of Map {self.name!r}", self.item_processor

    def render(self, defaults: TaskDefaults, top_level: bool) -> JsonDict:
        rendered = super().render(defaults, top_level)
        processor = self.item_processor.render(defaults, top_level=False)
        rendered["ItemProcessor"] = {"ProcessorConfig": {"Mode": "INLINE"}, **processor}
        rendered["ItemsPath"] = self.items_path
        if self.item_selector is not None:
            rendered["ItemSelector"] = self.item_selector
        rendered["MaxConcurrency"] = self.max_concurrency
        return rendered


State = Task | Pass | Wait | Succeed | Fail | Choice | Parallel | Map


# ---------------------------------------------------------------------------------------------------------------------
# The state machine: checks, rendering, permissions
# ---------------------------------------------------------------------------------------------------------------------


def _walk(branch: Branch) -> Iterator[_State]:
    for state in branch.states:
        yield state
        if isinstance(state, _CompositeState):
            for _, nested in state.scopes():
                yield from _walk(nested)


def _check_scope(branch: Branch, scope: str, defaults: TaskDefaults, top_level: bool) -> None:
    if not branch.states:
        raise DefinitionError(f"{scope} has no states")
    names = [state.name for state in branch.states]
    known = set(names)
    if branch.start not in known:
        raise DefinitionError(f"{scope}: StartAt {branch.start!r} is not a state of this scope")

    edges: dict[str, list[str]] = {}
    for state in branch.states:
        if isinstance(state, _FlowState):
            if state.next is None and not state.end:
                raise DefinitionError(f"state {state.name!r} has neither Next nor End; set one so the state can finish")
            if state.next is not None and state.end:
                raise DefinitionError(f"state {state.name!r} has both Next and End; keep one")
        if isinstance(state, Choice) and not state.choices:
            raise DefinitionError(f"Choice state {state.name!r} has no Choices")
        if isinstance(state, Parallel) and not state.branches:
            raise DefinitionError(f"Parallel state {state.name!r} has no branches")
        if isinstance(state, Task | _CompositeState):
            for index, catcher in enumerate(state.effective_catch(defaults, top_level)):
                if catcher.next == state.name:
                    raise DefinitionError(
                        f"state {state.name!r}: Catch[{index}] goes back to the state itself; give it an explicit "
                        "catch (e.g. to a Fail state)"
                    )
        targets = [*state.transitions()]
        if isinstance(state, Task | _CompositeState) and state.catch is None:
            targets += [
                (f"Catch[{index}].Next (default)", catcher.next)
                for index, catcher in enumerate(state.effective_catch(defaults, top_level))
            ]
        for field_name, target in targets:
            if target not in known:
                raise DefinitionError(f"state {state.name!r}: {field_name} {target!r} is not a state of {scope}")
        edges[state.name] = [target for _, target in targets]

    reachable = _reachable(branch.start, edges)
    for name in names:
        if name not in reachable:
            raise DefinitionError(f"state {name!r} is unreachable from StartAt {branch.start!r} in {scope}")

    # A loop is legitimate (poll, wait, poll again) only if it has a way out.
    reverse: dict[str, list[str]] = {name: [] for name in names}
    for source, targets_of in edges.items():
        for target in targets_of:
            reverse[target].append(source)
    enders = [state.name for state in branch.states if state.can_end()]
    can_finish = _reachable_many(enders, reverse)
    for name in names:
        if name not in can_finish:
            raise DefinitionError(f"state {name!r} can never reach a terminal state (Succeed, Fail or End) in {scope}")


def _reachable(start: str, edges: Mapping[str, Sequence[str]]) -> set[str]:
    return _reachable_many([start], edges)


def _reachable_many(starts: Iterable[str], edges: Mapping[str, Sequence[str]]) -> set[str]:
    seen: set[str] = set()
    pending = list(starts)
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        pending.extend(edges.get(current, ()))
    return seen


def _check_names(branch: Branch) -> None:
    # State names must be unique across the whole machine, nested scopes included.
    seen: set[str] = set()
    for state in _walk(branch):
        if not state.name:
            raise DefinitionError("a state has an empty name")
        if len(state.name) > MAX_STATE_NAME_LENGTH:
            raise DefinitionError(
                f"state name {state.name!r} is {len(state.name)} characters; the limit is {MAX_STATE_NAME_LENGTH}"
            )
        if state.name in seen:
            raise DefinitionError(f"duplicate state name {state.name!r}; names must be unique in the whole machine")
        seen.add(state.name)


def _check_tree(branch: Branch, scope: str, defaults: TaskDefaults, top_level: bool) -> None:
    _check_scope(branch, scope, defaults, top_level)
    for state in branch.states:
        if isinstance(state, Map) and state.max_concurrency < 0:
            raise DefinitionError(f"Map state {state.name!r}: MaxConcurrency must be >= 0")
        if isinstance(state, Task | _CompositeState | Pass) and state.result_path is not None:
            _check_path(state.result_path, f"state {state.name!r}: ResultPath")
        if isinstance(state, _CompositeState):
            for nested_scope, nested in state.scopes():
                _check_tree(nested, nested_scope, defaults, top_level=False)


@dataclass(frozen=True)
class StateMachine:
    """A complete definition. Built from a list of states (the first is StartAt unless `start_at` says otherwise);
    checked on construction."""

    states: tuple[State, ...]
    start_at: str | None = None
    comment: str | None = None
    timeout_seconds: int | None = None
    defaults: TaskDefaults = field(default_factory=TaskDefaults)

    def __post_init__(self) -> None:
        object.__setattr__(self, "states", tuple(self.states))
        if self.timeout_seconds is not None and self.timeout_seconds < 1:
            raise DefinitionError(f"state machine TimeoutSeconds must be >= 1, got {self.timeout_seconds}")
        _check_names(self.branch)
        _check_tree(self.branch, "the state machine", self.defaults, top_level=True)

    @property
    def branch(self) -> Branch:
        return Branch(self.states, self.start_at)

    def to_dict(self) -> JsonDict:
        rendered: JsonDict = {}
        if self.comment:
            rendered["Comment"] = self.comment
        rendered.update(self.branch.render(self.defaults, top_level=True))
        if self.timeout_seconds is not None:
            rendered["TimeoutSeconds"] = self.timeout_seconds
        return rendered

    def to_json(self, indent: int | None = 2) -> str:
        # Sorted keys: an unchanged definition renders byte-identical, so Pulumi shows no diff.
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    def tasks(self) -> list[Task]:
        return [state for state in _walk(self.branch) if isinstance(state, Task)]

    def required_permissions(self) -> list[Statement]:
        """The IAM statements the state machine role needs for its Tasks, merged (same actions and condition -> one
        statement) and sorted, so the role policy is stable."""
        merged: dict[tuple[tuple[str, ...], str], set[str]] = {}
        conditions: dict[tuple[tuple[str, ...], str], Any] = {}
        for task in self.tasks():
            for statement in task.permissions:
                actions = statement["Action"]
                action_key = tuple(sorted([actions] if isinstance(actions, str) else actions))
                condition = statement.get("Condition")
                key = (action_key, json.dumps(condition, sort_keys=True))
                resources = statement["Resource"]
                merged.setdefault(key, set()).update([resources] if isinstance(resources, str) else resources)
                conditions[key] = condition
        statements: list[Statement] = []
        for key in sorted(merged):
            merged_statement: Statement = {"Effect": "Allow", "Action": list(key[0]), "Resource": sorted(merged[key])}
            if conditions[key] is not None:
                merged_statement["Condition"] = conditions[key]
            statements.append(merged_statement)
        return statements


# ---------------------------------------------------------------------------------------------------------------------
# Task factories for service integrations
# ---------------------------------------------------------------------------------------------------------------------

_ARN = re.compile(
    r"^arn:(?P<partition>[a-z-]+):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):(?P<account>\d{12}|):(?P<resource>.+)$"
)


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, arn: str, what: str) -> Arn:
        match = _ARN.match(arn)
        if not match:
            raise DefinitionError(f"{what} must be an ARN (arn:<partition>:<service>:...), got {arn!r}")
        return cls(**match.groupdict())

    def prefix(self, service: str | None = None) -> str:
        return f"arn:{self.partition}:{service or self.service}:{self.region}:{self.account}"


def _statement(actions: Sequence[str], resources: Sequence[str], condition: JsonDict | None = None) -> Statement:
    statement: Statement = {"Effect": "Allow", "Action": sorted(actions), "Resource": sorted(resources)}
    if condition:
        statement["Condition"] = condition
    return statement


def _managed_rule(arn: Arn, rule: str) -> Statement:
    # .sync integrations learn that a job finished through a rule the service creates in our account.
    actions = ["events:PutTargets", "events:PutRule", "events:DescribeRule"]
    return _statement(actions, [f"{arn.prefix('events')}:rule/{rule}"])


def _pass_role(role_arns: Sequence[str], service: str) -> Statement:
    return _statement(["iam:PassRole"], role_arns, {"StringEquals": {"iam:PassedToService": service}})


# Lambda's own transient errors are retried more (and sooner) than a function error, as AWS recommends.
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
LAMBDA_RETRY = (
    Retry(LAMBDA_SERVICE_ERRORS, interval_seconds=1, max_attempts=6),
    Retry((TASK_FAILED, TIMEOUT), interval_seconds=5, max_attempts=2),
)
# A .sync job that failed has usually failed for a reason a retry will not fix; retry once, and on timeouts.
JOB_RETRY = (Retry((TASK_FAILED, TIMEOUT), interval_seconds=30, max_attempts=1, max_delay_seconds=300),)
JOB_TIMEOUT_SECONDS = 3600


def _stage_options(
    kwargs: dict[str, Any], default_retry: tuple[Retry, ...] | None, default_timeout: int | None
) -> dict[str, Any]:
    if kwargs.get("retry") is None and default_retry is not None:
        kwargs["retry"] = default_retry
    if kwargs.get("timeout_seconds") is None and default_timeout is not None:
        kwargs["timeout_seconds"] = default_timeout
    return kwargs


def lambda_invoke(
    name: str,
    function_arn: str,
    *,
    payload: JsonDict | None = None,
    payload_path: str = "$",
    **options: Any,
) -> Task:
    """Invoke a function synchronously (`lambda:invoke`). The Task's result keeps only `{"Payload": <returned value>}`.

    `payload` is a payload template (keys ending in `.$` are JSONPaths); without it the state input (`payload_path`)
    is sent. `options` are Task fields (next, end, result_path, retry, catch, timeout_seconds, ...)."""
    arn = Arn.parse(function_arn, f"state {name!r}: function_arn")
    parameters: JsonDict = {"FunctionName": function_arn}
    if payload is not None:
        parameters["Payload"] = payload
    else:
        _check_path(payload_path, f"state {name!r}: payload_path")
        parameters["Payload.$"] = payload_path
    # Versions and aliases are qualified ARNs (function:name:qualifier).
    permissions = (_statement(["lambda:InvokeFunction"], [function_arn, f"{function_arn}:*"]),)
    options.setdefault("result_selector", {"Payload.$": "$.Payload"})
    return Task(
        name=name,
        resource=f"arn:{arn.partition}:states:::lambda:invoke",
        parameters=parameters,
        permissions=permissions,
        **_stage_options(options, LAMBDA_RETRY, None),
    )


def sns_publish(
    name: str,
    topic_arn: str,
    *,
    message: Any = None,
    message_path: str | None = None,
    subject: str | None = None,
    subject_path: str | None = None,
    **options: Any,
) -> Task:
    """Publish to a topic. Give a literal `message`, or `message_path` (a JSONPath or intrinsic such as
    `States.JsonToString($)`); likewise at most one of `subject` and `subject_path`."""
    arn = Arn.parse(topic_arn, f"state {name!r}: topic_arn")
    parameters: JsonDict = {"TopicArn": topic_arn}
    if (message is None) == (message_path is None):
        raise DefinitionError(f"state {name!r}: give exactly one of message and message_path")
    if message_path is not None:
        parameters["Message.$"] = message_path
    else:
        parameters["Message"] = message
    if subject is not None and subject_path is not None:
        raise DefinitionError(f"state {name!r}: give at most one of subject and subject_path")
    if subject is not None:
        parameters["Subject"] = subject
    if subject_path is not None:
        parameters["Subject.$"] = subject_path
    options.setdefault("result_path", None)
    return Task(
        name=name,
        resource=f"arn:{arn.partition}:states:::sns:publish",
        parameters=parameters,
        permissions=(_statement(["sns:Publish"], [topic_arn]),),
        **options,
    )


def sqs_send_message(
    name: str,
    queue_url: str,
    queue_arn: str,
    *,
    message_body: Any = None,
    message_body_path: str | None = None,
    **options: Any,
) -> Task:
    """Send a message to a queue (the API takes the URL; the permission is on the ARN)."""
    arn = Arn.parse(queue_arn, f"state {name!r}: queue_arn")
    if (message_body is None) == (message_body_path is None):
        raise DefinitionError(f"state {name!r}: give exactly one of message_body and message_body_path")
    parameters: JsonDict = {"QueueUrl": queue_url}
    if message_body_path is not None:
        parameters["MessageBody.$"] = message_body_path
    else:
        parameters["MessageBody"] = message_body
    return Task(
        name=name,
        resource=f"arn:{arn.partition}:states:::sqs:sendMessage",
        parameters=parameters,
        permissions=(_statement(["sqs:SendMessage"], [queue_arn]),),
        **options,
    )


def s3_get_object(
    name: str,
    bucket: str,
    *,
    key_path: str,
    key_prefix: str,
    partition: str = "aws",
    kms_key_arn: str | None = None,
    **options: Any,
) -> Task:
    """Read one object through the SDK integration (`aws-sdk:s3:getObject`). `key_path` is a JSONPath or intrinsic
    giving the key; the permission covers `key_prefix*` only. The body is a string: parse it with
    `States.StringToJson($.Body)` in a result selector."""
    permissions = [_statement(["s3:GetObject"], [f"arn:{partition}:s3:::{bucket}/{key_prefix}*"])]
    if kms_key_arn is not None:
        # Only S3 decrypts with the key for this read.
        region = Arn.parse(kms_key_arn, f"state {name!r}: kms_key_arn").region
        via = {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}
        permissions.append(_statement(["kms:Decrypt"], [kms_key_arn], via))
    return Task(
        name=name,
        resource=f"arn:{partition}:states:::aws-sdk:s3:getObject",
        parameters={"Bucket": bucket, "Key.$": key_path},
        permissions=tuple(permissions),
        **_stage_options(options, None, None),
    )


def cloudwatch_put_metric(
    name: str,
    *,
    namespace: str,
    metric_name: str,
    value_path: str,
    dimensions: Mapping[str, str],
    unit: str = "Seconds",
    **options: Any,
) -> Task:
    """Publish one data point (`aws-sdk:cloudwatch:putMetricData`) whose value is read from the state at
    `value_path`. The permission is the one custom metrics allow: PutMetricData on "*", limited to `namespace`."""
    _check_path(value_path, f"state {name!r}: value_path")
    datum: JsonDict = {
        "MetricName": metric_name,
        "Unit": unit,
        "Value.$": value_path,
        "Dimensions": [{"Name": key, "Value": value} for key, value in sorted(dimensions.items())],
    }
    permissions = (
        _statement(["cloudwatch:PutMetricData"], ["*"], {"StringEquals": {"cloudwatch:namespace": namespace}}),
    )
    return Task(
        name=name,
        resource="arn:aws:states:::aws-sdk:cloudwatch:putMetricData",
        parameters={"Namespace": namespace, "MetricData": [datum]},
        permissions=permissions,
        **options,
    )


def ecs_run_task(
    name: str,
    *,
    cluster_arn: str,
    task_definition_arn: str,
    container_name: str,
    subnet_ids: Sequence[str],
    security_group_ids: Sequence[str],
    pass_role_arns: Sequence[str],
    command: Sequence[str] | None = None,
    command_path: str | None = None,
    capacity_provider: str | None = None,
    platform_version: str | None = None,
    **options: Any,
) -> Task:
    """Run a task and wait for it to stop (`ecs:runTask.sync`), in private subnets without a public IP.

    `command` is a literal argument list; `command_path` an intrinsic building it from the input, e.g.
    `States.Array('extract', '--run-date', $.run_date)`. `capacity_provider` (e.g. FARGATE_SPOT) replaces the FARGATE
    launch type; `platform_version` (e.g. LATEST, which ECS.10 asks for) pins the Fargate platform. `pass_role_arns`
    are the task role and execution role, which Step Functions passes to ECS."""
    cluster = Arn.parse(cluster_arn, f"state {name!r}: cluster_arn")
    task_definition = Arn.parse(task_definition_arn, f"state {name!r}: task_definition_arn")
    if not subnet_ids:
        raise DefinitionError(f"state {name!r}: subnet_ids must name at least one subnet")
    if not pass_role_arns:
        raise DefinitionError(f"state {name!r}: pass_role_arns must list the task and execution roles")
    if command is not None and command_path is not None:
        raise DefinitionError(f"state {name!r}: give at most one of command and command_path")
    override: JsonDict = {"Name": container_name}
    if command is not None:
        override["Command"] = list(command)
    elif command_path is not None:
        override["Command.$"] = command_path
    parameters: JsonDict = {
        "Cluster": cluster_arn,
        "TaskDefinition": task_definition_arn,
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "Subnets": list(subnet_ids),
                "SecurityGroups": list(security_group_ids),
                "AssignPublicIp": "DISABLED",
            }
        },
        "Overrides": {"ContainerOverrides": [override]},
    }
    if platform_version is not None:
        parameters["PlatformVersion"] = platform_version
    if capacity_provider is not None:
        parameters["CapacityProviderStrategy"] = [{"CapacityProvider": capacity_provider, "Weight": 1}]
    else:
        parameters["LaunchType"] = "FARGATE"
    cluster_name = cluster.resource.split("/", 1)[-1]
    # Any revision of the family, so a new revision does not need a new role policy before the definition changes.
    family = re.sub(r":\d+$", "", task_definition.resource)
    permissions = (
        _statement(["ecs:RunTask"], [f"{task_definition.prefix()}:{family}:*"]),
        _statement(["ecs:StopTask", "ecs:DescribeTasks"], [f"{cluster.prefix()}:task/{cluster_name}/*"]),
        _pass_role(pass_role_arns, "ecs-tasks.amazonaws.com"),
        _managed_rule(cluster, "StepFunctionsGetEventsForECSTaskRule"),
    )
    return Task(
        name=name,
        resource=f"arn:{cluster.partition}:states:::ecs:runTask.sync",
        parameters=parameters,
        permissions=permissions,
        **_stage_options(options, JOB_RETRY, JOB_TIMEOUT_SECONDS),
    )


def glue_start_job_run(
    name: str,
    *,
    job_arn: str,
    arguments: JsonDict | None = None,
    **options: Any,
) -> Task:
    """Start a Glue job run and wait for it (`glue:startJobRun.sync`). `arguments` is a payload template of the
    job's `--key` arguments. Step Functions polls Glue for .sync, so no managed EventBridge rule is needed."""
    arn = Arn.parse(job_arn, f"state {name!r}: job_arn")
    job_name = arn.resource.split("/", 1)[-1]
    parameters: JsonDict = {"JobName": job_name}
    if arguments is not None:
        parameters["Arguments"] = arguments
    permissions = (
        _statement(["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"], [job_arn]),
    )
    return Task(
        name=name,
        resource=f"arn:{arn.partition}:states:::glue:startJobRun.sync",
        parameters=parameters,
        permissions=permissions,
        **_stage_options(options, JOB_RETRY, JOB_TIMEOUT_SECONDS),
    )


def emr_serverless_start_job_run(
    name: str,
    *,
    application_arn: str,
    execution_role_arn: str,
    entry_point: str,
    entry_point_arguments_path: str | None = None,
    spark_submit_parameters: str | None = None,
    client_token_path: str | None = None,
    name_path: str | None = None,
    configuration_overrides: JsonDict | None = None,
    execution_timeout_minutes: int | None = None,
    **options: Any,
) -> Task:
    """Run a Spark job on an EMR Serverless application and wait for it (`emr-serverless:startJobRun.sync`).
    `entry_point_arguments_path` is an intrinsic building the arguments, e.g.
    `States.Array('--run-date', $.run_date)`. `client_token_path` is an intrinsic giving the idempotency token
    (1-64 characters of `[A-Za-z0-9._-]`), derived from the execution so that a repeated call of one attempt starts one
    job run and every run (and retry) gets a token of its own; `name_path` names the job run the same way.
    `configuration_overrides` holds the monitoring configuration (where the job's logs go); `execution_timeout_minutes`
    stops a job run EMR Serverless-side even when nothing is waiting for it any more."""
    arn = Arn.parse(application_arn, f"state {name!r}: application_arn")
    application_id = arn.resource.rstrip("/").split("/")[-1]
    spark_submit: JsonDict = {"EntryPoint": entry_point}
    if entry_point_arguments_path is not None:
        spark_submit["EntryPointArguments.$"] = entry_point_arguments_path
    if spark_submit_parameters is not None:
        spark_submit["SparkSubmitParameters"] = spark_submit_parameters
    parameters: JsonDict = {
        "ApplicationId": application_id,
        "ExecutionRoleArn": execution_role_arn,
        "JobDriver": {"SparkSubmit": spark_submit},
    }
    if client_token_path is not None:
        parameters["ClientToken.$"] = client_token_path
    if name_path is not None:
        parameters["Name.$"] = name_path
    if configuration_overrides is not None:
        parameters["ConfigurationOverrides"] = configuration_overrides
    if execution_timeout_minutes is not None:
        if execution_timeout_minutes < 1:
            raise DefinitionError(f"state {name!r}: execution_timeout_minutes must be >= 1 (0 means no timeout)")
        parameters["ExecutionTimeoutMinutes"] = execution_timeout_minutes
    permissions = (
        _statement(["emr-serverless:StartJobRun"], [application_arn]),
        _statement(["emr-serverless:GetJobRun", "emr-serverless:CancelJobRun"], [f"{application_arn}/jobruns/*"]),
        _pass_role([execution_role_arn], "emr-serverless.amazonaws.com"),
        _managed_rule(arn, "StepFunctionsGetEventsForEMRServerlessJobRule"),
    )
    return Task(
        name=name,
        resource=f"arn:{arn.partition}:states:::emr-serverless:startJobRun.sync",
        parameters=parameters,
        permissions=permissions,
        **_stage_options(options, JOB_RETRY, JOB_TIMEOUT_SECONDS),
    )


# EMR on EC2: a transient cluster per run. The optimized integration polls EMR (60 s for ten minutes, then 300 s) and
# learns about finished calls through managed EventBridge rules in our account.
_EMR_RULES = {
    "createCluster": "StepFunctionsGetEventsForEMRRunJobFlowRule",
    "addStep": "StepFunctionsGetEventsForEMRAddJobFlowStepsRule",
    "terminateCluster": "StepFunctionsGetEventsForEMRTerminateJobFlowsRule",
}
# The API errors of the EMR integration (throttling, a cluster that cannot take the call yet): worth retrying, unlike
# a failed step, whose ActionOnFailure already terminated the cluster.
EMR_API_ERROR = "ElasticMapReduce.AmazonElasticMapReduceException"


def _emr_cluster_arns(region_arn: Arn) -> str:
    return f"{region_arn.prefix('elasticmapreduce')}:cluster/*"


def emr_create_cluster(
    name: str,
    *,
    region_arn: str,
    cluster: JsonDict,
    service_role_arn: str,
    instance_role_arn: str,
    **options: Any,
) -> Task:
    """Create an EMR on EC2 cluster and wait until it runs (`elasticmapreduce:createCluster.sync`).

    `cluster` is the RunJobFlow request (Name, ReleaseLabel, Instances, ...) as a payload template; the integration
    requires `Instances.KeepJobFlowAliveWhenNoSteps: true` (steps are added one by one) and refuses `Steps`.
    `region_arn` is any ARN of the stack's partition, region and account (clusters are scoped to them).
    `service_role_arn` and `instance_role_arn` are the EMR service role and the role of the instance profile: the
    state machine passes both to EMR. The Task's output is the cluster id and ARN."""
    arn = Arn.parse(region_arn, f"state {name!r}: region_arn")
    instances = cluster.get("Instances", {})
    if instances.get("KeepJobFlowAliveWhenNoSteps") is not True:
        raise DefinitionError(
            f"state {name!r}: createCluster needs Instances.KeepJobFlowAliveWhenNoSteps true (steps come one by one)"
        )
    if "Steps" in cluster:
        raise DefinitionError(f"state {name!r}: createCluster takes no Steps; add them with addStep")
    permissions = (
        _statement(
            ["elasticmapreduce:RunJobFlow", "elasticmapreduce:DescribeCluster", "elasticmapreduce:TerminateJobFlows"],
            [_emr_cluster_arns(arn)],
        ),
        # RunJobFlow passes both roles to EMR, which hands the instance profile to EC2.
        _statement(["iam:PassRole"], [service_role_arn, instance_role_arn]),
        # EMR creates its cleanup service-linked role on first use (the integration's documented prerequisite).
        _statement(
            ["iam:CreateServiceLinkedRole", "iam:PutRolePolicy"],
            [
                f"arn:{arn.partition}:iam::{arn.account}:role/aws-service-role/elasticmapreduce.amazonaws.com*/"
                "AWSServiceRoleForEMRCleanup*"
            ],
            {"StringLike": {"iam:AWSServiceName": "elasticmapreduce.amazonaws.com"}},
        ),
        _managed_rule(arn, _EMR_RULES["createCluster"]),
    )
    return Task(
        name=name,
        resource=f"arn:{arn.partition}:states:::elasticmapreduce:createCluster.sync",
        parameters=cluster,
        permissions=permissions,
        **_stage_options(options, None, None),
    )


def emr_add_step(
    name: str,
    *,
    region_arn: str,
    cluster_id_path: str,
    step_name: str,
    args_path: str,
    action_on_failure: Literal["TERMINATE_CLUSTER", "CANCEL_AND_WAIT"] = "TERMINATE_CLUSTER",
    **options: Any,
) -> Task:
    """Add a `command-runner.jar` step to a running cluster and wait for it (`elasticmapreduce:addStep.sync`).
    `args_path` is an intrinsic building the command (`States.Array('spark-submit', ...)`). A failed step ends the
    cluster (`TERMINATE_CLUSTER`): later steps never run on a cluster whose run already failed. `CONTINUE`, which
    seed 004 uses, is refused: it runs the next steps after a failure."""
    arn = Arn.parse(region_arn, f"state {name!r}: region_arn")
    _check_path(cluster_id_path, f"state {name!r}: cluster_id_path")
    if action_on_failure not in ("TERMINATE_CLUSTER", "CANCEL_AND_WAIT"):
        raise DefinitionError(
            f"state {name!r}: ActionOnFailure {action_on_failure!r} would run later steps after a failure; use "
            "TERMINATE_CLUSTER (or CANCEL_AND_WAIT)"
        )
    parameters: JsonDict = {
        "ClusterId.$": cluster_id_path,
        "Step": {
            "Name": step_name,
            "ActionOnFailure": action_on_failure,
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args.$": args_path},
        },
    }
    permissions = (
        _statement(
            ["elasticmapreduce:AddJobFlowSteps", "elasticmapreduce:DescribeStep", "elasticmapreduce:CancelSteps"],
            [_emr_cluster_arns(arn)],
        ),
        _managed_rule(arn, _EMR_RULES["addStep"]),
    )
    return Task(
        name=name,
        resource=f"arn:{arn.partition}:states:::elasticmapreduce:addStep.sync",
        parameters=parameters,
        permissions=permissions,
        **_stage_options(options, JOB_RETRY, JOB_TIMEOUT_SECONDS),
    )


def emr_terminate_cluster(name: str, *, region_arn: str, cluster_id_path: str, **options: Any) -> Task:
    """Terminate a cluster and wait until it is gone (`elasticmapreduce:terminateCluster.sync`). Terminating a
    cluster that already ended (a failed step terminated it) is not an error."""
    arn = Arn.parse(region_arn, f"state {name!r}: region_arn")
    _check_path(cluster_id_path, f"state {name!r}: cluster_id_path")
    permissions = (
        _statement(
            ["elasticmapreduce:TerminateJobFlows", "elasticmapreduce:DescribeCluster"], [_emr_cluster_arns(arn)]
        ),
        _managed_rule(arn, _EMR_RULES["terminateCluster"]),
    )
    return Task(
        name=name,
        resource=f"arn:{arn.partition}:states:::elasticmapreduce:terminateCluster.sync",
        parameters={"ClusterId.$": cluster_id_path},
        permissions=permissions,
        **_stage_options(options, None, None),
    )


# The Data API authorises DescribeStatement by the caller, not by a resource: "*", limited to the caller's own
# statements (as AWS's AmazonRedshiftDataFullAccess policy does).
REDSHIFT_DATA_OWN_STATEMENTS = {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}


def redshift_data_execute(
    name: str,
    *,
    workgroup_arn: str,
    workgroup_name: str,
    database: str,
    secret_arn: str,
    key_arn: str,
    sqls: Sequence[str],
    statement_name: str,
    **options: Any,
) -> Task:
    """Submit SQL to a Redshift Serverless workgroup through the Data API (`aws-sdk:redshiftdata:executeStatement`
    for one statement, `batchExecuteStatement`, one transaction, for several), as the user of the admin secret. The
    call returns at once with the statement's `Id`; poll it with `redshift_data_describe`."""
    if not sqls:
        raise DefinitionError(f"state {name!r}: no SQL to run")
    arn = Arn.parse(workgroup_arn, f"state {name!r}: workgroup_arn")
    Arn.parse(secret_arn, f"state {name!r}: secret_arn")
    key = Arn.parse(key_arn, f"state {name!r}: key_arn")
    batch = len(sqls) > 1
    action = "batchExecuteStatement" if batch else "executeStatement"
    parameters: JsonDict = {
        "WorkgroupName": workgroup_name,
        "Database": database,
        "SecretArn": secret_arn,
        "StatementName": statement_name,
    }
    parameters.update({"Sqls": list(sqls)} if batch else {"Sql": sqls[0]})
    permissions = (
        _statement([f"redshift-data:{action[0].upper()}{action[1:]}"], [workgroup_arn]),
        _statement(["secretsmanager:GetSecretValue"], [secret_arn]),
        # The admin secret is encrypted with the stack key; only Secrets Manager decrypts it for the role.
        _statement(
            ["kms:Decrypt"],
            [key_arn],
            {"StringEquals": {"kms:ViaService": f"secretsmanager.{key.region}.amazonaws.com"}},
        ),
    )
    options.setdefault("result_selector", {"Id.$": "$.Id"})
    return Task(
        name=name,
        resource=f"arn:{arn.partition}:states:::aws-sdk:redshiftdata:{action}",
        parameters=parameters,
        permissions=permissions,
        **options,
    )


def redshift_data_describe(name: str, *, id_path: str, partition: str = "aws", **options: Any) -> Task:
    """Read a Data API statement's status (`aws-sdk:redshiftdata:describeStatement`): `Status` is one of SUBMITTED,
    PICKED, STARTED, FINISHED, ABORTED, FAILED."""
    _check_path(id_path, f"state {name!r}: id_path")
    return Task(
        name=name,
        resource=f"arn:{partition}:states:::aws-sdk:redshiftdata:describeStatement",
        parameters={"Id.$": id_path},
        permissions=(_statement(["redshift-data:DescribeStatement"], ["*"], REDSHIFT_DATA_OWN_STATEMENTS),),
        **options,
    )
