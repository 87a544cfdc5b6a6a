"""The README's config reference names every key of every available architecture's settings, in its own section."""

from __future__ import annotations

import re

import pytest

from components.registry import REGISTRY
from tests.support.stacks import ROOT


@pytest.mark.parametrize("name", REGISTRY.available())
def test_readme_documents_every_key_of_the_architecture(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(rf"^### `{name}`\n(.*?)(?=^##)", readme, re.M | re.S)
    assert match, f"README has no `### {name}` section"
    for field_name, field in REGISTRY.settings_model(name).model_fields.items():
        key = field.alias or field_name
        assert f"`{key}`" in match.group(1), f"README's `{name}` section misses `{key}`"
