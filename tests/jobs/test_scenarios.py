"""The engine-agnostic multi-day scenario (tests/support/scenarios.py) through the CLI as separate processes, on local
files and on S3 (moto), for every registered engine: curated equals the contract's fold after every day."""

from __future__ import annotations

from pathlib import Path

from tests.support.lakes import LocalLake, S3Lake
from tests.support.moto_server import MotoServer
from tests.support.scenarios import multi_day


def test_multi_day_scenario_on_local_files(engine_name: str, tmp_path: Path) -> None:
    multi_day(LocalLake(tmp_path / "lake", engine_name))


def test_multi_day_scenario_on_s3(engine_name: str, moto_server: MotoServer) -> None:
    moto_server.reset()
    multi_day(S3Lake(moto_server.client_environment(), engine_name))
