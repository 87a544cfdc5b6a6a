"""The container entrypoints, as plain host processes: `python -m etl_jobs` with exactly the command lines the Step
Functions state machine sends the ECS tasks (`tests.containers.stages.state_machine_commands`), against the S3
emulator, move a sample landed under `landing/orders/` in the raw zone through all four stages. No Docker needed, so
this runs everywhere and catches entrypoint breakage before any image is built."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import boto3
import polars as pl
import pytest

from tests.containers.conftest import REPO_ROOT
from tests.containers.stages import (
    LANDING_KEY,
    RUN_DATE,
    ZONES,
    Expected,
    check_accounting,
    curated_files,
    run_stages,
    state_machine_commands,
)
from tests.support.moto_server import MotoServer

sample = pytest.importorskip("etl_jobs.sample", reason="etl_jobs.sample is not there yet")

ROWS, ERROR_RATE, SEED = 2000, 0.05, 11


def host_runner(moto: MotoServer):
    def run(command: list[str], environment: Mapping[str, str]) -> tuple[int, str, str]:
        env = {**os.environ, **moto.client_environment(), **environment}
        done = subprocess.run(
            [sys.executable, "-m", "etl_jobs", *command],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return done.returncode, done.stdout, done.stderr

    return run


RESULT_URI = "s3://etl-test-results/manifests/validation/exec-1.json"


def s3_setup(moto: MotoServer, data: bytes) -> tuple[Any, dict[str, str]]:
    """Zone buckets (each zone under the `orders` prefix), a results bucket, and the sample landed for `orders`."""
    moto.reset()
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, **_credentials(moto))
    for bucket in ("results", *ZONES):
        s3.create_bucket(Bucket=f"etl-test-{bucket}")
    s3.put_object(Bucket="etl-test-raw", Key=f"orders/{LANDING_KEY}", Body=data)
    environment = {f"ETL_{zone.upper()}_URI": f"s3://etl-test-{zone}/orders" for zone in ZONES}
    return s3, environment


def s3_reader(s3: Any):  # type: ignore[no-untyped-def]
    def read(uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    return read


def _credentials(moto: MotoServer) -> dict[str, str]:
    env = moto.client_environment()
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": env["AWS_SESSION_TOKEN"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


def curated_rows(s3, uris: list[str]) -> int:  # type: ignore[no-untyped-def]
    total = 0
    for uri in uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body[:4] == b"PAR1", f"{uri} is not Parquet"
        total += pl.read_parquet(io.BytesIO(body)).height
    return total


def test_the_commands_are_what_the_state_machine_sends() -> None:
    assert state_machine_commands("s3://b/manifests/validation/x.json") == [
        ["extract", "--run-date", RUN_DATE, "--source", "orders"],
        ["transform", "--run-date", RUN_DATE, "--source", "orders"],
        [
            "validate",
            "--run-date",
            RUN_DATE,
            "--source",
            "orders",
            "--result-uri",
            "s3://b/manifests/validation/x.json",
        ],
        ["load", "--run-date", RUN_DATE, "--source", "orders"],
    ]


def test_four_stages_move_sample_data_through_s3(moto: MotoServer) -> None:
    generated = sample.generate(ROWS, ERROR_RATE, SEED)
    s3, environment = s3_setup(moto, generated.data)
    results = run_stages(host_runner(moto), environment, s3_reader(s3), RESULT_URI)
    expected = Expected(generated.rows_in, generated.rows_quarantined, generated.rows_curated)
    check_accounting(results, expected)
    assert all(uri.startswith("s3://etl-test-curated/") for uri in curated_files(results))
    assert curated_rows(s3, curated_files(results)) == expected.rows_curated
    staged = s3.list_objects_v2(Bucket="etl-test-staged")["Contents"]
    assert f"orders/run_date={RUN_DATE}/source=orders/part.parquet" in {item["Key"] for item in staged}
    quarantined = s3.list_objects_v2(Bucket="etl-test-quarantine").get("KeyCount", 0)
    assert quarantined > 0, "rows were quarantined but nothing was written to the quarantine zone"


def test_a_failed_validation_still_writes_the_result_document(moto: MotoServer) -> None:
    """`ecs:runTask.sync` ignores exit codes: the gate must find `passed: false` at the result URI."""
    generated = sample.generate(200, 0.5, SEED)
    s3, environment = s3_setup(moto, generated.data)
    run = host_runner(moto)
    extract, transform, validate, _ = state_machine_commands(RESULT_URI)
    assert run(extract, environment)[0] == 0
    assert run(transform, environment)[0] == 0
    code, _, stderr = run(validate, environment)
    assert code == 1, stderr
    result = json.loads(s3_reader(s3)(RESULT_URI))
    assert result["passed"] is False and result["quarantine_rate"] > 0.1


def test_extract_with_nothing_landed_is_a_usage_error(moto: MotoServer) -> None:
    environment = {f"ETL_{zone.upper()}_URI": f"s3://etl-test-{zone}/empty" for zone in ZONES}
    boto3.client("s3", endpoint_url=moto.endpoint, **_credentials(moto)).create_bucket(Bucket="etl-test-raw")
    code, _, stderr = host_runner(moto)(state_machine_commands(RESULT_URI)[0], environment)
    assert code == 2
    assert "nothing landed for source 'orders'" in stderr


def test_a_stage_without_its_input_fails_cleanly(moto: MotoServer) -> None:
    """A task started out of order must fail with a usage error, not crash or write garbage."""
    environment = {f"ETL_{zone.upper()}_URI": f"s3://etl-test-{zone}/empty" for zone in ZONES}
    code, _, stderr = host_runner(moto)(state_machine_commands(RESULT_URI, "2001-01-01")[3], environment)
    assert code != 0
    assert "error" in stderr.lower()
