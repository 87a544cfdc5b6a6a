"""The contract every architecture component meets, so the registry can build any of them the same way."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

import pulumi

from components.foundation.alarms import Widget
from components.refs import EngineRef, Platform
from components.settings import ArchitectureName

SettingsT = TypeVar("SettingsT")


@dataclasses.dataclass(frozen=True)
class ArchitectureArgs(Generic[SettingsT]):
    """What an architecture is built from."""

    settings: SettingsT
    """Its own settings object from the stack config (defaults filled)."""
    platform: Platform
    """The foundation's refs: key, lake, network, alerts, stack identity and profile."""
    engines: Mapping[ArchitectureName, EngineRef] = dataclasses.field(default_factory=dict)
    """Engine refs of the architectures built before it (orchestrators use them)."""


class Architecture(pulumi.ComponentResource):
    """Base class: `(name, args, opts)`, a `pkg:module:Type` token, widgets for the stack dashboard."""

    type_token: ClassVar[str]
    orchestrates: ClassVar[bool] = False
    """True when it consumes other architectures' engines, so the program builds it last."""
    interface_endpoints: ClassVar[tuple[str, ...]] = ()
    """AWS services its workloads reach from private subnets; the VPC gets endpoints for them when it has no NAT."""

    widgets: list[Widget]
    engine: EngineRef | None

    def __init__(self, name: str, args: ArchitectureArgs[Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.type_token, name, {}, opts)
        self.widgets = []
        self.engine = None

    def outputs(self) -> dict[str, Any]:
        """What the stack exports for this architecture (ARNs, URLs operators and tooling need)."""
        return {}
