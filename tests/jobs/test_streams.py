"""`etl_jobs.streams` on local zones: real Kinesis sequence numbers (56 digits), overlapping re-deliveries, two
collects at once, a crash inside collect, and the corrections (retract, reprocess) on stream deliveries. The
consumer over real moto Kinesis batches and the parity with the batch engine are in tests/handlers/test_streams.py."""

from __future__ import annotations

import json
import threading
from datetime import date
from pathlib import Path

import pytest

from etl_jobs import ledger, pipeline, streams
from etl_jobs.zones import Zones
from tests.support.faults import Crash, crash_after
from tests.support.orders import row
from tests.support.streams import batch_reference, contract_rows, read_curated

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
