"""The streaming architecture built from its args: the stream per profile, the consumer's event source mapping and
role, the Firehose archive, alarms with the stream's dimensions, the compaction pipeline (statelint) and the optional
OpenSearch views. What the consumer and the compaction do with data is tested in tests/handlers/test_streams.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from components import lake_access
from components.architectures.base import ArchitectureArgs
from components.architectures.streaming import STREAM_READ_ACTIONS, Streaming, StreamingSettings, archive_prefixes
from components.settings import Environment
from etl_jobs.access import grants
from etlctl.mocks import Registration
from tests.support.components import foundation_refs, one, register
from tests.support.definitions import MACHINE, definition_of, statelint, tasks
from tests.support.resources import policy, statements

NAME = "etl-platform-streaming"
STREAM = "aws:kinesis/stream:Stream"
FIREHOSE = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def build(environment: Environment = Environment.DEV, **settings: Any) -> list[Registration]:
    settings_model = StreamingSettings(**settings)
    # The refs are Outputs: made inside the program, as the foundation would hand them over.
    return register(
        lambda: Streaming(NAME, ArchitectureArgs(settings=settings_model, foundation=foundation_refs(environment)))
    )


def named(registrations: list[Registration], name: str) -> Registration:
    (found,) = [r for r in registrations if r.name == f"{NAME}-{name}"]
    return found


def role_policy(registrations: list[Registration], role: str) -> dict[str, Any]:
    return policy(named(registrations, role).inputs["policy"])


def test_dev_has_one_provisioned_shard_and_prod_an_on_demand_stream_kept_a_week() -> None:
    dev, prod = one(build(), STREAM), one(build(Environment.PROD), STREAM)
    assert (dev.inputs["streamModeDetails"], dev.inputs["shardCount"], dev.inputs["retentionPeriod"]) == (
        {"streamMode": "PROVISIONED"},
        1,
        24,
    )
    assert prod.inputs["streamModeDetails"] == {"streamMode": "ON_DEMAND"} and "shardCount" not in prod.inputs
    assert prod.inputs["retentionPeriod"] == 168 and prod.protect and not dev.protect
    for stream in (dev, prod):
        assert (stream.inputs["encryptionType"], stream.inputs["kmsKeyId"]) == ("KMS", foundation_refs_key())
    explicit = one(build(Environment.PROD, capacityMode="PROVISIONED", shardCount=4, retentionHours=72), STREAM)
    assert (explicit.inputs["shardCount"], explicit.inputs["retentionPeriod"]) == (4, 72)


def foundation_refs_key() -> str:
    return "arn:aws:kms:eu-west-1:123456789012:key/test"


def test_the_consumer_reads_its_stream_in_order_and_sends_given_up_batches_to_an_alarmed_queue() -> None:
    registrations = build(batchSize=500, batchingWindowSeconds=2, maximumRetryAttempts=5)
    mapping = named(registrations, "consumer-source").inputs
    failures = named(registrations, "consumer-failures")
    assert mapping["eventSourceArn"].startswith("arn:aws:kinesis:") and mapping["startingPosition"] == "TRIM_HORIZON"
    assert {k: mapping[k] for k in ("batchSize", "maximumBatchingWindowInSeconds", "maximumRetryAttempts")} == {
        "batchSize": 500,
        "maximumBatchingWindowInSeconds": 2,
        "maximumRetryAttempts": 5,
    }
    assert mapping["parallelizationFactor"] == 1 and mapping["bisectBatchOnFunctionError"] is True
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["maximumRecordAgeInSeconds"] == 3600
    assert mapping["destinationConfig"]["onFailure"]["destinationArn"] == failures.outputs["arn"]
    assert failures.inputs["kmsMasterKeyId"] == foundation_refs_key()
    depth = named(registrations, "consumer-failures-depth").inputs
    assert depth["dimensions"] == {"QueueName": failures.outputs["name"]}


def test_the_consumer_role_is_its_declared_lake_access_plus_its_stream_and_failure_queue() -> None:
    registrations = build()
    stream, failures = one(registrations, STREAM), named(registrations, "consumer-failures")
    found = statements(role_policy(registrations, "consumer-policy"))
    by_sid = {s.get("Sid"): s for s in found}
    assert by_sid["ReadStream"] == {
        "Effect": "Allow",
        "Action": sorted(STREAM_READ_ACTIONS),
        "Resource": [stream.outputs["arn"]],
        "Sid": "ReadStream",
    }
    assert by_sid["StreamKey"]["Condition"] == {"StringEquals": {"kms:ViaService": "kinesis.eu-west-1.amazonaws.com"}}
    assert by_sid["OnFailureDestination"]["Resource"] == [failures.outputs["arn"]]
    lake = lake_access.lake_arns(
        {
            z: f"arn:aws:s3:::etl-platform-lake-{z}-0000000"
            for z in ("raw", "staged", "curated", "quarantine", "artifacts")
        },
        key_arn=foundation_refs_key(),
        region="eu-west-1",
        results_prefix=lake_access.RESULTS_PREFIX,
    )
    declared = lake_access.statements(grants("consume"), lake)
    assert [s for s in found if s.get("Sid") in {d.get("Sid") for d in declared}] == declared
    writes = by_sid["PutObject"]["Resource"]
    assert writes == [
        "arn:aws:s3:::etl-platform-lake-quarantine-0000000/streams/*",
        "arn:aws:s3:::etl-platform-lake-staged-0000000/streams/*",
    ]


def test_firehose_archives_raw_records_under_the_archive_prefix_encrypted_logged_with_an_error_prefix() -> None:
    registrations = build(archiveBufferSeconds=60, archiveBufferMb=16)
    stream, delivery = one(registrations, STREAM), one(registrations, FIREHOSE).inputs
    s3 = delivery["extendedS3Configuration"]
    prefix, errors = archive_prefixes("orders-stream")
    assert (s3["prefix"], s3["errorOutputPrefix"]) == (prefix, errors)
    assert prefix == "archive/orders-stream/arrival_date=!{timestamp:yyyy-MM-dd}/"
    assert "!{firehose:error-output-type}" in errors
    assert (s3["bufferingInterval"], s3["bufferingSize"], s3["compressionFormat"]) == (60, 16, "UNCOMPRESSED")
    assert s3["kmsKeyArn"] == foundation_refs_key() and s3["bucketArn"] == "arn:aws:s3:::etl-platform-lake-raw-0000000"
    logging = s3["cloudwatchLoggingOptions"]
    assert logging["enabled"] is True and logging["logStreamName"] == "DestinationDelivery"
    assert named(registrations, "archive-logs").inputs["retentionInDays"] == 14
    assert delivery["kinesisSourceConfiguration"]["kinesisStreamArn"] == stream.outputs["arn"]
    writes = {s.get("Sid"): s for s in statements(role_policy(registrations, "archive-policy"))}["Archive"]
    assert writes["Resource"] == [
        "arn:aws:s3:::etl-platform-lake-raw-0000000/archive/orders-stream/*",
        "arn:aws:s3:::etl-platform-lake-raw-0000000/archive-errors/orders-stream/*",
    ]


def test_every_stream_and_archive_alarm_names_what_it_watches() -> None:
    registrations = build()
    stream, delivery = one(registrations, STREAM), one(registrations, FIREHOSE)
    alarms = {r.name.removeprefix(f"{NAME}-"): r.inputs for r in registrations if r.type == ALARM}
    kinesis = {name: a for name, a in alarms.items() if a["namespace"] == "AWS/Kinesis"}
    assert sorted(a["metricName"] for a in kinesis.values()) == [
        "GetRecords.IteratorAgeMilliseconds",
        "PutRecords.ThrottledRecords",
        "ReadProvisionedThroughputExceeded",
        "WriteProvisionedThroughputExceeded",
    ]
    assert all(a["dimensions"] == {"StreamName": stream.outputs["name"]} for a in kinesis.values())
    firehose = [a for a in alarms.values() if a["namespace"] == "AWS/Firehose"]
    assert sorted(a["metricName"] for a in firehose) == ["DeliveryToS3.DataFreshness", "DeliveryToS3.Success"]
    assert all(a["dimensions"] == {"DeliveryStreamName": delivery.outputs["name"]} for a in firehose)
    assert alarms["archive-freshness"]["threshold"] == 300 + 900
    assert {"consumer-errors", "consumer-throttles"} <= set(alarms)


def test_the_compaction_collects_then_runs_the_batch_stages_on_its_own_functions(tmp_path: Path) -> None:
    registrations = build(compactionSchedule="rate(30 minutes)", maxQuarantineRate=0.2)
    machine = one(registrations, MACHINE)
    definition = definition_of(machine)
    assert statelint(json.dumps(definition), tmp_path).returncode == 0
    invoked = {
        name: state["Parameters"]["FunctionName"]
        for name, state, _ in tasks(definition)
        if "FunctionName" in state.get("Parameters", {})
    }
    handlers = {
        r.name.removeprefix(f"{NAME}-compact-").removesuffix("-function"): (r.outputs["arn"], r.inputs["handler"])
        for r in registrations
        if r.type == "aws:lambda/function:Function" and r.name.startswith(f"{NAME}-compact-")
    }
    assert handlers["extract"][1] == "etl_jobs.handlers.stage_collect.handler"
    assert {stage: handlers[stage][1] for stage in ("transform", "validate", "load")} == {
        stage: f"etl_jobs.handlers.stage_{stage}.handler" for stage in ("transform", "validate", "load")
    }
    # A manual start's corrections run on the functions of the stages whose roles they need (etl_jobs.access).
    corrections = {"Retract": handlers["load"][0], "Reprocess": handlers["extract"][0]}
    stages = {name.title(): handlers[name][0] for name in ("extract", "transform", "validate", "load")}
    assert invoked == stages | corrections
    assert "'orders-stream'" in json.dumps(definition) or "orders-stream" in json.dumps(definition)
    schedule = one(registrations, "aws:scheduler/schedule:Schedule").inputs
    assert schedule["scheduleExpression"] == "rate(30 minutes)"
    extract_policy = statements(role_policy(registrations, "compact-extract-policy"))
    deletes = [s["Resource"] for s in extract_policy if "s3:DeleteObject" in s["Action"]]
    assert deletes == [["arn:aws:s3:::etl-platform-lake-staged-0000000/streams/*"]]


def test_open_search_views_are_off_by_default_and_private_with_the_stack_key_when_on() -> None:
    assert not [r for r in build() if r.type.startswith("aws:opensearch/")]
    registrations = build(openSearch=True)
    by_type = {r.type.rsplit(":", 1)[-1]: r for r in registrations if r.type.startswith("aws:opensearch/")}
    assert set(by_type) >= {"ServerlessCollection", "ServerlessVpcEndpoint", "ServerlessAccessPolicy"}
    policies = {
        r.inputs["type"]: json.loads(r.inputs["policy"])
        for r in registrations
        if r.type.endswith("ServerlessSecurityPolicy")
    }
    assert policies["encryption"]["KmsARN"] == foundation_refs_key() and policies["encryption"]["AWSOwnedKey"] is False
    assert policies["network"][0]["AllowFromPublic"] is False and policies["network"][0]["SourceVPCEs"]
    access = json.loads(by_type["ServerlessAccessPolicy"].inputs["policy"])
    assert access[0]["Principal"] == [named(registrations, "consumer-role").outputs["arn"]]
    described = StreamingSettings.model_fields["open_search"].description or ""
    assert "$175 a month" in described


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"batchSize": 20000}, "less than or equal to 10000"),
        ({"capacityMode": "SHARDED"}, "'PROVISIONED' or 'ON_DEMAND'"),
        ({"maximumRecordAgeSeconds": -1}, "greater than or equal to 60"),
        ({"source": "Orders Stream"}, "should match pattern"),
    ],
)
def test_settings_refuse_values_aws_or_the_exactly_once_design_do_not_allow(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        StreamingSettings(**settings)
