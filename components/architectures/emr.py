"""Architecture 4, EMR: the Spark job (the same one Glue runs) on EMR Serverless by default, or on a transient EMR on
EC2 cluster that each run creates and terminates.

Provisions, in both modes:
- the job's code in the artifacts bucket under content-hash keys, encrypted with the stack key: the entry point
  (`etl_jobs/spark_job.py`), the `etl_jobs` package (`--py-files`) and the Python environment
  (`components.packaging.spark_env_package`: CPython 3.11 and the `jobs` group, unpacked by Spark from
  `spark.archives`), so a job needs no package index at run time and a code change shows in the diff;
- its pipeline: an `Orchestration` (state machine, schedule with its dead-letter queue, alarms) over its own runner,
  which the stepfunctions architecture may also use for any stage (`stepfunctions.runners.<stage>: emr`).

`serverless` mode (the default; nothing runs, nothing bills, between runs): an EMR Serverless Spark application on
`releaseLabel` (emr-7.11.0 runs Spark 3.5.6, the Spark of Glue 5.1 that the engine is pinned to and tested with;
7.x releases before it run older 3.5 patches, 8.x Spark 4), arm64 by default, auto-start on submission, auto-stop after
`serverless.idleTimeoutMinutes`, maximum capacity limits, no pre-initialized workers unless the stack asks (they bill
while the application is started), logs to S3 (the stack key) and to a KMS-encrypted CloudWatch log group, in the
private subnets behind a security group with HTTPS egress only. A stage is an `emr-serverless:startJobRun.sync` Task
under that stage's own job role (`etl_jobs.access` grants through `components.lake_access`, plus reading the code and
writing logs), with a client token derived from the execution, the stage, the source, the redrive and the retry
(`States.Hash`), so a re-sent call starts one job run and each retry or redrive starts a new one. Job runs the
pipeline did not start (an operator's backfill) that fail are sent to the alerts topic by an EventBridge rule; the
pipeline's own failures reach the alert path through its Catch (one failed run, one alert).

`cluster` mode: nothing long-lived in Pulumi state but what a cluster is made from: the security configuration
(S3 SSE-KMS and local-disk and EBS encryption with the stack key; in-transit TLS when the stack names a certificate
bundle, see docs/CONTROLS.md row 31), three EMR-managed security groups without rules of ours (EMR adds the ones it
needs), the EMR service role (AWS's `AmazonEMRServicePolicy_v2`, a documented exception that only touches resources
tagged `for-use-with-amazon-emr-managed-policies`, plus passing the instance role and using the stack key through
EC2), and the instance profile, whose role is generated from the declaration (every stage the cluster runs: one
cluster, one role) plus the code, the logs and the stack key: never the deprecated `AmazonElasticMapReduceforEC2Role`
(`s3:*` on `*`). Each run's setup step creates the cluster (`createCluster.sync`: an on-demand primary, core and task
fleets of several Graviton types, Spot with capacity-optimized allocation switching to on-demand after
`cluster.spotTimeoutMinutes`, managed scaling limits, idle auto-termination as a backstop, logs to S3, private subnets);
each stage is a step (`addStep.sync`, `command-runner.jar spark-submit --deploy-mode cluster`, `ActionOnFailure:
TERMINATE_CLUSTER`); the teardown terminates it, on success and on failure, and skips when no cluster was made.

Takes `ArchitectureArgs[EmrSettings]`. Exposes `runner`, `pipeline`, `widgets`, `outputs()`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from components import asl, lake_access, packaging, policies
from components.architectures.base import Architecture, ArchitectureArgs
from components.foundation.alarms import metric_alarm, metric_widget
from components.orchestration import Orchestration, OrchestrationArgs
from components.pipelines import BoundRunner, StageCall
from components.queues import dead_letter_queue
from components.roles import instance_role, service_role
from components.runners import StageRunner
from components.settings import (
    PROJECT,
    ArchitectureSettings,
    ConfigError,
    LambdaArchitecture,
    QuarantineRate,
    Schedule,
    SettingsModel,
    SourceName,
    located_error,
    raise_located,
)
from components.stages import RunnerCapabilities, Stage, StageBudget
from etl_jobs import access as declared
from etl_jobs.engines import spark_settings

NAME = "emr"
KEY = f"{PROJECT}:{NAME}"
# emr-7.11.0 is the first EMR release on Spark 3.5.6, Glue 5.1's Spark; releases from 8.0 run Spark 4.
DEFAULT_RELEASE = "emr-7.11.0"
_RELEASE = re.compile(r"emr-7\.(\d+)\.(\d+)")
FIRST_MINOR = 11
SPARK_JOB = packaging.JOBS_DIR / "spark_job.py"
ENV_ALIAS = "environment"
PYTHON = f"./{ENV_ALIAS}/{packaging.SPARK_ENV_PYTHON_PATH}"
CODE_PREFIX = "emr/"
LOGS_PREFIX = "emr/logs/"
# Job runs and steps the pipeline starts carry this prefix; the alert rule leaves them to the pipeline's own alert.
PIPELINE_RUN_PREFIX = "pipeline-"
EMR_MANAGED_TAG = "for-use-with-amazon-emr-managed-policies"
SERVICE_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"
# Graviton instance families carry a `g` after the generation (m7g, r6gd, c7gn); the others are x86_64.
_GRAVITON = re.compile(r"^[a-z]+\d+g[a-z]*\.")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$")
WORKER_CPUS = (1, 2, 4, 8, 16)


class EmrMode(StrEnum):
    SERVERLESS = "serverless"
    CLUSTER = "cluster"


# ---------------------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------------------

InstanceType = Annotated[str, Field(pattern=_INSTANCE_TYPE.pattern)]


class JobSize(SettingsModel):
    """Spark sizes of each job (a stage): the driver, the executors and how many executors it may scale to."""

    driver_cores: int = Field(2, description="vCPUs of the driver (1, 2, 4, 8 or 16)")
    driver_memory_gb: int = Field(8, ge=2, le=120, description="Memory of the driver (GB)")
    executor_cores: int = Field(4, description="vCPUs of each executor (1, 2, 4, 8 or 16)")
    executor_memory_gb: int = Field(16, ge=2, le=120, description="Memory of each executor (GB)")
    max_executors: int = Field(4, ge=1, le=1000, description="Most executors one job scales to (dynamic allocation)")

    @model_validator(mode="after")
    def _fits(self) -> JobSize:
        """EMR Serverless workers take 1-16 vCPU and 2-8 GB per vCPU (Spark adds 10 % overhead on top)."""
        errors = []
        for role in ("driver", "executor"):
            cores, memory = getattr(self, f"{role}_cores"), getattr(self, f"{role}_memory_gb")
            if cores not in WORKER_CPUS:
                errors.append(located_error((f"{role}Cores",), f"{cores} vCPU: use one of 1, 2, 4, 8, 16", cores))
            elif not 2 * cores <= memory <= 8 * cores:
                message = f"{memory} GB for {cores} vCPU: a worker takes {2 * cores}-{8 * cores} GB (2-8 GB per vCPU)"
                errors.append(located_error((f"{role}MemoryGb",), message, memory))
        raise_located(type(self), errors)
        return self

    def worst_case(self) -> tuple[int, int]:
        """(vCPU, GB) one job may hold at once: its driver and every executor, Spark's memory overhead included."""
        cpu = self.driver_cores + self.max_executors * self.executor_cores
        memory = self.driver_memory_gb + self.max_executors * self.executor_memory_gb
        return cpu, int(memory * 1.1) + 1


class PreInitialized(SettingsModel):
    """Workers kept warm while the application is started (they bill for as long as it is started)."""

    drivers: int = Field(0, ge=0, le=100, description="Warm drivers")
    executors: int = Field(0, ge=0, le=1000, description="Warm executors")


class ServerlessSettings(SettingsModel):
    """The EMR Serverless application (mode `serverless`)."""

    max_vcpu: int = Field(
        32, ge=1, le=4000, description="Maximum capacity: vCPUs of all running workers together (no cost at rest)"
    )
    max_memory_gb: int = Field(128, ge=2, le=16000, description="Maximum capacity: memory of all workers (GB)")
    max_disk_gb: int = Field(1000, ge=20, le=400000, description="Maximum capacity: disk of all workers (GB)")
    idle_timeout_minutes: int = Field(
        5,
        ge=1,
        le=10080,
        description="Stop the application after this long without jobs (pre-initialized workers bill until then)",
    )
    pre_initialized: PreInitialized = Field(
        default_factory=PreInitialized,
        description="Warm workers while started. Cost: each bills vCPU-hours and GB-hours (about $0.052 and $0.0057 on "
        "arm64) for as long as the application is started, which auto-stop bounds; 0 by default",
    )


class Fleet(SettingsModel):
    """A core or task instance fleet: several instance types, capacity in instances (each type weighs 1)."""

    instance_types: list[InstanceType] = Field(min_length=1, max_length=15, description="Instance types it may use")
    on_demand: int = Field(0, ge=0, le=100, description="On-demand instances")
    spot: int = Field(0, ge=0, le=100, description="Spot instances (capacity-optimized)")


class ClusterSettings(SettingsModel):
    """The transient EMR on EC2 cluster each run creates (mode `cluster`)."""

    primary_instance_types: list[InstanceType] = Field(
        default_factory=lambda: ["m7g.xlarge", "m6g.xlarge", "m7g.2xlarge"],
        min_length=1,
        max_length=15,
        description="Types the on-demand primary node may be",
    )
    core: Fleet = Field(
        default_factory=lambda: Fleet(instance_types=["m7g.2xlarge", "m6g.2xlarge", "r7g.xlarge"], on_demand=1),
        description="Core fleet (on-demand by default: it holds HDFS and the application masters)",
    )
    task: Fleet = Field(
        default_factory=lambda: Fleet(
            instance_types=["m7g.2xlarge", "m6g.2xlarge", "c7g.4xlarge", "r7g.2xlarge"], spot=2
        ),
        description="Task fleet (Spot by default: executors only, so an interruption costs a retried task)",
    )
    max_instances: int = Field(
        10, ge=2, le=500, description="Managed scaling: most instances of the core and task fleets together"
    )
    spot_timeout_minutes: int = Field(
        10, ge=5, le=1440, description="Wait this long for Spot capacity, then switch the fleet to on-demand"
    )
    idle_timeout_minutes: int = Field(
        60,
        ge=1,
        le=10080,
        description="Auto-termination backstop: a cluster idle this long ends itself (runs "
        "terminate it at teardown; this catches one whose execution stopped before its teardown)",
    )
    ebs_volume_gb: int = Field(64, ge=32, le=16384, description="EBS gp3 volume per instance (encrypted)")
    tls_certificates_uri: Annotated[str, Field(pattern=r"^s3://[a-z0-9.-]{3,63}/.+\.zip$")] | None = Field(
        None,
        description="An S3 zip of PEM certificates (privateKey.pem, certificateChain.pem, trustedCertificates.pem) "
        "your PKI manages: turns on in-transit encryption between the nodes",
    )


class EmrSettings(ArchitectureSettings):
    """Architecture 4: the Spark job on EMR Serverless (default) or a transient EMR on EC2 cluster per run."""

    mode: EmrMode = Field(EmrMode.SERVERLESS, description="`serverless` (no cost at rest) or `cluster`")
    release_label: str = Field(
        DEFAULT_RELEASE, description="EMR release, emr-7.11.0 or a later 7.x (Spark 3.5.6, the engine's Spark)"
    )
    architecture: LambdaArchitecture = Field(
        LambdaArchitecture.ARM64, description="`arm64` (Graviton) or `x86_64`; cluster instance types must match"
    )
    schedule: Schedule = Field("cron(0 4 * * ? *)", description="EventBridge Scheduler expression that starts a run")
    sources: list[SourceName] = Field(
        default_factory=lambda: ["orders"], min_length=1, description="Sources its pipeline extracts"
    )
    max_concurrency: int = Field(2, ge=1, le=40, description="Sources extracted and transformed at once")
    max_quarantine_rate: QuarantineRate = Field(0.10, description="Quarantined share of rows that fails a run")
    job_timeout_minutes: int = Field(
        60, ge=5, le=1440, description="Longest one stage's job (or step) may run before it is stopped"
    )
    job: JobSize = Field(default_factory=JobSize, description="Spark sizes of each stage's job")
    serverless: ServerlessSettings = Field(default_factory=ServerlessSettings, description="Mode `serverless`")
    cluster: ClusterSettings = Field(default_factory=ClusterSettings, description="Mode `cluster`")

    @field_validator("release_label")
    @classmethod
    def _release(cls, value: str) -> str:
        match = _RELEASE.fullmatch(value)
        if match is None or int(match[1]) < FIRST_MINOR:
            raise ValueError(
                f"{value!r} is not an EMR 7.x release from emr-7.11.0 on: the engine runs Spark 3.5.6 (Glue 5.1's), "
                "which emr-7.11.0 brings; earlier 7.x releases run older 3.5 patches and 8.x Spark 4"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EmrSettings:
        errors = []
        other = EmrMode.CLUSTER if self.mode is EmrMode.SERVERLESS else EmrMode.SERVERLESS
        if other.value in self.model_fields_set:
            message = f"settings for mode {other.value}, but mode is {self.mode.value}; remove them or set mode"
            errors.append(located_error((other.value,), message, other.value))
        if self.mode is EmrMode.SERVERLESS:
            cpu, memory = self.job.worst_case()
            capacity = self.serverless
            if cpu > capacity.max_vcpu:
                message = f"{capacity.max_vcpu} vCPU cannot hold one job at its largest ({cpu} vCPU: job sizes)"
                errors.append(located_error(("serverless", "maxVcpu"), message, capacity.max_vcpu))
            if memory > capacity.max_memory_gb:
                message = f"{capacity.max_memory_gb} GB cannot hold one job at its largest ({memory} GB: job sizes)"
                errors.append(located_error(("serverless", "maxMemoryGb"), message, capacity.max_memory_gb))
        else:
            cluster = self.cluster
            graviton = self.architecture is LambdaArchitecture.ARM64
            for loc, types in (
                (("cluster", "primaryInstanceTypes"), cluster.primary_instance_types),
                (("cluster", "core", "instanceTypes"), cluster.core.instance_types),
                (("cluster", "task", "instanceTypes"), cluster.task.instance_types),
            ):
                wrong = [t for t in types if bool(_GRAVITON.match(t)) != graviton]
                if wrong:
                    kind = "Graviton (arm64, e.g. m7g.xlarge)" if graviton else "x86_64 (e.g. m7i.xlarge)"
                    message = f"{wrong} do not match architecture {self.architecture.value}: use {kind} types"
                    errors.append(located_error(loc, message, types))
            if cluster.core.on_demand + cluster.core.spot < 1:
                message = "the core fleet needs at least one instance (on-demand or spot)"
                errors.append(located_error(("cluster", "core"), message, cluster.core.model_dump(by_alias=True)))
            floor = cluster.core.on_demand + cluster.core.spot + cluster.task.on_demand + cluster.task.spot
            if cluster.max_instances < floor:
                message = f"{cluster.max_instances} is below the {floor} instances the core and task fleets start with"
                errors.append(located_error(("cluster", "maxInstances"), message, cluster.max_instances))
        raise_located(type(self), errors)
        return self

    def budget(self) -> StageBudget:
        """A stage's Task: the job's own timeout plus time to start (an application or a step's container)."""
        retry = asl.JOB_RETRY if self.mode is EmrMode.SERVERLESS else CLUSTER_STEP_RETRY
        return StageBudget(timeout_seconds=self.job_timeout_minutes * 60 + START_MARGIN_SECONDS, retry=retry)


# A stopped application starts in about a minute and a step waits for a container; the job's own timeout is inside.
START_MARGIN_SECONDS = 300
# A failed step has already terminated its cluster (ActionOnFailure), so only the EMR API's own errors are retried.
CLUSTER_STEP_RETRY = (asl.Retry((asl.EMR_API_ERROR,), interval_seconds=10, max_attempts=3),)
# Creating a cluster: provisioning and bootstrapping take minutes; Spot may wait `spotTimeoutMinutes` on top.
CREATE_TIMEOUT_SECONDS = 3600
TERMINATE_TIMEOUT_SECONDS = 1800
CREATE_RETRY = (asl.Retry((asl.EMR_API_ERROR,), interval_seconds=10, max_attempts=3),)


# ---------------------------------------------------------------------------------------------------------------------
# What the job is given (pure functions: the tests compare them with what runs locally)
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class JobCode:
    """Where the job's code lives once uploaded."""

    entry_point: str
    """s3:// URI of the entry module (`etl_jobs/spark_job.py`)."""
    py_files: str
    """s3:// URI of the `etl_jobs` package zip."""
    environment: str
    """s3:// URI of the Python environment archive."""


def job_settings() -> Mapping[str, str]:
    """The Spark settings every runner of the job uses, from the job side's one module."""
    return spark_settings.SETTINGS


def entry_point_arguments(call: StageCall) -> list[str]:
    """The entry module's arguments for a stage call, as ASL intrinsic arguments, in the order of the Spark job's own
    vector (`etl_jobs.spark_job.job_arguments`): `'--stage', 'transform', '--run-date', $.run_date, '--source',
    $.source, '--result-uri', ..., '--max-quarantine-rate', ...` (the stage is an option of the job, where it is a
    command of `python -m etl_jobs`). The zones and the scratch location reach the job as environment variables."""
    arguments = ["'--stage'", f"'{call.name}'", "'--run-date'", "$.run_date"]
    if call.per_source:
        arguments += ["'--source'", "$.source"]
    # A correction runs as its own --stage (retract, reprocess) on the job of the stage whose role it needs.
    for flag, path in call.correction.options if call.correction else ():
        arguments += [f"'{flag}'", path]
    if call.result_uri is not None:
        arguments += ["'--result-uri'", call.result_uri]
    if call.max_quarantine_rate is not None:
        arguments += ["'--max-quarantine-rate'", f"'{call.max_quarantine_rate}'"]
    return arguments


def spark_conf(
    mode: EmrMode, code: JobCode, job: JobSize, environment: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every `--conf` of a job: the job's own Spark settings (one module for Glue, EMR and local runs), the sizes, the
    Python environment and code, and the environment variables of the driver and the executors."""
    driver_env = "spark.emr-serverless.driverEnv." if mode is EmrMode.SERVERLESS else "spark.yarn.appMasterEnv."
    conf: dict[str, str] = dict(job_settings())
    conf.update(
        {
            "spark.driver.cores": str(job.driver_cores),
            "spark.driver.memory": f"{job.driver_memory_gb}g",
            "spark.executor.cores": str(job.executor_cores),
            "spark.executor.memory": f"{job.executor_memory_gb}g",
            "spark.dynamicAllocation.enabled": "true",
            "spark.dynamicAllocation.maxExecutors": str(job.max_executors),
            "spark.archives": f"{code.environment}#{ENV_ALIAS}",
            "spark.submit.pyFiles": code.py_files,
            "spark.pyspark.python": PYTHON,
            "spark.pyspark.driver.python": PYTHON,
            f"{driver_env}PYSPARK_PYTHON": PYTHON,
            "spark.executorEnv.PYSPARK_PYTHON": PYTHON,
        }
    )
    if mode is EmrMode.SERVERLESS:
        conf[f"{driver_env}PYSPARK_DRIVER_PYTHON"] = PYTHON
    for variable, value in sorted(environment.items()):
        conf[f"{driver_env}{variable}"] = value
        conf[f"spark.executorEnv.{variable}"] = value
    conf.update(extra or {})
    return conf


def conf_arguments(conf: Mapping[str, str]) -> list[str]:
    """`--conf KEY=VALUE` pairs in key order (stable definitions: no diff unless a value changes), rendered by the
    job's own `spark_settings.submit_arguments`, so a step's command line is the one spark-submit runs locally."""
    return spark_settings.submit_arguments(conf)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def client_token(call: StageCall) -> str:
    """An idempotency token for StartJobRun (64 characters at most): one per execution, stage, source, redrive and
    retry. A call re-sent within one attempt starts one job run; a retry or a redrive starts a new one."""
    parts = ["$$.Execution.Id", _quote(call.stage.value)]
    if call.per_source:
        parts.append("$.source")
    parts += ["$$.Execution.RedriveCount", "$$.State.RetryCount"]
    template = "/".join("{}" for _ in parts)
    return f"States.Hash(States.Format('{template}', {', '.join(parts)}), 'SHA-1')"


def run_name(call: StageCall) -> str:
    """The job run's or step's name: the pipeline's prefix, the execution, the stage (and source)."""
    if call.per_source:
        return f"States.Format('{PIPELINE_RUN_PREFIX}{{}}-{call.stage.value}-{{}}', $$.Execution.Name, $.source)"
    return f"States.Format('{PIPELINE_RUN_PREFIX}{{}}-{call.stage.value}', $$.Execution.Name)"


# ---------------------------------------------------------------------------------------------------------------------
# Policy documents
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Grant:
    """A grant of EMR's own (code, logs) in the shape of `etl_jobs.access.Grant`."""

    zone: str
    prefix: str
    ops: frozenset[str]


# What every job (and a cluster's instances) needs besides the lake: read its code, write its logs.
EMR_GRANTS = (
    _Grant("emr", "code/", frozenset({"read"})),
    _Grant("emr", "env/", frozenset({"read"})),
    _Grant("emr", "logs/", frozenset({"write", "list"})),
    # The Spark engine's scratch location: Parquet crossing between the driver and the executors (ETL_SPARK_SCRATCH).
    _Grant("emr", "scratch/", frozenset({"read", "write", "delete", "list"})),
)
SCRATCH_PREFIX = f"{CODE_PREFIX}scratch/"


def job_statements(
    stages: Sequence[Stage], buckets: Mapping[str, str], *, key_arn: str, region: str
) -> list[policies.Statement]:
    """The S3 and KMS statements of a role running `stages`: their declared grants on the lake (result objects
    included: EMR returns no payload) and EMR's own (code, logs) under `emr/` of the artifacts bucket."""
    grants: list[Any] = []
    for stage in stages:
        grants += [g for g in declared.role_grants(stage.value) if g not in grants]
    lake = lake_access.lake_arns(buckets, key_arn=key_arn, region=region, results_prefix=lake_access.RESULTS_PREFIX)
    lake = dataclasses.replace(
        lake, buckets={**lake.buckets, "emr": buckets["artifacts"]}, roots={**lake.roots, "emr": CODE_PREFIX}
    )
    return lake_access.statements([*grants, *EMR_GRANTS], lake)


def cloudwatch_logs_statement(log_group_arn: str) -> policies.Statement:
    """EMR Serverless ships the driver's and executors' logs to the group under the job role."""
    return policies.allow(
        ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        [log_group_arn, f"{log_group_arn}:*"],
        sid="JobLogs",
    )


def local_disk_key_statement(key_arn: str) -> policies.Statement:
    """Cluster instances encrypt their local disks with a data key of the stack key, asked for directly (not through
    S3), and read it back when they start."""
    return policies.allow(["kms:Decrypt", "kms:GenerateDataKey"], [key_arn], sid="LocalDiskKey")


def service_role_policy(instance_role_arn: str, key_arn: str, region: str) -> policies.PolicyDocument:
    """What the EMR service role needs beyond `AmazonEMRServicePolicy_v2`: hand this stack's instance role to EC2
    (the managed policy only passes `EMR_EC2_DefaultRole`) and let EC2 use the stack key for the encrypted EBS
    volumes it creates for the cluster."""
    via_ec2 = {"StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"}}
    return policies.document(
        policies.allow(
            ["iam:PassRole"],
            [instance_role_arn],
            sid="PassInstanceRole",
            Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
        policies.allow(
            [
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
            [key_arn],
            sid="EbsKey",
            Condition=via_ec2,
        ),
        policies.allow(
            ["kms:CreateGrant"],
            [key_arn],
            sid="EbsKeyGrant",
            Condition={**via_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
    )


def security_configuration(key_arn: str, tls_certificates_uri: str | None) -> dict[str, Any]:
    """At rest: S3 (EMRFS) SSE-KMS, local disks and EBS with the stack key. In transit: TLS with the given PEM bundle
    when there is one (docs/CONTROLS.md row 31). IMDSv2 only."""
    encryption: dict[str, Any] = {
        "EnableAtRestEncryption": True,
        "EnableInTransitEncryption": tls_certificates_uri is not None,
        "AtRestEncryptionConfiguration": {
            "S3EncryptionConfiguration": {"EncryptionMode": "SSE-KMS", "AwsKmsKey": key_arn},
            "LocalDiskEncryptionConfiguration": {
                "EncryptionKeyProviderType": "AwsKms",
                "AwsKmsKey": key_arn,
                "EnableEbsEncryption": True,
            },
        },
    }
    if tls_certificates_uri is not None:
        encryption["InTransitEncryptionConfiguration"] = {
            "TLSCertificateConfiguration": {"CertificateProviderType": "PEM", "S3Object": tls_certificates_uri}
        }
    return {
        "EncryptionConfiguration": encryption,
        "InstanceMetadataServiceConfiguration": {
            "MinimumInstanceMetadataServiceVersion": 2,
            "HttpPutResponseHopLimit": 2,
        },
    }


def failed_job_run_pattern(application_id: str) -> dict[str, Any]:
    """Job runs on the application that failed and that no pipeline started (a pipeline's runs carry its prefix and
    its failures reach the alert path through the run)."""
    return {
        "source": ["aws.emr-serverless"],
        "detail-type": ["EMR Serverless Job Run State Change"],
        "detail": {
            "applicationId": [application_id],
            "state": ["FAILED"],
            "jobRunName": [{"anything-but": {"prefix": PIPELINE_RUN_PREFIX}}],
        },
    }


# ---------------------------------------------------------------------------------------------------------------------
# The stage runners
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EmrServerlessJobs(BoundRunner):
    """Stages as EMR Serverless job runs (`emr-serverless:startJobRun.sync`), each under its stage's job role."""

    architecture: str
    application_arn: str
    job_role_arns: Mapping[Stage, str]
    entry_point: str
    submit_parameters: str
    budgets: Mapping[Stage, StageBudget]

    returns_payload: ClassVar[bool] = False
    waits_for_jobs: ClassVar[bool] = True

    def task(self, call: StageCall, *, name: str, **options: Any) -> asl.Task:
        return asl.emr_serverless_start_job_run(
            name,
            application_arn=self.application_arn,
            execution_role_arn=self.job_role_arns[call.stage],
            entry_point=self.entry_point,
            entry_point_arguments_path=f"States.Array({', '.join(entry_point_arguments(call))})",
            spark_submit_parameters=self.submit_parameters,
            client_token_path=client_token(call),
            name_path=run_name(call),
            execution_timeout_minutes=max(1, (self.budgets[call.stage].timeout_seconds - START_MARGIN_SECONDS) // 60),
            # The job run's description is large; its id and state say where to look.
            result_selector={"JobRunId.$": "$.JobRunId", "State.$": "$.State"},
            **options,
        )


@dataclasses.dataclass(frozen=True)
class EmrClusterSteps(BoundRunner):
    """Stages as steps of a cluster the run creates in its setup and terminates in its teardown."""

    architecture: str
    region_arn: str
    cluster: Mapping[str, Any]
    """The RunJobFlow request (createCluster's parameters)."""
    service_role_arn: str
    instance_role_arn: str
    spark_submit: tuple[str, ...]
    """`spark-submit --deploy-mode cluster --conf ...` up to and including the entry point."""
    budgets: Mapping[Stage, StageBudget]

    returns_payload: ClassVar[bool] = False
    waits_for_jobs: ClassVar[bool] = True
    state_key: ClassVar[str] = "emr_cluster"

    @property
    def cluster_id(self) -> str:
        return f"$.{self.state_key}.ClusterId"

    def task(self, call: StageCall, *, name: str, **options: Any) -> asl.Task:
        arguments = [*(_quote(part) for part in self.spark_submit), *entry_point_arguments(call)]
        return asl.emr_add_step(
            name,
            region_arn=self.region_arn,
            cluster_id_path=self.cluster_id,
            step_name=f"{call.stage.value}",
            args_path=f"States.Array({', '.join(arguments)})",
            result_selector={"StepId.$": "$.Step.Id", "State.$": "$.Step.Status.State"},
            **options,
        )

    def setup_states(self, next_state: str) -> tuple[asl.State, ...]:
        return (
            asl.emr_create_cluster(
                "EmrCreateCluster",
                region_arn=self.region_arn,
                cluster=dict(self.cluster),
                service_role_arn=self.service_role_arn,
                instance_role_arn=self.instance_role_arn,
                comment="A cluster for this run only; the teardown terminates it",
                result_selector={"ClusterId.$": "$.ClusterId"},
                result_path=f"$.{self.state_key}",
                timeout_seconds=CREATE_TIMEOUT_SECONDS,
                retry=CREATE_RETRY,
                next=next_state,
            ),
        )

    def teardown_states(self, label: str, next_state: str, on_error: str) -> tuple[asl.State, ...]:
        check, terminate = f"EmrClusterCreated{label}", f"EmrTerminateCluster{label}"
        # On the failure path the alert is already written; keep the stage's error, record the teardown's beside it.
        error_path = "$.error" if label == "Success" else "$.teardown_error"
        return (
            asl.Choice(
                name=check,
                comment="Setup may have failed before a cluster existed",
                choices=(asl.ChoiceRule(asl.IsPresent(self.cluster_id), terminate),),
                default=next_state,
            ),
            asl.emr_terminate_cluster(
                terminate,
                region_arn=self.region_arn,
                cluster_id_path=self.cluster_id,
                # Beside the run's state: the alert (on the failure path) and the run date must survive.
                result_path="$.emr_teardown",
                timeout_seconds=TERMINATE_TIMEOUT_SECONDS,
                retry=CREATE_RETRY,
                catch=(asl.Catch(on_error, result_path=error_path),),
                next=next_state,
            ),
        )

    def carried(self) -> Mapping[str, str]:
        return {f"{self.state_key}.$": f"$.{self.state_key}"}

    def hook_seconds(self) -> int:
        create = StageBudget(CREATE_TIMEOUT_SECONDS, CREATE_RETRY).worst_case_seconds()
        return create + StageBudget(TERMINATE_TIMEOUT_SECONDS, CREATE_RETRY).worst_case_seconds()


@dataclasses.dataclass(frozen=True)
class EmrRunner(StageRunner):
    """The runner before its ARNs are known: `bind()` resolves them into the mode's bound runner."""

    architecture: str
    mode: EmrMode
    budgets: Mapping[Stage, StageBudget]
    values: Mapping[str, Any]
    """Outputs (or plain values) the bound runner is made of, by field."""

    returns_payload: ClassVar[bool] = False
    waits_for_jobs: ClassVar[bool] = True

    def hook_seconds(self) -> int:
        if self.mode is EmrMode.SERVERLESS:
            return 0
        create = StageBudget(CREATE_TIMEOUT_SECONDS, CREATE_RETRY).worst_case_seconds()
        return create + StageBudget(TERMINATE_TIMEOUT_SECONDS, CREATE_RETRY).worst_case_seconds()

    def bind(self) -> pulumi.Output[BoundRunner]:
        kind = EmrServerlessJobs if self.mode is EmrMode.SERVERLESS else EmrClusterSteps
        return pulumi.Output.from_input(dict(self.values)).apply(
            lambda resolved: kind(architecture=self.architecture, budgets=self.budgets, **resolved)
        )


# ---------------------------------------------------------------------------------------------------------------------
# The component
# ---------------------------------------------------------------------------------------------------------------------


def _content_key(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class Emr(Architecture):
    type_token = "etl:architectures:Emr"
    settings_model: ClassVar[type[ArchitectureSettings]] = EmrSettings

    @classmethod
    def endpoints(cls, settings: ArchitectureSettings) -> tuple[str, ...]:
        assert isinstance(settings, EmrSettings)
        if settings.mode is EmrMode.SERVERLESS:
            # Job runs ship their logs to CloudWatch from the application's network; S3 goes through the gateway.
            return ("logs",)
        # Cluster nodes in private subnets report to EMR's control plane and fetch their local-disk data keys.
        return ("elasticmapreduce", "kms")

    @classmethod
    def runner_capabilities(cls, settings: ArchitectureSettings) -> RunnerCapabilities:
        return RunnerCapabilities(stages=frozenset(Stage), waits_for_jobs=True)

    pipeline: Orchestration

    def __init__(
        self, name: str, args: ArchitectureArgs[EmrSettings], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, opts)
        settings, foundation = args.settings, args.foundation
        if not SPARK_JOB.exists():
            raise ConfigError(
                f"{KEY}: the Spark job's entry module {SPARK_JOB.relative_to(packaging.REPO_ROOT)} is missing from "
                "this checkout: EMR runs the Spark engine's job, which the spark branch brings"
            )
        job_settings()  # fails here, with its message, when the job side is missing
        self._name, self._settings, self._foundation = name, settings, foundation
        self._child = pulumi.ResourceOptions(parent=self)
        self._prefix = f"{foundation.stack.project}-{foundation.stack.stack}"
        self._code = self._upload_code()
        budgets = {stage: settings.budget() for stage in Stage}
        environment: dict[str, pulumi.Input[str]] = {
            **foundation.lake.zone_environment(),
            "AWS_REGION": foundation.stack.region,
            "AWS_DEFAULT_REGION": foundation.stack.region,
            "ETL_MAX_QUARANTINE_RATE": str(settings.max_quarantine_rate),
            # Where the engine's Parquet crosses between the driver and the executors (a URI every executor reaches).
            "ETL_SPARK_SCRATCH": foundation.lake.artifacts.uri(SCRATCH_PREFIX),
        }
        self.application: aws.emrserverless.Application | None = None
        self.security_configuration: aws.emr.SecurityConfiguration | None = None
        serverless = settings.mode is EmrMode.SERVERLESS
        values = self._serverless(environment) if serverless else self._cluster(environment)
        self.runner = EmrRunner(architecture=NAME, mode=settings.mode, budgets=budgets, values=values)
        self.pipeline = Orchestration(
            f"{name}-pipeline",
            OrchestrationArgs(
                foundation=foundation,
                sources=tuple(settings.sources),
                runners=dict.fromkeys(Stage, self.runner),
                schedule=settings.schedule,
                max_quarantine_rate=settings.max_quarantine_rate,
                max_concurrency=settings.max_concurrency,
                settings_key=KEY,
            ),
            opts=self._child,
        )
        self.widgets.extend(self.pipeline.widgets)
        self.register_outputs(self.outputs())

    # -----------------------------------------------------------------------------------------------------------------
    def _object(
        self, role: str, key: pulumi.Input[str], source: pulumi.Asset | pulumi.Archive
    ) -> aws.s3.BucketObjectv2:
        foundation = self._foundation
        return aws.s3.BucketObjectv2(
            f"{self._name}-{role}",
            bucket=foundation.lake.artifacts.name,
            key=key,
            source=source,
            server_side_encryption="aws:kms",
            kms_key_id=foundation.key.arn,
            opts=self._child,
        )

    def _upload_code(self) -> pulumi.Output[JobCode]:
        """The entry module, the package and the environment under content keys in the artifacts bucket."""
        settings = self._settings
        entry_key = f"{CODE_PREFIX}code/spark_job-{_content_key(SPARK_JOB)}.py"
        package = packaging.function_package()
        package_key = f"{CODE_PREFIX}code/etl_jobs-{package.key}.zip"
        env = packaging.spark_env_package(settings.architecture)
        env_key = f"{CODE_PREFIX}env/python-{settings.architecture.value}-{env.key}.tar.gz"
        entry = self._object("entry-point", entry_key, pulumi.FileAsset(str(SPARK_JOB)))
        code = self._object("package", package_key, package.asset)
        environment = self._object("environment", env_key, env.asset)
        bucket = self._foundation.lake.artifacts.name
        return pulumi.Output.all(bucket, entry.key, code.key, environment.key).apply(
            lambda v: JobCode(
                entry_point=f"s3://{v[0]}/{v[1]}", py_files=f"s3://{v[0]}/{v[2]}", environment=f"s3://{v[0]}/{v[3]}"
            )
        )

    def _bucket_arns(self) -> pulumi.Output[dict[str, str]]:
        lake = self._foundation.lake
        return pulumi.Output.all(
            raw=lake.raw.arn,
            staged=lake.staged.arn,
            curated=lake.curated.arn,
            quarantine=lake.quarantine.arn,
            artifacts=lake.artifacts.arn,
        )

    def _private_security_group(
        self, role: str, description: str, *, https_egress: bool, tags: dict[str, str]
    ) -> aws.ec2.SecurityGroup:
        group = aws.ec2.SecurityGroup(
            f"{self._name}-{role}-sg",
            vpc_id=self._foundation.network.vpc_id,
            description=description,
            # EMR adds rules that reference the other managed groups; they must go before the groups can.
            revoke_rules_on_delete=True,
            tags=tags or None,
            opts=self._child,
        )
        if https_egress:
            aws.vpc.SecurityGroupEgressRule(
                f"{self._name}-{role}-https-out",
                security_group_id=group.id,
                description="HTTPS to S3 and AWS APIs (endpoints or NAT)",
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4="0.0.0.0/0",
                opts=self._child,
            )
        return group

    # -----------------------------------------------------------------------------------------------------------------
    def _serverless(self, environment: Mapping[str, pulumi.Input[str]]) -> dict[str, Any]:
        settings, foundation, name = self._settings, self._foundation, self._name
        capacity = settings.serverless
        logs = aws.cloudwatch.LogGroup(
            f"{name}-job-logs",
            retention_in_days=foundation.log_retention_days,
            kms_key_id=foundation.key.arn,
            opts=foundation.stateful(self),
        )
        group = self._private_security_group(
            "jobs", "EMR Serverless job runs: no inbound traffic; HTTPS out to AWS APIs", https_egress=True, tags={}
        )
        initial = []
        for worker, count in (
            ("Driver", capacity.pre_initialized.drivers),
            ("Executor", capacity.pre_initialized.executors),
        ):
            if count:
                cores = settings.job.driver_cores if worker == "Driver" else settings.job.executor_cores
                memory = settings.job.driver_memory_gb if worker == "Driver" else settings.job.executor_memory_gb
                initial.append(
                    aws.emrserverless.ApplicationInitialCapacityArgs(
                        initial_capacity_type=worker,
                        initial_capacity_config=aws.emrserverless.ApplicationInitialCapacityInitialCapacityConfigArgs(
                            worker_count=count,
                            worker_configuration=aws.emrserverless.ApplicationInitialCapacityInitialCapacityConfigWorkerConfigurationArgs(
                                cpu=f"{cores} vCPU", memory=f"{memory} GB"
                            ),
                        ),
                    )
                )
        log_uri = foundation.lake.artifacts.uri(f"{LOGS_PREFIX}serverless/")
        self.application = aws.emrserverless.Application(
            f"{name}-application",
            release_label=settings.release_label,
            type="spark",
            architecture="ARM64" if settings.architecture is LambdaArchitecture.ARM64 else "X86_64",
            auto_start_configuration=aws.emrserverless.ApplicationAutoStartConfigurationArgs(enabled=True),
            auto_stop_configuration=aws.emrserverless.ApplicationAutoStopConfigurationArgs(
                enabled=True, idle_timeout_minutes=capacity.idle_timeout_minutes
            ),
            maximum_capacity=aws.emrserverless.ApplicationMaximumCapacityArgs(
                cpu=f"{capacity.max_vcpu} vCPU",
                memory=f"{capacity.max_memory_gb} GB",
                disk=f"{capacity.max_disk_gb} GB",
            ),
            initial_capacities=initial or None,
            network_configuration=aws.emrserverless.ApplicationNetworkConfigurationArgs(
                subnet_ids=list(foundation.network.private_subnet_ids), security_group_ids=[group.id]
            ),
            monitoring_configuration=aws.emrserverless.ApplicationMonitoringConfigurationArgs(
                s3_monitoring_configuration=aws.emrserverless.ApplicationMonitoringConfigurationS3MonitoringConfigurationArgs(
                    log_uri=log_uri, encryption_key_arn=foundation.key.arn
                ),
                cloudwatch_logging_configuration=aws.emrserverless.ApplicationMonitoringConfigurationCloudwatchLoggingConfigurationArgs(
                    enabled=True, log_group_name=logs.name
                ),
            ),
            opts=self._child,
        )
        application = self.application
        account, region = foundation.stack.account_id, foundation.stack.region
        roles: dict[Stage, pulumi.Output[str]] = {}

        def job_policy(stage: Stage) -> pulumi.Output[str]:
            return pulumi.Output.all(self._bucket_arns(), foundation.key.arn, logs.arn).apply(
                lambda v: json.dumps(
                    policies.document(
                        *job_statements([stage], v[0], key_arn=v[1], region=region), cloudwatch_logs_statement(v[2])
                    )
                )
            )

        for stage in Stage:
            policy = job_policy(stage)
            roles[stage] = service_role(
                f"{name}-{stage.value}-job-role",
                policy_name=f"{name}-{stage.value}-job-policy",
                service="emr-serverless.amazonaws.com",
                account_id=account,
                source_arns=[application.arn],
                description=f"EMR Serverless {stage.value} job runs: what etl_jobs.access declares, the code, the logs",
                policy=policy,
                parent=self,
            ).role.arn
        self._serverless_alerts(application, f"{name}-job-logs")
        self._serverless_monitoring(application)
        submit = pulumi.Output.all(self._code, pulumi.Output.all(**environment)).apply(
            lambda v: " ".join(conf_arguments(spark_conf(EmrMode.SERVERLESS, v[0], settings.job, v[1])))
        )
        return {
            "application_arn": application.arn,
            "job_role_arns": pulumi.Output.all(*[roles[stage] for stage in Stage]).apply(
                lambda arns: dict(zip(Stage, arns, strict=True))
            ),
            "entry_point": self._code.apply(lambda code: code.entry_point),
            "submit_parameters": submit,
        }

    def _serverless_alerts(self, application: aws.emrserverless.Application, log_group: str) -> None:
        foundation, name = self._foundation, self._name
        rule = aws.cloudwatch.EventRule(
            f"{name}-failed-job-runs",
            description="EMR Serverless job runs no pipeline started (backfills, ad hoc runs) that failed",
            event_pattern=application.id.apply(lambda app: json.dumps(failed_job_run_pattern(app))),
            opts=self._child,
        )
        dead_letters = dead_letter_queue(
            f"{name}-failed-job-runs-dlq",
            parent=self,
            key_arn=foundation.key.arn,
            account_id=foundation.stack.account_id,
            alerts=foundation.alerts,
            stateful=foundation.stateful(self),
            holds="alerts about failed EMR Serverless job runs EventBridge could not deliver.",
            senders=[("events.amazonaws.com", rule.arn)],
        )
        aws.cloudwatch.EventTarget(
            f"{name}-failed-job-runs-alert",
            rule=rule.name,
            arn=foundation.alerts.topic_arn,
            input_transformer=aws.cloudwatch.EventTargetInputTransformerArgs(
                input_paths={
                    "run": "$.detail.jobRunId",
                    "name": "$.detail.jobRunName",
                    "app": "$.detail.applicationId",
                },
                # A short summary, as the pipeline's alerts: never the event itself.
                input_template=pulumi.Output.concat(
                    f'"{self._prefix} EMR: job run <run> (<name>) on application <app> failed. Logs: s3://',
                    foundation.lake.artifacts.name,
                    f'/{LOGS_PREFIX}serverless/applications/<app>/jobs/<run>/ and the log group {log_group}."',
                ),
            ),
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=dead_letters.arn),
            opts=self._child,
        )

    def _serverless_monitoring(self, application: aws.emrserverless.Application) -> None:
        foundation, settings = self._foundation, self._settings
        dimensions = {"ApplicationId": application.id}
        if foundation.profile.diagnostic_alarms:
            metric_alarm(  # diagnostic: it explains slow runs (the pipeline alarms on one past its timeout)
                f"{self._name}-at-capacity",
                parent=self,
                alerts=foundation.alerts,
                description=f"{self._prefix} EMR Serverless held its maximum capacity "
                f"({settings.serverless.max_vcpu} vCPU) for 15 minutes: jobs wait for workers. Raise "
                "emr.serverless.maxVcpu or shrink emr.job.",
                namespace="AWS/EMRServerless",
                metric_name="CPUAllocated",
                dimensions=dimensions,
                statistic="Maximum",
                threshold=settings.serverless.max_vcpu,
                comparison="GreaterThanOrEqualToThreshold",
                evaluation_periods=3,
            )
        region = foundation.stack.region
        self.widgets.append(
            metric_widget(
                "EMR Serverless: job runs",
                [
                    ["AWS/EMRServerless", metric, "ApplicationId", application.id]
                    for metric in ("RunningJobs", "SuccessJobs", "FailedJobs")
                ],
                region=region,
            )
        )
        self.widgets.append(
            metric_widget(
                "EMR Serverless: capacity in use",
                [
                    ["AWS/EMRServerless", "CPUAllocated", "ApplicationId", application.id],
                    ["AWS/EMRServerless", "MemoryAllocated", "ApplicationId", application.id, {"yAxis": "right"}],
                ],
                region=region,
                stat="Maximum",
            )
        )

    # -----------------------------------------------------------------------------------------------------------------
    def _cluster(self, environment: Mapping[str, pulumi.Input[str]]) -> dict[str, Any]:
        settings, foundation, name = self._settings, self._foundation, self._name
        cluster, stack = settings.cluster, foundation.stack
        managed = {EMR_MANAGED_TAG: "true"}
        # AmazonEMRServicePolicy_v2 only launches into subnets and security groups carrying the tag.
        for index, subnet in enumerate(foundation.network.private_subnet_ids):
            aws.ec2.Tag(
                f"{name}-subnet-{index}-tag", resource_id=subnet, key=EMR_MANAGED_TAG, value="true", opts=self._child
            )
        primary_sg = self._private_security_group(
            "primary", "EMR primary node (EMR-managed rules)", https_egress=False, tags=managed
        )
        core_sg = self._private_security_group(
            "core", "EMR core and task nodes (EMR-managed rules)", https_egress=False, tags=managed
        )
        service_sg = self._private_security_group(
            "service-access",
            "EMR service access in private subnets (EMR-managed rules)",
            https_egress=False,
            tags=managed,
        )
        self.security_configuration = aws.emr.SecurityConfiguration(
            f"{name}-security",
            configuration=foundation.key.arn.apply(
                lambda key: json.dumps(security_configuration(key, cluster.tls_certificates_uri), sort_keys=True)
            ),
            opts=self._child,
        )
        account, region = stack.account_id, stack.region
        role_policy = pulumi.Output.all(self._bucket_arns(), foundation.key.arn).apply(
            lambda v: json.dumps(
                policies.document(
                    *job_statements(list(Stage), v[0], key_arn=v[1], region=region), local_disk_key_statement(v[1])
                )
            )
        )
        role = instance_role(
            f"{name}-instance-role",
            policy_name=f"{name}-instance-policy",
            description="EMR cluster instances: what etl_jobs.access declares for every stage, the code, the logs",
            policy=role_policy,
            parent=self,
        )
        profile = aws.iam.InstanceProfile(f"{name}-instance-profile", role=role.role.name, opts=self._child)
        service = service_role(
            f"{name}-service-role",
            policy_name=f"{name}-service-policy",
            service="elasticmapreduce.amazonaws.com",
            account_id=account,
            source_arns=[
                pulumi.Output.all(stack.partition, account).apply(
                    lambda v: f"arn:{v[0]}:elasticmapreduce:{region}:{v[1]}:*"
                )
            ],
            description="EMR: provisions the transient cluster of a run (AmazonEMRServicePolicy_v2, tag-scoped)",
            policy=pulumi.Output.all(role.role.arn, foundation.key.arn).apply(
                lambda v: json.dumps(service_role_policy(v[0], v[1], region))
            ),
            parent=self,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-service-managed-policy", role=service.role.name, policy_arn=SERVICE_POLICY_ARN, opts=self._child
        )
        self._cluster_monitoring()
        request = pulumi.Output.all(
            subnets=pulumi.Output.all(*foundation.network.private_subnet_ids),
            groups=pulumi.Output.all(primary_sg.id, core_sg.id, service_sg.id),
            service=service.role.name,
            profile=profile.name,
            security=self.security_configuration.name,
            logs=foundation.lake.artifacts.uri(f"{LOGS_PREFIX}clusters/"),
            key=foundation.key.arn,
        ).apply(lambda v: self._run_job_flow(v))
        submit = pulumi.Output.all(self._code, pulumi.Output.all(**environment)).apply(
            lambda v: (
                "spark-submit",
                "--deploy-mode",
                "cluster",
                *conf_arguments(spark_conf(EmrMode.CLUSTER, v[0], settings.job, v[1])),
                v[0].entry_point,
            )
        )
        return {
            # Any ARN of the stack's partition, region and account scopes the cluster permissions: the key's.
            "region_arn": foundation.key.arn,
            "cluster": request,
            "service_role_arn": service.role.arn,
            "instance_role_arn": role.role.arn,
            "spark_submit": submit,
        }

    def _run_job_flow(self, v: Mapping[str, Any]) -> dict[str, Any]:
        """The RunJobFlow request of one run's cluster (resolved values only: built inside an apply)."""
        settings, stack = self._settings, self._foundation.stack
        cluster = settings.cluster
        ebs = {
            "EbsBlockDeviceConfigs": [
                {
                    "VolumeSpecification": {"VolumeType": "gp3", "SizeInGB": cluster.ebs_volume_gb},
                    "VolumesPerInstance": 1,
                }
            ]
        }

        def types(names: Sequence[str]) -> list[dict[str, Any]]:
            return [{"InstanceType": t, "WeightedCapacity": 1, "EbsConfiguration": ebs} for t in names]

        spot = {
            "SpotSpecification": {
                "TimeoutDurationMinutes": cluster.spot_timeout_minutes,
                "TimeoutAction": "SWITCH_TO_ON_DEMAND",
                "AllocationStrategy": "capacity-optimized",
            },
            "OnDemandSpecification": {"AllocationStrategy": "lowest-price"},
        }

        def fleet(label: str, kind: str, spec: Fleet) -> dict[str, Any]:
            return {
                "Name": label,
                "InstanceFleetType": kind,
                "TargetOnDemandCapacity": spec.on_demand,
                "TargetSpotCapacity": spec.spot,
                "InstanceTypeConfigs": types(spec.instance_types),
                "LaunchSpecifications": spot,
            }

        primary_sg, core_sg, service_sg = v["groups"]
        core_units = cluster.core.on_demand + cluster.core.spot
        start = core_units + cluster.task.on_demand + cluster.task.spot
        tags = {
            "Project": stack.project,
            "Stack": stack.stack,
            "Environment": stack.environment,
            EMR_MANAGED_TAG: "true",
        }
        return {
            "Name.$": f"States.Format('{self._prefix}-{NAME}-{{}}', $$.Execution.Name)",
            "ReleaseLabel": settings.release_label,
            "Applications": [{"Name": "Spark"}],
            "ServiceRole": v["service"],
            "JobFlowRole": v["profile"],
            "SecurityConfiguration": v["security"],
            "LogUri": v["logs"],
            "LogEncryptionKmsKeyId": v["key"],
            "VisibleToAllUsers": True,
            "StepConcurrencyLevel": settings.max_concurrency,
            "AutoTerminationPolicy": {"IdleTimeout": cluster.idle_timeout_minutes * 60},
            "ManagedScalingPolicy": {
                "ComputeLimits": {
                    "UnitType": "InstanceFleetUnits",
                    "MinimumCapacityUnits": start,
                    "MaximumCapacityUnits": cluster.max_instances,
                    "MaximumOnDemandCapacityUnits": cluster.max_instances,
                    "MaximumCoreCapacityUnits": core_units,
                }
            },
            "Instances": {
                "KeepJobFlowAliveWhenNoSteps": True,
                "TerminationProtected": False,
                "Ec2SubnetIds": list(v["subnets"]),
                "EmrManagedMasterSecurityGroup": primary_sg,
                "EmrManagedSlaveSecurityGroup": core_sg,
                "ServiceAccessSecurityGroup": service_sg,
                "InstanceFleets": [
                    {
                        "Name": "primary",
                        "InstanceFleetType": "MASTER",
                        "TargetOnDemandCapacity": 1,
                        "InstanceTypeConfigs": types(cluster.primary_instance_types),
                    },
                    fleet("core", "CORE", cluster.core),
                    fleet("task", "TASK", cluster.task),
                ],
            },
            "Tags": [{"Key": key, "Value": value} for key, value in sorted(tags.items())],
        }

    def _cluster_monitoring(self) -> None:
        """Each run's cluster is new, so alarms cannot name it; the dashboard finds the account's clusters by metric
        search. A failed step or cluster fails its Task, which the pipeline's Catch sends to the alert path."""
        region = self._foundation.stack.region
        search = "SEARCH('{AWS/ElasticMapReduce,JobFlowId} MetricName=\"{metric}\"', 'Maximum', 300)"
        self.widgets.append(
            {
                "type": "metric",
                "width": 12,
                "height": 6,
                "properties": {
                    "title": "EMR clusters: running steps and YARN memory available (%)",
                    "region": region,
                    "view": "timeSeries",
                    "metrics": [
                        [
                            {
                                "expression": search.replace("{metric}", "AppsRunning"),
                                "id": "apps",
                                "label": "apps running",
                            }
                        ],
                        [
                            {
                                "expression": search.replace("{metric}", "YARNMemoryAvailablePercentage"),
                                "id": "memory",
                                "label": "YARN memory %",
                                "yAxis": "right",
                            }
                        ],
                    ],
                },
            }
        )

    def outputs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self._settings.mode.value, "pipeline": self.pipeline.outputs()}
        if self.application is not None:
            out["applicationId"] = self.application.id
        if self.security_configuration is not None:
            out["securityConfiguration"] = self.security_configuration.name
        return out
