"""Fixtures for the job tests: a moto S3 server on 127.0.0.1 (one per session, emptied per test) and run helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest

from etl_jobs import pipeline, storage
from etl_jobs.zones import Zones
from tests.support.moto_server import MotoServer, running_moto

RUN_DATE = date(2024, 5, 4)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.fixture
def s3(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A boto3 S3 client on an empty moto server; the jobs in this process talk to the same server."""
    moto_server.reset()
    for key, value in moto_server.client_environment().items():
        monkeypatch.setenv(key, value)
    storage._client.cache_clear()
    client = boto3.client("s3")
    yield client
    storage._client.cache_clear()


@dataclass
class RunResult:
    manifest: dict[str, Any]
    curated: pl.DataFrame
    quarantine: pl.DataFrame
    zones: Zones


def read_curated(zones: Zones) -> pl.DataFrame:
    files = [uri for uri in storage.list_files(zones.curated) if uri.endswith(".parquet")]
    frames = []
    for uri in files:
        order_date = date.fromisoformat(uri.split("order_date=")[1][:10])
        frames.append(pipeline._read_parquet(uri).with_columns(order_date=pl.lit(order_date)))
    if not frames:
        return pl.DataFrame(schema={"order_id": pl.String})
    return pl.concat(frames).sort("order_id")


def read_quarantine(zones: Zones, run_date: date = RUN_DATE) -> pl.DataFrame:
    uri = pipeline.quarantine_uri(zones, run_date)
    if not storage.exists(uri):
        return pl.DataFrame(schema={"line": pl.Int64, "reason": pl.String, "raw_line": pl.String})
    return pipeline._read_parquet(uri).sort("line")


def run_bytes(
    tmp_path: Path, data: bytes, *, name: str = "orders.csv", run_date: date = RUN_DATE, **kwargs: Any
) -> RunResult:
    """Write `data` as a local source file and run the whole pipeline under tmp_path/out.

    Small hand-written inputs have high fault rates, so the quarantine-rate batch rule is off unless asked for.
    """
    kwargs.setdefault("max_quarantine_rate", 1.0)
    source = tmp_path / name
    source.write_bytes(data)
    zones = Zones.under(str(tmp_path / "out"))
    manifest = pipeline.run(str(source), zones, run_date, **kwargs)
    return RunResult(manifest, read_curated(zones), read_quarantine(zones, run_date), zones)


def assert_accounting(manifest: dict[str, Any]) -> None:
    assert manifest["rows_in"] == manifest["rows_curated"] + manifest["rows_quarantined"]
    assert manifest["rows_quarantined"] == sum(manifest["quarantine_reasons"].values())


@pytest.fixture(autouse=True)
def _no_ambient_zones(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ETL_RAW_URI", "ETL_STAGED_URI", "ETL_CURATED_URI", "ETL_QUARANTINE_URI"):
        monkeypatch.delenv(var, raising=False)
    if "AWS_ENDPOINT_URL" in os.environ:
        monkeypatch.delenv("AWS_ENDPOINT_URL")
