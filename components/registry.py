"""Config name -> architecture component. Adding an architecture is its module and one line in `ARCHITECTURES`.

Entries are import paths (`module:Class`), imported when first asked for. `None` marks a reserved name whose
architecture is not built yet: the stack file may not select it. An entry whose module fails to import is a bug,
and the import error surfaces as it is.

Other code (a test, a plugin) adds an architecture at run time with `REGISTRY.register(name, "module:Class")` and
removes it with `REGISTRY.unregister(name)`; the settings model, the JSON Schema and the program all read the
registry when they run, so a registered architecture is accepted by config, documented in the schema and built.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.architectures.base import Architecture
    from components.settings import ArchitectureSettings, RunnerCapabilities

ARCHITECTURES: dict[str, str | None] = {
    "serverless": "components.architectures.serverless:Serverless",
    "glue": "components.architectures.glue:Glue",
    "streaming": "components.architectures.streaming:Streaming",
    "emr": "components.architectures.emr:Emr",
    "database": "components.architectures.database:Database",
    "containers": "components.architectures.containers:Containers",
    "stepfunctions": "components.architectures.stepfunctions:StepFunctions",
}


class Registry:
    """Architecture names, in the order the stack file documents them, with the class behind each."""

    def __init__(self, entries: Mapping[str, str | None]) -> None:
        self._entries = dict(entries)

    def names(self) -> tuple[str, ...]:
        """Every name, reserved ones included."""
        return tuple(self._entries)

    def available(self) -> tuple[str, ...]:
        return tuple(name for name, path in self._entries.items() if path is not None)

    def architecture_class(self, name: str) -> type[Architecture]:
        path = self._entries.get(name)
        if path is None:
            state = "reserved but not available yet" if name in self._entries else "not registered"
            raise LookupError(f"architecture {name!r} is {state}")
        module_name, _, class_name = path.partition(":")
        cls: type[Architecture] = getattr(importlib.import_module(module_name), class_name)
        return cls

    def settings_model(self, name: str) -> type[ArchitectureSettings]:
        return self.architecture_class(name).settings_model

    def capabilities(self, name: str, settings: ArchitectureSettings) -> RunnerCapabilities | None:
        return self.architecture_class(name).runner_capabilities(settings)

    def register(self, name: str, path: str) -> None:
        if self._entries.get(name) is not None:
            raise ValueError(f"architecture {name!r} is registered already ({self._entries[name]})")
        self._entries[name] = path

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)


REGISTRY = Registry(ARCHITECTURES)
