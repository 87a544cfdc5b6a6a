"""YAML 1.2 core-schema scalars, as Pulumi's yaml.v3 types them: YAML 1.1's booleans, dates and octals stay text or
decimal; PyYAML's safe_load (YAML 1.1) shows what a reader that does not follow them would make of the same text."""

from __future__ import annotations

import datetime
import math

import pytest
import yaml

from components.yaml_core import plain_scalar


@pytest.mark.parametrize(
    ("text", "core", "yaml_1_1"),
    [
        ("yes", "yes", True),
        ("on", "on", True),
        ("No", "No", False),
        ("2024-01-01", "2024-01-01", datetime.date(2024, 1, 1)),
        ("017", 17, 15),
        ("1_000", "1_000", 1000),
        ("0o17", 15, "0o17"),
        ("0x1F", 31, 31),
        ("true", True, True),
        ("TRUE", True, True),
        ("~", None, None),
        ("", None, None),
        ("30.0", 30.0, 30.0),
        ("3e1", 30.0, "3e1"),
        ("1:30", "1:30", 90),
    ],
)
def test_plain_scalars_are_typed_as_yaml_1_2_types_them(text: str, core: object, yaml_1_1: object) -> None:
    assert plain_scalar(text) == core and type(plain_scalar(text)) is type(core)
    assert yaml.safe_load(f"value: {text}")["value"] == yaml_1_1, "PyYAML (YAML 1.1) differs as expected"


def test_infinity_and_not_a_number_are_floats() -> None:
    assert plain_scalar(".inf") == math.inf and plain_scalar("-.Inf") == -math.inf
    assert math.isnan(plain_scalar(".nan"))
