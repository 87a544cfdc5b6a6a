"""Architecture 3, streaming: Kinesis Data Streams into the lake, the contract per micro-batch, exactly once in curated.

Provisions:
- a Kinesis Data Stream encrypted with the stack key (CONTROLS row 24): one provisioned shard in dev, on-demand
  elsewhere (`capacityMode`), retention from the profile (24 h in dev, 7 days elsewhere: row 25); protected in prod;
- the consumer, an `EtlFunction` running `etl_jobs.handlers.stream_consumer` on the single-node engine, fed by an
  event source mapping (batch size and window, ParallelizationFactor 1, bisect on error, bounded retries and record
  age, ReportBatchItemFailures: row 16) whose on-failure destination is an encrypted, alarmed SQS queue; it stages
  micro-batches keyed by shard and sequence range (`etl_jobs.streams`);
- Firehose archiving the raw records in the raw zone (`archive/<source>/arrival_date=D/`, partitioned by arrival date
  with Firehose's `!{timestamp:...}` prefix namespace, errors under `archive-errors/`), SSE-KMS with the stack key,
  delivery logging to a log group with the stack's retention (row 26), so the stream can be replayed;
- the compaction: an `Orchestration` (`components.orchestration`) on a schedule whose stages run on its own Lambdas:
  extract collects the staged micro-batches into deliveries (`etl_jobs.handlers.stage_collect`), then transform,
  validate (the gate) and load commit them through the batch path's merge and commit protocol;
- alarms with the stream's and the delivery stream's dimensions (iterator age, read and write throughput exceeded,
  throttled records, delivery freshness and success), the consumer's Errors/Throttles and its failure queue's depth;
  dashboard widgets;
- optionally (`openSearch`, off: about $175 a month at its minimum) an OpenSearch Serverless collection for
  real-time views, with its encryption (stack key), network (VPC endpoint only) and data-access policies.

Roles: every Lambda's lake access comes from `etl_jobs.access` (`consume`, `collect`, the stages); the consumer adds
reading its stream (and the key through Kinesis) and sending to its failure queue; Firehose's role reads the stream
and writes only under the archive prefixes. Takes `ArchitectureArgs[StreamingSettings]`. Exposes: `stream`,
`consumer`, `failures`, `delivery_stream`, `compaction`, `collection` (or None), `widgets`, `outputs()`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, ClassVar

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import lake_access, packaging, policies
from components.architectures.base import Architecture, ArchitectureArgs
from components.foundation.alarms import metric_alarm, metric_widget
from components.functions import (
    EtlFunction,
    EtlFunctionArgs,
    LambdaRunner,
    dependency_layer,
    lambda_stage_budget,
    signed_package,
)
from components.orchestration import Orchestration, OrchestrationArgs
from components.queues import dead_letter_queue
from components.refs import FoundationRefs
from components.roles import service_role
from components.settings import (
    PROJECT,
    ArchitectureSettings,
    Environment,
    LambdaArchitecture,
    QuarantineRate,
    Schedule,
    SourceName,
)
from components.stages import Stage
from etl_jobs import layout, streams

NAME = "streaming"
# The compaction's stages: extract collects micro-batches; the others are the batch stages.
STAGE_HANDLERS: dict[Stage, str] = {
    Stage.EXTRACT: "etl_jobs.handlers.stage_collect.handler",
    **{stage: f"etl_jobs.handlers.stage_{stage.value}.handler" for stage in Stage if stage is not Stage.EXTRACT},
}
STAGE_COMMANDS: dict[Stage, str] = {stage: "collect" if stage is Stage.EXTRACT else stage.value for stage in Stage}
# Kinesis reads (what Lambda's event source mapping and Firehose's source call with the reader's role).
STREAM_READ_ACTIONS = (
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
)
# The consumer is behind when its oldest record waits this long: a tenth of an hour keeps well inside retention.
ITERATOR_AGE_ALARM_MS = 600_000
# Firehose is late when the newest delivered record is older than its buffer interval plus this.
FRESHNESS_MARGIN_SECONDS = 900
# The views collection: the smallest OpenSearch Serverless deployment (redundancy off), about $175 a month.
VIEWS_COST = "about $175 a month at its minimum (0.5 OCU indexing + 0.5 OCU search at $0.24 per OCU-hour)"


class CapacityMode(StrEnum):
    PROVISIONED = "PROVISIONED"
    ON_DEMAND = "ON_DEMAND"


class StartingPosition(StrEnum):
    TRIM_HORIZON = "TRIM_HORIZON"
    LATEST = "LATEST"


def archive_prefixes(source: str) -> tuple[str, str]:
    """Firehose's prefix and error prefix in the raw zone: by arrival date (the `timestamp` namespace is the time
    Firehose received the record); errors by their type, as Firehose requires once a prefix holds an expression."""
    return (
        f"{layout.ARCHIVE}{source}/arrival_date=!{{timestamp:yyyy-MM-dd}}/",
        f"{layout.ARCHIVE_ERRORS}{source}/!{{firehose:error-output-type}}/arrival_date=!{{timestamp:yyyy-MM-dd}}/",
    )


class StreamingSettings(ArchitectureSettings):
    """Architecture 3: Kinesis -> a Lambda consumer staging micro-batches, Firehose archiving raw records; a scheduled
    compaction commits them to curated exactly once."""

    source: SourceName = Field(
        streams.DEFAULT_SOURCE, description="The source the stream's deliveries belong to (its ledger and lineage)"
    )
    capacity_mode: CapacityMode | None = Field(
        None,
        description="`PROVISIONED` or `ON_DEMAND`; default from the profile (dev: one provisioned shard). Monthly cost "
        "at rest: a provisioned shard about $11 ($0.015/shard-hour), on-demand about $29 ($0.04/stream-hour); per GB: "
        "on-demand $0.08 in and $0.04 out, provisioned $0.014 per million PUT payload units",
    )
    shard_count: int = Field(1, ge=1, le=500, description="Shards of a PROVISIONED stream (1 MB/s in, 2 MB/s out each)")
    retention_hours: int | None = Field(
        None,
        ge=24,
        le=8760,
        description="How long the stream keeps records; default from the profile (dev 24, otherwise 168). Cost: "
        "beyond 24 h, $0.02 per shard-hour (provisioned) or $0.10/GB-month (on-demand) up to 7 days",
    )
    starting_position: StartingPosition = Field(
        StartingPosition.TRIM_HORIZON, description="Where a new consumer starts reading (`TRIM_HORIZON`: every record)"
    )
    batch_size: int = Field(100, ge=1, le=10000, description="Records per consumer invocation (1-10000)")
    batching_window_seconds: int = Field(5, ge=0, le=300, description="Longest wait to fill a batch (0-300)")
    maximum_retry_attempts: int = Field(
        3, ge=0, le=10000, description="Retries of a failed batch before it goes to the failure queue (0-10000)"
    )
    maximum_record_age_seconds: int = Field(
        3600, ge=60, le=604800, description="Oldest record the consumer still tries (60-604800 s); older: given up"
    )
    memory_mb: int = Field(1024, ge=128, le=10240, description="Memory of the consumer and the compaction Lambdas")
    timeout_seconds: int = Field(300, ge=1, le=900, description="Timeout of the consumer and the compaction Lambdas")
    architecture: LambdaArchitecture = Field(LambdaArchitecture.ARM64, description="`arm64` or `x86_64`")
    compaction_schedule: Schedule = Field(
        "rate(15 minutes)", description="When the compaction commits the staged micro-batches to curated"
    )
    max_quarantine_rate: QuarantineRate = Field(0.10, description="The compaction's gate, per shard delivery")
    archive_buffer_seconds: int = Field(300, ge=0, le=900, description="Firehose buffer interval (0-900 s)")
    archive_buffer_mb: int = Field(64, ge=1, le=128, description="Firehose buffer size (1-128 MB)")
    open_search: bool = Field(
        False,
        description=f"An OpenSearch Serverless collection for real-time views: {VIEWS_COST}, plus storage at "
        "$0.024/GB-month; its VPC endpoint about $7 a month per AZ",
    )

    def resolved_capacity_mode(self, environment: str) -> CapacityMode:
        if self.capacity_mode is not None:
            return self.capacity_mode
        return CapacityMode.PROVISIONED if environment == Environment.DEV.value else CapacityMode.ON_DEMAND

    def resolved_retention_hours(self, environment: str) -> int:
        if self.retention_hours is not None:
            return self.retention_hours
        return 24 if environment == Environment.DEV.value else 168


class Streaming(Architecture):
    """Kinesis into the lake: see the module docstring."""

    type_token: ClassVar[str] = "etl:architectures:Streaming"
    settings_model: ClassVar[type[ArchitectureSettings]] = StreamingSettings
    interface_endpoints: ClassVar[tuple[str, ...]] = ()

    collection: aws.opensearch.ServerlessCollection | None

    def __init__(
        self, name: str, args: ArchitectureArgs[StreamingSettings], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, opts)
        settings, foundation = args.settings, args.foundation
        if not isinstance(settings, StreamingSettings):
            raise TypeError(f"streaming: settings must be StreamingSettings, got {type(settings).__name__}")
        stack, key_arn = foundation.stack, foundation.key.arn
        child = pulumi.ResourceOptions(parent=self)
        mode = settings.resolved_capacity_mode(stack.environment)

        # --- the stream ---------------------------------------------------------------------------------------------
        self.stream = aws.kinesis.Stream(
            f"{name}-stream",
            shard_count=settings.shard_count if mode is CapacityMode.PROVISIONED else None,
            stream_mode_details=aws.kinesis.StreamStreamModeDetailsArgs(stream_mode=mode.value),
            retention_period=settings.resolved_retention_hours(stack.environment),
            encryption_type="KMS",
            kms_key_id=key_arn,
            opts=foundation.stateful(self),
        )

        # --- the consumer -------------------------------------------------------------------------------------------
        self.failures = dead_letter_queue(
            f"{name}-consumer-failures",
            parent=self,
            key_arn=key_arn,
            account_id=stack.account_id,
            alerts=foundation.alerts,
            stateful=foundation.stateful(self),
            holds="a stream batch failed every retry (its shard and sequence range; replay it from the archive).",
        )
        layer = dependency_layer(name, settings.architecture, foundation, self)
        code = packaging.function_package()
        signed_code = signed_package(f"{name}-code", code, foundation, self)

        def function(label: str, handler: str, statements: list[Any], description: str, **extra: Any) -> EtlFunction:
            return EtlFunction(
                f"{name}-{label}",
                EtlFunctionArgs(
                    foundation=foundation,
                    handler=handler,
                    service_name=f"{NAME}-{label}",
                    policy_statements=statements,
                    memory_mb=settings.memory_mb,
                    timeout_seconds=settings.timeout_seconds,
                    architecture=settings.architecture,
                    code=code,
                    signed_code=signed_code,
                    layers=[layer.arn],
                    environment={
                        "ETL_STREAM_SOURCE": settings.source,
                        "ETL_MAX_QUARANTINE_RATE": str(settings.max_quarantine_rate),
                    },
                    description=description,
                    **extra,
                ),
                opts=child,
            )

        read_stream = pulumi.Output.all(self.stream.arn, self.failures.arn, key_arn).apply(
            lambda values: [
                policies.allow(STREAM_READ_ACTIONS, [values[0]], sid="ReadStream"),
                # The event source mapping sends a given-up batch's metadata with the function's role.
                policies.allow(["sqs:SendMessage"], [values[1]], sid="OnFailureDestination"),
                _key_through("kinesis", values[2], stack.region, sid="StreamKey"),
            ]
        )
        self.consumer = function(
            "consumer",
            "etl_jobs.handlers.stream_consumer.handler",
            # The handler returns its batch failures: no result objects to write.
            [lake_access.role_statements("consume", foundation, writes_results=False), read_stream],
            "Stages each Kinesis batch as a micro-batch (the contract applied, keyed by shard and sequence range)",
        )
        self.mapping = aws.lambda_.EventSourceMapping(
            f"{name}-consumer-source",
            event_source_arn=self.stream.arn,
            function_name=self.consumer.function_arn,
            starting_position=settings.starting_position.value,
            batch_size=settings.batch_size,
            maximum_batching_window_in_seconds=settings.batching_window_seconds,
            # One batch per shard at a time: collect's exactly-once argument rests on a shard being read in order.
            parallelization_factor=1,
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=settings.maximum_retry_attempts,
            maximum_record_age_in_seconds=settings.maximum_record_age_seconds,
            function_response_types=["ReportBatchItemFailures"],
            destination_config=aws.lambda_.EventSourceMappingDestinationConfigArgs(
                on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(
                    destination_arn=self.failures.arn
                )
            ),
            opts=child,
        )

        # --- the archive ----------------------------------------------------------------------------------------------
        self.delivery_stream = self._archive(name, settings, foundation)

        # --- the compaction -------------------------------------------------------------------------------------------
        self.stage_functions = {
            stage: function(
                f"compact-{stage.value}",
                STAGE_HANDLERS[stage],
                # Its handlers return their results: no result objects to write. Collect runs as the pipeline's
                # extract, so its role also holds the grants of the corrections extract runs (reprocess).
                [
                    lake_access.role_statements(
                        STAGE_COMMANDS[stage], foundation, writes_results=False, as_stage=stage.value
                    )
                ],
                f"{stage.value} stage of the {name} compaction",
                run_by_pipeline=True,
            )
            for stage in Stage
        }
        runner = LambdaRunner(
            architecture=NAME,
            function_arns={stage: function.function_arn for stage, function in self.stage_functions.items()},
            budgets={stage: lambda_stage_budget(settings.timeout_seconds) for stage in Stage},
        )
        self.compaction = Orchestration(
            f"{name}-compaction",
            OrchestrationArgs(
                foundation=foundation,
                sources=(settings.source,),
                runners=dict.fromkeys(Stage, runner),
                schedule=settings.compaction_schedule,
                max_quarantine_rate=settings.max_quarantine_rate,
                max_concurrency=1,
                settings_key=f"{PROJECT}:{NAME}",
                watches_landing=False,
            ),
            opts=child,
        )

        self.collection = self._views(name, foundation) if settings.open_search else None
        self._alarms(name, settings, foundation)
        for etl_function in (self.consumer, *self.stage_functions.values()):
            self.widgets.extend(etl_function.widgets)
        self.widgets.extend(self.compaction.widgets)
        self.register_outputs(self.outputs())

    # --- Firehose ------------------------------------------------------------------------------------------------

    def _archive(
        self, name: str, settings: StreamingSettings, foundation: FoundationRefs
    ) -> aws.kinesis.FirehoseDeliveryStream:
        stack = foundation.stack
        prefix, error_prefix = archive_prefixes(settings.source)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-archive-logs",
            name=f"/etl/{stack.project}/{stack.stack}/firehose/{name}-archive",
            retention_in_days=foundation.log_retention_days,
            kms_key_id=foundation.key.arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        log_stream = aws.cloudwatch.LogStream(
            f"{name}-archive-delivery-log", log_group_name=log_group.name, name="DestinationDelivery",
            opts=pulumi.ResourceOptions(parent=self),
        )  # fmt: skip
        role = service_role(
            f"{name}-archive-role",
            policy_name=f"{name}-archive-policy",
            service="firehose.amazonaws.com",
            account_id=stack.account_id,
            description=f"Firehose of {name}: reads the stream, archives its records in the raw zone",
            policy=pulumi.Output.all(self.stream.arn, foundation.lake.raw.arn, foundation.key.arn, log_group.arn).apply(
                lambda values: json.dumps(
                    archive_policy(
                        stream_arn=values[0],
                        raw_bucket_arn=values[1],
                        key_arn=values[2],
                        log_group_arn=values[3],
                        region=stack.region,
                        source=settings.source,
                    )
                )
            ),
            parent=self,
        )
        return aws.kinesis.FirehoseDeliveryStream(
            f"{name}-archive",
            destination="extended_s3",
            kinesis_source_configuration=aws.kinesis.FirehoseDeliveryStreamKinesisSourceConfigurationArgs(
                kinesis_stream_arn=self.stream.arn, role_arn=role.role.arn
            ),
            extended_s3_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs(
                role_arn=role.role.arn,
                bucket_arn=foundation.lake.raw.arn,
                prefix=prefix,
                error_output_prefix=error_prefix,
                buffering_interval=settings.archive_buffer_seconds,
                buffering_size=settings.archive_buffer_mb,
                # Raw records as they came: the archive is the replay source, readable as a file by the batch path.
                compression_format="UNCOMPRESSED",
                kms_key_arn=foundation.key.arn,
                cloudwatch_logging_options=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationCloudwatchLoggingOptionsArgs(
                    enabled=True, log_group_name=log_group.name, log_stream_name=log_stream.name
                ),
            ),
            # Firehose checks the role when the delivery stream is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role.policy]),
        )

    # --- OpenSearch Serverless ---------------------------------------------------------------------------------------

    def _views(self, name: str, foundation: FoundationRefs) -> aws.opensearch.ServerlessCollection:
        stack, network = foundation.stack, foundation.network
        child = pulumi.ResourceOptions(parent=self)
        collection_name = f"{stack.stack}-views"[:32]
        encryption = aws.opensearch.ServerlessSecurityPolicy(
            f"{name}-views-encryption",
            name=f"{collection_name}-enc"[:32],
            type="encryption",
            policy=foundation.key.arn.apply(
                lambda key: json.dumps(
                    {"Rules": [_collection_rule(collection_name)], "AWSOwnedKey": False, "KmsARN": key}
                )
            ),
            opts=child,
        )
        group = aws.ec2.SecurityGroup(
            f"{name}-views-endpoint",
            description=f"The {collection_name} collection's VPC endpoint: HTTPS from the VPC only",
            vpc_id=network.vpc_id,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-views-https-in",
            security_group_id=group.id,
            description="HTTPS to the collection from inside the VPC",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=network.cidr,
            opts=child,
        )
        endpoint = aws.opensearch.ServerlessVpcEndpoint(
            f"{name}-views-endpoint",
            name=f"{collection_name}-vpce"[:32],
            vpc_id=network.vpc_id,
            subnet_ids=list(network.private_subnet_ids),
            security_group_ids=[group.id],
            opts=child,
        )
        aws.opensearch.ServerlessSecurityPolicy(
            f"{name}-views-network",
            name=f"{collection_name}-net"[:32],
            type="network",
            policy=endpoint.id.apply(
                lambda vpce: json.dumps(
                    [
                        {
                            "Rules": [
                                _collection_rule(collection_name),
                                {"ResourceType": "dashboard", "Resource": [f"collection/{collection_name}"]},
                            ],
                            "AllowFromPublic": False,
                            "SourceVPCEs": [vpce],
                        }
                    ]
                )
            ),
            opts=child,
        )
        collection = aws.opensearch.ServerlessCollection(
            f"{name}-views",
            name=collection_name,
            type="TIMESERIES",
            description="Real-time views of the orders stream",
            # The smallest deployment (no standby replicas): see VIEWS_COST.
            standby_replicas="DISABLED" if stack.environment != Environment.PROD.value else "ENABLED",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[encryption]),
        )
        aws.opensearch.ServerlessAccessPolicy(
            f"{name}-views-access",
            name=f"{collection_name}-access"[:32],
            type="data",
            policy=self.consumer.role_arn.apply(
                lambda role: json.dumps(
                    [
                        {
                            "Rules": [
                                {
                                    "ResourceType": "index",
                                    "Resource": [f"index/{collection_name}/*"],
                                    "Permission": [
                                        "aoss:CreateIndex",
                                        "aoss:DescribeIndex",
                                        "aoss:UpdateIndex",
                                        "aoss:WriteDocument",
                                        "aoss:ReadDocument",
                                    ],
                                }
                            ],
                            "Principal": [role],
                            "Description": "The stream consumer writes the views",
                        }
                    ]
                )
            ),
            opts=child,
        )
        return collection

    # --- alarms and widgets ------------------------------------------------------------------------------------------

    def _alarms(self, name: str, settings: StreamingSettings, foundation: FoundationRefs) -> None:
        stream = {"StreamName": self.stream.name}
        delivery = {"DeliveryStreamName": self.delivery_stream.name}
        alarms: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
            (
                "iterator-age",
                "GetRecords.IteratorAgeMilliseconds",
                f"The {name} consumer is behind: its oldest unread record waited over 10 minutes.",
                stream,
                {"statistic": "Maximum", "threshold": ITERATOR_AGE_ALARM_MS},
            ),
            (
                "read-throttled",
                "ReadProvisionedThroughputExceeded",
                f"Reads of the {name} stream were throttled (consumers share 2 MB/s per shard).",
                stream,
                {},
            ),
            (
                "write-throttled",
                "WriteProvisionedThroughputExceeded",
                f"Writes to the {name} stream exceeded its throughput (1 MB/s or 1,000 records/s per shard).",
                stream,
                {},
            ),
            (
                "throttled-records",
                "PutRecords.ThrottledRecords",
                f"Producers of the {name} stream had records refused for throughput (they retry; add capacity).",
                stream,
                {},
            ),
        ]
        for label, metric, description, dimensions, extra in alarms:
            metric_alarm(
                f"{name}-{label}",
                parent=self,
                alerts=foundation.alerts,
                description=description,
                namespace="AWS/Kinesis",
                metric_name=metric,
                dimensions=dimensions,
                **extra,
            )
        metric_alarm(
            f"{name}-archive-freshness",
            parent=self,
            alerts=foundation.alerts,
            description=f"Firehose's {name} archive is late: its newest delivered record is older than expected.",
            namespace="AWS/Firehose",
            metric_name="DeliveryToS3.DataFreshness",
            dimensions=delivery,
            statistic="Maximum",
            threshold=settings.archive_buffer_seconds + FRESHNESS_MARGIN_SECONDS,
        )
        metric_alarm(
            f"{name}-archive-failures",
            parent=self,
            alerts=foundation.alerts,
            description=f"Firehose failed to deliver {name} records to the raw zone (see archive-errors/ and its log).",
            namespace="AWS/Firehose",
            metric_name="DeliveryToS3.Success",
            dimensions=delivery,
            statistic="Minimum",
            threshold=1,
            comparison="LessThanThreshold",
        )
        region = foundation.stack.region
        name_of = self.stream.name
        self.widgets.append(
            metric_widget(
                f"{name}: stream in and out (records)",
                [
                    ["AWS/Kinesis", "IncomingRecords", "StreamName", name_of],
                    ["AWS/Kinesis", "GetRecords.Records", "StreamName", name_of],
                    ["AWS/Kinesis", "WriteProvisionedThroughputExceeded", "StreamName", name_of],
                    ["AWS/Kinesis", "PutRecords.ThrottledRecords", "StreamName", name_of],
                ],
                region=region,
            )
        )
        self.widgets.append(
            metric_widget(
                f"{name}: consumer lag (ms) and archive freshness (s)",
                [
                    ["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", name_of],
                    [
                        "AWS/Firehose",
                        "DeliveryToS3.DataFreshness",
                        "DeliveryStreamName",
                        self.delivery_stream.name,
                        {"yAxis": "right"},
                    ],
                ],
                region=region,
                stat="Maximum",
            )
        )

    def outputs(self) -> dict[str, Any]:
        return {
            "streamName": self.stream.name,
            "streamArn": self.stream.arn,
            "consumerFunctionArn": self.consumer.function_arn,
            "consumerFailureQueueUrl": self.failures.url,
            "deliveryStreamName": self.delivery_stream.name,
            "compaction": self.compaction.outputs(),
            **({"viewsCollectionEndpoint": self.collection.collection_endpoint} if self.collection else {}),
        }


def _collection_rule(collection: str) -> dict[str, Any]:
    return {"ResourceType": "collection", "Resource": [f"collection/{collection}"]}


def _key_through(service: str, key_arn: str, region: str, *, sid: str, encrypt: bool = False) -> policies.Statement:
    """The stack key, usable only when `service` calls KMS for the role (a stream's records, an archive's objects)."""
    actions = ["kms:Decrypt", *(["kms:GenerateDataKey"] if encrypt else [])]
    return policies.allow(
        actions, [key_arn], sid=sid, Condition={"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}}
    )


def archive_policy(
    *, stream_arn: str, raw_bucket_arn: str, key_arn: str, log_group_arn: str, region: str, source: str
) -> policies.PolicyDocument:
    """Firehose's role: read the stream (and its key through Kinesis), write objects only under the archive prefixes
    of the raw zone (and the key through S3), write its delivery log."""
    prefixes = [f"{layout.ARCHIVE}{source}/", f"{layout.ARCHIVE_ERRORS}{source}/"]
    return policies.document(
        policies.allow(STREAM_READ_ACTIONS, [stream_arn], sid="ReadStream"),
        _key_through("kinesis", key_arn, region, sid="StreamKey"),
        policies.allow(
            ["s3:AbortMultipartUpload", "s3:PutObject"], [f"{raw_bucket_arn}/{p}*" for p in prefixes], sid="Archive"
        ),
        policies.allow(["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"], [raw_bucket_arn], sid="RawBucket"),
        _key_through("s3", key_arn, region, sid="ArchiveKey", encrypt=True),
        policies.log_writer(log_group_arn),
    )
