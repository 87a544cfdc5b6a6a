"""Architecture 7: a Step Functions state machine that orchestrates the ETL stages on the runners chosen per stage.

Provisions:
- its pipeline, an `Orchestration` (`components.orchestration`): the state machine (STANDARD by default, EXPRESS by
  `type`) running `components.pipelines`' definition with the runner of each stage, its logging, tracing and
  encryption, the schedule with its dead-letter queue, alarms and widgets;
- its own Lambdas (one `EtlFunction` per stage whose runner is `stepfunctions`; none when every stage runs
  elsewhere), which make it a stage runner too.

The runner of each stage is a selected architecture (`runners` in its settings): `stepfunctions` (its own Lambdas),
`serverless` (the serverless stage functions), `containers` (Fargate tasks), or any other registered runner. The
settings check, before anything is registered, that each is selected and can run its stage; the program builds this
architecture after the runners it uses.

Takes: `ArchitectureArgs[StepFunctionsSettings]`: its settings, the foundation's refs and `runners`, the
`StageRunner` of every architecture built before it. Exposes: `pipeline`, `functions` (own Lambdas by stage),
`runner`, `widgets`, `outputs()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import pulumi
from pydantic import Field

from components import lake_access, packaging
from components.architectures.base import Architecture, ArchitectureArgs
from components.functions import (
    EtlFunction,
    EtlFunctionArgs,
    LambdaRunner,
    dependency_layer,
    lambda_stage_budget,
    signed_package,
)
from components.orchestration import MachineType, Orchestration, OrchestrationArgs
from components.refs import FoundationRefs
from components.runners import StageRunner
from components.settings import (
    PROJECT,
    ArchitectureSettings,
    ConfigError,
    LambdaArchitecture,
    QuarantineRate,
    Schedule,
    SettingsModel,
    SourceName,
    StackContext,
)
from components.stages import RunnerCapabilities, Stage

NAME = "stepfunctions"
# The orchestrator's own Lambdas: one etl_jobs handler per stage.
STAGE_HANDLERS: dict[Stage, str] = {stage: f"etl_jobs.handlers.stage_{stage.value}.handler" for stage in Stage}
# Long enough for a big batch; the invoke waits a little longer (functions.INVOKE_MARGIN_SECONDS).
FUNCTION_TIMEOUT_SECONDS = 840

RunnerName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]


class StageRunners(SettingsModel):
    """Which selected architecture runs each stage; `stepfunctions` means the orchestrator's own Lambdas."""

    extract: RunnerName = NAME
    transform: RunnerName = NAME
    # `validate` would shadow BaseModel.validate; the config key is still `validate`.
    validate_: RunnerName = Field(NAME, alias="validate")
    load: RunnerName = NAME

    def by_stage(self) -> dict[Stage, str]:
        return {
            Stage.EXTRACT: self.extract,
            Stage.TRANSFORM: self.transform,
            Stage.VALIDATE: self.validate_,
            Stage.LOAD: self.load,
        }


class StepFunctionsSettings(ArchitectureSettings):
    """Architecture 7: a state machine orchestrating the stages on the runners chosen per stage."""

    type: MachineType = Field(MachineType.STANDARD, description="`STANDARD` or `EXPRESS`")
    schedule: Schedule = Field("cron(0 2 * * ? *)", description="EventBridge Scheduler expression that starts a run")
    runners: StageRunners = Field(default_factory=StageRunners, description="The architecture that runs each stage")
    max_quarantine_rate: QuarantineRate = Field(0.10, description="Validation gate: quarantined share that fails")
    sources: list[SourceName] = Field(
        default_factory=lambda: ["orders"], min_length=1, description="Source names extracted in parallel"
    )
    max_concurrency: int = Field(4, ge=1, le=40, description="Sources extracted and transformed at once")
    memory_mb: int = Field(1024, ge=128, le=10240, description="Memory of the orchestrator's own Lambdas")
    architecture: LambdaArchitecture = Field(LambdaArchitecture.ARM64, description="Architecture of its Lambdas")

    retired_keys: ClassVar[Mapping[str, str]] = {
        "engines": (
            "renamed to `runners` (a stage runner is the architecture that runs a stage; an engine is the job "
            "code's implementation of the contract): rename the key"
        ),
        "timeoutSeconds": (
            "no longer a setting: the execution timeout is derived from the stages' own timeouts and retries; "
            "remove the key"
        ),
    }

    def stack_problems(self, stack: StackContext) -> list[str]:
        problems = []
        for stage, runner in self.runners.by_stage().items():
            key = f"{PROJECT}:{NAME}.runners.{stage.value}"
            if runner == NAME:
                continue
            capabilities = stack.runners.get(runner)
            if runner not in stack.selected:
                choices = sorted({NAME, *stack.runners})
                problems.append(
                    f"{key}: runner '{runner}' is not selected in {PROJECT}:architectures; select it too or choose "
                    f"one of: {', '.join(choices)}."
                )
            elif capabilities is None or stage not in capabilities.stages:
                able = sorted({NAME, *(n for n, c in stack.runners.items() if stage in c.stages)})
                problems.append(
                    f"{key}: '{runner}' cannot run the {stage.value} stage; choose one of: {', '.join(able)}."
                )
            elif self.type is MachineType.EXPRESS and capabilities.waits_for_jobs:
                problems.append(
                    f"{key}: '{runner}' runs jobs a state machine waits for (`.sync`), which an EXPRESS state "
                    f"machine cannot do; use {PROJECT}:{NAME}.type STANDARD or another runner."
                )
        return problems


class StepFunctions(Architecture):
    """The orchestrator: see the module docstring."""

    type_token = "etl:architectures:StepFunctions"
    settings_model: ClassVar[type[ArchitectureSettings]] = StepFunctionsSettings
    orchestrates = True

    pipeline: Orchestration
    functions: dict[Stage, EtlFunction]

    @classmethod
    def runner_capabilities(cls, settings: ArchitectureSettings) -> RunnerCapabilities:
        return RunnerCapabilities(stages=frozenset(Stage))

    def __init__(
        self, name: str, args: ArchitectureArgs[StepFunctionsSettings], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, opts)
        settings, foundation = args.settings, args.foundation
        chosen = settings.runners.by_stage()
        own = [stage for stage, runner in chosen.items() if runner == NAME]
        # Reject a runner that was not built before registering anything.
        for stage, runner in chosen.items():
            if runner != NAME and runner not in args.runners:
                raise ConfigError(
                    f"{PROJECT}:{NAME}.runners.{stage.value}: '{runner}' exposes no stage runner in this stack"
                )

        self.functions = self._own_functions(name, settings, foundation, own)
        if self.functions:
            self.runner = LambdaRunner(
                architecture=NAME,
                function_arns={stage: function.function_arn for stage, function in self.functions.items()},
                budgets={stage: lambda_stage_budget(FUNCTION_TIMEOUT_SECONDS) for stage in self.functions},
            )
        runners: dict[Stage, StageRunner] = {}
        for stage, runner in chosen.items():
            chosen_runner = self.runner if runner == NAME else args.runners[runner]
            assert chosen_runner is not None
            runners[stage] = chosen_runner
        self.pipeline = Orchestration(
            name,
            OrchestrationArgs(
                foundation=foundation,
                sources=tuple(settings.sources),
                runners=runners,
                schedule=settings.schedule,
                max_quarantine_rate=settings.max_quarantine_rate,
                max_concurrency=settings.max_concurrency,
                machine_type=settings.type,
                settings_key=f"{PROJECT}:{NAME}",
                # Same names as when this component owned them: only their parent changed.
                adopt={
                    "executions": pulumi.Alias(parent=self),
                    "schedule-dlq": pulumi.Alias(parent=self),
                },
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.widgets.extend(self.pipeline.widgets)
        self.register_outputs(self.outputs())

    def _own_functions(
        self, name: str, settings: StepFunctionsSettings, foundation: FoundationRefs, stages: list[Stage]
    ) -> dict[Stage, EtlFunction]:
        """One Lambda per stage that runs on the orchestrator itself (none when every stage runs elsewhere)."""
        functions: dict[Stage, EtlFunction] = {}
        if not stages:
            return functions
        layer = dependency_layer(name, settings.architecture, foundation, self)
        code = packaging.function_package()
        signed_code = signed_package(f"{name}-code", code, foundation, self)
        for stage in stages:
            functions[stage] = EtlFunction(
                f"{name}-{stage.value}",
                EtlFunctionArgs(
                    foundation=foundation,
                    handler=STAGE_HANDLERS[stage],
                    service_name=f"{NAME}-{stage.value}",
                    # Its handlers return their results: no result objects to write.
                    policy_statements=[lake_access.role_statements(stage.value, foundation, writes_results=False)],
                    memory_mb=settings.memory_mb,
                    timeout_seconds=FUNCTION_TIMEOUT_SECONDS,
                    # Unreserved: the Map's maxConcurrency bounds a run's invocations, and a reservation would take
                    # account quota a stack file has to declare (etl-platform:lambdaConcurrencyQuota).
                    reserved_concurrency=None,
                    architecture=settings.architecture,
                    code=code,
                    signed_code=signed_code,
                    layers=[layer.arn],
                    environment={"ETL_MAX_QUARANTINE_RATE": str(settings.max_quarantine_rate)},
                    description=f"{stage.value} stage of the {name} state machine",
                    run_by_pipeline=True,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.widgets.extend(functions[stage].widgets)
        return functions

    def outputs(self) -> dict[str, Any]:
        return {
            **self.pipeline.outputs(),
            "functionArns": {stage.value: function.function_arn for stage, function in self.functions.items()},
        }
