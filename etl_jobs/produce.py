"""`python -m etl_jobs.produce --stream NAME --rate N --seconds S`: send generated orders to a Kinesis stream.

For tests, demos and load. The orders come from the sample generator (`etl_jobs.sample`, with its faults at
`--error-rate`), one CSV record per Kinesis record (the record format of `etl_jobs.streams`), the order id as the
partition key (so every version of an order goes through one shard, in order; a record without an order id is keyed
by its position). `--rate` records a second are sent in PutRecords calls of at most 500 records and 5 MiB; records
the stream refuses (`ProvisionedThroughputExceededException`, `InternalFailure`) are sent again with exponential
backoff and full jitter, up to `--attempts` times. A retried record may arrive after a later record of its order:
the version order is order_ts first, so only versions with equal timestamps are affected. The AWS endpoint and
credentials come from the usual environment (`AWS_ENDPOINT_URL` points it at an emulator).

Prints a JSON summary (sent, failed, retries, throttled, elapsed); exits 0 when every record was accepted, 4 when
some were not after their attempts, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from etl_jobs.sample import generate

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
RETRYABLE = {"ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException"}
BASE_DELAY_S = 0.05
MAX_DELAY_S = 2.0


def split_records(data: bytes) -> list[bytes]:
    """The data records of an orders CSV file (header and blank lines dropped), each one CSV record ending in a
    line feed; a quoted field may hold line breaks (a record spans lines while its quotes are open)."""
    records: list[bytes] = []
    pending: list[bytes] = []
    for line in data.splitlines(keepends=True):
        pending.append(line)
        if b"".join(pending).count(b'"') % 2:
            continue  # a quoted field is still open: the record goes on
        record = b"".join(pending)
        pending = []
        if record.strip():
            records.append(record.rstrip(b"\r\n") + b"\n")
    if pending and b"".join(pending).strip():
        records.append(b"".join(pending).rstrip(b"\r\n") + b"\n")
    return records[1:]  # the header


def partition_key(record: bytes, index: int) -> str:
    """The record's order id (its first field, trimmed), or its position when it has none."""
    first = record.split(b",", 1)[0].strip().strip(b'"').decode("utf-8", "replace").strip()
    return first[:256] if first else f"record-{index}"


@dataclass
class Summary:
    sent: int = 0
    failed: int = 0
    retries: int = 0
    throttled: int = 0
    calls: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def _chunks(items: Sequence[tuple[str, bytes]]) -> list[list[tuple[str, bytes]]]:
    chunks: list[list[tuple[str, bytes]]] = []
    size = 0
    for key, data in items:
        weight = len(data) + len(key.encode())
        if not chunks or len(chunks[-1]) == MAX_RECORDS_PER_CALL or size + weight > MAX_BYTES_PER_CALL:
            chunks.append([])
            size = 0
        chunks[-1].append((key, data))
        size += weight
    return chunks


def put(
    client: Any,
    stream: str,
    records: Sequence[tuple[str, bytes]],
    summary: Summary,
    *,
    attempts: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> None:
    """Send (partition key, data) pairs, retrying what the stream refuses; counts go to `summary`."""
    rng = rng or random.Random()
    for chunk in _chunks(records):
        todo = chunk
        for attempt in range(attempts):
            summary.calls += 1
            response = client.put_records(
                StreamName=stream, Records=[{"Data": data, "PartitionKey": key} for key, data in todo]
            )
            refused = [
                (item, result)
                for item, result in zip(todo, response["Records"], strict=True)
                if result.get("ErrorCode")
            ]
            summary.sent += len(todo) - len(refused)
            retryable = [(item, r) for item, r in refused if r["ErrorCode"] in RETRYABLE]
            for _, result in refused:
                if result["ErrorCode"] not in RETRYABLE:
                    summary.errors[result["ErrorCode"]] = summary.errors.get(result["ErrorCode"], 0) + 1
                    summary.failed += 1
            summary.throttled += sum(r["ErrorCode"] == "ProvisionedThroughputExceededException" for _, r in retryable)
            todo = [item for item, _ in retryable]
            if not todo:
                break
            if attempt + 1 < attempts:
                summary.retries += len(todo)
                sleep(rng.uniform(0, min(MAX_DELAY_S, BASE_DELAY_S * 2**attempt)))
        else:
            summary.failed += len(todo)
            for _ in todo:
                summary.errors["retries exhausted"] = summary.errors.get("retries exhausted", 0) + 1


def produce(
    client: Any,
    stream: str,
    *,
    rate: int,
    seconds: int,
    seed: int = 0,
    error_rate: float = 0.01,
    attempts: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Send `rate` generated orders a second for `seconds` seconds; the summary."""
    if rate < 1 or seconds < 1:
        raise ValueError(f"--rate and --seconds must be at least 1, got {rate} and {seconds}")
    records = split_records(generate(rate * seconds, error_rate, seed).data)
    keyed = [(partition_key(record, index), record) for index, record in enumerate(records)]
    summary = Summary()
    rng = random.Random(seed)
    start = clock()
    for second in range(seconds):
        put(
            client, stream, keyed[second * rate : (second + 1) * rate], summary, attempts=attempts, sleep=sleep, rng=rng
        )
        wait = start + second + 1 - clock()
        if wait > 0 and second + 1 < seconds:
            sleep(wait)
    return {
        "stream": stream,
        "records": len(keyed),
        "sent": summary.sent,
        "failed": summary.failed,
        "retries": summary.retries,
        "throttled": summary.throttled,
        "calls": summary.calls,
        "errors": summary.errors,
        "elapsed_s": round(clock() - start, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etl_jobs.produce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stream", required=True, help="the Kinesis stream's name")
    parser.add_argument("--rate", type=int, required=True, help="records a second (at least 1)")
    parser.add_argument("--seconds", type=int, required=True, help="how long to send (at least 1)")
    parser.add_argument("--error-rate", type=float, default=0.01, help="share of faulty records, 0..1 (default 0.01)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attempts", type=int, default=8, help="sends per record before giving up (default 8)")
    args = parser.parse_args(argv)
    if args.rate < 1 or args.seconds < 1 or args.attempts < 1:
        parser.error("--rate, --seconds and --attempts must be at least 1")
    if not 0.0 <= args.error_rate <= 1.0:
        parser.error(f"--error-rate must be between 0 and 1, got {args.error_rate}")
    import boto3
    from botocore.config import Config

    client = boto3.client("kinesis", config=Config(retries={"mode": "standard", "max_attempts": 5}))
    try:
        summary = produce(
            client, args.stream, rate=args.rate, seconds=args.seconds, seed=args.seed, error_rate=args.error_rate,
            attempts=args.attempts,
        )  # fmt: skip
    except client.exceptions.ResourceNotFoundException:
        print(f"error: stream {args.stream!r} does not exist in this account and region", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0 if summary["failed"] == 0 else 4


if __name__ == "__main__":
    raise SystemExit(main())
