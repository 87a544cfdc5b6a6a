"""The pipeline against a real S3 API (moto server on 127.0.0.1): one bucket per zone, as deployed."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import polars as pl
import pytest

from etl_jobs import pipeline
from etl_jobs.sample import generate
from etl_jobs.zones import Zones
from tests.jobs.conftest import RUN_DATE, assert_accounting, read_curated, read_quarantine
from tests.jobs.test_hostile_input import csv_bytes, row

BUCKETS = {"raw": "acme-raw-1234", "staged": "acme-staged-1234", "curated": "acme-curated-1234"}


def _zones(s3: Any) -> Zones:
    for bucket in [*BUCKETS.values(), "acme-quarantine-1234", "acme-landing"]:
        s3.create_bucket(Bucket=bucket)
    return Zones(
        raw="s3://acme-raw-1234/",
        staged="s3://acme-staged-1234/",
        curated="s3://acme-curated-1234/",
        quarantine="s3://acme-quarantine-1234/",
    )


def test_run_on_s3_zones(s3: Any) -> None:
    zones = _zones(s3)
    sample = generate(500, error_rate=0.05, seed=3)
    s3.put_object(Bucket="acme-landing", Key="in/orders.csv", Body=sample.data)
    manifest = pipeline.run("s3://acme-landing/in/orders.csv", zones, RUN_DATE)
    assert manifest["status"] == "succeeded"
    assert manifest["quarantine_reasons"] == dict(sorted(sample.reasons.items()))
    assert_accounting(manifest)
    raw = s3.get_object(Bucket="acme-raw-1234", Key="run_date=2024-05-04/orders/orders.csv")["Body"].read()
    assert raw == sample.data
    curated = read_curated(zones)
    assert curated.height == sample.rows_curated
    assert curated["order_id"].is_unique().all()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="acme-curated-1234")["Contents"]]
    assert all(k.startswith(("order_date=", "_loads/")) for k in keys)
    quarantine = read_quarantine(zones)
    assert quarantine.group_by("reason").len().sort("reason").rows() == sorted(sample.reasons.items())
    stored = s3.get_object(Bucket="acme-quarantine-1234", Key="_manifests/run_date=2024-05-04/manifest.json")
    assert json.loads(stored["Body"].read())["rows_in"] == 500


def test_stage_cli_on_s3_with_zones_from_the_environment(s3: Any, moto_server: Any) -> None:
    zones = _zones(s3)
    s3.put_object(Bucket="acme-landing", Key="orders.csv", Body=csv_bytes(row("O1"), row("O2", amount="-1")))
    env = {
        **os.environ,
        **moto_server.client_environment(),
        "ETL_RAW_URI": zones.raw,
        "ETL_STAGED_URI": zones.staged,
        "ETL_CURATED_URI": zones.curated,
        "ETL_QUARANTINE_URI": zones.quarantine,
    }
    steps = [
        ["extract", "--input", "s3://acme-landing/orders.csv"],
        ["transform"],
        ["validate", "--max-quarantine-rate", "0.5"],
        ["load"],
    ]
    outputs = []
    for step in steps:
        done = subprocess.run(
            [sys.executable, "-m", "etl_jobs", *step, "--run-date", "2024-05-04", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout))
    assert outputs[2]["passed"] is True and outputs[2]["reasons"] == {"invalid_amount": 1}
    assert outputs[3]["rows_curated"] == 1
    body = s3.get_object(Bucket="acme-curated-1234", Key="order_date=2024-05-01/part-2024-05-04.parquet")["Body"]
    assert pl.read_parquet(io.BytesIO(body.read()))["order_id"].to_list() == ["O1"]


def test_missing_source_object_is_a_clear_error(s3: Any) -> None:
    zones = _zones(s3)
    with pytest.raises(FileNotFoundError, match=r"s3://acme-landing/nope\.csv does not exist"):
        pipeline.extract("s3://acme-landing/nope.csv", zones, RUN_DATE)
