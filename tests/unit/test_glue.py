"""The glue architecture built from its args: settings and their per-profile defaults, the jobs and their roles, the
code under content-hash keys, the Glue script, the stage Tasks and after-load steps of its pipeline (statelint), the
data quality ruleset evaluated locally on what the Polars engine wrote, and Glue as another pipeline's stage runner.

What only Glue can show (moto's Glue is metadata only: its job runs "succeed" without running): that Glue 5.1 installs
the zip of wheels with `--no-index`, runs the script, honours the security configuration; that a Data Quality
evaluation run reads the registered partitions and emits its EventBridge result; the job-state and data-quality
event shapes the alert rules match (written as AWS documents them). The ruleset's rules are all of types evaluated
here (`tests.support.dqdl`); the evaluation run itself, its score and its event are Glue's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from components.architectures import glue
from components.architectures.base import ArchitectureArgs
from components.settings import Environment, config_problems
from etl_jobs import pipeline, sample, spark_job
from etl_jobs.engines import get_engine
from etl_jobs.zones import Zones
from etlctl.mocks import Registration
from tests.support import dqdl
from tests.support.components import foundation_refs, register
from tests.support.definitions import STATELINT, definition_of, parameters, statelint, states
from tests.support.resources import policy, statements
from tests.support.runs import land
from tests.support.stacks import evaluate_config, evaluated

JOB = "aws:glue/job:Job"


def build(environment: Environment = Environment.DEV, **settings: Any) -> list[Registration]:
    model = glue.GlueSettings.model_validate(settings)
    return register(lambda: glue.Glue("glue", ArchitectureArgs(model, foundation_refs(environment))))


def by_name(registrations: list[Registration]) -> dict[str, Registration]:
    return {r.name: r for r in registrations}


# ---------------------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------------------


def test_profiles_choose_size_and_execution_class() -> None:
    dev = glue.GlueSettings().resolved("dev")
    prod = glue.GlueSettings().resolved("prod")
    assert (dev.worker_type, dev.number_of_workers, dev.execution_class) == ("G.1X", 2, "FLEX")
    assert prod.execution_class == "STANDARD" and prod.dpus > dev.dpus
    # Flex does not run G.4X: a dev stack asking for G.4X gets STANDARD rather than a job Glue refuses.
    assert glue.GlueSettings(worker_type="G.4X").resolved("dev").execution_class == "STANDARD"


def test_flex_on_a_large_worker_and_too_few_concurrent_runs_are_refused() -> None:
    problems = config_problems(
        {
            "aws:region": "eu-west-1",
            "etl-platform:environment": "dev",
            "etl-platform:architectures": '["glue"]',
            "etl-platform:glue": json.dumps(
                {"workerType": "G.8X", "executionClass": "FLEX", "maxConcurrency": 4, "maxConcurrentRuns": 2}
            ),
        },
        project="etl-platform",
        stack="dev",
    )
    assert any("etl-platform:glue.executionClass: 'FLEX'" in p and "G.1X, G.2X workers only" in p for p in problems)
    assert any("etl-platform:glue.maxConcurrentRuns: 2" in p and "below maxConcurrency 4" in p for p in problems)


def test_an_old_glue_version_is_refused() -> None:
    problems = config_problems(
        {
            "aws:region": "eu-west-1",
            "etl-platform:environment": "dev",
            "etl-platform:architectures": '["glue"]',
            "etl-platform:glue": json.dumps({"glueVersion": "4.0"}),
        },
        project="etl-platform",
        stack="dev",
    )
    assert any("etl-platform:glue.glueVersion" in p and "'5.1'" in p for p in problems), problems


# ---------------------------------------------------------------------------------------------------------------------
# The component
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev() -> dict[str, Registration]:
    return by_name(build())


def test_one_job_per_stage_sized_by_workers_with_the_security_configuration(dev: dict[str, Registration]) -> None:
    jobs = [r for r in dev.values() if r.type == JOB]
    assert sorted(j.name for j in jobs) == ["glue-extract", "glue-load", "glue-transform", "glue-validate"]
    security = dev["glue-security"].inputs["name"]
    for job in jobs:
        inputs = job.inputs
        assert inputs["glueVersion"] == "5.1" and "maxCapacity" not in inputs
        assert (inputs["workerType"], inputs["numberOfWorkers"], inputs["executionClass"]) == ("G.1X", 2, "FLEX")
        assert inputs["maxRetries"] == 0 and inputs["securityConfiguration"] == security
        arguments = inputs["defaultArguments"]
        assert arguments["--job-bookmark-option"] == "job-bookmark-disable"
        assert arguments["--continuous-log-logGroup"] == dev["glue-logs"].inputs["name"]
        assert arguments["--python-modules-installer-option"] == "--no-index"
        assert arguments["--ETL_CURATED_URI"] == "s3://etl-platform-lake-curated-0000000/"
    logs = dev["glue-logs"].inputs
    assert logs["retentionInDays"] == 14 and logs["kmsKeyId"].startswith("arn:aws:kms:")


def test_code_wheels_and_script_come_from_the_artifacts_bucket(dev: dict[str, Registration]) -> None:
    job = dev["glue-transform"].inputs
    objects = {r.name: r.inputs for r in dev.values() if r.type == "aws:s3/bucketObjectv2:BucketObjectv2"}
    location = {name: f"s3://{o['bucket']}/{o['key']}" for name, o in objects.items()}
    assert job["command"]["scriptLocation"] == location["glue-script"]
    assert job["defaultArguments"]["--extra-py-files"] == location["glue-code"]
    assert job["defaultArguments"]["--additional-python-modules"] == location["glue-wheels"]
    assert all(o["bucket"] == "etl-platform-lake-artifacts-0000000" for o in objects.values())
    assert objects["glue-wheels"]["key"].endswith(".gluewheels.zip")


def test_a_changed_script_gets_a_new_key(monkeypatch: pytest.MonkeyPatch, dev: dict[str, Registration]) -> None:
    before = dev["glue-script"].inputs["key"]
    monkeypatch.setattr(glue, "GLUE_SCRIPT", glue.GLUE_SCRIPT + "\n# changed\n")
    after = by_name(build())["glue-script"].inputs["key"]
    assert before != after and before.startswith("glue/scripts/") and after.startswith("glue/scripts/")


def test_each_stage_role_holds_its_declared_grants_and_what_glue_needs(dev: dict[str, Registration]) -> None:
    def actions_on(stage: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for statement in statements(policy(dev[f"glue-{stage}-policy"].inputs["policy"])):
            for resource in (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            ):
                found.setdefault(resource, set()).update(
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
        return found

    def writes_curated(stage: str) -> bool:
        curated = "arn:aws:s3:::etl-platform-lake-curated-0000000/"
        return any(r.startswith(curated) and "s3:PutObject" in a for r, a in actions_on(stage).items())

    assert writes_curated("load")
    assert not writes_curated("extract"), "extract never writes curated"
    for stage in ("extract", "transform", "validate", "load"):
        found = actions_on(stage)
        assert found["arn:aws:s3:::etl-platform-lake-artifacts-0000000/glue/*"] == {"s3:GetObject"}
        trust = policy(dev[f"glue-{stage}-role"].inputs["assumeRolePolicy"])
        assert trust["Statement"][0]["Principal"] == {"Service": "glue.amazonaws.com"}


def test_the_crawler_discovers_raw_only_and_logs_schema_changes(dev: dict[str, Registration]) -> None:
    crawler = dev["glue-raw-crawler"].inputs
    assert [t["path"] for t in crawler["s3Targets"]] == ["s3://etl-platform-lake-raw-0000000/deliveries/"]
    assert crawler["schemaChangePolicy"] == {"updateBehavior": "LOG", "deleteBehavior": "LOG"}
    assert crawler["databaseName"] != "etl_platform_test_curated"
    assert "schedule" not in crawler


def test_failures_and_failed_quality_reach_the_alerts_topic(dev: dict[str, Registration]) -> None:
    rules = {
        r.name: json.loads(r.inputs["eventPattern"]) for r in dev.values() if r.type.endswith("eventRule:EventRule")
    }
    jobs = sorted(r.inputs["name"] for r in dev.values() if r.type == JOB)
    assert rules["glue-job-failures"]["detail"] == {"jobName": jobs, "state": ["FAILED", "TIMEOUT", "ERROR"]}
    assert rules["glue-data-quality"]["detail"]["state"] == ["FAILED"]
    targets = [r.inputs for r in dev.values() if r.type.endswith("eventTarget:EventTarget")]
    assert {t["arn"] for t in targets} == {foundation_topic()}
    assert all(t["deadLetterConfig"]["arn"] and t["retryPolicy"] for t in targets)
    # Per-stage durations are diagnostic (the pipeline alarms on a run past its timeout): not in dev.
    assert [r for r in dev.values() if r.name.endswith("-duration")] == []
    durations = [r for r in build(Environment.PROD) if r.name.endswith("-duration")]
    assert len(durations) == 4 and all(r.inputs["threshold"] == 240 * 60 * 1000 * 0.8 for r in durations)


def foundation_topic() -> str:
    return "arn:aws:sns:eu-west-1:123456789012:alerts"


# ---------------------------------------------------------------------------------------------------------------------
# The pipeline's definition
# ---------------------------------------------------------------------------------------------------------------------


def test_stages_run_as_glue_jobs_then_partitions_and_quality_after_load(
    dev: dict[str, Registration], tmp_path: Path
) -> None:
    machine = dev["glue-pipeline-machine"]
    definition = definition_of(machine)
    found = states(definition)
    validate = found["Validate"]
    assert validate["Resource"] == "arn:aws:states:::glue:startJobRun.sync"
    assert validate["Parameters"]["JobName"] == dev["glue-validate"].inputs["name"]
    assert validate["Parameters"]["Arguments"]["--stage"] == "validate"
    assert validate["Parameters"]["Arguments"]["--max-quarantine-rate"] == "0.1"
    assert "--result-uri.$" in validate["Parameters"]["Arguments"]
    assert found["Transform"]["Parameters"]["Arguments"]["--source.$"] == "$.source"
    assert found["Load"]["Next"] == "ReadLoadResult"
    assert found["ReadLoadResult"]["Next"] == glue.REGISTER_STATE
    assert found[glue.REGISTER_STATE]["ItemsPath"] == "$.load.Payload.partitions"
    assert found[glue.REGISTER_STATE]["Next"] == glue.EVALUATE_STATE
    evaluation = found[glue.EVALUATE_STATE]["Parameters"]
    assert evaluation["RulesetNames"] == [dev["glue-curated-ruleset"].inputs["name"]]
    assert evaluation["DataSource"]["GlueTable"] == {"DatabaseName": "etl_platform_test_curated", "TableName": "orders"}
    if STATELINT.exists():
        result = statelint(machine.inputs["definition"], tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_corrections_run_on_their_stages_jobs_as_the_spark_jobs_own_stage(dev: dict[str, Registration]) -> None:
    """A manual start's retract (load's job and role) and reprocess (extract's) reach the job as
    `--stage retract|reprocess` with their options: the Spark job's own arguments for them, not the stage's."""
    found = states(definition_of(dev["glue-pipeline-machine"]))
    corrections = {"retract": {"file": "orders/seq=3"}, "reprocess": {"from": "2024-04-01", "to": "2024-04-30"}}
    jobs = {"retract": "glue-load", "reprocess": "glue-extract"}
    for name, options in corrections.items():
        task = found[name.title()]
        assert task["Parameters"]["JobName"] == dev[jobs[name]].inputs["name"]
        context = {"Execution": {"Name": "exec", "Id": "arn:exec", "RedriveCount": 0}, "State": {"RetryCount": 0}}
        sent = parameters(task["Parameters"], {"run_date": "2024-05-01", "input": corrections}, context)["Arguments"]
        expected = spark_job.job_arguments(name, "2024-05-01", result_uri=sent["--result-uri"], correction=options)
        assert sent == spark_job.glue_arguments(expected)


def test_the_machine_may_run_the_jobs_and_pass_only_the_quality_role(dev: dict[str, Registration]) -> None:
    document = policy(dev["glue-pipeline-role-policy"].inputs["policy"])
    passes = [s for s in statements(document) if "iam:PassRole" in s["Action"]]
    assert [s["Resource"] for s in passes] == [
        [f"arn:aws:iam::123456789012:role/{dev['glue-data-quality-role'].name}"]
    ] or (len(passes) == 1 and passes[0]["Condition"]["StringEquals"]["iam:PassedToService"] == "glue.amazonaws.com")
    starts = [s for s in statements(document) if "glue:StartJobRun" in s["Action"]]
    assert len(starts) == 1 and len(starts[0]["Resource"]) == 4


def test_another_pipeline_runs_a_stage_on_glue(tmp_path: Path) -> None:
    evaluation = evaluate_config(
        tmp_path,
        {
            "aws:region": "eu-west-1",
            "etl-platform:environment": "dev",
            "etl-platform:architectures": ["serverless", "glue", "stepfunctions"],
            "etl-platform:stepfunctions": {
                "runners": {
                    "extract": "serverless",
                    "transform": "glue",
                    "validate": "serverless",
                    "load": "serverless",
                }
            },
        },
    )
    (machine,) = [r for r in evaluation.resources if r.name.endswith("stepfunctions-machine")]
    found = states(definition_of(machine))
    assert found["Transform"]["Resource"] == "arn:aws:states:::glue:startJobRun.sync"
    assert found["Transform"]["Next"] == "ReadTransformResult"
    assert found["Extract"]["Resource"].endswith(":lambda:invoke")
    # Glue's after-load steps follow the load whoever runs it: partitions registered, the ruleset evaluated.
    assert found["Load"]["Next"] == glue.REGISTER_STATE


# ---------------------------------------------------------------------------------------------------------------------
# The Glue script, run as Glue runs it
# ---------------------------------------------------------------------------------------------------------------------


def test_the_script_moves_the_zones_into_the_environment_and_passes_the_rest(tmp_path: Path) -> None:
    """A stand-in `etl_jobs.spark_job` records what it was run with; the script under test is the uploaded text."""
    package = tmp_path / "site" / "etl_jobs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "spark_job.py").write_text(
        "import json, os, sys\n"
        "print(json.dumps({'name': __name__, 'argv': sys.argv[1:],"
        " 'env': {k: v for k, v in os.environ.items() if k.startswith('ETL_')}}))\n"
    )
    script = tmp_path / "script.py"
    script.write_text(glue.GLUE_SCRIPT)
    argv = [
        "--JOB_NAME", "etl-platform-dev-transform", "--ETL_RAW_URI", "s3://raw/", "--stage", "transform",
        "--run-date", "2024-05-04", "--ETL_CURATED_URI", "s3://curated/", "--source", "orders",
    ]  # fmt: skip
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path / "site")}
    result = subprocess.run(
        [sys.executable, str(script), *argv], capture_output=True, text=True, env=environment, check=True
    )
    seen = json.loads(result.stdout)
    assert seen["name"] == "__main__"
    assert seen["argv"] == [
        "--JOB_NAME", "etl-platform-dev-transform", "--stage", "transform", "--run-date", "2024-05-04",
        "--source", "orders",
    ]  # fmt: skip
    assert seen["env"] == {"ETL_RAW_URI": "s3://raw/", "ETL_CURATED_URI": "s3://curated/", "ETL_ENGINE": "spark"}


# ---------------------------------------------------------------------------------------------------------------------
# The data quality ruleset, evaluated here on what the engine wrote
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    zones = Zones.under(str(root))
    land(zones, sample.generate(300, error_rate=0.1, start=datetime(2024, 4, 28, tzinfo=UTC), days=4, seed=3).data)
    pipeline.run(zones, date(2024, 5, 1), max_quarantine_rate=1.0, engine=get_engine("polars"))
    return Path(zones.curated)


def test_every_rule_of_the_ruleset_is_evaluated_here(dev: dict[str, Registration]) -> None:
    text = dev["glue-curated-ruleset"].inputs["ruleset"]
    local, glue_only = dqdl.local_rule_types(text)
    assert glue_only == set(), f"rule types only Glue evaluates must be named in this module's docstring: {glue_only}"
    assert {"IsComplete", "IsUnique", "ColumnValues", "ColumnLength", "CustomSql"} <= local


def test_what_the_engine_publishes_passes_the_ruleset(dev: dict[str, Registration], curated: Path) -> None:
    outcomes = dqdl.evaluate(dev["glue-curated-ruleset"].inputs["ruleset"], curated)
    assert [o.rule for o in outcomes if not o.passed] == []
    assert len(outcomes) > 20


def _rewrite(curated: Path, target: Path, change: Any) -> Path:
    """A copy of the curated zone with one partition file rewritten by `change` (a polars frame function)."""
    for path in curated.glob("order_date=*/*.parquet"):
        copy = target / path.relative_to(curated)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())
    first = sorted(target.glob("order_date=*/*.parquet"))[0]
    change(pl.read_parquet(first)).write_parquet(first)
    return target


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        (lambda f: pl.concat([f, f.head(1)]), ['IsUnique "order_id"']),
        (lambda f: f.with_columns(status=pl.lit("lost")), ['ColumnValues "status" in']),
        (lambda f: f.with_columns(quantity=pl.lit(0, pl.Int32)), ['ColumnValues "quantity" >= 1']),
        (lambda f: f.with_columns(order_ts=pl.col("order_ts") + pl.duration(days=3)), ["CustomSql"]),
        (lambda f: f.with_columns(customer_id=pl.lit(None, pl.String)), ['IsComplete "customer_id"']),
    ],
    ids=["duplicate-order", "unknown-status", "zero-quantity", "wrong-partition", "missing-customer"],
)
def test_a_broken_table_fails_exactly_the_rules_it_breaks(
    dev: dict[str, Registration], curated: Path, tmp_path: Path, change: Any, failing: list[str]
) -> None:
    broken = _rewrite(curated, tmp_path / "curated", change)
    failed = [o.rule for o in dqdl.evaluate(dev["glue-curated-ruleset"].inputs["ruleset"], broken) if not o.passed]
    assert len(failed) == len(failing) and all(f.startswith(prefix) for f, prefix in zip(failed, failing, strict=True))


def test_every_stack_file_selects_glue() -> None:
    for stack in ("dev", "staging", "prod"):
        assert "glue" in json.loads(evaluated(stack).config.values["etl-platform:architectures"])
