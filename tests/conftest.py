"""Session fixtures. Helpers live in `tests/support/` (tests import them from there, never from a conftest); the Pulumi
mocks are global runtime state, set per evaluation by `etlctl.offline`, the code the offline preview runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.moto_server import MotoServer, running_moto
from tests.support.postgres import PostgresServer, PostgresUnavailable, running_postgres


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server process for the session; tests reset it when they need a clean slate."""
    with running_moto() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (the SQL engine's tests), its engine database migrated; skips with the
    reason when none can be started here."""
    try:
        context = running_postgres()
        server = context.__enter__()
    except PostgresUnavailable as error:
        pytest.skip(f"no PostgreSQL for the SQL engine: {error}")
    try:
        yield server
    finally:
        context.__exit__(None, None, None)
