"""The contract every architecture component meets, so the registry can build any of them the same way."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

import pulumi

from components.foundation.alarms import Widget
from components.refs import FoundationRefs
from components.runners import StageRunner
from components.settings import ArchitectureSettings, Environment, RunnerCapabilities

SettingsT = TypeVar("SettingsT", bound=ArchitectureSettings)


@dataclasses.dataclass(frozen=True)
class ArchitectureArgs(Generic[SettingsT]):
    """What an architecture is built from."""

    settings: SettingsT
    """Its own settings object from the stack config (defaults filled)."""
    foundation: FoundationRefs
    """The foundation's refs: key, lake, network, alerts, stack identity and profile."""
    runners: Mapping[str, StageRunner] = dataclasses.field(default_factory=dict)
    """The stage runners of the architectures built before it, by name (orchestrators use them)."""


class Architecture(pulumi.ComponentResource):
    """Base class: `(name, args, opts)`, a `pkg:module:Type` token, widgets for the stack dashboard.

    A subclass declares its settings model, whether it orchestrates other architectures' runners, the interface
    endpoints its workloads need, and, if it runs stages, its capabilities; once built it sets `runner`."""

    type_token: ClassVar[str]
    settings_model: ClassVar[type[ArchitectureSettings]]
    """Its key in the stack file (`etl-platform:<name>`); defined beside the component."""
    orchestrates: ClassVar[bool] = False
    """True when it consumes other architectures' runners, so the program builds it after them."""
    interface_endpoints: ClassVar[tuple[str, ...]] = ()
    """AWS services its workloads reach from private subnets; the VPC gets endpoints for them when it has no NAT."""

    widgets: list[Widget]
    runner: StageRunner | None

    def __init__(self, name: str, args: ArchitectureArgs[Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.type_token, name, {}, opts)
        self.widgets = []
        self.runner = None

    @classmethod
    def endpoints(cls, settings: ArchitectureSettings) -> tuple[str, ...]:
        """The interface endpoints its workloads need with these settings (an architecture whose modes reach different
        services overrides this); `interface_endpoints` by default."""
        return cls.interface_endpoints

    @classmethod
    def private_endpoints(cls, settings: ArchitectureSettings, environment: Environment) -> tuple[str, ...]:
        """AWS services its workloads reach through an interface endpoint whether or not the VPC has NAT (for workloads
        whose security group allows HTTPS to the endpoints only, never to the internet); none by default."""
        return ()

    @classmethod
    def runner_capabilities(cls, settings: ArchitectureSettings) -> RunnerCapabilities | None:
        """What it can run for an orchestrator with these settings; None when it runs no stage."""
        return None

    def outputs(self) -> dict[str, Any]:
        """What the stack exports for this architecture (ARNs, URLs operators and tooling need)."""
        return {}
