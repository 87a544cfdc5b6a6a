"""Drive the four stage commands through a runner (a host process or a container), the way an orchestrator runs a
task: `<stage> --run-date D --source S --result-uri URI` with the zones in ETL_*_URI, no `--json`, and the result read
back from URI (a runner that returns no payload has nothing else). Used by the entry point and image tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

RUN_DATE = "2024-05-02"
SOURCE = "orders"
STAGES = ("extract", "transform", "validate", "load")
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


def stage_argv(stage: str, result_uri: str, run_date: str = RUN_DATE, source: str = SOURCE) -> list[str]:
    return [stage, "--run-date", run_date, "--source", source, "--result-uri", result_uri]


def run_stages(runner: Runner, environment: Mapping[str, str], read: Reader, results: str) -> dict[str, dict[str, Any]]:
    """Run the four stages in order, each writing its result to `<results>/<stage>.json`; returns the results."""
    out: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        uri = f"{results.rstrip('/')}/{stage}.json"
        code, stdout, stderr = runner(stage_argv(stage, uri), environment)
        assert code == 0, f"{stage} exited {code}\nstdout:\n{stdout[-2000:]}\nstderr:\n{stderr[-4000:]}"
        out[stage] = json.loads(read(uri))
    return out


def check_accounting(results: Mapping[str, Mapping[str, Any]], expected: Expected) -> None:
    """Every input row ends up curated or quarantined, in the numbers the sample generator promised."""
    extract, validation, load = results["extract"], results["validate"], results["load"]
    assert [c["name"] for c in extract["claimed"]] == ["orders.csv"]
    assert validation["passed"] is True and validation["sources"] == [SOURCE]
    assert validation["rows_in"] == expected.rows_in
    assert load["rows_in"] == expected.rows_in
    assert load["rows_quarantined"] == expected.rows_quarantined
    assert load["rows_curated"] == expected.rows_curated
    assert expected.rows_curated + expected.rows_quarantined == expected.rows_in
    assert load["partitions"], "load published no partition"
    (item,) = load["files"]
    assert item["rows_in"] == item["rows_curated"] + item["rows_quarantined"] == expected.rows_in
