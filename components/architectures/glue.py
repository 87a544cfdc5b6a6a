"""Architecture 2, glue: the Spark job of the orders contract on AWS Glue 5.1, run stage by stage by a state machine.

Provisions:
- the job's code in the artifacts bucket under content-hash keys (a change shows in the diff): the Glue script
  (`GLUE_SCRIPT`, a launcher that runs `etl_jobs.spark_job` as `__main__`), the `etl_jobs` package as a zip
  (`--extra-py-files`) and its dependencies as a zip of wheels (`--additional-python-modules`, installed by pip with
  `--no-index`: no package index at run time; `components.packaging.glue_wheels_package`);
- a security configuration encrypting S3 output (SSE-KMS), CloudWatch logs (SSE-KMS) and job bookmarks (CSE-KMS) with
  the stack key, and the continuous-logging log group (the stack's retention, the stack key);
- per stage (extract, transform, validate, load), a Glue job (`glueetl`, Glue 5.1, worker type and number, Flex outside
  prod, timeout, no retries of its own: the orchestrator retries) and its role: what `etl_jobs.access` declares for
  the stage (`components.lake_access.role_statements`) plus what Glue itself needs (its code, its temporary
  directory, its logs and metrics);
- a Glue Data Quality ruleset on the curated table (`curated_ruleset()`, DQDL over the contract) and the role its
  evaluation runs under; after each load on Glue the pipeline registers the load's partitions for Glue's readers
  (Glue does not read Athena's partition projection) and starts an evaluation; a failed evaluation reaches the alerts
  topic through EventBridge, as do job runs that fail, time out or error;
- a crawler on raw (discovery only: what producers deliver, into a database of its own; schema changes are logged,
  never applied as deletions), run on demand;
- alarms (job duration, failure events) and dashboard widgets; its pipeline (an `Orchestration` over its own jobs).

Job bookmarks are disabled: exactly-once comes from the ledger (`etl_jobs.ledger`), and bookmarks need GlueContext
and `job.commit()`, which the plain PySpark job does not use (docs/CONTROLS.md row 29, amended).

It is a stage runner (`GlueRunner`, bound: `GlueJobs`): a stage is a `glue:startJobRun.sync` Task whose job writes
its result to the result object the pipeline names (`--result-uri`); Glue returns no payload.

Takes `ArchitectureArgs[GlueSettings]`. Exposes `runner`, `pipeline`, `jobs`, `widgets` and `outputs()`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components import asl, lake_access, packaging, policies
from components.architectures.base import Architecture, ArchitectureArgs
from components.foundation import curated_table
from components.foundation.alarms import metric_alarm, metric_widget
from components.orchestration import Orchestration, OrchestrationArgs
from components.pipelines import BoundRunner, StageCall
from components.queues import dead_letter_queue
from components.roles import service_role
from components.runners import StageRunner
from components.settings import (
    ArchitectureSettings,
    Environment,
    QuarantineRate,
    Schedule,
    SourceName,
    located_error,
    raise_located,
)
from components.stages import RunnerCapabilities, Stage, StageBudget
from etl_jobs.contract import QUANTITY_MAX, STATUSES, usd_rates
from etl_jobs.contract.orders import AMOUNT_MAX, FIELD_MAX_CHARS

GLUE_VERSION = "5.1"
"""Spark 3.5.6 on Python 3.11 with Java 17: the Spark the engine is pinned to (uv group `spark`)."""
SUPPORTED_GLUE_VERSIONS = ("5.1",)
ARTIFACTS_PREFIX = "glue/"
TEMP_PREFIX = f"{ARTIFACTS_PREFIX}temp/"
DATA_QUALITY_PREFIX = f"{ARTIFACTS_PREFIX}data-quality/"
ZONE_ARGUMENTS = ("ETL_RAW_URI", "ETL_STAGED_URI", "ETL_CURATED_URI", "ETL_QUARANTINE_URI")
"""Glue has no environment variables: the zones reach the job as these job parameters, which the script moves into
the environment (`GLUE_SCRIPT`) where `etl_jobs.zones.Zones.from_env()` reads them."""
ENGINE = "spark"

GLUE_SCRIPT = '''"""The Glue script of the orders job: runs `etl_jobs.spark_job` (from --extra-py-files) as __main__.

Glue has no environment variables, so the zones arrive as job parameters (--ETL_RAW_URI s3://... and the like);
they are moved into the environment, where the job reads them, and taken off the command line. Every other argument
(the stage call, and Glue's own such as --JOB_NAME) is passed on as Glue gave it.
"""
import os
import runpy
import sys

ENVIRONMENT = {names}


def main(argv):
    rest = [argv[0]]
    index = 1
    while index < len(argv):
        key = argv[index][2:] if argv[index].startswith("--") else None
        if key in ENVIRONMENT and index + 1 < len(argv):
            os.environ[key] = argv[index + 1]
            index += 2
            continue
        rest.append(argv[index])
        index += 1
    os.environ.setdefault("ETL_ENGINE", "{engine}")
    sys.argv = rest
    runpy.run_module("etl_jobs.spark_job", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv)
'''.replace("{names}", repr(ZONE_ARGUMENTS)).replace("{engine}", ENGINE)


class WorkerType(StrEnum):
    G_1X = "G.1X"
    G_2X = "G.2X"
    G_4X = "G.4X"
    G_8X = "G.8X"


DPU_PER_WORKER = {WorkerType.G_1X: 1, WorkerType.G_2X: 2, WorkerType.G_4X: 4, WorkerType.G_8X: 8}
FLEX_WORKER_TYPES = frozenset({WorkerType.G_1X, WorkerType.G_2X})
"""The Flex execution class runs on G.1X and G.2X workers only."""


class ExecutionClass(StrEnum):
    STANDARD = "STANDARD"
    FLEX = "FLEX"


@dataclasses.dataclass(frozen=True)
class GlueDefaults:
    """What a profile chooses where the stack file says nothing."""

    worker_type: WorkerType
    number_of_workers: int
    execution_class: ExecutionClass
    timeout_minutes: int
    schedule: str


PROFILE_DEFAULTS: dict[Environment, GlueDefaults] = {
    Environment.DEV: GlueDefaults(WorkerType.G_1X, 2, ExecutionClass.FLEX, 60, "cron(0 4 * * ? *)"),
    Environment.STAGING: GlueDefaults(WorkerType.G_1X, 4, ExecutionClass.FLEX, 120, "cron(0 4 * * ? *)"),
    Environment.PROD: GlueDefaults(WorkerType.G_2X, 10, ExecutionClass.STANDARD, 240, "cron(0 4 * * ? *)"),
}
# How long a run may wait before Glue starts it: Flex runs wait for spare capacity, standard ones for a cluster.
START_ALLOWANCE_SECONDS = {ExecutionClass.FLEX: 900, ExecutionClass.STANDARD: 300}
DQ_WORKERS = 2
DQ_TIMEOUT_MINUTES = 30


class GlueSettings(ArchitectureSettings):
    """Architecture 2: the Spark job of the orders contract on AWS Glue, one job per stage, run by a state machine."""

    glue_version: Literal["5.1"] = Field(
        "5.1", description="Glue version: 5.1 (Spark 3.5.6, Python 3.11), the Spark the engine is pinned to"
    )
    worker_type: WorkerType | None = Field(
        None, description="`G.1X` (1 DPU), `G.2X`, `G.4X` or `G.8X`; default from the profile (prod G.2X, else G.1X)"
    )
    number_of_workers: int | None = Field(
        None,
        ge=2,
        le=299,
        description="Workers per job run (the most auto scaling may use); default from the profile (dev 2, staging "
        "4, prod 10). No cost at rest: Glue bills DPU-seconds of runs only",
    )
    execution_class: ExecutionClass | None = Field(
        None,
        description="`FLEX` (spare capacity, cheaper, slower to start; G.1X/G.2X only) or `STANDARD`; default "
        "FLEX outside prod where the worker type allows it",
    )
    timeout_minutes: int | None = Field(
        None, ge=1, le=2880, description="Longest one job run may take; default from the profile (60/120/240)"
    )
    schedule: Schedule | None = Field(
        None, description="EventBridge Scheduler expression that starts its pipeline; default `cron(0 4 * * ? *)`"
    )
    sources: list[SourceName] = Field(
        default_factory=lambda: ["orders"], min_length=1, description="Sources its pipeline extracts"
    )
    max_concurrency: int = Field(2, ge=1, le=40, description="Sources extracted and transformed at once")
    max_concurrent_runs: int = Field(
        8,
        ge=1,
        le=1000,
        description="Runs of one job at once, over every pipeline that runs stages on Glue (at least maxConcurrency)",
    )
    max_quarantine_rate: QuarantineRate = Field(0.10, description="Quarantined share of rows that fails a run")

    @model_validator(mode="after")
    def _fits(self) -> GlueSettings:
        errors = []
        if (
            self.execution_class is ExecutionClass.FLEX
            and self.worker_type is not None
            and self.worker_type not in FLEX_WORKER_TYPES
        ):
            errors.append(
                located_error(
                    ("executionClass",),
                    f"FLEX runs on {', '.join(sorted(FLEX_WORKER_TYPES))} workers only, not {self.worker_type.value}; "
                    "use STANDARD or a smaller worker type",
                    self.execution_class.value,
                )
            )
        if self.max_concurrent_runs < self.max_concurrency:
            errors.append(
                located_error(
                    ("maxConcurrentRuns",),
                    f"{self.max_concurrent_runs} is below maxConcurrency {self.max_concurrency}: a run would start "
                    "more job runs at once than a job admits",
                    self.max_concurrent_runs,
                )
            )
        raise_located(type(self), errors)
        return self

    def resolved(self, environment: str) -> ResolvedGlue:
        """The settings with the profile's defaults filled in."""
        defaults = PROFILE_DEFAULTS[Environment(environment)]
        worker = self.worker_type or defaults.worker_type
        execution = self.execution_class or (
            defaults.execution_class if worker in FLEX_WORKER_TYPES else ExecutionClass.STANDARD
        )
        return ResolvedGlue(
            worker_type=worker,
            number_of_workers=self.number_of_workers or defaults.number_of_workers,
            execution_class=execution,
            timeout_minutes=self.timeout_minutes or defaults.timeout_minutes,
            schedule=self.schedule or defaults.schedule,
        )


@dataclasses.dataclass(frozen=True)
class ResolvedGlue:
    worker_type: WorkerType
    number_of_workers: int
    execution_class: ExecutionClass
    timeout_minutes: int
    schedule: str

    @property
    def dpus(self) -> int:
        return DPU_PER_WORKER[self.worker_type] * self.number_of_workers

    def budget(self) -> StageBudget:
        """The Task's timeout: the job's own timeout and the time a run may wait to start; one retry (JOB_RETRY)."""
        return StageBudget(
            timeout_seconds=self.timeout_minutes * 60 + START_ALLOWANCE_SECONDS[self.execution_class],
            retry=asl.JOB_RETRY,
        )


# ---------------------------------------------------------------------------------------------------------------------
# The job's arguments, and the data quality ruleset
# ---------------------------------------------------------------------------------------------------------------------


def job_arguments(call: StageCall) -> dict[str, str]:
    """The stage call as Glue job arguments (a payload template: keys ending in `.$` take a path or intrinsic): the
    same `--KEY value` pairs, in the same order, as `StageCall.arguments()` gives a container. A correction runs as
    its own `--stage` (retract, reprocess) with its options, on the job of the stage whose role it needs."""
    arguments = {"--stage": call.name, "--run-date.$": "$.run_date"}
    if call.per_source:
        arguments["--source.$"] = "$.source"
    for flag, path in call.correction.options if call.correction else ():
        arguments[f"{flag}.$"] = path
    if call.max_quarantine_rate is not None:
        arguments["--max-quarantine-rate"] = str(call.max_quarantine_rate)
    if call.result_uri is not None:
        arguments["--result-uri.$"] = call.result_uri
    return arguments


def _quoted(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{value}"' for value in sorted(values)) + "]"


def curated_ruleset() -> str:
    """DQDL over the curated table: the contract's rules that every published row, and the table as a whole, meet.

    Per row: every column present, identifiers within their length limits, status, currency (one with a USD rate)
    and country from the contract's lists, amounts in [0, AMOUNT_MAX), quantities in [1, QUANTITY_MAX], order_date the
    UTC date of order_ts and inside the partition projection's range (outside it Athena would not see the row). For
    the table: one row per order_id. The per-file gate (quarantine rate, a valid row per file) is validate's: it
    judges rows that never reach curated."""
    from etl_jobs.contract import countries

    columns = [name for name, _ in curated_table.COLUMNS] + [name for name, _ in curated_table.PARTITION_KEYS]
    rules = [f'IsComplete "{column}"' for column in columns]
    rules.append('IsUnique "order_id"')
    rules += [f'ColumnLength "{column}" <= {FIELD_MAX_CHARS[column]}' for column in ("order_id", "customer_id")]
    rules.append(f'ColumnValues "status" in {_quoted(sorted(STATUSES))}')
    rules.append(f'ColumnValues "currency" in {_quoted(sorted(usd_rates()))}')
    rules.append(f'ColumnValues "country" in {_quoted(sorted(countries()))}')
    rules.append('ColumnValues "amount" >= 0')
    rules.append(f'ColumnValues "amount" < {AMOUNT_MAX}')
    rules.append('ColumnValues "amount_usd" >= 0')
    rules.append('ColumnValues "quantity" >= 1')
    rules.append(f'ColumnValues "quantity" <= {QUANTITY_MAX}')
    rules.append(f'ColumnValues "order_date" >= "{curated_table.PROJECTION_FIRST_DAY.isoformat()}"')
    rules.append('CustomSql "SELECT COUNT(*) FROM primary WHERE order_date <> CAST(order_ts AS DATE)" = 0')
    body = ",\n".join(f"    {rule}" for rule in rules)
    return f"Rules = [\n{body}\n]\n"


def content_key(prefix: str, name: str, data: bytes, suffix: str) -> str:
    """`<prefix><name>-<sha256[:16]><suffix>`: a new key whenever the content changes, so the diff shows it."""
    return f"{prefix}{name}-{hashlib.sha256(data).hexdigest()[:16]}{suffix}"


# ---------------------------------------------------------------------------------------------------------------------
# Policy documents (plain functions over resolved ARNs)
# ---------------------------------------------------------------------------------------------------------------------


def glue_service_statements(
    artifacts_arn: str, log_group_arn: str, key_arn: str, region: str, partition: str, account: str
) -> list[policies.Statement]:
    """What a Glue job needs besides the lake: its code (script, package, wheels), its temporary directory, its
    continuous logs and the log groups Glue creates for the security configuration, its metrics, and the stack key
    through S3 for its artifacts and through CloudWatch Logs for its encrypted logs."""
    glue_logs = f"arn:{partition}:logs:{region}:{account}:log-group:/aws-glue/*"
    return [
        policies.allow(["s3:GetObject"], [f"{artifacts_arn}/{ARTIFACTS_PREFIX}*"], sid="GlueCode"),
        policies.allow(
            ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            [f"{artifacts_arn}/{TEMP_PREFIX}*"],
            sid="GlueTemp",
        ),
        policies.allow(
            ["s3:ListBucket"],
            [artifacts_arn],
            sid="GlueTempList",
            Condition={"StringLike": {"s3:prefix": [f"{TEMP_PREFIX}*"]}},
        ),
        policies.allow(
            ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*", f"{glue_logs}:*"], sid="GlueLogs"
        ),
        policies.allow(["logs:CreateLogGroup", "logs:AssociateKmsKey"], [glue_logs], sid="GlueLogGroups"),
        policies.metrics_writer("Glue"),
        policies.allow(
            ["kms:Decrypt", "kms:GenerateDataKey"],
            [key_arn],
            sid="GlueKeyThroughServices",
            Condition={
                "StringEquals": {"kms:ViaService": [f"logs.{region}.amazonaws.com", f"s3.{region}.amazonaws.com"]}
            },
        ),
    ]


def data_quality_role_policy(
    curated_arn: str,
    artifacts_arn: str,
    key_arn: str,
    catalog: tuple[str, str, str],
    region: str,
    partition: str,
    account: str,
) -> policies.PolicyDocument:
    """The role a Data Quality evaluation runs under: read the curated table (catalog and objects), write its results
    under the artifacts bucket's data-quality prefix, its logs and metrics."""
    glue_logs = f"arn:{partition}:logs:{region}:{account}:log-group:/aws-glue/*"
    return policies.document(
        policies.allow(
            ["glue:GetTable", "glue:GetPartition", "glue:GetPartitions", "glue:GetDatabase"],
            list(catalog),
            sid="CuratedCatalog",
        ),
        policies.allow(["s3:GetObject"], [f"{curated_arn}/*"], sid="CuratedObjects"),
        policies.allow(["s3:ListBucket"], [curated_arn], sid="CuratedList"),
        policies.allow(["s3:PutObject", "s3:GetObject"], [f"{artifacts_arn}/{DATA_QUALITY_PREFIX}*"], sid="Results"),
        policies.allow(
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
            [glue_logs, f"{glue_logs}:*"],
            sid="Logs",
        ),
        policies.metrics_writer("Glue Data Quality"),
        policies.key_use(key_arn, via=["s3", "logs"], region=region),
    )


def crawler_role_policy(
    raw_arn: str, key_arn: str, catalog: tuple[str, str, str], region: str, partition: str, account: str
) -> policies.PolicyDocument:
    """The raw crawler: read the delivered copies, keep the discovery database's tables, its logs."""
    glue_logs = f"arn:{partition}:logs:{region}:{account}:log-group:/aws-glue/*"
    from etl_jobs import layout

    return policies.document(
        policies.allow(["s3:GetObject"], [f"{raw_arn}/{layout.RAW_DELIVERIES}*"], sid="Deliveries"),
        policies.allow(
            ["s3:ListBucket"],
            [raw_arn],
            sid="ListDeliveries",
            Condition={"StringLike": {"s3:prefix": [f"{layout.RAW_DELIVERIES}*"]}},
        ),
        policies.allow(
            [
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetTables",
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:GetPartition",
                "glue:GetPartitions",
                "glue:BatchCreatePartition",
                "glue:BatchGetPartition",
                "glue:UpdatePartition",
                "glue:CreatePartitionIndex",
            ],
            list(catalog),
            sid="DiscoveryCatalog",
        ),
        policies.allow(
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
            [glue_logs, f"{glue_logs}:*"],
            sid="Logs",
        ),
        policies.key_use(key_arn, via=["s3", "logs"], region=region, encrypt=False),
    )


def catalog_arns(partition: str, region: str, account: str, database: str, table: str = "*") -> tuple[str, str, str]:
    prefix = f"arn:{partition}:glue:{region}:{account}"
    return (f"{prefix}:catalog", f"{prefix}:database/{database}", f"{prefix}:table/{database}/{table}")


# ---------------------------------------------------------------------------------------------------------------------
# The stage runner
# ---------------------------------------------------------------------------------------------------------------------

# The after-load steps call Glue's API once per partition and once to start the evaluation: small, quick calls.
HOOK_BUDGET = StageBudget(timeout_seconds=60, retry=asl.TaskDefaults().retry)
REGISTER_STATE = "GlueRegisterPartitions"
EVALUATE_STATE = "GlueDataQuality"


@dataclasses.dataclass(frozen=True)
class CatalogTarget:
    """Where the after-load steps register partitions and what the evaluation judges."""

    database: str
    table: str
    curated_location: str
    """`s3://<curated bucket>/`."""
    ruleset_name: str
    ruleset_arn: str
    role_arn: str
    """The role the evaluation runs under (Step Functions passes it to Glue)."""
    results_uri: str
    catalog_arns: tuple[str, str, str]


@dataclasses.dataclass(frozen=True)
class GlueJobs(BoundRunner):
    """Stages as Glue job runs (`glue:startJobRun.sync`) of resolved jobs; after load, the load's partitions are
    registered and the curated ruleset evaluated."""

    architecture: str
    job_arns: Mapping[Stage, str]
    budgets: Mapping[Stage, StageBudget]
    catalog: CatalogTarget | None = None

    returns_payload: ClassVar[bool] = False
    waits_for_jobs: ClassVar[bool] = True

    def task(self, call: StageCall, *, name: str, **options: Any) -> asl.Task:
        return asl.glue_start_job_run(
            name,
            job_arn=self.job_arns[call.stage],
            arguments=job_arguments(call),
            # The job-run description says nothing the result object does not; keep its id for the logs.
            result_selector={"JobRunId.$": "$.Id"},
            **options,
        )

    def hook_seconds(self) -> int:
        # One registration per partition a load wrote (at most a few hundred) and one start: bounded generously.
        return 0 if self.catalog is None else 2 * HOOK_BUDGET.worst_case_seconds() + 300

    def after(self, stage: Stage, next_state: str) -> tuple[asl.State, ...]:
        if stage is not Stage.LOAD or self.catalog is None or Stage.LOAD not in self.job_arns:
            return ()
        target = self.catalog
        descriptor = {
            "Location.$": f"States.Format('{target.curated_location}{curated_table.PARTITION_KEY}={{}}/', $)",
            "InputFormat": curated_table.PARQUET["input_format"],
            "OutputFormat": curated_table.PARQUET["output_format"],
            "SerdeInfo": {"SerializationLibrary": curated_table.PARQUET["serialization_library"]},
            "Columns": [{"Name": name, "Type": kind} for name, kind in curated_table.COLUMNS],
        }
        register = asl.Task(
            name="GlueCreatePartition",
            resource=f"arn:{_partition(target.ruleset_arn)}:states:::aws-sdk:glue:createPartition",
            parameters={
                "DatabaseName": target.database,
                "TableName": target.table,
                "PartitionInput": {"Values.$": "States.Array($)", "StorageDescriptor": descriptor},
            },
            permissions=(
                {
                    "Effect": "Allow",
                    "Action": ["glue:CreatePartition", "glue:GetTable", "glue:GetDatabase"],
                    "Resource": sorted(target.catalog_arns),
                },
            ),
            timeout_seconds=HOOK_BUDGET.timeout_seconds,
            retry=HOOK_BUDGET.retry,
            # A partition registered by an earlier load is what we want: done.
            catch=(asl.Catch("GluePartitionKnown", error_equals=("Glue.AlreadyExistsException",)),),
            end=True,
        )
        known = asl.Succeed(name="GluePartitionKnown")
        registration = asl.Map(
            name=REGISTER_STATE,
            comment="Register the partitions this load wrote: Glue's readers do not use Athena's partition projection",
            items_path="$.load.Payload.partitions",
            item_processor=asl.Branch((register, known)),
            max_concurrency=4,
            result_path="$.glue_partitions",
            next=EVALUATE_STATE,
        )
        evaluate = asl.Task(
            name=EVALUATE_STATE,
            comment="Judge curated against the contract; a failed result reaches the alerts topic through EventBridge",
            resource=f"arn:{_partition(target.ruleset_arn)}:states:::aws-sdk:glue:startDataQualityRulesetEvaluationRun",
            parameters={
                "DataSource": {"GlueTable": {"DatabaseName": target.database, "TableName": target.table}},
                "Role": target.role_arn,
                "RulesetNames": [target.ruleset_name],
                "NumberOfWorkers": DQ_WORKERS,
                "Timeout": DQ_TIMEOUT_MINUTES,
                "AdditionalRunOptions": {"CloudWatchMetricsEnabled": True, "ResultsS3Prefix": target.results_uri},
            },
            result_selector={"RunId.$": "$.RunId"},
            result_path="$.data_quality",
            permissions=(
                {
                    "Effect": "Allow",
                    "Action": ["glue:StartDataQualityRulesetEvaluationRun"],
                    "Resource": sorted([target.ruleset_arn, *target.catalog_arns]),
                },
                {
                    "Effect": "Allow",
                    "Action": ["iam:PassRole"],
                    "Resource": [target.role_arn],
                    "Condition": {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}},
                },
            ),
            timeout_seconds=HOOK_BUDGET.timeout_seconds,
            retry=HOOK_BUDGET.retry,
            next=next_state,
        )
        return (registration, evaluate)


def _partition(arn: str) -> str:
    return asl.Arn.parse(arn, "ruleset_arn").partition


@dataclasses.dataclass(frozen=True)
class GlueRunner(StageRunner):
    architecture: str
    job_arns: Mapping[Stage, pulumi.Output[str]]
    budgets: Mapping[Stage, StageBudget]
    catalog: pulumi.Output[CatalogTarget]

    returns_payload: ClassVar[bool] = False
    waits_for_jobs: ClassVar[bool] = True

    def hook_seconds(self) -> int:
        return 2 * HOOK_BUDGET.worst_case_seconds() + 300

    def bind(self) -> pulumi.Output[BoundRunner]:
        """One bound runner however many stages it runs: the pipeline adds its after-load steps once per runner."""
        return self._bound

    @functools.cached_property
    def _bound(self) -> pulumi.Output[BoundRunner]:
        stages = list(self.job_arns)
        return pulumi.Output.all(pulumi.Output.all(*[self.job_arns[stage] for stage in stages]), self.catalog).apply(
            lambda values: GlueJobs(
                architecture=self.architecture,
                job_arns=dict(zip(stages, values[0], strict=True)),
                budgets=self.budgets,
                catalog=values[1],
            )
        )


# ---------------------------------------------------------------------------------------------------------------------
# The component
# ---------------------------------------------------------------------------------------------------------------------


class Glue(Architecture):
    type_token = "etl:architectures:Glue"
    settings_model: ClassVar[type[ArchitectureSettings]] = GlueSettings
    # Glue jobs run outside the VPC (no Glue connection): they reach S3, CloudWatch and Glue's API over AWS's network.

    @classmethod
    def runner_capabilities(cls, settings: ArchitectureSettings) -> RunnerCapabilities:
        return RunnerCapabilities(stages=frozenset(Stage), waits_for_jobs=True)

    jobs: dict[Stage, aws.glue.Job]
    pipeline: Orchestration

    def __init__(
        self, name: str, args: ArchitectureArgs[GlueSettings], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, opts)
        settings, foundation = args.settings, args.foundation
        stack = foundation.stack
        resolved = settings.resolved(stack.environment)
        self._name, self._foundation, self._resolved = name, foundation, resolved
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"{stack.project}-{stack.stack}"
        lake, key_arn = foundation.lake, foundation.key.arn

        # --- code, under content-hash keys ---------------------------------------------------------------------
        script = GLUE_SCRIPT.encode()
        code = packaging.function_package()
        wheels = packaging.glue_wheels_package()

        def upload(role: str, key: str, source: pulumi.Asset) -> aws.s3.BucketObjectv2:
            return aws.s3.BucketObjectv2(
                f"{name}-{role}",
                bucket=lake.artifacts.name,
                key=key,
                source=source,
                server_side_encryption="aws:kms",
                kms_key_id=key_arn,
                opts=child,
            )

        script_object = upload(
            "script",
            content_key(f"{ARTIFACTS_PREFIX}scripts/", "orders", script, ".py"),
            pulumi.StringAsset(GLUE_SCRIPT),
        )
        code_object = upload("code", f"{ARTIFACTS_PREFIX}code/etl_jobs-{code.key}.zip", code.asset)
        wheels_object = upload(
            "wheels", f"{ARTIFACTS_PREFIX}wheels/etl-jobs-deps-{wheels.key}{packaging.GLUE_WHEELS_SUFFIX}", wheels.asset
        )

        def s3_uri(obj: aws.s3.BucketObjectv2) -> pulumi.Output[str]:
            return pulumi.Output.concat("s3://", obj.bucket, "/", obj.key)

        # --- encryption and logs ---------------------------------------------------------------------------------
        self.logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws-glue/jobs/{prefix}",
            retention_in_days=foundation.log_retention_days,
            kms_key_id=key_arn,
            opts=foundation.stateful(self),
        )
        self.security_configuration = aws.glue.SecurityConfiguration(
            f"{name}-security",
            name=f"{prefix}-glue",
            encryption_configuration=aws.glue.SecurityConfigurationEncryptionConfigurationArgs(
                cloudwatch_encryption=aws.glue.SecurityConfigurationEncryptionConfigurationCloudwatchEncryptionArgs(
                    cloudwatch_encryption_mode="SSE-KMS", kms_key_arn=key_arn
                ),
                job_bookmarks_encryption=aws.glue.SecurityConfigurationEncryptionConfigurationJobBookmarksEncryptionArgs(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=key_arn
                ),
                s3_encryption=aws.glue.SecurityConfigurationEncryptionConfigurationS3EncryptionArgs(
                    s3_encryption_mode="SSE-KMS", kms_key_arn=key_arn
                ),
            ),
            opts=child,
        )

        # --- one job (and role) per stage -------------------------------------------------------------------------
        account, partition, region = stack.account_id, stack.partition, stack.region
        zones = lake.zone_environment()
        self.jobs = {}
        self._roles: dict[Stage, aws.iam.Role] = {}
        for stage in Stage:
            role = service_role(
                f"{name}-{stage.value}-role",
                policy_name=f"{name}-{stage.value}-policy",
                service="glue.amazonaws.com",
                account_id=account,
                description=f"The {stage.value} Glue job: what etl_jobs.access declares for it, its code and logs",
                policy=pulumi.Output.all(
                    lake_access.role_statements(stage.value, foundation),
                    lake.artifacts.arn,
                    self.logs.arn,
                    key_arn,
                    partition,
                    account,
                ).apply(
                    lambda v: json.dumps(
                        policies.document(*v[0], *glue_service_statements(v[1], v[2], v[3], region, v[4], v[5]))
                    )
                ),
                parent=self,
            )
            self._roles[stage] = role.role
            default_arguments: dict[str, pulumi.Input[str]] = {
                "--job-language": "python",
                # Exactly-once comes from the ledger; bookmarks need GlueContext, which the job does not use.
                "--job-bookmark-option": "job-bookmark-disable",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-continuous-log-filter": "true",
                "--continuous-log-logGroup": self.logs.name,
                "--continuous-log-logStreamPrefix": f"{stage.value}-",
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--enable-auto-scaling": "true",
                "--extra-py-files": s3_uri(code_object),
                "--additional-python-modules": s3_uri(wheels_object),
                "--python-modules-installer-option": "--no-index",
                "--TempDir": lake.artifacts.uri(TEMP_PREFIX),
                **{f"--{variable}": zones[variable] for variable in ZONE_ARGUMENTS},
            }
            self.jobs[stage] = aws.glue.Job(
                f"{name}-{stage.value}",
                name=f"{prefix}-{stage.value}",
                description=f"The orders pipeline's {stage.value} stage on the Spark engine",
                role_arn=role.role.arn,
                glue_version=settings.glue_version,
                command=aws.glue.JobCommandArgs(
                    name="glueetl", script_location=s3_uri(script_object), python_version="3"
                ),
                worker_type=resolved.worker_type.value,
                number_of_workers=resolved.number_of_workers,
                execution_class=resolved.execution_class.value,
                timeout=resolved.timeout_minutes,
                # Retries are the orchestrator's (its Retry and alert path); a Glue retry would run behind its back.
                max_retries=0,
                execution_property=aws.glue.JobExecutionPropertyArgs(max_concurrent_runs=settings.max_concurrent_runs),
                security_configuration=self.security_configuration.name,
                default_arguments=default_arguments,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[role.policy]),
            )

        # --- data quality, discovery, alerts ----------------------------------------------------------------------
        catalog = self._data_quality(name, prefix)
        self._crawler(name, prefix)
        self._alerts(name)

        budget = resolved.budget()
        self.runner = GlueRunner(
            architecture="glue",
            job_arns={stage: job.arn for stage, job in self.jobs.items()},
            budgets={stage: budget for stage in Stage},
            catalog=catalog,
        )
        self.pipeline = Orchestration(
            f"{name}-pipeline",
            OrchestrationArgs(
                foundation=foundation,
                sources=tuple(settings.sources),
                runners=dict.fromkeys(Stage, self.runner),
                schedule=resolved.schedule,
                max_quarantine_rate=settings.max_quarantine_rate,
                max_concurrency=settings.max_concurrency,
                settings_key="etl-platform:glue",
            ),
            opts=child,
        )
        self.widgets.extend(self.pipeline.widgets)
        self._dashboard()
        self.register_outputs(self.outputs())

    # -----------------------------------------------------------------------------------------------------------------
    def _data_quality(self, name: str, prefix: str) -> pulumi.Output[CatalogTarget]:
        foundation = self._foundation
        stack, lake = foundation.stack, foundation.lake
        table = lake.curated_table or pulumi.Output.from_input(curated_table.TABLE_NAME)
        self.ruleset = aws.glue.DataQualityRuleset(
            f"{name}-curated-ruleset",
            name=f"{prefix}-curated-orders",
            description="The orders contract over the curated table (etl_jobs.contract)",
            ruleset=curated_ruleset(),
            target_table=aws.glue.DataQualityRulesetTargetTableArgs(
                database_name=lake.catalog_database, table_name=table
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        arns = pulumi.Output.all(stack.partition, stack.account_id, lake.catalog_database, table).apply(
            lambda v: catalog_arns(v[0], stack.region, v[1], v[2], v[3])
        )
        self.data_quality_role = service_role(
            f"{name}-data-quality-role",
            policy_name=f"{name}-data-quality-policy",
            service="glue.amazonaws.com",
            account_id=stack.account_id,
            description="Glue Data Quality: evaluates the curated ruleset",
            policy=pulumi.Output.all(
                lake.curated.arn, lake.artifacts.arn, foundation.key.arn, arns, stack.partition, stack.account_id
            ).apply(
                lambda v: json.dumps(data_quality_role_policy(v[0], v[1], v[2], tuple(v[3]), stack.region, v[4], v[5]))
            ),
            parent=self,
        ).role
        return pulumi.Output.all(
            lake.catalog_database,
            table,
            lake.curated.name,
            self.ruleset.name,
            self.ruleset.arn,
            self.data_quality_role.arn,
            lake.artifacts.uri(DATA_QUALITY_PREFIX),
            arns,
        ).apply(
            lambda v: CatalogTarget(
                database=v[0],
                table=v[1],
                curated_location=f"s3://{v[2]}/",
                ruleset_name=v[3],
                ruleset_arn=v[4],
                role_arn=v[5],
                results_uri=v[6],
                catalog_arns=tuple(v[7]),
            )
        )

    def _crawler(self, name: str, prefix: str) -> None:
        """Discovery on raw: what producers deliver, as tables of a database of its own; run on demand."""
        from etl_jobs import layout

        foundation = self._foundation
        stack, lake = foundation.stack, foundation.lake
        database = aws.glue.CatalogDatabase(
            f"{name}-raw-discovery",
            name=prefix.replace("-", "_") + "_raw_discovery",
            description="What the raw crawler finds in delivered files (discovery only; curated is `orders`)",
            opts=foundation.stateful(self),
        )
        arns = pulumi.Output.all(stack.partition, stack.account_id, database.name).apply(
            lambda v: catalog_arns(v[0], stack.region, v[1], v[2])
        )
        role = service_role(
            f"{name}-crawler-role",
            policy_name=f"{name}-crawler-policy",
            service="glue.amazonaws.com",
            account_id=stack.account_id,
            description="The raw crawler: reads delivered files, keeps the discovery database's tables",
            policy=pulumi.Output.all(lake.raw.arn, foundation.key.arn, arns, stack.partition, stack.account_id).apply(
                lambda v: json.dumps(crawler_role_policy(v[0], v[1], tuple(v[2]), stack.region, v[3], v[4]))
            ),
            parent=self,
        )
        self.crawler = aws.glue.Crawler(
            f"{name}-raw-crawler",
            name=f"{prefix}-raw-discovery",
            description="Discovers the schema of delivered files (on demand); logs schema changes, deletes nothing",
            database_name=database.name,
            role=role.role.arn,
            s3_targets=[aws.glue.CrawlerS3TargetArgs(path=lake.raw.uri(layout.RAW_DELIVERIES))],
            # A change is recorded in the crawler's log, never applied: a table a consumer relies on is not altered
            # or dropped because one delivery looked different.
            schema_change_policy=aws.glue.CrawlerSchemaChangePolicyArgs(update_behavior="LOG", delete_behavior="LOG"),
            recrawl_policy=aws.glue.CrawlerRecrawlPolicyArgs(recrawl_behavior="CRAWL_NEW_FOLDERS_ONLY"),
            configuration=json.dumps(
                {"Version": 1.0, "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}}, sort_keys=True
            ),
            security_configuration=self.security_configuration.name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role.policy]),
        )

    def _alerts(self, name: str) -> None:
        """Job runs that fail, time out or error, and failed data quality results, to the alerts topic."""
        foundation = self._foundation
        stack = foundation.stack
        rules = {
            "job-failures": pulumi.Output.all(*[job.name for job in self.jobs.values()]).apply(
                lambda names: json.dumps(
                    {
                        "source": ["aws.glue"],
                        "detail-type": ["Glue Job State Change"],
                        "detail": {"jobName": sorted(names), "state": ["FAILED", "TIMEOUT", "ERROR"]},
                    },
                    sort_keys=True,
                )
            ),
            "data-quality": self.ruleset.name.apply(
                lambda ruleset: json.dumps(
                    {
                        "source": ["aws.glue-dataquality"],
                        "detail-type": ["Data Quality Evaluation Results Available"],
                        "detail": {"rulesetNames": [ruleset], "state": ["FAILED"]},
                    },
                    sort_keys=True,
                )
            ),
        }
        messages = {
            "job-failures": (
                {"job": "$.detail.jobName", "state": "$.detail.state", "run": "$.detail.jobRunId"},
                '"Glue job <job> run <run> ended <state>. Its pipeline alerts separately with the run it belongs to; '
                'logs: /aws-glue/jobs, stream <run>."',
            ),
            "data-quality": (
                {"failed": "$.detail.numRulesFailed", "score": "$.detail.score", "run": "$.detail.context.runId"},
                '"The curated table failed its data quality ruleset: <failed> rule(s) failed (score <score>, '
                'evaluation run <run>). See the results in Glue Data Quality."',
            ),
        }
        self.event_rules: dict[str, aws.cloudwatch.EventRule] = {}
        for role, pattern in rules.items():
            self.event_rules[role] = aws.cloudwatch.EventRule(
                f"{name}-{role}",
                description=f"Glue {role.replace('-', ' ')} to the alerts topic",
                event_pattern=pattern,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.dead_letters = dead_letter_queue(
            f"{name}-alerts-dlq",
            parent=self,
            key_arn=foundation.key.arn,
            account_id=stack.account_id,
            alerts=foundation.alerts,
            stateful=foundation.stateful(self),
            holds="EventBridge could not deliver a Glue failure or data quality alert to the alerts topic.",
            senders=[("events.amazonaws.com", rule.arn) for rule in self.event_rules.values()],
        )
        for role, rule in self.event_rules.items():
            paths, template = messages[role]
            aws.cloudwatch.EventTarget(
                f"{name}-{role}-alert",
                rule=rule.name,
                arn=foundation.alerts.topic_arn,
                input_transformer=aws.cloudwatch.EventTargetInputTransformerArgs(
                    input_paths=paths, input_template=template
                ),
                retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                    maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
                ),
                dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self.dead_letters.arn),
                opts=pulumi.ResourceOptions(parent=self),
            )
        metric_alarm(
            f"{name}-job-failures-alarm",
            parent=self,
            alerts=foundation.alerts,
            description="A Glue job run of the orders pipeline failed, timed out or errored.",
            namespace="AWS/Events",
            metric_name="TriggeredRules",
            dimensions={"RuleName": self.event_rules["job-failures"].name},
        )
        # Long before a run times out: 80% of the job timeout, in milliseconds (diagnostic: the pipeline alarms on
        # a run past its own timeout).
        minutes = self._resolved.timeout_minutes
        threshold = minutes * 60 * 1000 * 0.8
        for stage, job in self.jobs.items() if foundation.profile.diagnostic_alarms else ():
            metric_alarm(
                f"{name}-{stage.value}-duration",
                parent=self,
                alerts=foundation.alerts,
                description=f"A {stage.value} job run took over 80% of its {minutes} min timeout.",
                namespace="Glue",
                metric_name="glue.driver.aggregate.elapsedTime",
                dimensions={"JobName": job.name, "JobRunId": "ALL", "Type": "count"},
                statistic="Maximum",
                threshold=threshold,
            )

    def _dashboard(self) -> None:
        region = self._foundation.stack.region
        self.widgets.append(
            metric_widget(
                "Glue: job run time (ms)",
                [
                    [
                        "Glue",
                        "glue.driver.aggregate.elapsedTime",
                        "JobName",
                        job.name,
                        "JobRunId",
                        "ALL",
                        "Type",
                        "count",
                    ]
                    for job in self.jobs.values()
                ],
                region=region,
                stat="Maximum",
            )
        )
        self.widgets.append(
            metric_widget(
                "Glue: failed runs and failed data quality results",
                [["AWS/Events", "TriggeredRules", "RuleName", rule.name] for rule in self.event_rules.values()],
                region=region,
            )
        )

    def outputs(self) -> dict[str, Any]:
        return {
            "jobNames": {stage.value: job.name for stage, job in self.jobs.items()},
            "securityConfiguration": self.security_configuration.name,
            "rulesetName": self.ruleset.name,
            "crawlerName": self.crawler.name,
            # Glue's failure events EventBridge could not deliver to the alerts topic (a redrive needs the ARN).
            "alertsDeadLetterQueueUrl": self.dead_letters.url,
            "alertsDeadLetterQueueArn": self.dead_letters.arn,
            "pipeline": self.pipeline.outputs(),
        }


def run_cost_dpu_hours(settings: ResolvedGlue, minutes_per_stage: float, stages: int = 4) -> float:
    """DPU-hours of one pipeline run at these settings: each stage's job billed for `minutes_per_stage` (at least
    one minute each, Glue 2.0+ billing) on every worker."""
    return settings.dpus * stages * max(minutes_per_stage, 1.0) / 60
