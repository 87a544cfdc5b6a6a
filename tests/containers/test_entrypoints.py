"""The container entry point, as plain host processes: `python -m etl_jobs <stage> --run-date D --source S
--result-uri URI` against the S3 emulator moves a sample landed under `landing/orders/` through all four stages, and
the results come back through the result URIs. No Docker needed, so this catches entry point breakage before any
image is built; tests/containers/test_image.py runs the same in the image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest

from etl_jobs import sample
from tests.support.lakes import REPO_ROOT, s3_client
from tests.support.moto_server import MotoServer
from tests.support.stage_runs import (
    LANDING_KEY,
    ZONES,
    Expected,
    Runner,
    check_accounting,
    run_stages,
    stage_argv,
)

ROWS, ERROR_RATE, SEED = 2000, 0.05, 11
RESULTS = "s3://etl-test-results/executions/exec-1"


def host_runner(moto: MotoServer) -> Runner:
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


def s3_setup(moto: MotoServer, data: bytes | None) -> tuple[Any, dict[str, str]]:
    """Zone buckets (each zone under the `orders` prefix), a results bucket, and the sample landed for `orders`."""
    moto.reset()
    s3 = s3_client(moto.client_environment())
    for bucket in ("results", *ZONES):
        s3.create_bucket(Bucket=f"etl-test-{bucket}")
    if data is not None:
        s3.put_object(Bucket="etl-test-raw", Key=f"orders/{LANDING_KEY}", Body=data)
    return s3, {f"ETL_{zone.upper()}_URI": f"s3://etl-test-{zone}/orders" for zone in ZONES}


def reader(s3: Any):  # type: ignore[no-untyped-def]
    def read(uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    return read


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    return moto_server


def test_four_stages_move_sample_data_through_s3(moto: MotoServer) -> None:
    generated = sample.generate(ROWS, ERROR_RATE, SEED)
    s3, environment = s3_setup(moto, generated.data)
    results = run_stages(host_runner(moto), environment, reader(s3), RESULTS)
    check_accounting(results, Expected(generated.rows_in, generated.rows_quarantined, generated.rows_curated))
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="etl-test-curated", Prefix="orders/order_date=")["Contents"]]
    assert keys and all(key.endswith("/part-00000.parquet") for key in keys)
    landing = s3.list_objects_v2(Bucket="etl-test-raw", Prefix="orders/landing/")
    assert landing["KeyCount"] == 0, "a processed file stays in landing"
    # The same commands again: nothing to claim, nothing to load.
    again = run_stages(host_runner(moto), environment, reader(s3), RESULTS + "-again")
    assert again["extract"]["claimed"] == [] and again["load"]["commit"] is None


def test_a_failed_quality_gate_exits_0_with_passed_false(moto: MotoServer) -> None:
    """`ecs:runTask.sync` fails the state on ANY non-zero exit: the gate must read `passed: false` instead."""
    generated = sample.generate(200, 0.5, SEED)
    s3, environment = s3_setup(moto, generated.data)
    run = host_runner(moto)
    assert run(stage_argv("extract", RESULTS + "/extract.json"), environment)[0] == 0
    assert run(stage_argv("transform", RESULTS + "/transform.json"), environment)[0] == 0
    code, _, stderr = run(stage_argv("validate", RESULTS + "/validate.json"), environment)
    assert code == 0, stderr
    result = json.loads(reader(s3)(RESULTS + "/validate.json"))
    assert result["passed"] is False and result["quarantine_rate"] > 0.1
    assert result["files_quarantined"][0]["file_reason"] == "quality_gate"


def test_extract_with_nothing_landed_completes_with_nothing_claimed(moto: MotoServer) -> None:
    s3, environment = s3_setup(moto, None)
    code, _, stderr = host_runner(moto)(stage_argv("extract", RESULTS + "/extract.json"), environment)
    assert code == 0, stderr
    assert json.loads(reader(s3)(RESULTS + "/extract.json"))["claimed"] == []


def test_a_stage_without_zones_is_a_usage_error_with_its_result_document(moto: MotoServer) -> None:
    s3, _ = s3_setup(moto, None)
    code, _, stderr = host_runner(moto)(stage_argv("load", RESULTS + "/load.json", "2001-01-01"), {})
    assert code == 2 and "ETL_RAW_URI" in stderr and "Traceback" not in stderr
    assert json.loads(reader(s3)(RESULTS + "/load.json")) == {
        "stage": "load",
        "status": "error",
        "error": next(line for line in stderr.splitlines() if line.startswith("error: ")).removeprefix("error: "),
        "exit_code": 2,
    }
