"""Drive the four stages through a runner (a host process or a container) with exactly the command lines the Step
Functions state machines send to the ECS tasks (`components/workflows.py`), and check the data moved end to end.

The state machine overrides the task definition's command, so there is no `--json` and no `--input`: extract takes the
files landed for the source under `<raw zone>/landing/<source>/`, and the results are read back from what the jobs
write: the validate result at `--result-uri` (what the state machine gates on) and the run's manifest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from components.stages import Stage

RUN_DATE = "2024-05-02"
SOURCE = "orders"
ZONES = ("raw", "staged", "curated", "quarantine")
ZONE_VARIABLES = {zone: f"ETL_{zone.upper()}_URI" for zone in ZONES}
# Where a file lands for SOURCE, relative to the raw zone (ETL_LANDING_PREFIX defaults to `landing/`).
LANDING_KEY = f"landing/{SOURCE}/orders.csv"

# (command after the entrypoint, extra environment) -> (exit code, stdout, stderr)
Runner = Callable[[list[str], Mapping[str, str]], tuple[int, str, str]]
# A location the jobs wrote (local path or s3:// URI, as the job saw it) -> its bytes
Reader = Callable[[str], bytes]


@dataclass(frozen=True)
class Expected:
    rows_in: int
    rows_quarantined: int
    rows_curated: int


def zone_environment(prefix: str) -> dict[str, str]:
    return {variable: f"{prefix.rstrip('/')}/{zone}" for zone, variable in ZONE_VARIABLES.items()}


def state_machine_commands(result_uri: str, run_date: str = RUN_DATE, source: str = SOURCE) -> list[list[str]]:
    """The ECS container command of each stage, as `_stage_task` in components/workflows.py builds it."""
    commands = {stage: [stage, "--run-date", run_date, "--source", source] for stage in (s.value for s in Stage)}
    commands["validate"] += ["--result-uri", result_uri]
    return [commands[stage] for stage in (s.value for s in Stage)]


def manifest_location(environment: Mapping[str, str], run_date: str = RUN_DATE) -> str:
    return f"{environment['ETL_QUARANTINE_URI'].rstrip('/')}/_manifests/run_date={run_date}/manifest.json"


def run_stages(
    runner: Runner, environment: Mapping[str, str], read: Reader, result_uri: str
) -> dict[str, dict[str, Any]]:
    """Run the four state-machine commands in order; returns the validate result and the manifest."""
    for command in state_machine_commands(result_uri):
        code, stdout, stderr = runner(command, environment)
        assert code == 0, f"{command} exited {code}\nstdout:\n{stdout[-2000:]}\nstderr:\n{stderr[-4000:]}"
    return {
        "validate": json.loads(read(result_uri)),
        "manifest": json.loads(read(manifest_location(environment))),
    }


def check_accounting(results: Mapping[str, Mapping[str, Any]], expected: Expected) -> None:
    """Every input row ends up curated or quarantined, in the numbers the sample generator promised."""
    validation, manifest = results["validate"], results["manifest"]
    assert validation["stage"] == "validate" and validation["run_date"] == RUN_DATE
    assert validation["passed"] is True and validation["sources"] == [SOURCE]
    assert validation["rows_in"] == expected.rows_in
    assert validation["rows_quarantined"] == expected.rows_quarantined
    assert manifest["status"] == "succeeded" and manifest["sources"] == [SOURCE]
    assert manifest["rows_in"] == expected.rows_in
    assert manifest["rows_quarantined"] == expected.rows_quarantined
    assert manifest["rows_curated"] == expected.rows_curated
    assert expected.rows_curated + expected.rows_quarantined == expected.rows_in
    assert [f["uri"].rsplit("/", 2)[-2:] for f in manifest["input"]["files"]] == [[SOURCE, "orders.csv"]]
    assert manifest["outputs"]["curated_files"], "load wrote no curated files"


def curated_files(results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    files: list[str] = results["manifest"]["outputs"]["curated_files"]
    return files
