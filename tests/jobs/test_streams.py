"""`etl_jobs.streams` on local zones: real Kinesis sequence numbers (56 digits), overlapping re-deliveries, two
collects at once, a crash inside collect, the corrections (retract, reprocess) on stream deliveries, and the
producer (keys, batching, retries on throttling). The
consumer over real moto Kinesis batches and the parity with the batch engine are in tests/handlers/test_streams.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import boto3
import pytest

from etl_jobs import ledger, pipeline, produce, streams
from etl_jobs.sample import generate
from etl_jobs.zones import Zones
from tests.support.faults import Crash, crash_after
from tests.support.moto_server import MotoServer
from tests.support.orders import row
from tests.support.streams import batch_reference, contract_rows, create_stream, read_curated

RUN_DATE = date(2024, 5, 4)
BASE = 49590338271490256608559692538361571095921575989136588898  # a real-looking Kinesis sequence number


def records(*lines: str, start: int = 0) -> list[streams.StreamRecord]:
    return [
        streams.StreamRecord(str(BASE + (start + i) * 10**20), line.encode() + b"\n") for i, line in enumerate(lines)
    ]


def stage(zones: Zones, shard: str, items: list[streams.StreamRecord]) -> None:
    streams.consume(zones, streams.Batch("orders", shard, tuple(items)))


LINES = [
    row("A", order_ts="2024-05-01T10:00:00Z", amount="1.00"),
    row("B", status="lost"),
    row("A", order_ts="2024-05-01T10:00:00Z", amount="2.00"),  # the same order_ts: the later record wins
    row("C", order_ts="2024-05-02T10:00:00Z"),
    row("A", order_ts="2024-05-03T10:00:00Z", amount="3.00"),  # later: moves A to 2024-05-03
    row("D", order_ts="2024-05-01T09:00:00Z"),
]


def test_overlapping_redeliveries_with_real_sequence_numbers_are_delivered_once(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    shard0 = records(*LINES[:5])
    stage(zones, "shardId-000000000000", shard0[:3])
    stage(zones, "shardId-000000000000", shard0[1:])  # a retry that started at the second record
    stage(zones, "shardId-000000000000", shard0[:3])  # the first batch again: it overwrites itself
    stage(zones, "shardId-000000000001", records(LINES[5], start=7))
    result = streams.compact(zones, RUN_DATE, max_quarantine_rate=1.0)
    assert sorted((c["shard"], c["records"]) for c in result["collected"]) == [
        ("shardId-000000000000", 5),
        ("shardId-000000000001", 1),
    ]
    assert result["rows_in"] == 6 and result["rows_in"] == result["rows_curated"] + result["rows_quarantined"]
    assert contract_rows(read_curated(zones)) == batch_reference(tmp_path, [r.encode() + b"\n" for r in LINES])
    entries, _ = ledger.read_ledger(zones, streams.DEFAULT_SOURCE)
    assert streams.marks(entries) == {
        "shardId-000000000000": BASE + 4 * 10**20,
        "shardId-000000000001": BASE + 7 * 10**20,
    }
    # A late re-delivery of records already delivered changes nothing.
    stage(zones, "shardId-000000000000", shard0[2:4])
    assert streams.compact(zones, RUN_DATE)["records"] == 0


def test_two_collects_at_once_deliver_each_record_once(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    for shard in range(4):
        stage(zones, f"shardId-00000000000{shard}", records(*(row(f"S{shard}-{i}") for i in range(20)), start=shard))
    results: list[dict[str, object]] = []
    threads = [threading.Thread(target=lambda: results.append(streams.collect(zones, RUN_DATE))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries, _ = ledger.read_ledger(zones, streams.DEFAULT_SOURCE)
    assert sorted(e["stream"]["shard"] for e in entries) == [f"shardId-00000000000{s}" for s in range(4)]
    assert sum(e["stream"]["records"] for e in entries) == 80 and [e["seq"] for e in entries] == [1, 2, 3, 4]


def test_a_collect_killed_before_its_ledger_update_is_redone_by_the_next(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    stage(zones, "shardId-000000000000", records(*LINES))
    with pytest.raises(Crash), crash_after(1, "/deliveries/orders-stream/"):
        streams.collect(zones, RUN_DATE)  # the raw copy is written, the ledger is not
    assert ledger.read_ledger(zones, streams.DEFAULT_SOURCE) == ([], None)
    result = streams.compact(zones, RUN_DATE, max_quarantine_rate=1.0)
    assert result["records"] == 6 and result["rows_curated"] == 3


def test_a_stream_delivery_can_be_retracted_and_reprocessed(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path / "lake"))
    stage(zones, "shardId-000000000000", records(*LINES[:2]))
    streams.compact(zones, RUN_DATE, max_quarantine_rate=1.0)
    stage(zones, "shardId-000000000000", records(LINES[4], start=5))
    streams.compact(zones, RUN_DATE, max_quarantine_rate=1.0)
    assert read_curated(zones).filter(order_id="A")["amount"].cast(str).to_list() == ["3.00"]
    retracted = pipeline.retract(zones, "orders-stream/seq=2", RUN_DATE)
    assert retracted["moves"] == ["2024-05-03->2024-05-01"]  # A's earlier version (seq 1) is back
    assert read_curated(zones).filter(order_id="A")["amount"].cast(str).to_list() == ["1.00"]
    marked = pipeline.reprocess(zones, RUN_DATE, RUN_DATE, RUN_DATE, streams.DEFAULT_SOURCE)
    assert [d["seq"] for d in marked["deliveries"]] == [1, 2]
    again = streams.compact(zones, RUN_DATE, max_quarantine_rate=1.0)
    assert again["records"] == 0 and [f["seq"] for f in again["files"]] == [1]  # retracted deliveries stay retracted
    assert json.loads(json.dumps(again["files"][0]))["rows_curated"] == 1


class ThrottlingKinesis:
    """A PutRecords that refuses every other record once with ProvisionedThroughputExceededException, as a shard
    over its write limit does (a stand-in: moto's Kinesis never throttles)."""

    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []
        self.accepted: list[tuple[str, bytes]] = []
        self.refused_once: set[bytes] = set()

    def put_records(self, StreamName: str, Records: list[dict[str, object]]) -> dict[str, object]:
        self.calls.append([r["Data"] for r in Records])  # type: ignore[misc]
        results: list[dict[str, str]] = []
        for index, record in enumerate(Records):
            data = record["Data"]
            assert isinstance(data, bytes) and isinstance(record["PartitionKey"], str)
            if index % 2 and data not in self.refused_once:
                self.refused_once.add(data)
                results.append({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"})
            else:
                self.accepted.append((record["PartitionKey"], data))  # type: ignore[arg-type]
                results.append({"SequenceNumber": str(len(self.accepted)), "ShardId": "shardId-000000000000"})
        return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}


def test_the_producer_sends_every_generated_order_keyed_by_order_id_retrying_throttled_records() -> None:
    client, pauses = ThrottlingKinesis(), []
    summary = produce.produce(client, "orders", rate=300, seconds=2, seed=4, sleep=pauses.append)
    assert (summary["records"], summary["sent"], summary["failed"]) == (600, 600, 0)
    assert summary["throttled"] == summary["retries"] > 0 and max(len(call) for call in client.calls) <= 500
    expected = produce.split_records(generate(600, 0.01, 4).data)
    assert sorted(data for _, data in client.accepted) == sorted(expected)
    keys = {data: key for key, data in client.accepted}
    assert all(keys[data] == data.split(b",", 1)[0].decode() for data in expected if data.startswith(b"ORD-"))
    assert any(pause >= 0.9 for pause in pauses), "the second second waits for its turn"


def test_split_records_keeps_quoted_line_breaks_inside_their_record() -> None:
    data = b'order_id,customer_id\nA,"two\nlines"\n\nB,plain\r\n'
    assert produce.split_records(data) == [b'A,"two\nlines"\n', b"B,plain\n"]
    assert produce.partition_key(b'"",x\n', 7) == "record-7"


def test_the_producer_command_sends_to_a_real_stream_and_refuses_bad_arguments(moto_server: MotoServer) -> None:
    moto_server.reset()
    env = {**os.environ, **moto_server.client_environment()}
    kinesis = boto3.client(
        "kinesis",
        endpoint_url=moto_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    create_stream(kinesis, "demo", shards=1)
    argv = [sys.executable, "-m", "etl_jobs.produce", "--stream", "demo", "--rate", "40", "--seconds", "1"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sent"] == 40
    (shard,) = kinesis.list_shards(StreamName="demo")["Shards"]
    iterator = kinesis.get_shard_iterator(StreamName="demo", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    assert len(kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]) == 40
    bad = subprocess.run(
        [*argv[:-4], "--rate", "0", "--seconds", "1"], env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "--rate, --seconds and --attempts must be at least 1" in bad.stderr
    missing = subprocess.run([*argv[:4], "nope", *argv[5:]], env=env, capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "stream 'nope' does not exist" in missing.stderr
