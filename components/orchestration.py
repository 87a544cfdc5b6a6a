"""The one orchestration component: a state machine running the ETL pipeline on the stage runners it is given.

Provisions: the state machine (definition from `components.pipelines.pipeline_definition`; logging ALL with execution
data to a KMS-encrypted log group under `/aws/vendedlogs/states/`, kept for the audit retention; X-Ray tracing;
execution data encrypted with the stack key; auto-named, so a change that replaces it never collides with the old
one's name); its role (the Tasks' own statements from the definition, vended logging, X-Ray, the stack key); an
EventBridge Scheduler schedule starting it with `{"run_date": <scheduled time>}`, with retries and an encrypted,
TLS-only dead-letter queue, and a role that may only start this machine and send to that queue; alarms (executions
failed, timed out, throttled; the queue's depth) and dashboard widgets.

When the foundation has a Redshift warehouse (`FoundationRefs.warehouse`), the pipeline loads it after its load stage
(`components.foundation.warehouse.WarehouseLoad`, one of the pipeline's hooks).

Takes `OrchestrationArgs`: the foundation's refs, the pipeline's spec and a runner per stage. Refuses (before
registering anything) an EXPRESS machine that would wait for a job or outlast five minutes. Exposes `state_machine`,
`schedule`, `log_group`, `dead_letters`, `widgets` and `outputs()`.
Used by every pipeline: the containers architecture over its own tasks, the stepfunctions architecture over the
runners its stack file chooses.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pulumi
import pulumi_aws as aws

from components import asl, pipelines, policies
from components.foundation import warehouse
from components.foundation.alarms import LANDED_FILE_MAX_WAIT_SECONDS, Widget, metric_alarm, metric_widget
from components.lake_access import RESULTS_PREFIX
from components.queues import dead_letter_queue
from components.refs import FoundationRefs
from components.roles import service_role
from components.runners import StageRunner
from components.settings import ConfigError
from components.stages import Stage
from etl_jobs.pipeline import LANDING_WAIT_METRIC

SCHEDULED_INPUT = {"run_date": "<aws.scheduler.scheduled-time>"}
STATES_METRICS = ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled")


class MachineType(StrEnum):
    STANDARD = "STANDARD"
    EXPRESS = "EXPRESS"


@dataclasses.dataclass(frozen=True)
class OrchestrationArgs:
    foundation: FoundationRefs
    sources: tuple[str, ...]
    """Configured sources (the default of a run's `sources`)."""
    runners: Mapping[Stage, StageRunner]
    """What runs each stage."""
    schedule: str
    """EventBridge Scheduler expression that starts a run."""
    max_quarantine_rate: float = 0.10
    max_concurrency: int = 4
    machine_type: MachineType = MachineType.STANDARD
    settings_key: str = ""
    """The stack-file key of the orchestrating architecture, named in error messages (`etl-platform:containers`)."""
    watches_landing: bool = True
    """Its sources land files in the raw zone's landing prefix, whose oldest waiting file it alarms on (a stream's
    compaction collects micro-batches instead: no landing to watch)."""
    adopt: Mapping[str, pulumi.Alias] = dataclasses.field(default_factory=dict)
    """Aliases of stateful children that existed under another name or parent ("executions", "schedule-dlq"), so an
    existing stack keeps them (prod protects them, so a replacement would fail)."""


class Orchestration(pulumi.ComponentResource):
    state_machine: aws.sfn.StateMachine
    schedule: aws.scheduler.Schedule
    log_group: aws.cloudwatch.LogGroup
    dead_letters: aws.sqs.Queue
    widgets: list[Widget]

    def __init__(self, name: str, args: OrchestrationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("etl:orchestration:Orchestration", name, {}, opts)
        foundation, stack = args.foundation, args.foundation.stack
        log_group_name = f"/aws/vendedlogs/states/{name}"
        spec = pipelines.PipelineSpec(
            name=name,
            sources=args.sources,
            max_quarantine_rate=args.max_quarantine_rate,
            max_concurrency=args.max_concurrency,
            log_group=log_group_name,
            region=stack.region,
        )
        self._check(spec, args)
        self.widgets = []
        self._runners = args.runners

        # The vended-logs prefix keeps CloudWatch Logs' account resource policy small (one entry for the prefix).
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-executions",
            name=log_group_name,
            retention_in_days=foundation.audit_log_retention_days,
            kms_key_id=foundation.key.arn,
            opts=foundation.stateful(self, aliases=self._adopted(args, "executions")),
        )
        machine = self._definition(spec, args)
        execution_role = service_role(
            f"{name}-role",
            policy_name=f"{name}-role-policy",
            service="states.amazonaws.com",
            account_id=stack.account_id,
            description=f"The {name} state machine: runs its stages, reads their results, alerts",
            policy=pulumi.Output.all(machine, foundation.key.arn).apply(
                lambda values: json.dumps(
                    policies.state_machine_role_policy(values[0].required_permissions(), values[1], stack.region)
                )
            ),
            parent=self,
        )
        self.state_machine = aws.sfn.StateMachine(
            f"{name}-machine",
            type=args.machine_type.value,
            role_arn=execution_role.role.arn,
            definition=machine.apply(lambda m: m.to_json()),
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ALL",
                include_execution_data=True,
                log_destination=self.log_group.arn.apply(lambda arn: f"{arn}:*"),
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            encryption_configuration=aws.sfn.StateMachineEncryptionConfigurationArgs(
                type="CUSTOMER_MANAGED_KMS_KEY",
                kms_key_id=foundation.key.arn,
                kms_data_key_reuse_period_seconds=300,
            ),
            # Step Functions checks at creation that the role may deliver logs, so the policy must exist first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[execution_role.policy]),
        )
        self._schedule(name, args)
        self._alarms(name, foundation, watches_landing=args.watches_landing)
        self._widgets(name, stack.region)
        self.register_outputs(self.outputs())

    @staticmethod
    def _adopted(args: OrchestrationArgs, role: str) -> list[pulumi.Alias]:
        return [args.adopt[role]] if role in args.adopt else []

    @staticmethod
    def _check(spec: pipelines.PipelineSpec, args: OrchestrationArgs) -> None:
        missing = [stage.value for stage in Stage if stage not in args.runners]
        if missing:
            raise ConfigError(f"{args.settings_key}: no stage runner for {', '.join(missing)}")
        if args.machine_type is MachineType.EXPRESS:
            extra = warehouse.HOOK_SECONDS if args.foundation.warehouse is not None else 0
            problems = pipelines.express_problems(spec, args.runners, extra)
            if problems:
                key = f"{args.settings_key}.type" if args.settings_key else "type"
                raise ConfigError(f"{key}: EXPRESS does not fit this pipeline: {'; '.join(problems)}.")

    def _definition(self, spec: pipelines.PipelineSpec, args: OrchestrationArgs) -> pulumi.Output[asl.StateMachine]:
        """Resolve the runners and the alert topic, then build the definition (no resource is created inside)."""
        foundation = args.foundation
        stages = list(Stage)
        # Each runner bound once, so a runner of several stages is one BoundRunner and its setup and teardown steps
        # appear once in the machine.
        distinct = list({id(runner): runner for runner in args.runners.values()}.values())
        bound = [runner.bind() for runner in distinct]
        index = [next(i for i, runner in enumerate(distinct) if runner is args.runners[stage]) for stage in stages]

        # The stack's warehouse, when it has one, is loaded after the load stage of every pipeline.
        steps = (
            [warehouse.warehouse_load(foundation.warehouse, foundation.key.arn, foundation.stack.partition)]
            if foundation.warehouse is not None
            else []
        )

        def build(values: list[Any]) -> asl.StateMachine:
            topic, bucket, partition, key, *rest = values
            runners, extra = rest[: len(bound)], rest[len(bound) :]  # one per distinct runner, then the steps
            return pipelines.pipeline_definition(
                spec,
                {stage: runners[index[position]] for position, stage in enumerate(stages)},
                alerts_topic_arn=topic,
                results=pipelines.ResultStore(
                    bucket=bucket, prefix=RESULTS_PREFIX, partition=partition, kms_key_arn=key
                ),
                extra_steps=extra,
            )

        return pulumi.Output.all(
            foundation.alerts.topic_arn,
            foundation.lake.artifacts.name,
            foundation.stack.partition,
            foundation.key.arn,
            *bound,
            *steps,
        ).apply(build)

    def _schedule(self, name: str, args: OrchestrationArgs) -> None:
        foundation, stack, key_arn = args.foundation, args.foundation.stack, args.foundation.key.arn
        # Runs the scheduler could not start (after its retries) wait here.
        self.dead_letters = dead_letter_queue(
            f"{name}-schedule-dlq",
            parent=self,
            key_arn=key_arn,
            account_id=stack.account_id,
            alerts=foundation.alerts,
            stateful=foundation.stateful(self, aliases=self._adopted(args, "schedule-dlq")),
            holds=f"the scheduler could not start a run of {name}.",
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
            description=f"EventBridge Scheduler: starts {name}",
            policy=pulumi.Output.all(self.state_machine.arn, self.dead_letters.arn, key_arn).apply(
                lambda values: json.dumps(
                    policies.start_execution_schedule_policy(values[0], values[1], values[2], stack.region)
                )
            ),
            parent=self,
        )
        self.schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            description=f"Starts {name} with the scheduled time as run_date",
            schedule_expression=args.schedule,
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

    def _alarms(self, name: str, foundation: FoundationRefs, *, watches_landing: bool) -> None:
        descriptions = {
            "ExecutionsFailed": f"A run of {name} failed (a stage, the quality gate or its input); see its alert.",
            "ExecutionsTimedOut": f"A run of {name} ran past its timeout.",
            "ExecutionThrottled": f"Step Functions throttled state transitions of {name}.",
        }
        # Throttled transitions delay a run but do not fail it: diagnostic (`Profile.diagnostic_alarms`).
        diagnostic = {"ExecutionThrottled"}
        for metric in STATES_METRICS:
            if metric in diagnostic and not foundation.profile.diagnostic_alarms:
                continue
            metric_alarm(
                f"{name}-{metric.lower()}",
                parent=self,
                alerts=foundation.alerts,
                description=descriptions[metric],
                namespace="AWS/States",
                metric_name=metric,
                dimensions={"StateMachineArn": self.state_machine.arn},
            )
        if not watches_landing:
            return
        metric_alarm(
            f"{name}-landing-wait",
            parent=self,
            alerts=foundation.alerts,
            description=f"A file has waited in landing over {LANDED_FILE_MAX_WAIT_SECONDS // 3600} h when a run of "
            f"{name} looked: no run claims it (a source folder no pipeline extracts?). See docs/operations.md.",
            namespace=pipelines.METRICS_NAMESPACE,
            metric_name=LANDING_WAIT_METRIC,
            dimensions={"Pipeline": name},
            statistic="Maximum",
            threshold=LANDED_FILE_MAX_WAIT_SECONDS,
        )

    def _widgets(self, name: str, region: str) -> None:
        arn = self.state_machine.arn
        self.widgets.append(
            metric_widget(
                f"{name}: executions",
                [
                    ["AWS/States", metric, "StateMachineArn", arn]
                    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", *STATES_METRICS)
                ],
                region=region,
            )
        )
        self.widgets.append(
            metric_widget(
                f"{name}: execution time (ms) and schedule DLQ",
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
                region=region,
                stat="Average",
            )
        )

    def outputs(self) -> dict[str, Any]:
        return {
            "stateMachineArn": self.state_machine.arn,
            "scheduleArn": self.schedule.arn,
            "logGroupName": self.log_group.name,
            "scheduleDeadLetterQueueUrl": self.dead_letters.url,
            "scheduleDeadLetterQueueArn": self.dead_letters.arn,
            "runners": {stage.value: runner.architecture for stage, runner in self._runners.items()},
        }
