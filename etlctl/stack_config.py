"""Read a stack's config the way the Pulumi CLI hands it to the program: project defaults, then the stack file.

Values become the strings the engine passes (`true`, `365`, JSON for lists and objects); `secure:` values are
replaced by placeholders and reported as secret keys, so offline evaluation never needs the stack's secrets provider.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

SECRET_PLACEHOLDER = "offline-secret-placeholder"


class StackFileError(Exception):
    """The project or stack file is missing or is not valid YAML."""


@dataclasses.dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    values: dict[str, str]
    secret_keys: list[str]

    @property
    def region(self) -> str | None:
        return self.values.get("aws:region")


def _encode(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _mask_secrets(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        masked, any_secret = {}, False
        for key, item in value.items():
            masked[key], secret = _mask_secrets(item)
            any_secret |= secret
        return masked, any_secret
    if isinstance(value, list):
        items = [_mask_secrets(item) for item in value]
        return [item for item, _ in items], any(secret for _, secret in items)
    return value, False


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise StackFileError(f"{path.name} not found in {path.parent}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path.name} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise StackFileError(f"{path.name} must be a mapping at the top level")
    return data


def available_stacks(project_dir: Path) -> list[str]:
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml"))


def load_stack_config(project_dir: Path, stack: str) -> StackConfig:
    project_file = _read_yaml(project_dir / "Pulumi.yaml")
    project = str(project_file.get("name", ""))
    stack_path = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_path.is_file():
        known = ", ".join(available_stacks(project_dir)) or "none"
        raise StackFileError(f"no stack file Pulumi.{stack}.yaml in {project_dir}; stacks here: {known}")
    stack_file = _read_yaml(stack_path)

    values: dict[str, str] = {}
    for key, declaration in (project_file.get("config") or {}).items():
        full_key = key if ":" in key else f"{project}:{key}"
        if isinstance(declaration, dict) and ("default" in declaration or "value" in declaration):
            values[full_key] = _encode(declaration.get("value", declaration.get("default")))
        elif not isinstance(declaration, dict):
            values[full_key] = _encode(declaration)

    secret_keys: list[str] = []
    for key, value in (stack_file.get("config") or {}).items():
        full_key = key if ":" in key else f"{project}:{key}"
        masked, secret = _mask_secrets(value)
        values[full_key] = _encode(masked)
        if secret:
            secret_keys.append(full_key)
    return StackConfig(project=project, stack=stack, values=values, secret_keys=secret_keys)
