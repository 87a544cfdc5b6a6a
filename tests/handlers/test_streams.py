"""The stream consumer over real GetRecords batches from a moto Kinesis stream, through the event source mapping's
documented behaviour (`tests.support.kinesis`): a batch whose staging fails is reported and retried, a batch that
raises is bisected until the poison record is given up alone, a re-delivered batch overwrites itself; then the
compaction (collect, transform, validate, load) and the curated table compared with what the batch engine makes of
the same records as one file. The lake is moto S3; the archive path runs on moto's Firehose.

What only AWS can show (moto has no event source mappings, and its Firehose neither reads a Kinesis source nor
buffers, partitions by arrival date or writes errors under the error prefix): Lambda's own polling, its timing and
its checkpoints (modelled here as documented), MaximumRecordAgeInSeconds, and Firehose's object names."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest

from components.architectures.streaming import archive_prefixes
from etl_jobs import storage, streams
from etl_jobs.handlers import stream_consumer
from etl_jobs.zones import Zones
from tests.support.handlers import BUCKETS, Lake
from tests.support.kinesis import EventSourceMapping
from tests.support.streams import STREAM, batch_reference, contract_rows, create_stream, orders, read_curated, send

RUN_DATE = date(2024, 5, 4)


@pytest.fixture
def kinesis(lake: Lake) -> Iterator[Any]:
    client = boto3.client("kinesis")
    create_stream(client)
    yield client


def zones() -> Zones:
    return Zones.from_env()


def compact() -> dict[str, Any]:
    result = streams.compact(zones(), RUN_DATE, max_quarantine_rate=1.0)
    assert result["rows_in"] == result["rows_curated"] + result["rows_quarantined"], result
    return result


def test_a_stream_with_failures_and_redeliveries_curates_what_the_batch_engine_does(
    kinesis: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = orders()
    first, second = records[:150], records[150:]
    # The lake fails once while the third micro-batch is staged (its marker is not written): the batch is reported.
    real_write = storage.write
    markers: list[str] = []

    def flaky_write(uri: str, data: bytes, **conditions: Any) -> storage.ObjectInfo:
        if uri.endswith("/records.json"):
            markers.append(uri)
            if len(markers) == 3:
                raise storage.InfrastructureError("S3 is throttling (SlowDown)", uri=uri, action="s3:PutObject")
        return real_write(uri, data, **conditions)

    monkeypatch.setattr(storage, "write", flaky_write)
    # One record makes the function raise the first time it is in a batch: Lambda bisects until it passes.
    poison = {"sequence": None, "raised": 0}

    def handler(event: dict[str, Any], context: Any) -> Any:
        sequences = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        if poison["sequence"] is None:
            poison["sequence"] = sequences[-1]
        if poison["sequence"] in sequences and poison["raised"] == 0:
            poison["raised"] += 1
            raise RuntimeError("the engine died on this batch")
        return stream_consumer.handler(event, context)

    mapping = EventSourceMapping(kinesis, STREAM, handler, batch_size=40)
    send(kinesis, first)
    mapping.poll()
    first_compaction = compact()
    send(kinesis, second)
    mapping.poll()

    assert mapping.given_up == []
    sizes = [len(batch) for batch in mapping.invocations]
    assert sizes[0] == 40 and sizes[1] == 20 and sizes[2] == 20, "the batch that raised was bisected"
    reported = [batch for batch in mapping.invocations if len(batch) > 1 and mapping.invocations.count(batch) == 2]
    assert reported, "the batch whose staging failed was retried as it was"

    # A batch delivered again (as after a timeout once the handler had finished): it overwrites itself.
    shard = mapping.shards()[0]
    iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    again = kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=25)["Records"]
    assert mapping.redeliver(shard, again) == {"batchItemFailures": []}
    second_compaction = compact()
    third_compaction = compact()

    assert first_compaction["records"] == 150 and second_compaction["records"] == len(second)
    assert third_compaction["commit"] is None and third_compaction["records"] == 0
    assert contract_rows(read_curated(zones())) == batch_reference(tmp_path, records)
    # The micro-batches are collected: staged keeps none; the re-delivered one was dropped as a repeat.
    assert storage.list_files(storage.join(zones().staged, "streams") + "/") == []


def test_a_poison_record_is_given_up_alone_and_the_rest_is_curated(kinesis: Any, tmp_path: Path) -> None:
    records = orders(rows=60, seed=3)
    send(kinesis, records)
    poison = records[17]

    def handler(event: dict[str, Any], context: Any) -> Any:
        if any(base64.b64decode(r["kinesis"]["data"]) == poison for r in event["Records"]):
            raise RuntimeError("a record the consumer cannot survive")
        return stream_consumer.handler(event, context)

    mapping = EventSourceMapping(kinesis, STREAM, handler, batch_size=100, maximum_retry_attempts=10)
    mapping.poll()
    assert [item["batchSize"] for item in mapping.given_up] == [1]
    compact()
    assert contract_rows(read_curated(zones())) == batch_reference(tmp_path, [r for r in records if r != poison])


def test_a_bad_event_is_refused_with_the_field_named() -> None:
    from etl_jobs.handlers.events import BadEventError, stream_batch

    record = {
        "kinesis": {
            "sequenceNumber": "12",
            "data": "bm90IGJhc2U2NA==",
            "partitionKey": "k",
            "approximateArrivalTimestamp": 1714813200.5,
        },
        "eventID": "shardId-000000000000:13",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
    }
    with pytest.raises(BadEventError, match="does not end in its sequence number"):
        stream_batch({"Records": [record]})
    with pytest.raises(BadEventError, match="Records: a Kinesis event carries a list of Records"):
        stream_batch({"records": []})
    with pytest.raises(BadEventError, match=r"Records\[0\]: not a Kinesis record \(KeyError"):
        stream_batch({"Records": [{**record, "kinesis": {"sequenceNumber": "13"}}]})


def test_the_firehose_archive_replays_as_a_file_into_the_same_curated(kinesis: Any, tmp_path: Path) -> None:
    """Firehose (moto: one raw object per put, prefixes written as given) archives the raw records under the
    component's prefix in the raw zone; the archive, with the contract header, is a file the batch path accepts."""
    firehose, s3 = boto3.client("firehose"), boto3.client("s3")
    prefix, errors = archive_prefixes(streams.DEFAULT_SOURCE)
    firehose.create_delivery_stream(
        DeliveryStreamName="archive",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{BUCKETS['raw']}",
            "Prefix": prefix,
            "ErrorOutputPrefix": errors,
        },
    )
    records = orders(rows=80, seed=5)
    send(kinesis, records)
    # What Firehose's Kinesis source does: read each shard and put the records as they are.
    sent: list[bytes] = []
    puts: list[bytes] = []
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )
        batch = kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
        firehose.put_record_batch(DeliveryStreamName="archive", Records=[{"Data": r["Data"]} for r in batch])
        sent += [r["Data"] for r in batch]
        puts.append(b"".join(r["Data"] for r in batch))
    root = prefix.split("!{", 1)[0]
    archived = s3.list_objects_v2(Bucket=BUCKETS["raw"], Prefix=root)["Contents"]
    bodies = [s3.get_object(Bucket=BUCKETS["raw"], Key=o["Key"])["Body"].read() for o in archived]
    assert sorted(bodies) == sorted(puts), "each put is archived as it came, under the archive prefix"
    # Replayed as one file: the same curated as the records themselves (order within a shard kept).
    assert batch_reference(tmp_path / "replay", sent) == batch_reference(tmp_path / "records", sent)
    assert all(o["Key"].startswith("archive/orders-stream/arrival_date=") for o in archived)
