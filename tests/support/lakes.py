"""Lakes the scenario suite drives through `python -m etl_jobs` as separate processes: on local files, and on S3
(a moto server), with the engine to test. Both implement `tests.support.scenarios.Lake`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from tests.support.scenarios import CURATED_KEY, Delivery, curated_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
ZONES = ("raw", "staged", "curated", "quarantine")


class CommandFailed(AssertionError):
    pass


def s3_client(environment: Mapping[str, str]) -> Any:
    """A boto3 S3 client for the endpoint and credentials in `environment` (e.g. MotoServer.client_environment())."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        region_name=environment.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment.get("AWS_SESSION_TOKEN"),
    )


def read_with_duckdb(curated: Path) -> list[tuple[Any, ...]]:
    """The curated table as DuckDB reads a hive-partitioned Parquet folder (`order_date=*/*.parquet`): CURATED_KEY
    tuples sorted by order_id; [] when no partition exists."""
    if not list(curated.glob("order_date=*/*.parquet")):
        return []
    pattern = str(curated / "order_date=*" / "*.parquet")
    query = f"SELECT {', '.join(CURATED_KEY)} FROM read_parquet('{pattern}', hive_partitioning = true)"
    return sorted(duckdb.sql(query).fetchall())


def run_cli(argv: Sequence[str], env: Mapping[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m etl_jobs ARGV` in a fresh process from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "etl_jobs", *argv],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class _CliLake:
    engine: str
    env: dict[str, str]

    def command(self, *argv: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.json"
            done = run_cli([*argv, "--engine", self.engine, "--result-uri", str(result), "--quiet"], self.env)
            if done.returncode != 0:
                raise CommandFailed(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-4000:]}")
            payload: dict[str, Any] = json.loads(result.read_text())
            return payload

    def concurrently(self, runs: Sequence[Sequence[Sequence[str]]]) -> list[list[dict[str, Any]]]:
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            futures = [pool.submit(lambda commands: [self.command(*argv) for argv in commands], run) for run in runs]
            return [future.result() for future in futures]


class LocalLake(_CliLake):
    """Zones under one local folder (ETL_*_URI), as a container with a mounted volume sees them."""

    def __init__(self, root: Path, engine: str) -> None:
        self.root = root
        self.engine = engine
        self.env = {f"ETL_{zone.upper()}_URI": str(root / zone) for zone in ZONES}

    def land(self, delivery: Delivery) -> None:
        path = self.root / "raw" / "landing" / delivery.source / delivery.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(delivery.data)

    def curated(self) -> list[tuple[Any, ...]]:
        if not list((self.root / "curated").glob("order_date=*/*.parquet")):
            return []
        return read_with_duckdb(self.root / "curated")


class S3Lake(_CliLake):
    """One bucket per zone on a moto server, each zone under a prefix (as a deployment may share buckets)."""

    def __init__(self, environment: Mapping[str, str], engine: str, prefix: str = "lake") -> None:
        self.s3 = s3 = s3_client(environment)
        self.engine = engine
        self.prefix = prefix
        for zone in ZONES:
            s3.create_bucket(Bucket=f"acme-{zone}")
        self.env = {
            **environment,
            **{f"ETL_{zone.upper()}_URI": f"s3://acme-{zone}/{prefix}/" for zone in ZONES},
        }

    def land(self, delivery: Delivery) -> None:
        key = f"{self.prefix}/landing/{delivery.source}/{delivery.name}"
        self.s3.put_object(Bucket="acme-raw", Key=key, Body=delivery.data)

    def curated(self) -> list[tuple[Any, ...]]:
        listing = self.s3.list_objects_v2(Bucket="acme-curated", Prefix=f"{self.prefix}/order_date=")
        frames = []
        for item in listing.get("Contents", []):
            day = item["Key"].split("order_date=")[1].split("/")[0]
            body = self.s3.get_object(Bucket="acme-curated", Key=item["Key"])["Body"].read()
            frames.append(pl.read_parquet(io.BytesIO(body)).with_columns(order_date=pl.lit(day).str.to_date()))
        return curated_rows(pl.concat(frames)) if frames else []


class _InProcess:
    """Runs `python -m etl_jobs` in this process (`etl_jobs.cli.main`), for engines whose start-up is too slow to pay
    per command (Spark starts a JVM: ~40 commands of the scenario would take minutes). The CLI code path, arguments,
    result file and exit codes are the same; the lake's environment is set with the test's monkeypatch.
    `engine` is a name, or a function of the command's arguments giving one (a pipeline mixing engines)."""

    env: dict[str, str]
    route: Any
    engines_used: set[str]  # the engines the commands ran on

    def _setup(self, engine: str | Any, monkeypatch: Any) -> None:
        from etl_jobs import storage

        self.route = engine if callable(engine) else (lambda argv: engine)
        self.engine = engine if isinstance(engine, str) else "mixed"
        self.engines_used: set[str] = set()
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        storage._client.cache_clear()  # the S3 client is built from the environment once per process

    def command(self, *argv: str) -> dict[str, Any]:
        from etl_jobs import cli

        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.json"
            engine = self.route(argv)
            self.engines_used.add(engine)
            code = cli.main([*argv, "--engine", engine, "--result-uri", str(result), "--quiet"])
            payload: dict[str, Any] = json.loads(result.read_text())
            if code != 0:
                raise CommandFailed(f"{' '.join(argv)} exited {code}: {payload.get('error')}")
            return payload


class InProcessLocalLake(_InProcess, LocalLake):
    def __init__(self, root: Path, engine: str | Any, monkeypatch: Any) -> None:
        LocalLake.__init__(self, root, "")
        self._setup(engine, monkeypatch)


class InProcessS3Lake(_InProcess, S3Lake):
    def __init__(
        self, environment: Mapping[str, str], engine: str | Any, monkeypatch: Any, prefix: str = "lake"
    ) -> None:
        S3Lake.__init__(self, environment, "", prefix)
        self._setup(engine, monkeypatch)
