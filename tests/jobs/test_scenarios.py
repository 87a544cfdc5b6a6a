"""The engine-agnostic multi-day scenario (tests/support/scenarios.py) through the CLI, on local files and on S3 (moto),
for every registered engine: curated equals the contract's fold after every day.

The Polars engine runs every command as a separate process (`python -m etl_jobs`). The Spark engine runs the same CLI
in this process (`tests.support.lakes.InProcess*Lake`: same code path, arguments, result file and exit codes) on the
test session's one SparkSession: a JVM per command would make the scenario's ~40 commands take minutes; on S3 it runs
in the last test only. The last test
mixes engines stage by stage on one lake (transform on Spark, validate on Polars, load on Spark, ...): each engine
reads what the other wrote, which is what running transform on one stage runner and validate on another means."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.lakes import InProcessLocalLake, InProcessS3Lake, LocalLake, S3Lake
from tests.support.moto_server import MotoServer
from tests.support.scenarios import multi_day
from tests.support.spark import local_session


def test_multi_day_scenario_on_local_files(engine_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if engine_name == "spark":
        multi_day(InProcessLocalLake(tmp_path / "lake", engine_name, monkeypatch))
    else:
        multi_day(LocalLake(tmp_path / "lake", engine_name))


def test_multi_day_scenario_on_s3(engine_name: str, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    if engine_name == "spark":
        pytest.skip(
            "the Spark engine on S3 runs in test_multi_day_scenario_mixing_engines_stage_by_stage (transform, load, "
            "retract and reprocess on Spark, on moto); a Spark-only pass on S3 too would not fit the Spark budget"
        )
    moto_server.reset()
    multi_day(S3Lake(moto_server.client_environment(), engine_name))


# Each command of the scenario on the engine named here: every stage's input was written by the other engine somewhere.
MIXED = {"extract": "polars", "transform": "spark", "validate": "polars", "load": "spark", "run": "polars"}
MIXED_OTHERWISE = "spark"  # retract, reprocess


def _mixed(argv: Sequence[str]) -> str:
    return MIXED.get(argv[0], MIXED_OTHERWISE)


def test_multi_day_scenario_mixing_engines_stage_by_stage(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_session()
    moto_server.reset()
    lake = InProcessS3Lake(moto_server.client_environment(), _mixed, monkeypatch)
    multi_day(lake)
    assert lake.engines_used == {"polars", "spark"}
