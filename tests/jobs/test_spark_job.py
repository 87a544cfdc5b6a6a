"""The Spark job Glue and EMR run (etl_jobs.spark_job): its `--KEY value` arguments, and one stage run for real with
`spark-submit` as a process, from the argument vector `job_arguments(...)` renders (the vector the Glue and EMR
components render from the same function: `tests.support.spark.job_arguments_tested()` is the one this module
runs, paths aside).

Budget: the spark-submit test starts its own JVM (~20 s on an idle 2-core machine); the rest is plain Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl_jobs import cli, spark_job
from etl_jobs.cli import ExitCode
from etl_jobs.zones import ENV_VARS, Zones
from tests.support.orders import csv_bytes, row
from tests.support.parity import parquet_objects
from tests.support.runs import land
from tests.support.spark import GLUE_OWN, RUN_DATE, job_arguments_tested


def test_the_vector_is_rendered_in_one_canonical_order() -> None:
    argv = spark_job.job_arguments(
        "validate", "2024-05-01", max_quarantine_rate="0.1", source="orders", zones={"staged": "s3://b/staged/"}
    )
    assert argv == [
        "--stage", "validate", "--run-date", "2024-05-01", "--source", "orders",
        "--max-quarantine-rate", "0.1", "--staged-uri", "s3://b/staged/",
    ]  # fmt: skip
    assert spark_job.glue_arguments(argv)["--max-quarantine-rate"] == "0.1"


def test_an_argument_of_another_stage_is_refused_when_rendered() -> None:
    with pytest.raises(spark_job.JobArgumentError, match="--max-quarantine-rate does not apply to --stage load"):
        spark_job.job_arguments("load", "2024-05-01", max_quarantine_rate="0.1")


def test_glues_own_arguments_are_ignored_and_ours_become_the_cli_call() -> None:
    ours, theirs = spark_job.parse(
        ["--stage", "validate", "--run-date=2024-05-01", "--max-quarantine-rate", "0.2", *GLUE_OWN,
         "--curated-uri", "s3://b/curated/"]
    )  # fmt: skip
    assert set(theirs) == {"JOB_NAME", "job-bookmark-option", "enable-metrics"}
    command, environment = spark_job.cli_arguments(ours)
    assert command == ["validate", "--engine", "spark", "--run-date", "2024-05-01", "--max-quarantine-rate", "0.2"]
    assert environment == {ENV_VARS["curated"]: "s3://b/curated/"}


def test_a_correction_runs_as_its_own_stage_with_its_options() -> None:
    """A manual start's retract and reprocess reach the job as `--stage retract|reprocess` (on the job of the stage
    whose role they need) and become the CLI's own commands, which its parser accepts."""
    from etl_jobs.cli import parser

    retract = spark_job.job_arguments("retract", "2024-05-01", correction={"file": "orders/seq=3"})
    reprocess = spark_job.job_arguments(
        "reprocess", "2024-05-01", correction={"from": "2024-04-01", "to": "2024-04-30"}
    )
    for argv, command in (
        (retract, ["retract", "--engine", "spark", "--run-date", "2024-05-01", "--file", "orders/seq=3"]),
        (
            reprocess,
            [
                "reprocess",
                "--engine",
                "spark",
                "--run-date",
                "2024-05-01",
                "--from",
                "2024-04-01",
                "--to",
                "2024-04-30",
            ],
        ),
    ):
        ours, theirs = spark_job.parse([*argv, *GLUE_OWN])
        assert set(theirs) == {"JOB_NAME", "job-bookmark-option", "enable-metrics"}
        assert spark_job.cli_arguments(ours) == (command, {})
        assert parser().parse_args(command).command == command[0]
    with pytest.raises(spark_job.JobArgumentError, match="--file does not apply to --stage load"):
        spark_job.job_arguments("load", "2024-05-01", correction={"file": "orders/seq=3"})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stage", "transform", "--run_date", "2024-05-01"], "did you mean --run-date"),
        (["--stage", "transform"], "missing --run-date"),
        (
            ["--stage", "merge", "--run-date", "2024-05-01"],
            "use one of extract, transform, validate, load, retract, reprocess",
        ),
        (["--stage", "load", "--stage", "load", "--run-date", "2024-05-01"], "given twice"),
        (["transform"], "give every argument as --KEY value"),
    ],
)
def test_bad_arguments_are_a_usage_error_naming_the_fix(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert spark_job.main(argv) == ExitCode.USAGE
    assert message in capsys.readouterr().err


def test_spark_submit_runs_the_rendered_vector_as_the_cli_would(tmp_path: Path) -> None:
    """extract in process, then transform through spark-submit with Glue's own arguments appended (Glue adds them):
    exit 0, the result JSON at --result-uri, and the staged parts the CLI's `transform --engine spark` writes."""
    zones = Zones.under(str(tmp_path / "lake"))
    land(zones, csv_bytes(row("O1"), row("O2", status="lost"), row("O3", amount="1e3")))
    extract = ["extract", "--run-date", RUN_DATE, "--output", str(tmp_path / "lake"), "--quiet"]
    assert cli.main([*extract, "--result-uri", str(tmp_path / "extract.json")]) == 0
    result_uri = str(tmp_path / "transform.json")
    vector = job_arguments_tested(zones, result_uri)
    command = spark_job.submit_command(
        [*vector, *GLUE_OWN], spark_submit=str(Path(sys.executable).parent / "spark-submit")
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    environment["PYTHONPATH"] = str(Path(spark_job.__file__).resolve().parents[1])
    environment["PYSPARK_PYTHON"] = sys.executable
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    # spark-submit's PythonRunner merges the driver's stderr into its stdout.
    assert "ignoring the runner's arguments JOB_NAME, enable-metrics, job-bookmark-option" in done.stdout
    result = json.loads(Path(result_uri).read_text())
    assert (result["stage"], result["engine"], result["rows_in"]) == ("transform", "spark", 3)
    staged = {key: frame for key, frame in parquet_objects(zones).items() if key.startswith("staged/")}
    part = "staged/deliveries/orders/seq=0000000001/gen=1"
    assert sorted(staged) == [f"{part}/rejected.parquet", f"{part}/valid.parquet"]
    assert staged[f"{part}/valid.parquet"]["order_id"].to_list() == ["O1"]
    assert staged[f"{part}/rejected.parquet"]["reason"].to_list() == ["invalid_status", "invalid_amount"]
    # The job ran exactly the vector the components render (paths aside): the script and its arguments close the line.
    assert command[-len(vector) - len(GLUE_OWN) :] == [*vector, *GLUE_OWN]
    assert command[-len(vector) - len(GLUE_OWN) - 1] == str(spark_job.SCRIPT)
