"""The stage-runner protocol, Pulumi side: what an architecture that runs stages hands to orchestrators.

A runner architecture declares `runner_capabilities()` on its class (checked by the settings of the architectures
that use it) and, once built, exposes a `StageRunner`: its stage budgets (known from settings) and `bind()`, which
resolves its ARNs into the `BoundRunner` (`components.pipelines`) that renders its Tasks. An orchestrator never asks
which kind of runner it holds: the runner module owns everything about its kind (its Tasks, the roles they pass, the
IAM they need, its setup and teardown steps).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

import pulumi

from components.pipelines import BoundRunner
from components.stages import Stage, StageBudget


class StageRunner(abc.ABC):
    """A built runner, before its ARNs are known. Subclasses are frozen dataclasses of Outputs."""

    architecture: str
    """The registry name of the architecture that runs the stages."""
    returns_payload: ClassVar[bool]
    waits_for_jobs: ClassVar[bool] = False
    budgets: Mapping[Stage, StageBudget]
    """Timeout and retriers per stage it runs (the stages it can run are the keys)."""

    @property
    def stages(self) -> frozenset[Stage]:
        return frozenset(self.budgets)

    def budget(self, stage: Stage) -> StageBudget:
        return self.budgets[stage]

    def hook_seconds(self) -> int:
        """Worst-case time of its setup, teardown and before/after steps."""
        return 0

    @abc.abstractmethod
    def bind(self) -> pulumi.Output[BoundRunner]:
        """Its ARNs resolved into the plain `BoundRunner` the pipeline builder uses."""
