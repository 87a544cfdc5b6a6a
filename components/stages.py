"""The pipeline's stages and what a stage runner declares about itself (pure Python, no pulumi import).

A **stage runner** is an architecture that can run pipeline stages (the serverless Lambdas, the containers' Fargate
tasks, ...). Its class declares `RunnerCapabilities`, which the settings of the architectures that use it check before
anything is registered; at run time it hands orchestrators a `StageRunner` (see `components.runners`).
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from components import asl


class Stage(StrEnum):
    EXTRACT = "extract"
    TRANSFORM = "transform"
    VALIDATE = "validate"
    LOAD = "load"


@dataclasses.dataclass(frozen=True)
class RunnerCapabilities:
    """What a stage runner can do, known from its settings alone."""

    stages: frozenset[Stage]
    """The stages it can run."""
    waits_for_jobs: bool = False
    """Its stages are jobs a state machine waits for (`.sync` integrations): only STANDARD state machines can."""


@dataclasses.dataclass(frozen=True)
class StageBudget:
    """How long one stage may take on a runner: the Task's timeout and its retriers, as the Task renders them."""

    timeout_seconds: int
    retry: tuple[asl.Retry, ...]

    def worst_case_seconds(self) -> int:
        """Every attempt timing out, with the longest backoff between attempts."""
        attempts = 1 + sum(retrier.max_attempts for retrier in self.retry)
        delays = sum(retrier.worst_case_delays() for retrier in self.retry)
        return attempts * self.timeout_seconds + delays
