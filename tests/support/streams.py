"""What the stream tests share: a stream on the moto server, orders to send through it, and the curated table read
back as the contract's rows (lineage aside, which differs between a stream and a file by design)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from etl_jobs import produce, storage
from etl_jobs.contract import CURATED_COLUMNS
from etl_jobs.sample import generate
from etl_jobs.streams import records_csv
from etl_jobs.zones import Zones
from tests.support.orders import row
from tests.support.runs import run_file

STREAM = "orders"


def create_stream(kinesis: Any, name: str = STREAM, shards: int = 2) -> None:
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})


def orders(rows: int = 240, seed: int = 7) -> list[bytes]:
    """Generated orders with the sample generator's faults, then versions that test the version order: an update
    with a later order_ts, one sent before the version it replaces (out of order), and two with the order_ts of the
    version they follow (equal timestamps: the later record wins)."""
    records = produce.split_records(generate(rows, 0.05, seed).data)
    updates = [
        row("ORD-000000001", order_ts="2024-05-03T23:00:00Z", status="shipped"),  # later: moves partition
        row("ORD-000000002", order_ts="2024-04-01T00:00:00Z", status="pending"),  # older, arrives late: loses
        row("LATE-1", order_ts="2024-05-02T10:00:00Z", status="delivered"),  # newer, sent first
        row("LATE-1", order_ts="2024-05-01T10:00:00Z", status="pending"),  # its older version, sent after it
        row("TIE-1", order_ts="2024-05-02T08:00:00Z", amount="1.00"),
        row("TIE-1", order_ts="2024-05-02T08:00:00Z", amount="2.00"),  # the same order_ts, later: wins
        row("TIE-1", order_ts="2024-05-02T08:00:00Z", amount="3.00"),  # and again
    ]
    return records + [line.encode() + b"\n" for line in updates]


def send(kinesis: Any, records: Sequence[bytes], stream: str = STREAM) -> None:
    summary = produce.Summary()
    keyed = [(produce.partition_key(data, index), data) for index, data in enumerate(records)]
    produce.put(kinesis, stream, keyed, summary)
    assert (summary.sent, summary.failed) == (len(records), 0)


def contract_rows(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    """Curated rows as the contract defines them (CURATED_COLUMNS), sorted: what a stream and a file must agree on."""
    return sorted(frame.select(list(CURATED_COLUMNS)).rows())


def read_curated(zones: Zones) -> pl.DataFrame:
    """Every published partition of curated (local or s3://), with its order_date."""
    frames = []
    for uri in storage.list_files(zones.curated):
        name = uri.removeprefix(zones.curated.rstrip("/") + "/")
        if name.startswith("order_date=") and name.endswith(".parquet"):
            day = name.split("/", 1)[0].removeprefix("order_date=")
            frame = pl.read_parquet(io.BytesIO(storage.read_bytes(uri)))
            frames.append(frame.with_columns(order_date=pl.lit(day).str.to_date()))
    return pl.concat(frames) if frames else pl.DataFrame()


def batch_reference(tmp_path: Path, records: Sequence[bytes]) -> list[tuple[Any, ...]]:
    """What the batch engine makes of `records` as one file in the order given (the gate off, as for the stream)."""
    return contract_rows(run_file(tmp_path / "batch", records_csv(records)).curated)
