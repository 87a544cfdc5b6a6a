"""Fixtures for tests that execute state machines on moto's Step Functions engine.

The server is this package's own process (not the session-wide `moto_server`), because the runtime config it needs
(`execute_state_machine`, Lambda without Docker) is global to the server and would change other tests' emulator.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.emulator import MOTO_CONFIG, Emulator
from tests.support.moto_server import MotoServer, running_moto


@pytest.fixture(scope="package")
def _server() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.fixture
def emulator(_server: MotoServer) -> Emulator:
    """A clean emulator per test (reset empties every backend, including the queued Lambda results)."""
    _server.reset()
    _server.configure(MOTO_CONFIG)
    return Emulator(_server)
