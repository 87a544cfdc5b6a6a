"""Fixtures of the job tests: the engine under test (every registered engine) and a clean environment.

Helpers live in tests/support; nothing here is imported by a test module."""

from __future__ import annotations

import os

import pytest

from etl_jobs.engines import available


@pytest.fixture(params=available())
def engine_name(request: pytest.FixtureRequest) -> str:
    """Each registered engine in turn (`--engine NAME`). For `spark`, the test session's one local SparkSession
    (tests/support/spark.py: local[2], two shuffle partitions) is started first, so every in-process engine uses it."""
    name: str = request.param
    if name == "spark":
        from tests.support.spark import local_session

        local_session()
    return name


@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("ETL_") or v == "AWS_ENDPOINT_URL"]:
        monkeypatch.delenv(var)
