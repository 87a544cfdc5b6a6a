"""Session fixtures. Helpers live in `tests/support/` (tests import them from there, never from a conftest); the Pulumi
mocks are global runtime state, set per evaluation by `etlctl.offline`, the code the offline preview runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.moto_server import MotoServer, running_moto


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server process for the session; tests reset it when they need a clean slate."""
    with running_moto() as server:
        yield server
