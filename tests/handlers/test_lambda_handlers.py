"""Every Lambda handler invoked in-process with the events AWS sends, against S3 and SQS on a moto server."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import polars as pl
import pytest

from etl_jobs.handlers import extract, process, stage_extract, stage_load, stage_transform, stage_validate
from etl_jobs.handlers._runtime import BadEventError
from etl_jobs.sample import Sample, generate
from tests.handlers.conftest import BUCKETS, Lake, LambdaContext

RUN_DATE = "2024-05-04"
CONTEXT = LambdaContext()


def scheduler_event(source: str = "orders", scheduled_time: str = f"{RUN_DATE}T02:00:00Z") -> dict[str, Any]:
    """The input the serverless schedule sends (the scheduler substitutes <aws.scheduler.scheduled-time>)."""
    return {"source": source, "scheduled_time": scheduled_time}


def object_created_event(key: str, bucket: str = BUCKETS["raw"], time: str = f"{RUN_DATE}T09:30:12Z") -> dict[str, Any]:
    """An S3 "Object Created" event as EventBridge delivers it to a rule target."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "00617F08"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1714813200000",
            "SenderId": "AROAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1714813200001",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:etl-work",
        "awsRegion": "us-east-1",
    }


def queued(lake: Lake) -> list[dict[str, Any]]:
    response = lake.sqs.receive_message(QueueUrl=lake.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(message["Body"]) for message in response.get("Messages", [])]


def parquet(lake: Lake, bucket: str, key: str) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(lake.s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def curated_rows(lake: Lake) -> pl.DataFrame:
    listing = lake.s3.list_objects_v2(Bucket=BUCKETS["curated"]).get("Contents", [])
    keys = [item["Key"] for item in listing if item["Key"].endswith(".parquet")]
    if not keys:
        return pl.DataFrame()
    return pl.concat([parquet(lake, BUCKETS["curated"], key) for key in keys])


@pytest.fixture
def sample() -> Sample:
    return generate(300, error_rate=0.03, seed=11)


def land(lake: Lake, sample: Sample, key: str = "landing/orders/orders-0504.csv") -> str:
    lake.s3.put_object(Bucket=BUCKETS["raw"], Key=key, Body=sample.data)
    return key


# --- extract ------------------------------------------------------------------------------------------------------


def test_scheduled_extract_copies_the_landed_files_and_queues_one_run(lake: Lake, sample: Sample) -> None:
    land(lake, sample, "landing/orders/a.csv")
    land(lake, sample, "landing/orders/b.csv")

    result = extract.handler(scheduler_event(), CONTEXT)

    assert len(result["messages"]) == 1
    (message,) = queued(lake)
    assert message["run_date"] == RUN_DATE and message["source"] == "orders"
    assert message["raw_uris"] == [
        f"s3://{BUCKETS['raw']}/run_date={RUN_DATE}/orders/a.csv",
        f"s3://{BUCKETS['raw']}/run_date={RUN_DATE}/orders/b.csv",
    ]
    copied = lake.s3.get_object(Bucket=BUCKETS["raw"], Key=f"run_date={RUN_DATE}/orders/b.csv")["Body"].read()
    assert copied == sample.data


def test_scheduled_extract_with_nothing_landed_queues_nothing(lake: Lake) -> None:
    assert extract.handler(scheduler_event(), CONTEXT) == {"messages": []}
    assert queued(lake) == []


def test_file_drop_event_extracts_that_file_for_the_event_date(lake: Lake, sample: Sample) -> None:
    key = land(lake, sample)
    land(lake, sample, "landing/orders/other.csv")  # another landed file is not this event's business

    extract.handler(object_created_event(key), CONTEXT)

    (message,) = queued(lake)
    assert message == {
        "run_date": RUN_DATE,
        "source": "orders",
        "raw_uris": [f"s3://{BUCKETS['raw']}/run_date={RUN_DATE}/orders/orders-0504.csv"],
        "bytes": len(sample.data),
    }
    raw_keys = [item["Key"] for item in lake.s3.list_objects_v2(Bucket=BUCKETS["raw"], Prefix="run_date=")["Contents"]]
    assert raw_keys == [f"run_date={RUN_DATE}/orders/orders-0504.csv"]


def test_file_drop_outside_the_landing_prefix_is_rejected(lake: Lake, sample: Sample) -> None:
    land(lake, sample, f"run_date={RUN_DATE}/orders/x.csv")
    with pytest.raises(BadEventError, match="not a file under the landing prefix"):
        extract.handler(object_created_event(f"run_date={RUN_DATE}/orders/x.csv"), CONTEXT)
    assert queued(lake) == []


# --- process ------------------------------------------------------------------------------------------------------


def test_process_loads_good_runs_and_reports_only_the_poisoned_messages(lake: Lake, sample: Sample) -> None:
    extract.handler(object_created_event(land(lake, sample)), CONTEXT)
    (good,) = queued(lake)
    event = {
        "Records": [
            sqs_record("good-1", json.dumps(good)),
            sqs_record("poison-not-json", "{this is not json"),
            sqs_record("poison-no-raw-files", json.dumps({"run_date": "2024-05-05", "source": "orders"})),
        ]
    }

    response = process.handler(event, CONTEXT)

    failed = sorted(item["itemIdentifier"] for item in response["batchItemFailures"])
    assert failed == ["poison-no-raw-files", "poison-not-json"]
    curated = curated_rows(lake)
    assert curated.height == sample.rows_curated
    assert curated["order_id"].is_unique().all()
    quarantine = parquet(lake, BUCKETS["quarantine"], f"run_date={RUN_DATE}/quarantine.parquet")
    assert quarantine.height == sum(sample.reasons.values())
    assert dict(quarantine["reason"].value_counts().iter_rows()) == sample.reasons
    manifest_key = f"_manifests/run_date={RUN_DATE}/manifest.json"
    manifest = json.loads(lake.s3.get_object(Bucket=BUCKETS["quarantine"], Key=manifest_key)["Body"].read())
    assert manifest["status"] == "succeeded"
    assert manifest["rows_in"] == manifest["rows_curated"] + manifest["rows_quarantined"]


def test_process_reports_a_run_that_fails_the_quality_gate_and_publishes_nothing(lake: Lake) -> None:
    bad = generate(200, error_rate=0.5, seed=5)
    extract.handler(object_created_event(land(lake, bad)), CONTEXT)
    (message,) = queued(lake)

    response = process.handler({"Records": [sqs_record("gate", json.dumps(message))]}, CONTEXT)

    assert response["batchItemFailures"] == [{"itemIdentifier": "gate"}]
    assert curated_rows(lake).height == 0
    quarantine = parquet(lake, BUCKETS["quarantine"], f"run_date={RUN_DATE}/quarantine.parquet")
    assert quarantine.height == 200  # the whole batch is quarantined, nothing lost


# --- stages for the orchestrator ----------------------------------------------------------------------------------


def test_stage_handlers_run_a_date_end_to_end(lake: Lake, sample: Sample) -> None:
    land(lake, sample)
    event: dict[str, Any] = {"run_date": RUN_DATE, "source": "orders", "input": None}

    extracted = stage_extract.handler(event, CONTEXT)
    transformed = stage_transform.handler({**event, "extract": {"Payload": extracted}}, CONTEXT)
    validated = stage_validate.handler(event, CONTEXT)
    loaded = stage_load.handler(event, CONTEXT)

    assert extracted["stage"] == "extract" and extracted["files"] == [
        f"s3://{BUCKETS['raw']}/run_date={RUN_DATE}/orders/orders-0504.csv"
    ]
    assert transformed["rows_in"] == sample.rows_curated + sum(sample.reasons.values())
    assert validated["passed"] is True and validated["quarantine_rate"] <= 0.10
    assert loaded["rows_curated"] == sample.rows_curated == curated_rows(lake).height


def test_stage_extract_takes_an_explicit_input_uri(lake: Lake, sample: Sample) -> None:
    key = land(lake, sample, "landing/orders/explicit.csv")
    land(lake, sample, "landing/orders/ignored.csv")
    event = {"run_date": RUN_DATE, "source": "orders", "input": f"s3://{BUCKETS['raw']}/{key}"}
    result = stage_extract.handler(event, CONTEXT)
    assert result["files"] == [f"s3://{BUCKETS['raw']}/run_date={RUN_DATE}/orders/explicit.csv"]


def test_stage_load_refuses_an_unvalidated_run(lake: Lake, sample: Sample) -> None:
    from etl_jobs.pipeline import LoadRefusedError

    land(lake, sample)
    event = {"run_date": RUN_DATE, "source": "orders", "input": None}
    stage_extract.handler(event, CONTEXT)
    stage_transform.handler(event, CONTEXT)
    with pytest.raises(LoadRefusedError, match="has not been validated"):
        stage_load.handler(event, CONTEXT)
    assert curated_rows(lake).height == 0


def test_stage_handlers_reject_a_bad_run_date(lake: Lake) -> None:
    with pytest.raises(BadEventError, match="is not a date"):
        stage_transform.handler({"run_date": "yesterday", "source": "orders"}, CONTEXT)


def test_stage_extract_with_nothing_landed_is_a_bad_event(lake: Lake) -> None:
    with pytest.raises(BadEventError, match="nothing landed for source 'shop'"):
        stage_extract.handler({"run_date": RUN_DATE, "source": "shop"}, CONTEXT)


def test_map_iterations_transform_their_own_source_and_validate_dedupes_across_them(lake: Lake, sample: Sample) -> None:
    """The orchestrated pipeline: extract per source, one transform per source (any order), then validate and load.

    `shop` delivers a copy of every `orders` row: each order is curated once (the copies tie on order_ts and the
    later file, shop's, wins), every other copy is quarantined as superseded."""
    land(lake, sample, "landing/orders/orders.csv")
    lake.s3.put_object(Bucket=BUCKETS["raw"], Key="landing/shop/shop.csv", Body=sample.data)
    events = [{"run_date": RUN_DATE, "source": source} for source in ("orders", "shop")]
    extracted = [stage_extract.handler(event, CONTEXT) for event in events]
    transformed = [
        stage_transform.handler({**event, "extract": {"Payload": result}}, CONTEXT)
        for event, result in reversed(list(zip(events, extracted, strict=True)))
    ]
    rows_in = sample.rows_curated + sum(sample.reasons.values())
    assert [(result["source"], result["rows_in"]) for result in transformed] == [("shop", rows_in), ("orders", rows_in)]
    keys = {item["Key"] for item in lake.s3.list_objects_v2(Bucket=BUCKETS["staged"])["Contents"]}
    assert {f"run_date={RUN_DATE}/source=orders/part.parquet", f"run_date={RUN_DATE}/source=shop/part.parquet"} <= keys

    validated = stage_validate.handler({"run_date": RUN_DATE, "source": "orders", "max_quarantine_rate": 1.0}, CONTEXT)
    assert validated["passed"] is True and validated["sources"] == ["orders", "shop"]
    assert validated["rows_in"] == 2 * rows_in
    superseded = sample.reasons.get("superseded", 0)
    assert validated["reasons"]["superseded"] == 2 * superseded + sample.rows_curated
    loaded = stage_load.handler({"run_date": RUN_DATE}, CONTEXT)
    curated = curated_rows(lake)
    assert loaded["rows_curated"] == sample.rows_curated == curated.height
    assert curated["order_id"].is_unique().all()
    assert loaded["rows_curated"] + validated["rows_quarantined"] == 2 * rows_in
