"""The container entrypoints, as plain host processes: the exact commands the ECS task definitions run
(`python -m etl_jobs` + `components.images.stage_command(...)`), against the S3 emulator, move a sample through all
four stages. No Docker needed, so this runs everywhere and catches entrypoint breakage before any image is built."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Mapping

import boto3
import polars as pl
import pytest

from components.images import stage_command
from tests.containers.conftest import REPO_ROOT
from tests.containers.stages import RUN_DATE, ZONES, Expected, check_accounting, run_stages
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


def s3_setup(moto: MotoServer, data: bytes) -> tuple[object, str, dict[str, str]]:
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, **_credentials(moto))
    for bucket in ("landing", *ZONES):
        s3.create_bucket(Bucket=f"etl-test-{bucket}")
    s3.put_object(Bucket="etl-test-landing", Key="orders/orders.csv", Body=data)
    environment = {f"ETL_{zone.upper()}_URI": f"s3://etl-test-{zone}/orders" for zone in ZONES}
    return s3, "s3://etl-test-landing/orders/orders.csv", environment


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


def test_stage_commands_are_what_ecs_runs() -> None:
    assert stage_command("extract", RUN_DATE, "s3://b/k") == [
        "extract",
        "--run-date",
        RUN_DATE,
        "--json",
        "--input",
        "s3://b/k",
    ]
    assert stage_command("load", RUN_DATE) == ["load", "--run-date", RUN_DATE, "--json"]
    with pytest.raises(ValueError, match="unknown stage 'publish'"):
        stage_command("publish", RUN_DATE)
    with pytest.raises(ValueError, match="input_uri is required for extract"):
        stage_command("extract", RUN_DATE)


def test_four_stages_move_sample_data_through_s3(moto: MotoServer) -> None:
    generated = sample.generate(ROWS, ERROR_RATE, SEED)
    s3, input_uri, environment = s3_setup(moto, generated.data)
    results = run_stages(host_runner(moto), input_uri, environment)
    expected = Expected(generated.rows_in, generated.rows_quarantined, generated.rows_curated)
    check_accounting(results, expected)
    assert all(uri.startswith("s3://etl-test-curated/") for uri in results["load"]["curated_files"])
    assert curated_rows(s3, results["load"]["curated_files"]) == expected.rows_curated
    quarantined = s3.list_objects_v2(Bucket="etl-test-quarantine").get("KeyCount", 0)
    assert quarantined > 0, "rows were quarantined but nothing was written to the quarantine zone"


def test_a_stage_without_its_input_fails_cleanly(moto: MotoServer) -> None:
    """A task started out of order must fail with a usage error, not crash or write garbage."""
    environment = {f"ETL_{zone.upper()}_URI": f"s3://etl-test-{zone}/empty" for zone in ZONES}
    code, _, stderr = host_runner(moto)(stage_command("load", "2001-01-01"), environment)
    assert code != 0
    assert "error" in stderr.lower()
