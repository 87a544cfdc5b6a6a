"""Config name -> architecture component class. Adding an architecture is one file and one line here.

Entries are import paths, resolved lazily, so that the settings model can ask which names are available without
importing every component. `None` marks a reserved name whose architecture is not built yet.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from components.settings import ArchitectureName

if TYPE_CHECKING:
    from components.architectures.base import Architecture

ARCHITECTURES: dict[ArchitectureName, str | None] = {
    ArchitectureName.SERVERLESS: "components.architectures.serverless:Serverless",
    ArchitectureName.GLUE: None,
    ArchitectureName.STREAMING: None,
    ArchitectureName.EMR: None,
    ArchitectureName.DATABASE: None,
    ArchitectureName.CONTAINERS: "components.architectures.containers:Containers",
    ArchitectureName.STEPFUNCTIONS: "components.architectures.stepfunctions:StepFunctions",
}


def available_architectures() -> frozenset[ArchitectureName]:
    return frozenset(name for name, path in ARCHITECTURES.items() if path is not None and _importable(path))


def _importable(path: str) -> bool:
    module = path.split(":", 1)[0]
    return importlib.util.find_spec(module) is not None


def architecture_class(name: ArchitectureName) -> type[Architecture]:
    path = ARCHITECTURES[name]
    if path is None:
        raise LookupError(f"architecture '{name.value}' is reserved but not available yet")
    module_name, class_name = path.split(":", 1)
    cls: type[Architecture] = getattr(importlib.import_module(module_name), class_name)
    return cls
