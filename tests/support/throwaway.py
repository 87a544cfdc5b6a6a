"""A throwaway architecture that lives only in test code: a stage runner with a per-run setup step.

It shows what an architecture module holds (a settings model, runner capabilities, a component that exposes a
`StageRunner`, a bound runner that renders Tasks and hooks) and that nothing else has to change to add one: the tests
register it with `REGISTRY.register("throwaway", "tests.support.throwaway:Throwaway")`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import asl
from components.architectures.base import Architecture, ArchitectureArgs
from components.pipelines import BoundRunner, StageCall
from components.runners import StageRunner
from components.settings import ArchitectureSettings
from components.stages import RunnerCapabilities, Stage, StageBudget

SETUP_STATE = "ThrowawaySetup"


class ThrowawaySettings(ArchitectureSettings):
    """A queue-fed batch runner that can transform."""

    batch_seconds: int = Field(120, ge=1, le=3600, description="How long one batch may run")


@dataclasses.dataclass(frozen=True)
class ThrowawayBatches(BoundRunner):
    architecture: str
    queue_url: str
    queue_arn: str
    budgets: Mapping[Stage, StageBudget]

    returns_payload: ClassVar[bool] = False

    def task(self, call: StageCall, *, name: str, **options: Any) -> asl.Task:
        return asl.sqs_send_message(name, self.queue_url, self.queue_arn, message_body_path=call.command(), **options)

    def setup_states(self, next_state: str) -> tuple[asl.State, ...]:
        return (asl.Pass(name=SETUP_STATE, result={"ready": True}, result_path="$.throwaway", next=next_state),)


@dataclasses.dataclass(frozen=True)
class ThrowawayRunner(StageRunner):
    architecture: str
    queue_url: pulumi.Output[str]
    queue_arn: pulumi.Output[str]
    budgets: Mapping[Stage, StageBudget]

    returns_payload: ClassVar[bool] = False

    def bind(self) -> pulumi.Output[BoundRunner]:
        return pulumi.Output.all(self.queue_url, self.queue_arn).apply(
            lambda values: ThrowawayBatches(self.architecture, values[0], values[1], self.budgets)
        )


class Throwaway(Architecture):
    type_token = "etl:architectures:Throwaway"
    settings_model: ClassVar[type[ArchitectureSettings]] = ThrowawaySettings

    @classmethod
    def runner_capabilities(cls, settings: ArchitectureSettings) -> RunnerCapabilities:
        return RunnerCapabilities(stages=frozenset({Stage.TRANSFORM}))

    def __init__(
        self, name: str, args: ArchitectureArgs[ThrowawaySettings], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, opts)
        queue = aws.sqs.Queue(
            f"{name}-batches", kms_master_key_id=args.foundation.key.arn, opts=pulumi.ResourceOptions(parent=self)
        )
        budget = StageBudget(timeout_seconds=args.settings.batch_seconds, retry=asl.JOB_RETRY)
        self.runner = ThrowawayRunner("throwaway", queue.url, queue.arn, {Stage.TRANSFORM: budget})
        self.register_outputs({})
