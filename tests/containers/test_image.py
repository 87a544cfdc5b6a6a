"""The ETL image, built and run on a real Docker engine (started by tests/containers/engine.py when needed).

Builds containers/etl/Dockerfile from the offline Debian base (`BASE_IMAGE` build arg) and runs each stage the way ECS
will: read-only root filesystem with a tmpfs /tmp, as UID 10001, zones from ETL_*_URI. Once against a folder mounted
at /data with no network at all, once against the moto S3 server on the host network.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

import boto3
import polars as pl
import pytest

from components.images import context_files
from tests.containers.conftest import DOCKERFILE, UID, BuiltImage, build_image
from tests.containers.engine import Engine
from tests.support.moto_server import MotoServer
from tests.support.stage_runs import LANDING_KEY, ZONES, Expected, Runner, check_accounting, run_stages

pytestmark = [pytest.mark.docker, pytest.mark.slow]
sample = pytest.importorskip("etl_jobs.sample", reason="etl_jobs.sample is not there yet")

ROWS, ERROR_RATE, SEED = 3000, 0.05, 5
# What ECS will enforce: readonlyRootFilesystem with a scratch volume on /tmp.
HARDENING = ["--read-only", "--tmpfs", "/tmp:rw,size=256m", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]


def docker_runner(engine: Engine, image: str, network: str, volumes: Mapping[str, str] | None = None) -> Runner:
    def run(command: list[str], environment: Mapping[str, str]) -> tuple[int, str, str]:
        args = ["run", "--rm", "--network", network, *HARDENING]
        for host, container in (volumes or {}).items():
            args += ["-v", f"{host}:{container}"]
        for name, value in sorted(environment.items()):
            args += ["-e", f"{name}={value}"]
        done = engine.docker(*args, image, *command, check=False, timeout=300)
        return done.returncode, done.stdout, done.stderr

    return run


def test_image_metadata(engine: Engine, etl_image: BuiltImage) -> None:
    config = json.loads(engine.docker("image", "inspect", "--format", "{{json .Config}}", etl_image.ref).stdout)
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["python", "-m", "etl_jobs"]
    assert config["Cmd"] == ["--help"]
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]
    assert "PYTHONUNBUFFERED=1" in config["Env"]
    size = int(engine.docker("image", "inspect", "--format", "{{.Size}}", etl_image.ref).stdout)
    print(f"\nimage {etl_image.ref}: {size / 1e6:.0f} MB, built in {etl_image.seconds:.1f} s (0 = cached tag)")
    assert size < 1_000_000_000


def test_runs_as_the_fixed_non_root_uid(engine: Engine, etl_image: BuiltImage) -> None:
    done = engine.docker("run", "--rm", "--network", "none", *HARDENING, "--entrypoint", "id", etl_image.ref)
    assert done.stdout.split()[0] == f"uid={UID}(etl)"
    # The code and the venv are root-owned: the job cannot rewrite itself even without the read-only root.
    probe = "import pathlib; pathlib.Path('/app/etl_jobs/x').write_text('x')"
    done = engine.docker(
        "run", "--rm", "--network", "none", "--entrypoint", "python", etl_image.ref, "-c", probe, check=False
    )
    assert done.returncode != 0 and "Permission denied" in done.stderr


def test_default_command_prints_help(engine: Engine, etl_image: BuiltImage) -> None:
    done = engine.docker("run", "--rm", "--network", "none", *HARDENING, etl_image.ref)
    assert "usage:" in done.stdout
    for stage in ("extract", "transform", "validate", "load"):
        assert stage in done.stdout


def test_read_only_root_is_enforced(engine: Engine, etl_image: BuiltImage) -> None:
    script = "import pathlib; pathlib.Path('/tmp/ok').write_text('1'); pathlib.Path('/app/no').write_text('1')"
    done = engine.docker(
        "run",
        "--rm",
        "--network",
        "none",
        *HARDENING,
        "--entrypoint",
        "python",
        etl_image.ref,
        "-c",
        script,
        check=False,
    )
    assert done.returncode != 0
    assert "Read-only file system" in done.stderr  # /tmp worked, /app did not


def test_four_stages_on_a_mounted_folder_without_network(engine: Engine, etl_image: BuiltImage, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # written by UID 10001 inside the container
    generated = sample.generate(ROWS, ERROR_RATE, SEED)
    landed = data / "zones" / "raw" / LANDING_KEY
    landed.parent.mkdir(parents=True)
    for folder in landed.relative_to(data).parents:
        (data / folder).chmod(0o777)  # extract writes raw/run_date=.../ next to landing/
    landed.write_bytes(generated.data)
    environment = {f"ETL_{zone.upper()}_URI": f"/data/zones/{zone}" for zone in ZONES}
    runner = docker_runner(engine, etl_image.ref, "none", {str(data): "/data"})
    results = run_stages(
        runner,
        environment,
        lambda uri: (data / uri.removeprefix("/data/")).read_bytes(),
        "/data/results/exec-1",
    )
    expected = Expected(generated.rows_in, generated.rows_quarantined, generated.rows_curated)
    check_accounting(results, expected)
    curated = sorted((data / "zones" / "curated").glob("order_date=*/part-00000.parquet"))
    assert len(curated) == len(results["load"]["partitions"])
    assert sum(pl.read_parquet(path).height for path in curated) == expected.rows_curated
    assert any((data / "zones" / "quarantine").rglob("*")), "nothing in the quarantine zone"


def test_four_stages_against_the_s3_emulator(engine: Engine, etl_image: BuiltImage, moto: MotoServer) -> None:
    env = moto.client_environment()
    s3 = boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    for bucket in ("results", *ZONES):
        s3.create_bucket(Bucket=f"etl-img-{bucket}")
    generated = sample.generate(ROWS, ERROR_RATE, SEED + 1)
    s3.put_object(Bucket="etl-img-raw", Key=f"orders/{LANDING_KEY}", Body=generated.data)
    environment = {**env, **{f"ETL_{zone.upper()}_URI": f"s3://etl-img-{zone}/orders" for zone in ZONES}}

    def read(uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    # Host network: the container reaches moto on 127.0.0.1, as a task reaches S3 through its VPC endpoint.
    results = run_stages(
        docker_runner(engine, etl_image.ref, "host"),
        environment,
        read,
        "s3://etl-img-results/executions/exec-1",
    )
    expected = Expected(generated.rows_in, generated.rows_quarantined, generated.rows_curated)
    check_accounting(results, expected)
    rows = 0
    for item in s3.list_objects_v2(Bucket="etl-img-curated", Prefix="orders/order_date=")["Contents"]:
        rows += pl.read_parquet(
            io.BytesIO(s3.get_object(Bucket="etl-img-curated", Key=item["Key"])["Body"].read())
        ).height
    assert rows == expected.rows_curated


def test_code_change_rebuilds_only_the_code_layer(engine: Engine, etl_image: BuiltImage, tmp_path: Path) -> None:
    """The dependency layer is cached across code changes: only the last COPY differs, and the build is quick."""
    root = tmp_path / "context"
    for relative in [*context_files(etl_image.context_root, DOCKERFILE), DOCKERFILE, DOCKERFILE + ".dockerignore"]:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(etl_image.context_root / relative, target)
    (root / "etl_jobs" / "_changed.py").write_text(f"CHANGED = {time.time()!r}\n")
    ref = etl_image.ref.rsplit(":", 1)[0] + ":code-change"
    seconds = build_image(engine, root, etl_image.build_args, ref)
    print(f"\nwarm build after a code change: {seconds:.1f} s")
    try:
        layers = [
            json.loads(engine.docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", image).stdout)
            for image in (etl_image.ref, ref)
        ]
        assert layers[0][:-1] == layers[1][:-1], "a code change invalidated a layer before the source COPY"
        assert layers[0][-1] != layers[1][-1]
        assert seconds < 60
    finally:
        engine.docker("image", "rm", ref, check=False)
