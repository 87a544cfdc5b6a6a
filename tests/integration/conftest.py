"""Fixtures for tests that execute state machines on moto's Step Functions engine.

The server is this package's own process (not the session-wide `moto_server`), because the runtime config it needs
(`execute_state_machine`, Lambda without Docker) is global to the server and would change other tests' emulator.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from tests.support.moto_server import REGION, MotoServer, running_moto

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@dataclass
class Emulator:
    """A moto server configured to execute state machines, with clients for it."""

    server: MotoServer

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.server.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def queue_lambda_results(self, *results: str) -> None:
        """What the next invocations of any function return, in order (moto's "lambda simple" backend)."""
        request = urllib.request.Request(
            f"{self.server.endpoint}/moto-api/static/lambda-simple/response",
            data=json.dumps({"results": list(results), "region": REGION}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30):
            pass

    def execute(
        self, machine_arn: str, run: dict[str, Any], *, timeout_s: float = 45
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Start an execution, wait for it to end, and return its description and its history events."""
        sfn = self.client("stepfunctions")
        execution_arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(run))["executionArn"]
        deadline = time.monotonic() + timeout_s
        while (description := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, f"execution did not finish within {timeout_s} s"
            time.sleep(0.1)
        return description, sfn.get_execution_history(executionArn=execution_arn)["events"]


def entered(events: list[dict[str, Any]]) -> list[str]:
    """The states an execution entered, in order."""
    return [event["stateEnteredEventDetails"]["name"] for event in events if "stateEnteredEventDetails" in event]


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
