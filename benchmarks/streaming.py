"""Benchmark the stream path: the consumer in process, and a bounded producer -> stream -> consumer run on moto.

    python benchmarks/streaming.py [--repeat 3] [--load-records 5000] [--load-rate 2500] [--json]

1. Consumer throughput: `etl_jobs.streams.consume` (the contract on a micro-batch, its valid rows, quarantined
   rows and records.json written to local files) on batches of 100, 1,000 and 10,000 generated records (1% faults),
   `--repeat` times each; records/s best and median.
2. Load: a moto server (a thread on 127.0.0.1) with a 2-shard stream; `etl_jobs.produce` sends `--load-records`
   records at `--load-rate` records/s; a poller reads each shard with GetRecords (batches of 1,000) and consumes
   every batch into an S3 lake on the same server; then `streams.compact`. Zero loss: every record sent is in a
   delivery, and rows in = rows curated + rows quarantined. Bounded: a fixed record count, a 300 s deadline, and
   only loopback traffic.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from etl_jobs import produce, streams  # noqa: E402
from etl_jobs.sample import generate  # noqa: E402
from etl_jobs.zones import Zones  # noqa: E402

RUN_DATE = date(2024, 5, 4)
BATCH_SIZES = (100, 1_000, 10_000)
DEADLINE_S = 300


def batch_of(records: list[bytes], shard: str = "shardId-000000000000") -> streams.Batch:
    return streams.Batch(
        stream="bench",
        shard=shard,
        records=tuple(streams.StreamRecord(str(10**20 + i), data, f"k{i}", 0.0) for i, data in enumerate(records)),
    )


def consumer_throughput(repeat: int) -> list[dict[str, Any]]:
    records = produce.split_records(generate(max(BATCH_SIZES), 0.01, seed=11).data)
    figures = []
    for size in BATCH_SIZES:
        rates = []
        for attempt in range(repeat):
            with tempfile.TemporaryDirectory() as folder:
                zones = Zones.under(folder)
                batch = batch_of(records[:size])
                start = time.perf_counter()
                result = streams.consume(zones, batch)
                elapsed = time.perf_counter() - start
                assert result["records"] == size, result
                rates.append(size / elapsed)
            del attempt
        figures.append(
            {
                "batch_size": size,
                "records_per_s_best": round(max(rates)),
                "records_per_s_median": round(statistics.median(rates)),
            }
        )
    return figures


def load_test(records: int, rate: int) -> dict[str, Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }
    os.environ.update(env)
    try:
        kinesis, s3 = boto3.client("kinesis"), boto3.client("s3")
        kinesis.create_stream(StreamName="bench", ShardCount=2)
        for zone in ("raw", "staged", "curated", "quarantine"):
            s3.create_bucket(Bucket=f"bench-{zone}")
        zones = Zones(**{zone: f"s3://bench-{zone}/" for zone in ("raw", "staged", "curated", "quarantine")})
        seconds = max(1, records // rate)
        start = time.perf_counter()
        sent = produce.produce(kinesis, "bench", rate=rate, seconds=seconds, seed=5, error_rate=0.01)
        produced_s = time.perf_counter() - start
        consumed = 0
        consume_start = time.perf_counter()
        for shard in [s["ShardId"] for s in kinesis.list_shards(StreamName="bench")["Shards"]]:
            iterator = kinesis.get_shard_iterator(StreamName="bench", ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
                "ShardIterator"
            ]
            while time.perf_counter() - start < DEADLINE_S:
                page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
                if not page["Records"]:
                    break
                batch = streams.Batch(
                    stream="bench",
                    shard=shard,
                    records=tuple(
                        streams.StreamRecord(r["SequenceNumber"], r["Data"], r["PartitionKey"]) for r in page["Records"]
                    ),
                )
                consumed += streams.consume(zones, batch)["records"]
                iterator = page["NextShardIterator"]
        consumed_s = time.perf_counter() - consume_start
        compact_start = time.perf_counter()
        result = streams.compact(zones, RUN_DATE, max_quarantine_rate=1.0)
        compact_s = time.perf_counter() - compact_start
    finally:
        server.stop()
        for key in env:
            os.environ.pop(key, None)
    lost = sent["sent"] - result["records"]
    return {
        "records_sent": sent["sent"],
        "producer_failed": sent["failed"],
        "producer_retries": sent["retries"],
        "produce_s": round(produced_s, 2),
        "records_consumed": consumed,
        "consume_records_per_s": round(consumed / consumed_s) if consumed_s else None,
        "records_in_deliveries": result["records"],
        "rows_in": result["rows_in"],
        "rows_curated": result["rows_curated"],
        "rows_quarantined": result["rows_quarantined"],
        "compact_s": round(compact_s, 2),
        "lost": lost,
        "accounting_adds_up": result["rows_in"] == result["rows_curated"] + result["rows_quarantined"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--load-records", type=int, default=5000)
    parser.add_argument("--load-rate", type=int, default=2500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {"consumer": consumer_throughput(args.repeat), "load": load_test(args.load_records, args.load_rate)}
    for row in figures["consumer"]:
        print(
            f"consumer, batch {row['batch_size']:>6}: {row['records_per_s_best']:>8} records/s best, "
            f"{row['records_per_s_median']:>8} median",
            file=sys.stderr,
        )
    load = figures["load"]
    verdict = (
        "zero loss" if load["lost"] == 0 and load["producer_failed"] == 0 and load["accounting_adds_up"] else "LOSS"
    )
    print(
        f"load: {load['records_sent']} sent in {load['produce_s']} s, consumed at {load['consume_records_per_s']} "
        f"records/s, compacted in {load['compact_s']} s: {load['rows_curated']} curated, {load['rows_quarantined']} "
        f"quarantined: {verdict}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0 if verdict == "zero loss" else 1


if __name__ == "__main__":
    raise SystemExit(main())
