"""Architecture 1, serverless: schedule or file drop -> extract Lambda -> SQS -> process Lambda (the other stages).

Provisions:
- an EventBridge Scheduler schedule (flexible window off) invoking the extract Lambda through a role allowed to invoke
  that one function, with a retry policy and a dead-letter queue (CONTROLS row 55);
- an EventBridge rule on the raw bucket's "Object Created" events under `landing_prefix` targeting the same Lambda
  (retry policy + DLQ; a `lambda.Permission` with source ARN and account: rows 12, 55). The raw bucket already sends
  its events to EventBridge, so no BucketNotification competes with other consumers;
- the extract `EtlFunction` (async: failed invocations go to the events DLQ after <= 2 retries, row 15), sending one
  message per run/file to an SQS work queue (stack key, TLS-only policy, redrive to a DLQ after 4 receives, visibility
  6x the process timeout: rows 17-20);
- the process `EtlFunction`, fed by an event source mapping with ReportBatchItemFailures (a poisoned run is retried
  alone, then dead-lettered);
- four stage functions (`etl_jobs.handlers.stage_*`) exposed as `runner` (a `LambdaRunner`), so the stepfunctions
  orchestrator can run any stage here;
- alarms (Lambda Errors/Throttles per function, each DLQ's depth > 0, age of the oldest work message) and widgets.

Packaging (`python -m components.packaging sizes` prints the current figures): the function zip holds only
`etl_jobs` (~0.1 MB unpacked), hash-stable so unchanged code is no diff. The layer is `etl_jobs/requirements.txt`
(Polars, Powertools, boto3); Polars dominates it, and with the function it stays under Lambda's 250 MB unpacked
limit (about 200 MB for arm64). pyarrow is not shipped: etl_jobs does not import it (Polars reads and writes Parquet
itself) and it would break the limit. A zip layer was
chosen over container-image Lambdas because it keeps cold starts and deploys small (code changes upload ~30 kB, not an
image) and needs no registry or Docker on the deploying machine; the layer is above the 50 MB direct-upload limit, so
it is uploaded to the artifacts bucket and Lambda reads it from there.

Networking: `interface_endpoints = ()` because the Lambdas run outside the VPC. They only call regional AWS APIs (S3,
SQS, X-Ray, CloudWatch) over TLS with IAM auth, reach no private resource, and a VPC attachment would need NAT or four
interface endpoints per AZ (cost) and ENI cold starts for no gain in isolation.

Takes: `ArchitectureArgs[ServerlessSettings]`. Exposes: `runner`, `widgets`, `extract`, `process`, `stage_functions`,
`work_queue`, `work_dead_letters`, `event_dead_letters`, `schedule`; `outputs()` for the stack exports.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, ClassVar

import pulumi
import pulumi_aws as aws
from pydantic import Field, WithJsonSchema, field_validator

from components import lake_access, packaging, policies
from components.architectures.base import Architecture, ArchitectureArgs
from components.foundation.alarms import (
    LANDED_FILE_MAX_WAIT_SECONDS,
    METRICS_NAMESPACE,
    metric_alarm,
    metric_widget,
)
from components.functions import (
    AsyncFailureDestination,
    EtlFunction,
    EtlFunctionArgs,
    LambdaRunner,
    dependency_layer,
    lambda_stage_budget,
    signed_package,
)
from components.queues import dead_letter_queue
from components.roles import service_role
from components.settings import ArchitectureSettings, LambdaArchitecture, QuarantineRate, Schedule
from components.stages import RunnerCapabilities, Stage
from etl_jobs import layout
from etl_jobs.pipeline import LANDING_WAIT_METRIC

# Within SQS's 3-5 band: enough for a transient S3/throttling error to clear, few enough to dead-letter a bad run fast.
MAX_RECEIVE_COUNT = 4
# AWS's advice for Lambda-fed queues: a message stays hidden for 6x the function timeout (batching and retries).
VISIBILITY_FACTOR = 6
# Scheduler/EventBridge redelivery of a failed invoke: an hour of retries, then the DLQ.
DELIVERY_RETRY_ATTEMPTS = 3
DELIVERY_MAX_AGE_SECONDS = 3600
OLDEST_MESSAGE_ALARM_SECONDS = 3600
# Its functions, by label: the event-driven pair and one per stage for the orchestrator.
FUNCTIONS = ("extract", "process", *(f"stage-{stage.value}" for stage in Stage))
# Where the job keeps the raw zone's own objects: a landing prefix inside them would claim the job's own files.
RAW_ZONE_PREFIXES = (layout.RAW_DELIVERIES, layout.LEDGER, layout.ARCHIVE, layout.ARCHIVE_ERRORS)
# What `ServerlessSettings._prefix` accepts, for the JSON Schema.
LANDING_PREFIX_PATTERN = rf"^(?!{'|'.join(re.escape(p) for p in RAW_ZONE_PREFIXES)})(?:[A-Za-z0-9!_.*'()=-]+/)+$(?!\n)"


class ServerlessSettings(ArchitectureSettings):
    """Architecture 1: scheduled extract Lambda -> SQS -> process Lambda; S3 file drops trigger the same path."""

    schedule: Schedule = Field("rate(1 hour)", description="EventBridge Scheduler expression for the extract Lambda")
    memory_mb: int = Field(1024, ge=128, le=10240, description="Lambda memory in MB (128-10240)")
    timeout_seconds: int = Field(300, ge=1, le=900, description="Lambda timeout in seconds (1-900)")
    reserved_concurrency: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Reserved concurrency of each of its six functions; unset: the unreserved pool. Setting it "
        "needs etl-platform:lambdaConcurrencyQuota (reservations may take the quota minus 100). No cost",
    )
    architecture: LambdaArchitecture = Field(LambdaArchitecture.ARM64, description="`arm64` or `x86_64`")
    batch_size: int = Field(5, ge=1, le=10, description="SQS messages per process-Lambda invocation (1-10)")
    max_quarantine_rate: QuarantineRate = Field(0.10, description="Quarantined share of rows that fails a run")
    landing_prefix: Annotated[str, WithJsonSchema({"type": "string", "pattern": LANDING_PREFIX_PATTERN})] = Field(
        "landing/", description="Prefix in the raw bucket where file drops start a run (ends in '/')"
    )

    def concurrency_reservations(self) -> dict[str, int]:
        if not self.reserved_concurrency:
            return {}
        return {"etl-platform:serverless.reservedConcurrency": self.reserved_concurrency * len(FUNCTIONS)}

    @field_validator("landing_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        # S3's safe key characters (plus `=`, common in partition-style prefixes); one clear reason per mistake.
        if not value.endswith("/"):
            raise ValueError(f"{value!r} must end in '/', e.g. 'landing/'")
        if value.startswith("/") or "//" in value:
            raise ValueError(f"{value!r} has an empty path segment (a leading '/' or '//'); e.g. 'landing/'")
        if bad := sorted(set(re.sub(r"[A-Za-z0-9!_.*'()/=-]", "", value))):
            raise ValueError(
                f"{value!r} has characters S3 keys should avoid: {' '.join(map(repr, bad))}; use letters, digits "
                "and ! _ . * ' ( ) = - /"
            )
        if inside := next((p for p in RAW_ZONE_PREFIXES if value.startswith(p)), None):
            raise ValueError(
                f"{value!r} is inside {inside!r}, where the job keeps the raw zone's own objects; e.g. 'landing/'"
            )
        return value


class Serverless(Architecture):
    """Scheduled and file-drop ETL on Lambda and SQS, plus per-stage Lambdas for the orchestrator."""

    type_token: ClassVar[str] = "etl:architectures:Serverless"
    settings_model: ClassVar[type[ArchitectureSettings]] = ServerlessSettings
    interface_endpoints: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def runner_capabilities(cls, settings: ArchitectureSettings) -> RunnerCapabilities:
        return RunnerCapabilities(stages=frozenset(Stage))

    def __init__(
        self, name: str, args: ArchitectureArgs[ServerlessSettings], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, opts)
        settings, foundation = args.settings, args.foundation
        if not isinstance(settings, ServerlessSettings):
            raise TypeError(f"serverless: settings must be ServerlessSettings, got {type(settings).__name__}")
        stack, key_arn, account = foundation.stack, foundation.key.arn, foundation.stack.account_id
        child = pulumi.ResourceOptions(parent=self)

        # --- queues --------------------------------------------------------------------------------------------
        # Created first: the events DLQ admits dead letters from this rule only.
        file_drops = aws.cloudwatch.EventRule(
            f"{name}-file-drops",
            description=f"Files created under {settings.landing_prefix} in the raw bucket start a {name} run",
            event_pattern=foundation.lake.raw.name.apply(
                lambda bucket: json.dumps(
                    {
                        "source": ["aws.s3"],
                        "detail-type": ["Object Created"],
                        "detail": {
                            "bucket": {"name": [bucket]},
                            "object": {"key": [{"prefix": settings.landing_prefix}]},
                        },
                    }
                )
            ),
            opts=child,
        )
        self.work_dead_letters = dead_letter_queue(
            f"{name}-work-dlq",
            parent=self,
            key_arn=key_arn,
            account_id=account,
            alerts=foundation.alerts,
            stateful=foundation.stateful(self),
            holds="a run failed every delivery attempt of the process function.",
        )
        self.event_dead_letters = dead_letter_queue(
            f"{name}-events-dlq",
            parent=self,
            key_arn=key_arn,
            account_id=account,
            alerts=foundation.alerts,
            stateful=foundation.stateful(self),
            holds="a schedule, file drop or async extract invocation could not be delivered or failed for good.",
            senders=[("events.amazonaws.com", file_drops.arn)],
        )
        self.work_queue = aws.sqs.Queue(
            f"{name}-work",
            kms_master_key_id=key_arn,
            visibility_timeout_seconds=VISIBILITY_FACTOR * settings.timeout_seconds,
            redrive_policy=self.work_dead_letters.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
            ),
            # Pending runs live here: deleting the queue in prod would drop them.
            opts=foundation.stateful(self),
        )

        # --- functions -------------------------------------------------------------------------------------------
        layer = dependency_layer(name, settings.architecture, foundation, self)
        code = packaging.function_package()
        signed_code = signed_package(f"{name}-code", code, foundation, self)

        def function(role: str, handler: str, statements: list[Any], *, label: str = "", **extra: Any) -> EtlFunction:
            return EtlFunction(
                f"{name}-{label or role}",
                EtlFunctionArgs(
                    foundation=foundation,
                    handler=handler,
                    service_name=f"serverless-{label or role}",
                    policy_statements=[
                        # The handlers return their results: no result objects to write.
                        lake_access.role_statements(
                            role, foundation, landing_prefix=settings.landing_prefix, writes_results=False
                        ),
                        *statements,
                    ],
                    memory_mb=settings.memory_mb,
                    timeout_seconds=settings.timeout_seconds,
                    reserved_concurrency=settings.reserved_concurrency,
                    architecture=settings.architecture,
                    code=code,
                    signed_code=signed_code,
                    layers=[layer.arn],
                    environment={
                        "ETL_LANDING_PREFIX": settings.landing_prefix,
                        "ETL_MAX_QUARANTINE_RATE": str(settings.max_quarantine_rate),
                        **extra.pop("environment", {}),
                    },
                    **extra,
                ),
                opts=child,
            )

        send_work = self.work_queue.arn.apply(
            lambda arn: [policies.allow(["sqs:SendMessage", "sqs:GetQueueAttributes"], [arn], sid="WorkQueue")]
        )
        self.extract = function(
            "extract",
            "etl_jobs.handlers.extract.handler",
            [send_work],
            environment={"ETL_WORK_QUEUE_URL": self.work_queue.url},
            on_failure=AsyncFailureDestination(arn=self.event_dead_letters.arn),
            description="Extract on schedule or file drop, queue one run per message",
        )
        consume_work = self.work_queue.arn.apply(
            lambda arn: [
                policies.allow(
                    [
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes",
                    ],
                    [arn],
                    sid="WorkQueue",
                )
            ]
        )
        self.process = function(
            "process",
            "etl_jobs.handlers.process.handler",
            [consume_work],
            description="Transform, validate and load each queued run",
        )
        self.stage_functions = {
            stage: function(
                stage.value,
                f"etl_jobs.handlers.stage_{stage.value}.handler",
                [],
                # "stage-" keeps the stage extract apart from the event-driven extract above.
                label=f"stage-{stage.value}",
                description=f"{stage.value} stage for the orchestrator",
                run_by_pipeline=True,
            )
            for stage in Stage
        }
        aws.lambda_.EventSourceMapping(
            f"{name}-process-source",
            event_source_arn=self.work_queue.arn,
            function_name=self.process.function_arn,
            batch_size=settings.batch_size,
            maximum_batching_window_in_seconds=0 if settings.batch_size == 1 else 5,
            function_response_types=["ReportBatchItemFailures"],
            # Pollers never exceed the function's reservation, so a busy queue waits instead of throttling.
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=max(2, settings.reserved_concurrency)
            )
            if settings.reserved_concurrency
            else None,
            opts=child,
        )

        # --- triggers ---------------------------------------------------------------------------------------------
        scheduler_role = service_role(
            f"{name}-scheduler-role",
            policy_name=f"{name}-scheduler-policy",
            service="scheduler.amazonaws.com",
            account_id=account,
            description=f"Lets the {name} schedule invoke the extract Lambda",
            policy=pulumi.Output.all(self.extract.function_arn, self.event_dead_letters.arn, key_arn).apply(
                lambda values: json.dumps(
                    policies.document(
                        policies.allow(["lambda:InvokeFunction"], [values[0], f"{values[0]}:*"], sid="InvokeExtract"),
                        policies.allow(["sqs:SendMessage"], [values[1]], sid="DeadLetters"),
                        # Its dead letters are encrypted with the stack key.
                        policies.key_use(values[2], via=["sqs"], region=stack.region),
                    )
                )
            ),
            parent=self,
        ).role
        self.schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            description=f"Starts a {name} run",
            schedule_expression=settings.schedule,
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            # Its target input at rest under the stack key, as every schedule of the stack (row 55).
            kms_key_arn=key_arn,
            target=aws.scheduler.ScheduleTargetArgs(
                arn=self.extract.function_arn,
                role_arn=scheduler_role.arn,
                # The scheduler fills in the scheduled time, so a late or retried invoke still extracts its own date.
                input=json.dumps({"source": "orders", "scheduled_time": "<aws.scheduler.scheduled-time>"}),
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_retry_attempts=DELIVERY_RETRY_ATTEMPTS,
                    maximum_event_age_in_seconds=DELIVERY_MAX_AGE_SECONDS,
                ),
                dead_letter_config=aws.scheduler.ScheduleTargetDeadLetterConfigArgs(arn=self.event_dead_letters.arn),
            ),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-file-drops-target",
            rule=file_drops.name,
            arn=self.extract.function_arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_retry_attempts=DELIVERY_RETRY_ATTEMPTS,
                maximum_event_age_in_seconds=DELIVERY_MAX_AGE_SECONDS,
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self.event_dead_letters.arn),
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-file-drops-invoke",
            action="lambda:InvokeFunction",
            function=self.extract.function_name,
            principal="events.amazonaws.com",
            source_arn=file_drops.arn,
            source_account=account,
            opts=child,
        )

        # --- the work queue: TLS only ----------------------------------------------------------------------------
        aws.sqs.QueuePolicy(
            f"{name}-work-policy",
            queue_url=self.work_queue.url,
            policy=pulumi.Output.all(self.work_queue.arn, account).apply(
                lambda values: json.dumps(policies.queue_policy(values[0], values[1]))
            ),
            opts=child,
        )

        # --- alarms and widgets -------------------------------------------------------------------------------------
        metric_alarm(
            f"{name}-work-age",
            parent=self,
            alerts=foundation.alerts,
            description=f"The oldest {name} work message is over an hour old: processing is stuck or too slow.",
            namespace="AWS/SQS",
            metric_name="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": self.work_queue.name},
            statistic="Maximum",
            threshold=OLDEST_MESSAGE_ALARM_SECONDS,
        )
        # What the handlers report (Powertools metrics: the function's service name is their dimension).
        for metric, service, description, threshold in (
            (
                LANDING_WAIT_METRIC,
                self.extract.service_name,
                f"A file has waited in landing over {LANDED_FILE_MAX_WAIT_SECONDS // 3600} h when extract looked: "
                "no run claims it (a source folder no pipeline extracts?). See docs/operations.md.",
                LANDED_FILE_MAX_WAIT_SECONDS,
            ),
            (
                "FilesQuarantined",
                self.process.service_name,
                "A delivered file broke the contract and was quarantined whole; the other files were loaded. "
                "See the commit's manifest (files_quarantined).",
                0,
            ),
            (
                "QualityGateFailures",
                self.process.service_name,
                "A file failed the quality gate (maxQuarantineRate); its rows are quarantined. See the manifest.",
                0,
            ),
        ):
            metric_alarm(
                f"{name}-{metric.lower()}",
                parent=self,
                alerts=foundation.alerts,
                description=description,
                namespace=METRICS_NAMESPACE,
                metric_name=metric,
                dimensions={"service": service},
                statistic="Maximum",
                threshold=threshold,
            )
        for etl_function in (self.extract, self.process, *self.stage_functions.values()):
            self.widgets.extend(etl_function.widgets)
        self.widgets.append(
            metric_widget(
                f"{name}: queues",
                [
                    ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", self.work_queue.name],
                    ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", self.work_queue.name],
                    ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", self.work_dead_letters.name],
                    ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", self.event_dead_letters.name],
                ],
                region=stack.region,
                stat="Maximum",
            )
        )

        self.runner = LambdaRunner(
            architecture="serverless",
            function_arns={stage: etl_function.function_arn for stage, etl_function in self.stage_functions.items()},
            budgets={stage: lambda_stage_budget(settings.timeout_seconds) for stage in Stage},
        )
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        return {
            "extractFunctionArn": self.extract.function_arn,
            "processFunctionArn": self.process.function_arn,
            "stageFunctionArns": {
                stage.value: etl_function.function_arn for stage, etl_function in self.stage_functions.items()
            },
            "workQueueUrl": self.work_queue.url,
            "workDeadLetterQueueUrl": self.work_dead_letters.url,
            "workDeadLetterQueueArn": self.work_dead_letters.arn,
            "eventDeadLetterQueueUrl": self.event_dead_letters.url,
            "eventDeadLetterQueueArn": self.event_dead_letters.arn,
            "scheduleArn": self.schedule.arn,
        }
