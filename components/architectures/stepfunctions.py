"""Architecture 7: a Step Functions state machine that orchestrates the ETL stages on the engines chosen per stage.

Provisions:
- A state machine (STANDARD by default, EXPRESS by `type`) whose definition is rendered by
  `components.workflows.orchestrated_pipeline`: RunDate (derives `run_date` from the input or the start time) ->
  extract every source in a Parallel -> Map transform per partition (`maxConcurrency`) -> validate -> Choice quality
  gate (`maxQuarantineRate`) -> load -> success notice; every failure publishes to the alerts topic and fails.
  Logging level ALL with execution data to a KMS-encrypted `/aws/vendedlogs/states/` log group kept for the audit
  retention; X-Ray tracing; state data encrypted with the stack key.
- Its role: trusts states.amazonaws.com for this account only; its policy is the builder's `required_permissions()`
  (invoke exactly the functions / run exactly the task definitions chosen, publish to the alerts topic) plus the
  vended-logs and X-Ray actions AWS only grants on `*`, plus the stack key.
- The stage engines: `stepfunctions` stages run on this architecture's own Lambdas (one `EtlFunction` per such stage,
  none for stages that run elsewhere); `serverless` stages on the serverless architecture's functions; `containers`
  stages as Fargate tasks (`ecs:runTask.sync`) of the containers architecture.
- An EventBridge Scheduler schedule (`schedule`) that starts an execution with
  `{"run_date": "<aws.scheduler.scheduled-time>", ...}`, with retries and an encrypted, TLS-only SQS dead-letter queue;
  its role may only start this state machine and send to that queue.
- Alarms to the alerts topic (executions failed / timed out / throttled, DLQ depth) and dashboard widgets.

Takes: `ArchitectureArgs[StepFunctionsSettings]`: its settings, the foundation's `Platform`, and `engines`, the
`EngineRef` of every architecture built before it (the program builds orchestrators last).
Exposes: `state_machine`, `schedule`, `log_group`, `dead_letters`, `functions` (own Lambdas by stage), `widgets`,
`outputs()` (state machine ARN, schedule ARN, log group name, engine per stage).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from components import asl, policies, workflows
from components.architectures.base import Architecture, ArchitectureArgs
from components.foundation.alarms import metric_alarm, metric_widget
from components.functions import EtlFunction, EtlFunctionArgs, dependency_layer
from components.queues import dead_letter_queue
from components.refs import EcsEngineRef, EngineRef, LakeRefs, LambdaEngineRef, Platform
from components.roles import service_role
from components.settings import ArchitectureName, Stage, StepFunctionsSettings

# Key of the state machine's first states; the scheduler fills run_date with the scheduled time (an ISO timestamp).
RUN_DATE_STATE = "RunDate"
SCHEDULED_INPUT = {
    "run_date": "<aws.scheduler.scheduled-time>",
    "scheduler_execution_id": "<aws.scheduler.execution-id>",
    "scheduler_attempt": "<aws.scheduler.attempt-number>",
}
# Where a validate stage that returns no payload (an ECS task) writes its result: the artifacts bucket, under the
# prefix the containers architecture's task role may write (containers.VALIDATION_PREFIX; a test keeps them equal).
VALIDATION_PREFIX = "manifests/validation/"
# Actions of Step Functions' vended logging (CloudWatch Logs delivery); AWS authorises them on "*" only.
STATES_METRICS = ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled")

# The orchestrator's own Lambdas: one etl_jobs handler per stage.
STAGE_HANDLERS: dict[Stage, str] = {stage: f"etl_jobs.handlers.stage_{stage.value}.handler" for stage in Stage}
# Below the Task's 900 s timeout, so a slow function fails as a function error the Task can report, not a timeout.
FUNCTION_TIMEOUT_SECONDS = 840
_RUN = "run_date="


def stage_statements(stage: Stage, lake: LakeRefs) -> pulumi.Output[list[policies.Statement]]:
    """What each stage's handler reads and writes in the lake (see etl_jobs.pipeline), by zone and prefix."""
    zones = {
        "raw": lake.raw.arn,
        "staged": lake.staged.arn,
        "curated": lake.curated.arn,
        "quarantine": lake.quarantine.arn,
    }

    def build(arns: dict[str, str]) -> list[policies.Statement]:
        raw, staged, curated, quarantine = arns["raw"], arns["staged"], arns["curated"], arns["quarantine"]
        if stage is Stage.EXTRACT:
            # Sources land under landing/; extract copies them into the run's raw partition.
            return [*policies.read_prefixes(raw, ("landing/",)), *policies.write_prefixes(raw, (_RUN,))]
        if stage is Stage.TRANSFORM:
            return [
                *policies.read_prefixes(raw, (_RUN,)),
                *policies.read_prefixes(staged, (_RUN,)),
                *policies.write_prefixes(staged, (_RUN,), delete=True),
            ]
        if stage is Stage.VALIDATE:
            return [
                *policies.read_prefixes(staged, (_RUN,)),
                *policies.write_prefixes(staged, (_RUN,), delete=True),
                *policies.write_prefixes(quarantine, (_RUN, "_manifests/"), delete=True),
            ]
        return [
            *policies.read_prefixes(staged, (_RUN,)),
            *policies.read_prefixes(curated, ("order_date=", "_loads/")),
            *policies.write_prefixes(curated, ("order_date=", "_loads/"), delete=True),
            *policies.write_prefixes(quarantine, ("_manifests/",)),
        ]

    return pulumi.Output.all(**zones).apply(build)


def reserved_concurrency(stage: Stage, settings: StepFunctionsSettings) -> int:
    """As many concurrent invocations as one execution makes of the stage (the Map's concurrency for transform)."""
    if stage is Stage.EXTRACT:
        return len(settings.sources)
    if stage is Stage.TRANSFORM:
        return settings.max_concurrency
    return 1


def with_run_date(pipeline: asl.StateMachine) -> asl.StateMachine:
    """The pipeline preceded by states that set `run_date` to a `YYYY-MM-DD` date: the date part of the input's
    `run_date` (a date, or the scheduler's `2024-01-01T02:00:00Z`), or of the execution's start time when absent."""
    date_of = "States.ArrayGetItem(States.StringSplit({}, 'T'), 0)"
    first = pipeline.branch.start
    prefix: tuple[asl.State, ...] = (
        asl.Choice(
            name=RUN_DATE_STATE,
            comment="Scheduled runs pass the scheduled time; manual runs may pass a date or nothing",
            choices=(asl.ChoiceRule(asl.IsPresent("$.run_date"), "RunDateFromInput"),),
            default="RunDateFromStartTime",
        ),
        asl.Pass(name="RunDateFromInput", parameters={"run_date.$": date_of.format("$.run_date")}, next=first),
        asl.Pass(
            name="RunDateFromStartTime",
            parameters={"run_date.$": date_of.format("$$.Execution.StartTime")},
            next=first,
        ),
    )
    return asl.StateMachine(
        (*prefix, *pipeline.states),
        comment=pipeline.comment,
        timeout_seconds=pipeline.timeout_seconds,
        defaults=pipeline.defaults,
    )


def build_definition(
    settings: StepFunctionsSettings,
    *,
    invokers: Mapping[Stage, workflows.Invoker],
    alerts_topic_arn: str,
    validation_result: workflows.ValidationResultLocation | None,
    pipeline_name: str,
) -> asl.StateMachine:
    """The state machine for resolved ARNs: pure, so tests and the component render the same definition."""
    pipeline = workflows.orchestrated_pipeline(
        settings.sources,
        workflows.PipelineStages(
            extract=invokers[Stage.EXTRACT],
            transform=invokers[Stage.TRANSFORM],
            validate=invokers[Stage.VALIDATE],
            load=invokers[Stage.LOAD],
        ),
        alerts_topic_arn,
        max_quarantine_rate=settings.max_quarantine_rate,
        max_concurrency=settings.max_concurrency,
        validation_result=validation_result
        if not isinstance(invokers[Stage.VALIDATE], workflows.LambdaInvoker)
        else None,
        pipeline_name=pipeline_name,
        timeout_seconds=settings.timeout_seconds,
    )
    return with_run_date(pipeline)


def role_policy(machine: asl.StateMachine, key_arn: str) -> policies.PolicyDocument:
    """The state machine role: what its Tasks need, vended logging and X-Ray, the stack key."""
    return policies.state_machine_role_policy(machine.required_permissions(), key_arn)


def _missing_engine(stage: Stage, engine: ArchitectureName, detail: str) -> pulumi.RunError:
    return pulumi.RunError(
        f"stepfunctions: stage '{stage.value}' runs on '{engine.value}', but {detail}; "
        f"'{ArchitectureName.STEPFUNCTIONS.value}' is built after '{engine.value}' and uses its engine, so select "
        f"'{engine.value}' in etl-platform:architectures or choose another engine in "
        f"etl-platform:stepfunctions.engines.{stage.value}."
    )


def resolve_engines(
    by_stage: Mapping[Stage, ArchitectureName], engines: Mapping[ArchitectureName, EngineRef]
) -> dict[Stage, EngineRef | None]:
    """The engine ref of each stage (None: the orchestrator's own Lambda). Raises a RunError naming both
    architectures when a chosen engine was not built or cannot run that stage."""
    resolved: dict[Stage, EngineRef | None] = {}
    for stage, engine in by_stage.items():
        if engine is ArchitectureName.STEPFUNCTIONS:
            resolved[stage] = None
            continue
        ref = engines.get(engine)
        if ref is None:
            raise _missing_engine(stage, engine, f"'{engine.value}' exposes no engine in this stack")
        stages = ref.function_arns if isinstance(ref, LambdaEngineRef) else ref.task_definition_arns
        if stage not in stages:
            raise _missing_engine(stage, engine, f"'{engine.value}' has no {stage.value} stage")
        resolved[stage] = ref
    return resolved


class StepFunctions(Architecture):
    """The orchestrator: see the module docstring."""

    type_token = "etl:architectures:StepFunctions"
    orchestrates = True

    state_machine: aws.sfn.StateMachine
    schedule: aws.scheduler.Schedule
    log_group: aws.cloudwatch.LogGroup
    dead_letters: aws.sqs.Queue
    functions: dict[Stage, EtlFunction]

    def __init__(
        self, name: str, args: ArchitectureArgs[StepFunctionsSettings], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, opts)
        settings, platform = args.settings, args.platform
        by_stage = settings.engines.by_stage()
        # Reject a missing engine before registering anything.
        refs = resolve_engines(by_stage, args.engines)
        stack = platform.stack
        machine_name = f"{name}-{stack.stack}"
        self._by_stage = by_stage
        self._region = stack.region

        self.functions = self._own_functions(name, settings, platform, [s for s, ref in refs.items() if ref is None])
        function_arns = {stage: function.function_arn for stage, function in self.functions.items()}

        # The vended-logs prefix keeps CloudWatch Logs' account resource policy small (one entry for the prefix).
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-executions",
            name=f"/aws/vendedlogs/states/{machine_name}",
            retention_in_days=platform.audit_log_retention_days,
            kms_key_id=platform.key.arn,
            opts=platform.stateful(self),
        )

        machine = self._definition(settings, platform, refs, function_arns, machine_name)
        definition = machine.apply(lambda m: m.to_json())

        execution = service_role(
            f"{name}-role",
            policy_name=f"{name}-role-policy",
            service="states.amazonaws.com",
            account_id=stack.account_id,
            policy=pulumi.Output.all(machine, platform.key.arn).apply(
                lambda values: json.dumps(role_policy(values[0], values[1]))
            ),
            parent=self,
        )
        # Step Functions checks at creation that the role may deliver logs, so the policy must exist first.
        self.state_machine = aws.sfn.StateMachine(
            f"{name}-machine",
            name=machine_name,
            type=settings.type.value,
            role_arn=execution.role.arn,
            definition=definition,
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ALL",
                include_execution_data=True,
                log_destination=self.log_group.arn.apply(lambda arn: f"{arn}:*"),
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            encryption_configuration=aws.sfn.StateMachineEncryptionConfigurationArgs(
                type="CUSTOMER_MANAGED_KMS_KEY",
                kms_key_id=platform.key.arn,
                kms_data_key_reuse_period_seconds=300,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[execution.policy]),
        )

        self._schedule(name, settings, platform)
        self._alarms(name, platform)
        self._widgets()
        self.register_outputs(self.outputs())

    # -----------------------------------------------------------------------------------------------------------------
    def _own_functions(
        self, name: str, settings: StepFunctionsSettings, platform: Platform, stages: list[Stage]
    ) -> dict[Stage, EtlFunction]:
        """One Lambda per stage that runs on the orchestrator itself (none when every stage runs elsewhere)."""
        functions: dict[Stage, EtlFunction] = {}
        if not stages:
            return functions
        layer = dependency_layer(name, settings.architecture, platform, self)
        for stage in stages:
            functions[stage] = EtlFunction(
                f"{name}-{stage.value}",
                EtlFunctionArgs(
                    platform=platform,
                    handler=STAGE_HANDLERS[stage],
                    service_name=f"stepfunctions-{stage.value}",
                    policy_statements=[stage_statements(stage, platform.lake)],
                    memory_mb=settings.memory_mb,
                    timeout_seconds=FUNCTION_TIMEOUT_SECONDS,
                    reserved_concurrency=reserved_concurrency(stage, settings),
                    architecture=settings.architecture,
                    layers=[layer.arn],
                    environment={"ETL_MAX_QUARANTINE_RATE": str(settings.max_quarantine_rate)},
                    description=f"{stage.value} stage of the {name} state machine",
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.widgets.extend(functions[stage].widgets)
        return functions

    def _definition(
        self,
        settings: StepFunctionsSettings,
        platform: Platform,
        refs: Mapping[Stage, EngineRef | None],
        own_arns: Mapping[Stage, pulumi.Output[str]],
        machine_name: str,
    ) -> pulumi.Output[asl.StateMachine]:
        """Resolve every ARN the definition names, then build it (no resource is created inside the apply)."""
        inputs: dict[str, Any] = {
            "topic": platform.alerts.topic_arn,
            "partition": platform.stack.partition,
            "artifacts_bucket": platform.lake.artifacts.name,
            "key": platform.key.arn,
        }
        for stage, ref in refs.items():
            if ref is None:
                inputs[f"{stage.value}.function"] = own_arns[stage]
            elif isinstance(ref, LambdaEngineRef):
                inputs[f"{stage.value}.function"] = ref.function_arns[stage]
            else:
                inputs[f"{stage.value}.ecs"] = pulumi.Output.all(
                    ref.cluster_arn,
                    ref.task_definition_arns[stage],
                    pulumi.Output.all(*ref.subnet_ids),
                    pulumi.Output.all(*ref.security_group_ids),
                    pulumi.Output.all(*ref.pass_role_arns),
                )

        def invoker(stage: Stage, ref: EngineRef | None, values: Mapping[str, Any]) -> workflows.Invoker:
            if not isinstance(ref, EcsEngineRef):
                return workflows.LambdaInvoker(values[f"{stage.value}.function"])
            cluster, task_definition, subnets, groups, roles = values[f"{stage.value}.ecs"]
            return workflows.EcsInvoker(
                cluster_arn=cluster,
                task_definition_arn=task_definition,
                container_name=ref.container_name,
                subnet_ids=tuple(subnets),
                security_group_ids=tuple(groups),
                pass_role_arns=tuple(roles),
                capacity_provider=ref.capacity_provider or None,
            )

        def build(values: dict[str, Any]) -> asl.StateMachine:
            return build_definition(
                settings,
                invokers={stage: invoker(stage, ref, values) for stage, ref in refs.items()},
                alerts_topic_arn=values["topic"],
                validation_result=workflows.ValidationResultLocation(
                    bucket=values["artifacts_bucket"],
                    prefix=VALIDATION_PREFIX,
                    partition=values["partition"],
                    kms_key_arn=values["key"],
                ),
                pipeline_name=machine_name,
            )

        return pulumi.Output.all(**inputs).apply(build)

    def _schedule(self, name: str, settings: StepFunctionsSettings, platform: Platform) -> None:
        stack, key_arn = platform.stack, platform.key.arn
        # Runs the scheduler could not start (after its retries) wait here.
        self.dead_letters = dead_letter_queue(
            f"{name}-schedule-dlq",
            parent=self,
            key_arn=key_arn,
            account_id=stack.account_id,
            alerts=platform.alerts,
            stateful=platform.stateful(self),
            holds="the scheduler could not start a run of the orchestrated pipeline.",
        )
        group_arn = pulumi.Output.all(stack.partition, stack.account_id).apply(
            lambda values: f"arn:{values[0]}:scheduler:{stack.region}:{values[1]}:schedule-group/default"
        )
        scheduler = service_role(
            f"{name}-schedule-role",
            policy_name=f"{name}-schedule-role-policy",
            service="scheduler.amazonaws.com",
            account_id=stack.account_id,
            source_arns=[group_arn],
            policy=pulumi.Output.all(self.state_machine.arn, self.dead_letters.arn, key_arn).apply(
                lambda values: json.dumps(policies.start_execution_schedule_policy(values[0], values[1], values[2]))
            ),
            parent=self,
        )
        self.schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            description=f"Starts {name} with the scheduled time as run_date",
            schedule_expression=settings.schedule,
            schedule_expression_timezone="UTC",
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            kms_key_arn=key_arn,
            target=aws.scheduler.ScheduleTargetArgs(
                arn=self.state_machine.arn,
                role_arn=scheduler.role.arn,
                input=json.dumps(SCHEDULED_INPUT, sort_keys=True),
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
                ),
                dead_letter_config=aws.scheduler.ScheduleTargetDeadLetterConfigArgs(arn=self.dead_letters.arn),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[scheduler.policy]),
        )

    def _alarms(self, name: str, platform: Platform) -> None:
        descriptions = {
            "ExecutionsFailed": "A pipeline execution failed (a stage or the quality gate); see its alert.",
            "ExecutionsTimedOut": "A pipeline execution ran past its timeout.",
            "ExecutionThrottled": "Step Functions throttled state transitions of the pipeline.",
        }
        for metric in STATES_METRICS:
            metric_alarm(
                f"{name}-{metric.lower()}",
                parent=self,
                alerts=platform.alerts,
                description=descriptions[metric],
                namespace="AWS/States",
                metric_name=metric,
                dimensions={"StateMachineArn": self.state_machine.arn},
            )

    def _widgets(self) -> None:
        arn = self.state_machine.arn
        self.widgets.append(
            metric_widget(
                "Step Functions executions",
                [
                    ["AWS/States", metric, "StateMachineArn", arn]
                    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", *STATES_METRICS)
                ],
                region=self._region,
            )
        )
        self.widgets.append(
            metric_widget(
                "Step Functions execution time (ms) and schedule DLQ",
                [
                    ["AWS/States", "ExecutionTime", "StateMachineArn", arn, {"stat": "Maximum"}],
                    [
                        "AWS/SQS",
                        "ApproximateNumberOfMessagesVisible",
                        "QueueName",
                        self.dead_letters.name,
                        {"stat": "Maximum", "yAxis": "right"},
                    ],
                ],
                region=self._region,
                stat="Average",
            )
        )

    def outputs(self) -> dict[str, Any]:
        return {
            "stateMachineArn": self.state_machine.arn,
            "scheduleArn": self.schedule.arn,
            "logGroupName": self.log_group.name,
            "engines": {stage.value: engine.value for stage, engine in self._by_stage.items()},
        }
