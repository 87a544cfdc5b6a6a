"""Walk rendered Step Functions definitions and check them with statelint."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from etlctl.mocks import PlatformMocks, Registration

STATELINT = Path(sys.executable).parent / "statelint"
MACHINE = "aws:sfn/stateMachine:StateMachine"


def walk_states(scope: dict[str, Any], top_level: bool = True) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(name, state, at top level) of every state, nested Parallel branches and Map processors included."""
    for state_name, state in scope["States"].items():
        yield state_name, state, top_level
        for branch in state.get("Branches", []):
            yield from walk_states(branch, top_level=False)
        if "ItemProcessor" in state:
            yield from walk_states(state["ItemProcessor"], top_level=False)


def tasks(scope: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    return [item for item in walk_states(scope) if item[1]["Type"] == "Task"]


def states(scope: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state by name, nested ones included (names are unique across scopes)."""
    return {name: state for name, state, _ in walk_states(scope)}


def definition_of(machine: Registration) -> dict[str, Any]:
    rendered = machine.inputs["definition"]
    assert isinstance(rendered, str), "the definition is resolved in update mode"
    parsed: dict[str, Any] = json.loads(rendered)
    return parsed


def arn_of(registration: Registration, region: str = "eu-west-1") -> str:
    """The ARN the mocks gave a resource (registrations record inputs; the mocks derive ARNs from type and name)."""
    _, state = PlatformMocks(region=region)._created(registration.type, registration.name, registration.inputs)
    return str(state["arn"])


def statelint(document: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "definition.json"
    path.write_text(document)
    return subprocess.run([str(STATELINT), str(path)], capture_output=True, text=True, check=False)


# ---------------------------------------------------------------------------------------------------------------------
# What a Task sends: its parameter templates evaluated for a state, as Step Functions does
# ---------------------------------------------------------------------------------------------------------------------


def _split_arguments(text: str) -> list[str]:
    """Top-level comma-separated arguments of an intrinsic call (quotes and nested calls respected)."""
    parts, depth, quoted, start = [], 0, False, 0
    for index, char in enumerate(text):
        if char == "'" and (index == 0 or text[index - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def _path(path: str, state: dict[str, Any], context: dict[str, Any]) -> Any:
    root, rest = (context, path[3:]) if path.startswith("$$.") else (state, path[2:])
    value: Any = root
    for part in rest.split("."):
        value = value[part]
    return value


def evaluate(expression: str, state: dict[str, Any], context: dict[str, Any]) -> Any:
    """`States.Array`, `States.Format`, `States.Hash`, quoted literals and `$.` / `$$.` paths: the subset of intrinsics the
    pipeline's parameter templates use."""
    expression = expression.strip()
    if expression.startswith("'") and expression.endswith("'"):
        return expression[1:-1].replace("\\'", "'")
    if expression.startswith("$"):
        return _path(expression, state, context)
    name, _, body = expression.partition("(")
    arguments = [evaluate(argument, state, context) for argument in _split_arguments(body[:-1])]
    if name == "States.Array":
        return arguments
    if name == "States.Format":
        template, *values = arguments
        for value in values:
            template = template.replace("{}", str(value), 1)
        return template
    if name == "States.Hash":
        data, algorithm = arguments
        return hashlib.new(algorithm.replace("-", "").lower(), str(data).encode()).hexdigest()
    raise NotImplementedError(f"intrinsic {name} is not evaluated by the tests")


def parameters(template: Any, state: dict[str, Any], context: dict[str, Any]) -> Any:
    """A Task's `Parameters` as sent: keys ending in `.$` evaluated, the rest as written."""
    if isinstance(template, dict):
        return {
            key.removesuffix(".$"): (
                evaluate(value, state, context) if key.endswith(".$") else parameters(value, state, context)
            )
            for key, value in template.items()
        }
    if isinstance(template, list):
        return [parameters(item, state, context) for item in template]
    return template
