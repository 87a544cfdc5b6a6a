"""Every Lambda handler invoked in-process with the events AWS sends, against S3 and SQS on a moto server."""

from __future__ import annotations

import io
import json
from datetime import datetime, tzinfo
from typing import Any

import polars as pl
import pytest

from etl_jobs import pipeline
from etl_jobs.handlers import extract, process, stage_extract, stage_load, stage_transform, stage_validate
from etl_jobs.handlers.events import BadEventError
from etl_jobs.sample import Sample, generate
from tests.support.handlers import (
    BUCKETS,
    RUN_DATE,
    Lake,
    LambdaContext,
    object_created_event,
    scheduler_event,
    sqs_record,
)
from tests.support.orders import csv_bytes, row

CONTEXT = LambdaContext()


def queued(lake: Lake) -> list[dict[str, Any]]:
    response = lake.sqs.receive_message(QueueUrl=lake.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(message["Body"]) for message in response.get("Messages", [])]


def curated_rows(lake: Lake) -> pl.DataFrame:
    listing = lake.s3.list_objects_v2(Bucket=BUCKETS["curated"], Prefix="order_date=").get("Contents", [])
    frames = [
        pl.read_parquet(io.BytesIO(lake.s3.get_object(Bucket=BUCKETS["curated"], Key=item["Key"])["Body"].read()))
        for item in listing
    ]
    return pl.concat(frames) if frames else pl.DataFrame(schema={"order_id": pl.String})


def landing_keys(lake: Lake) -> list[str]:
    listing = lake.s3.list_objects_v2(Bucket=BUCKETS["raw"], Prefix="landing/").get("Contents", [])
    return [item["Key"] for item in listing]


@pytest.fixture
def sample() -> Sample:
    return generate(300, error_rate=0.03, seed=11)


def land(lake: Lake, data: bytes, key: str = "landing/orders/orders-0504.csv") -> str:
    lake.s3.put_object(Bucket=BUCKETS["raw"], Key=key, Body=data)
    return key


# --- extract (serverless) -----------------------------------------------------------------------------------------


def test_scheduled_extract_claims_the_landed_files_and_queues_one_run(lake: Lake, sample: Sample) -> None:
    land(lake, sample.data, "landing/orders/a.csv")
    land(lake, sample.data + b"O-extra,C1,2024-05-01T10:00:00Z,US,USD,1.00,1,paid\n", "landing/orders/b.csv")

    result = extract.handler(scheduler_event(), CONTEXT)

    assert result["messages"] == [{"run_date": RUN_DATE, "source": "orders", "deliveries": 2}]
    assert queued(lake) == result["messages"]
    assert landing_keys(lake) == []  # processed files leave landing; the raw zone keeps the copies
    copies = lake.s3.list_objects_v2(Bucket=BUCKETS["raw"], Prefix="deliveries/orders/")["Contents"]
    assert sorted(item["Key"].rsplit("/", 1)[1] for item in copies) == ["a.csv", "b.csv"]
    # A second sweep finds nothing new and queues nothing.
    assert extract.handler(scheduler_event(), CONTEXT) == {"messages": []}


def test_extract_publishes_how_long_an_unclaimed_landed_file_has_waited(
    lake: Lake, sample: Sample, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    land(lake, sample.data)
    land(lake, sample.data, "landing/returns/r-0504.csv")  # a folder no pipeline extracts

    class SevenHoursOn(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> SevenHoursOn:
            return cls.fromtimestamp(datetime.now(tz).timestamp() + 7 * 3600, tz)

    monkeypatch.setattr(pipeline, "datetime", SevenHoursOn)
    capsys.readouterr()
    extract.handler(scheduler_event(), CONTEXT)

    # Powertools writes the metrics as one CloudWatch embedded-metric-format document on stdout.
    (document,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert {"Name": "OldestWaitingLandedFileSeconds", "Unit": "Seconds"} in directive["Metrics"]
    # One point per source the sweep looked at; the alarm takes the maximum.
    assert 7 * 3600 <= max(document["OldestWaitingLandedFileSeconds"]) < 7 * 3600 + 60
    assert landing_keys(lake) == ["landing/returns/r-0504.csv"]


def test_a_file_event_and_the_schedule_deliver_a_file_once(lake: Lake, sample: Sample) -> None:
    key = land(lake, sample.data)
    assert len(extract.handler(object_created_event(key), CONTEXT)["messages"]) == 1
    assert extract.handler(scheduler_event(), CONTEXT) == {"messages": []}
    ledger = json.loads(lake.s3.get_object(Bucket=BUCKETS["raw"], Key="_ledger/orders.json")["Body"].read())
    assert [(d["seq"], d["name"], d["status"]) for d in ledger["deliveries"]] == [(1, "orders-0504.csv", "delivered")]


def test_a_manual_start_names_its_sources(lake: Lake, sample: Sample) -> None:
    land(lake, sample.data, "landing/shop/s.csv")
    result = extract.handler({"run_date": RUN_DATE, "sources": ["orders", "shop"]}, CONTEXT)
    assert result["messages"] == [{"run_date": RUN_DATE, "source": "shop", "deliveries": 1}]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (object_created_event(f"run_date={RUN_DATE}/orders/x.csv"), "is not a file under the landing prefix"),
        ({"source": "orders", "scheduled_time": "soon"}, "scheduled_time: expected an ISO timestamp, got 'soon'"),
        ({"sources": "orders"}, "sources: expected a non-empty list of source names"),
        ({"source": "../etc"}, "source: source name '../etc' must be a plain folder name"),
    ],
)
def test_bad_extract_events_are_clear_errors(lake: Lake, event: dict[str, Any], message: str) -> None:
    with pytest.raises(BadEventError, match=message):
        extract.handler(event, CONTEXT)
    assert queued(lake) == []


# --- process (serverless) -----------------------------------------------------------------------------------------


def test_process_loads_good_runs_and_reports_only_the_malformed_messages(lake: Lake, sample: Sample) -> None:
    extract.handler(object_created_event(land(lake, sample.data)), CONTEXT)
    (good,) = queued(lake)
    event = {
        "Records": [
            sqs_record("good-1", json.dumps(good)),
            sqs_record("not-json", "{this is not json"),
            sqs_record("no-date", json.dumps({"source": "orders"})),
        ]
    }

    response = process.handler(event, CONTEXT)

    assert sorted(item["itemIdentifier"] for item in response["batchItemFailures"]) == ["no-date", "not-json"]
    curated = curated_rows(lake)
    assert curated.height == sample.rows_curated and curated["order_id"].is_unique().all()
    manifests = lake.s3.list_objects_v2(Bucket=BUCKETS["quarantine"], Prefix="_manifests/")["Contents"]
    (manifest,) = [
        json.loads(lake.s3.get_object(Bucket=BUCKETS["quarantine"], Key=m["Key"])["Body"].read()) for m in manifests
    ]
    assert manifest["rows_in"] == manifest["rows_curated"] + manifest["rows_quarantined"] == sample.rows_in
    assert manifest["quarantine_reasons"] == dict(sorted(sample.reasons.items()))


def test_a_file_failing_the_gate_is_quarantined_whole_and_the_others_load(lake: Lake, sample: Sample) -> None:
    bad = generate(200, error_rate=0.5, seed=5)
    land(lake, bad.data, "landing/orders/bad.csv")
    land(lake, sample.data, "landing/orders/good.csv")
    extract.handler(scheduler_event(), CONTEXT)
    (message,) = queued(lake)

    response = process.handler({"Records": [sqs_record("run", json.dumps(message))]}, CONTEXT)

    assert response["batchItemFailures"] == []  # redelivering would change nothing: the manifest names the file
    assert curated_rows(lake).height == sample.rows_curated
    rejected = lake.s3.list_objects_v2(Bucket=BUCKETS["quarantine"], Prefix="deliveries/orders/seq=0000000001/")
    names = sorted(item["Key"].rsplit("/", 1)[1] for item in rejected["Contents"])
    assert names == ["batch_rejected.parquet", "rows.parquet"]


# --- stages for the orchestrator ----------------------------------------------------------------------------------


def test_stage_handlers_run_a_date_end_to_end(lake: Lake, sample: Sample) -> None:
    land(lake, sample.data)
    event: dict[str, Any] = {"run_date": RUN_DATE, "source": "orders"}

    extracted = stage_extract.handler(event, CONTEXT)
    transformed = stage_transform.handler({**event, "extract": {"Payload": extracted}}, CONTEXT)
    validated = stage_validate.handler(event, CONTEXT)
    loaded = stage_load.handler(event, CONTEXT)

    assert [c["name"] for c in extracted["claimed"]] == ["orders-0504.csv"]
    assert transformed["rows_in"] == sample.rows_in
    assert validated["passed"] is True and validated["max_quarantine_rate"] == 0.10
    assert loaded["rows_curated"] == sample.rows_curated == curated_rows(lake).height


def test_the_gate_threshold_comes_from_the_event_before_the_environment(lake: Lake) -> None:
    land(lake, csv_bytes(row("O1"), row("O2"), row("O3"), row("O4", status="lost")))
    event = {"run_date": RUN_DATE, "source": "orders", "max_quarantine_rate": 0.2}
    stage_extract.handler(event, CONTEXT)
    stage_transform.handler(event, CONTEXT)
    validated = stage_validate.handler(event, CONTEXT)  # 0.25 quarantined: above the event's 0.2
    assert (validated["passed"], validated["max_quarantine_rate"]) == (False, 0.2)


def test_a_manual_start_with_sources_and_corrections(lake: Lake) -> None:
    land(lake, csv_bytes(row("O1")), "landing/orders/a.csv")
    land(lake, csv_bytes(row("S1")), "landing/shop/s.csv")
    start = {"run_date": RUN_DATE, "sources": ["orders", "shop"]}
    extracted = stage_extract.handler(start, CONTEXT)
    assert [r["source"] for r in extracted["results"]] == ["orders", "shop"]
    stage_transform.handler(start, CONTEXT)
    stage_validate.handler(start, CONTEXT)
    stage_load.handler(start, CONTEXT)
    assert sorted(curated_rows(lake)["order_id"]) == ["O1", "S1"]

    retracted = stage_load.handler({"run_date": RUN_DATE, "retract": {"file": "landing/shop/s.csv"}}, CONTEXT)
    assert retracted["retract"]["retracted"] == [{"source": "shop", "seq": 1}]
    assert curated_rows(lake)["order_id"].to_list() == ["O1"]
    marked = stage_extract.handler({"run_date": RUN_DATE, "reprocess": {"from": RUN_DATE, "to": RUN_DATE}}, CONTEXT)
    assert [(d["source"], d["gen"]) for d in marked["reprocess"]["deliveries"]] == [("orders", 2), ("shop", 2)]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"run_date": "yesterday", "source": "orders"}, "run_date: expected a date 'YYYY-MM-DD', got 'yesterday'"),
        ({"source": "orders"}, "run_date: missing"),
        (
            {"run_date": RUN_DATE, "max_quarantine_rate": 2},
            "max_quarantine_rate: expected a number between 0 and 1",
        ),
        ({"run_date": RUN_DATE, "retract": {}}, "retract.file: expected the key of a delivered file"),
        (
            {"run_date": RUN_DATE, "sources": ["orders", 3]},
            r"sources\[1\]: expected a source name such as 'orders', got 3",
        ),
    ],
)
def test_bad_stage_events_are_clear_errors(lake: Lake, event: dict[str, Any], message: str) -> None:
    with pytest.raises(BadEventError, match=message):
        stage_transform.handler(event, CONTEXT)
