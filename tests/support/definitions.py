"""Walk rendered Step Functions definitions and check them with statelint."""

from __future__ import annotations

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
