"""Drive the four stages through a runner (a host process or a container) and check the data moved end to end."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from components.images import ETL_STAGES, stage_command

RUN_DATE = "2024-05-02"
ZONES = ("raw", "staged", "curated", "quarantine")
ZONE_VARIABLES = {zone: f"ETL_{zone.upper()}_URI" for zone in ZONES}

# (command after the entrypoint, extra environment) -> (exit code, stdout, stderr)
Runner = Callable[[list[str], Mapping[str, str]], tuple[int, str, str]]


@dataclass(frozen=True)
class Expected:
    rows_in: int
    rows_quarantined: int
    rows_curated: int


def zone_environment(prefix: str) -> dict[str, str]:
    return {variable: f"{prefix.rstrip('/')}/{zone}" for zone, variable in ZONE_VARIABLES.items()}


def run_stages(runner: Runner, input_uri: str, environment: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for stage in ETL_STAGES:
        command = stage_command(stage, RUN_DATE, input_uri if stage == "extract" else None)
        code, stdout, stderr = runner(command, environment)
        assert code == 0, f"{stage} exited {code}\nstdout:\n{stdout[-2000:]}\nstderr:\n{stderr[-4000:]}"
        results[stage] = json.loads(stdout)
        assert results[stage]["stage"] == stage
    return results


def check_accounting(results: Mapping[str, Mapping[str, Any]], expected: Expected) -> None:
    """Every input row ends up curated or quarantined, in the numbers the sample generator promised."""
    assert results["transform"]["rows_in"] == expected.rows_in
    assert results["validate"]["passed"] is True
    assert results["validate"]["rows_quarantined"] == expected.rows_quarantined
    assert results["load"]["rows_curated"] == expected.rows_curated
    assert expected.rows_curated + expected.rows_quarantined == expected.rows_in
    assert results["load"]["curated_files"], "load wrote no curated files"
