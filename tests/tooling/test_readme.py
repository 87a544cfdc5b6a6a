"""The README's config reference names every key of every available architecture's settings, in its own section."""

from __future__ import annotations

import re

import pytest

from components.registry import REGISTRY
from components.settings import SettingsModel, StackConfig
from tests.support.stacks import ROOT


@pytest.mark.parametrize("name", REGISTRY.available())
def test_readme_documents_every_key_of_the_architecture(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(rf"^### `{name}`\n(.*?)(?=^##)", readme, re.M | re.S)
    assert match, f"README has no `### {name}` section"
    for field_name, field in REGISTRY.settings_model(name).model_fields.items():
        key = field.alias or field_name
        assert f"`{key}`" in match.group(1), f"README's `{name}` section misses `{key}`"


@pytest.mark.parametrize("key", ["athena", "warehouse"])
def test_readme_documents_every_key_of_the_query_settings(key: str) -> None:
    """The foundation's query settings (`athena`, `warehouse`) have sections of their own, naming every key."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(rf"^### `{key}`\n(.*?)(?=^##)", readme, re.M | re.S)
    assert match, f"README has no `### {key}` section"
    model = StackConfig.model_fields[key].annotation
    assert isinstance(model, type) and issubclass(model, SettingsModel)
    for field_name, field in model.model_fields.items():
        name = field.alias or field_name
        assert f"`{name}`" in match.group(1), f"README's `{key}` section misses `{name}`"
