"""Fixtures of the job tests: the engine under test (every registered engine) and a clean environment.

Helpers live in tests/support; nothing here is imported by a test module."""

from __future__ import annotations

import os

import pytest

from etl_jobs.engines import available

# Engines that compute in a database: their tests get the session's PostgreSQL (tests/support/postgres.py) through
# the environment (ETL_DATABASE_DSN), as a deployment gives it to `python -m etl_jobs`.
DATABASE_ENGINES = frozenset({"postgres"})


@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("ETL_") or v == "AWS_ENDPOINT_URL"]:
        monkeypatch.delenv(var)


def _use_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    server = request.getfixturevalue("postgres_server")
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)


@pytest.fixture(params=available())
def engine_name(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, _no_ambient_configuration: None
) -> str:
    """Each registered engine in turn (`--engine NAME`), with its database when it needs one. For `spark`, the test
    session's one local SparkSession (tests/support/spark.py: local[2], two shuffle partitions) is started first, so
    every in-process engine uses it."""
    name: str = request.param
    if name in DATABASE_ENGINES:
        _use_database(request, monkeypatch)
    if name == "spark":
        from tests.support.spark import local_session

        local_session()
    return name


@pytest.fixture(autouse=True)
def _state_machine_database(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, _no_ambient_configuration: None
) -> None:
    """The stateful test runs one unittest case per engine (Hypothesis' `Machine.TestCase`), which cannot request
    fixtures: a case whose machine runs a database engine gets the database here."""
    machine = getattr(getattr(request.node, "obj", None), "_hypothesis_state_machine_class", None)
    if getattr(machine, "engine_name", None) in DATABASE_ENGINES:
        _use_database(request, monkeypatch)
