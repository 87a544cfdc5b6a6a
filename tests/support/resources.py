"""Small queries over recorded registrations, shared by the unit tests."""

from __future__ import annotations

import json
from typing import Any

from etlctl.mocks import Registration
from etlctl.offline import Evaluation


def of_type(evaluation: Evaluation, token: str) -> list[Registration]:
    return [r for r in evaluation.registrations if r.type == token]


def named(evaluation: Evaluation, suffix: str) -> Registration:
    matches = [r for r in evaluation.registrations if r.name.endswith(suffix)]
    assert len(matches) == 1, f"expected one resource named *{suffix}, found {[m.name for m in matches]}"
    return matches[0]


def policy(value: Any) -> dict[str, Any]:
    """A policy input as a dict (inputs carry JSON text)."""
    assert isinstance(value, str), f"policy is not resolved JSON text: {value!r}"
    parsed: dict[str, Any] = json.loads(value)
    return parsed


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
