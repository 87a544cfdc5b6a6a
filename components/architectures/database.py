"""Architecture 5, database: Aurora PostgreSQL Serverless v2, and the stage runner that runs transform and validate as
SQL in it.

Provisions:
- an Aurora PostgreSQL Serverless v2 cluster (`db.serverless` instances) on a current engine version: storage and
  Performance Insights encrypted with the stack key; the master password created, kept and rotated by RDS in Secrets
  Manager (`manage_master_user_password`, encrypted with the stack key: it is never in config, code or state); IAM
  database authentication; the RDS Data API; TLS forced by its cluster parameter group (`rds.force_ssl`); PostgreSQL
  logs exported to a log group created beforehand with the stack's retention and key; backups, deletion protection and
  a final snapshot per profile; `protect` and retain in prod (CONTROLS rows 33-39, 64);
- capacity per profile: dev scales to 0 ACU and pauses after `secondsUntilAutoPause` of no connections (no compute
  charge at idle); prod keeps a floor and a reader in another AZ in failover tier 1, which scales with the writer;
- a subnet group in the private subnets and a security group that admits nothing: no runner connects to port 5432,
  because every runner reaches the database through the Data API (HTTPS to the RDS service, IAM-authorised), so
  the Lambdas need no VPC attachment, no NAT and no interface endpoint;
- the stage runner (`DatabaseRunner`, bound: `DatabaseStages`): one Lambda per stage it runs (transform, validate)
  and one for the schema migrations, each running the job's command line through `etl_jobs.handlers.command`:
  `<stage> --run-date D [--source S] --engine postgres` and, before the transform (a before-stage step of the
  pipeline), `migrate --engine postgres` (idempotent). Each role is generated from the job code's declaration
  (`components.lake_access`) plus the Data API on this cluster, the master secret and the stack key through Secrets
  Manager (`data_api_statements`); the migrations touch no lake zone;
- alarms (CPU, ACU utilisation, capacity at the ceiling, freeable memory, connections, deadlocks, replica lag; the
  functions' errors and throttles: a failed run) and dashboard widgets.

The stage split: extract and the publication to the lake (load) stay on the shared runners (serverless, containers);
transform and validate run here, on `--engine postgres`. The job code reads and writes every lake object itself (the
engine never touches storage), so the functions' S3 grants are the same declaration every runner's are, and the
database needs no S3 access (no `aws_s3` extension, no role on the cluster).

The functions find the database through their environment (`DATA_API_ENVIRONMENT`): the cluster ARN, the ARN of the
master user secret and the database name. Variable names avoid "SECRET": CONTROLS row 14 refuses secret-like names
in a function's environment, and an ARN is not a secret.

Takes `ArchitectureArgs[DatabaseSettings]`. Exposes `runner`, `cluster`, `instances`, `functions`, `widgets` and
`outputs()` (cluster ARN, endpoints, the master secret's ARN, the functions' ARNs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from components import asl, lake_access, packaging, policies
from components.architectures.base import Architecture, ArchitectureArgs
from components.foundation.alarms import metric_alarm, metric_widget
from components.functions import EtlFunction, EtlFunctionArgs, dependency_layer, signed_package
from components.pipelines import BoundRunner, StageCall
from components.runners import StageRunner
from components.settings import PROJECT, ArchitectureSettings, ConfigError, Environment, LambdaArchitecture
from components.stages import RunnerCapabilities, Stage, StageBudget

NAME = "database"
ENGINE = aws.rds.EngineType.AURORA_POSTGRESQL
SQL_ENGINE = "postgres"
"""The job code's engine the functions run (`--engine postgres`)."""
DEFAULT_ENGINE_VERSION = "16.8"
# The first minor version of each major that scales to 0 ACU (auto-pause); AWS's table of Serverless v2 capacity.
AUTO_PAUSE_SINCE: dict[int, tuple[int, int]] = {13: (13, 15), 14: (14, 12), 15: (15, 7), 16: (16, 3), 17: (17, 4)}
INSTANCE_CLASS = "db.serverless"
CA_CERTIFICATE = "rds-ca-rsa2048-g1"
PORT = 5432
LOG_EXPORTS = ("postgresql",)
# Names PostgreSQL, RDS or Aurora keep for themselves, and the default master user the controls refuse (row 37).
RESERVED_DATABASES = frozenset({"postgres", "template0", "template1", "rdsadmin"})
RESERVED_USERS = frozenset({"postgres", "admin", "root", "rdsadmin", "rds_superuser", "master", "sa"})
# Every Data API action a job may call (rds-data:*, listed: no wildcard actions); ExecuteSql is Serverless v1's only.
DATA_API_ACTIONS = (
    "rds-data:BatchExecuteStatement",
    "rds-data:BeginTransaction",
    "rds-data:CommitTransaction",
    "rds-data:ExecuteStatement",
    "rds-data:RollbackTransaction",
)
COMMAND_HANDLER = "etl_jobs.handlers.command.handler"
MIGRATE_ARGV = ("migrate", "--engine", SQL_ENGINE)
MIGRATE_STATE = "DatabaseMigrate"
RUNS = (Stage.TRANSFORM, Stage.VALIDATE)
# The variables through which the job code finds the database (see the module docstring).
CLUSTER_ARN_VARIABLE = "ETL_DB_CLUSTER_ARN"
LOGIN_ARN_VARIABLE = "ETL_DB_LOGIN_ARN"
DATABASE_VARIABLE = "ETL_DB_NAME"
# Step Functions gives up on an invoke a little after the function would time out (as functions.INVOKE_MARGIN_SECONDS).
INVOKE_MARGIN_SECONDS = 60
# The error names `etl_jobs.handlers.command` raises for exit code 4, and the Data API's while an instance resumes
# from a pause: what a retry may fix. Usage, data and permission errors are not retried.
RETRIED_ERRORS = ("CommandInfrastructureError", "DatabaseResumingException")
# Resuming from a pause takes seconds (longer after a day paused); the migration step, the first call of a run,
# waits through it: 15 + 30 + 60 + 60 s between attempts.
RESUME_RETRY = asl.Retry(
    (*RETRIED_ERRORS, asl.TIMEOUT), interval_seconds=15, max_attempts=4, backoff_rate=2.0, max_delay_seconds=60
)
STAGE_RETRY = (
    asl.Retry(asl.LAMBDA_SERVICE_ERRORS, interval_seconds=1, max_attempts=6),
    asl.Retry((*RETRIED_ERRORS, asl.TIMEOUT), interval_seconds=10, max_attempts=2, max_delay_seconds=60),
)
MIGRATE_TIMEOUT_SECONDS = 300
# FreeableMemory of a Serverless v2 instance is what would be free at its maximum capacity: alarm below 10% of that.
FREE_MEMORY_SHARE = 0.10
# Aurora PostgreSQL's max_connections default, LEAST(DBInstanceClassMemory/9531392, 5000), from the maximum capacity.
CONNECTION_MEMORY_BYTES = 9_531_392
CONNECTIONS_ALARM_SHARE = 0.80
GIB = 1024**3
REPLICA_LAG_ALARM_MS = 30_000


def auto_pause_supported(version: str) -> bool:
    """Whether Aurora PostgreSQL `version` (`major.minor`) can scale to 0 ACU."""
    major, minor = (int(part) for part in version.split(".")[:2])
    since = AUTO_PAUSE_SINCE.get(major)
    return since is not None and (major, minor) >= since


def max_connections(max_capacity: float) -> int:
    """Aurora PostgreSQL's default max_connections for a Serverless v2 instance of this maximum capacity."""
    return min(int(max_capacity * 2 * GIB // CONNECTION_MEMORY_BYTES), 5000)


# ---------------------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DatabaseProfile:
    """What a profile brings to the database where a setting is left out."""

    min_capacity: float
    max_capacity: float
    seconds_until_auto_pause: int | None
    readers: int
    backup_retention_days: int
    final_snapshot: bool
    apply_immediately: bool


PROFILES: dict[Environment, DatabaseProfile] = {
    # Scales to zero: nothing to pay for compute between runs; backups for a day, no snapshot on destroy.
    Environment.DEV: DatabaseProfile(
        min_capacity=0, max_capacity=4, seconds_until_auto_pause=300, readers=0, backup_retention_days=1,
        final_snapshot=False, apply_immediately=True,
    ),
    # Prod's architectures at smaller sizes: still pauses, a week of backups, a snapshot on delete.
    Environment.STAGING: DatabaseProfile(
        min_capacity=0, max_capacity=8, seconds_until_auto_pause=1800, readers=0, backup_retention_days=7,
        final_snapshot=True, apply_immediately=True,
    ),
    # Never paused, a reader in another AZ to fail over to, two weeks of backups; changes wait for the window.
    Environment.PROD: DatabaseProfile(
        min_capacity=0.5, max_capacity=16, seconds_until_auto_pause=None, readers=1, backup_retention_days=14,
        final_snapshot=True, apply_immediately=False,
    ),
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ResolvedDatabase:
    """The settings with the profile's defaults filled in."""

    min_capacity: float
    max_capacity: float
    seconds_until_auto_pause: int | None
    readers: int
    backup_retention_days: int
    final_snapshot: bool
    apply_immediately: bool
    deletion_protection: bool

    @property
    def pauses(self) -> bool:
        return self.min_capacity == 0


class DatabaseSettings(ArchitectureSettings):
    """Architecture 5: Aurora PostgreSQL Serverless v2; transform and validate run in it (`--engine postgres`)."""

    engine_version: str = Field(
        DEFAULT_ENGINE_VERSION,
        pattern=r"^1[3-7]\.[0-9]{1,2}$",
        description="Aurora PostgreSQL version `major.minor` (13-17); scaling to 0 ACU needs 13.15, 14.12, 15.7, "
        "16.3, 17.4 or later. Minor upgrades are applied by AWS in the maintenance window: set this to the "
        "running version afterwards",
    )
    database_name: str = Field(
        "etl", pattern=r"^[a-z][a-z0-9_]{0,62}$", description="The database the jobs use (not `postgres`)"
    )
    master_username: str = Field(
        "etl_admin",
        pattern=r"^[a-z][a-z0-9_]{0,15}$",
        description="The master user (not `postgres` or another well-known name); its password is created and "
        "rotated by RDS in Secrets Manager. Cost: the secret, $0.40 a month",
    )
    min_capacity: float | None = Field(
        None,
        ge=0,
        le=256,
        multiple_of=0.5,
        description="Lowest ACUs of each instance (0-256 in steps of 0.5); 0 pauses an idle instance. Default from "
        "the profile (dev and staging 0, prod 0.5). Cost: about $0.12-0.13 per ACU-hour per instance (us-east-1 / "
        "eu-west-1, Aurora Standard), so a floor of 0.5 is about $44-47 a month per instance; 0 costs nothing at "
        "rest beyond storage (about $0.10-0.11 per GB-month)",
    )
    max_capacity: float | None = Field(
        None,
        ge=1,
        le=256,
        multiple_of=0.5,
        description="Highest ACUs of each instance (1-256 in steps of 0.5; 1 ACU is about 2 GiB of memory); it also "
        "sets max_connections. Default from the profile (dev 4, staging 8, prod 16). No cost at rest",
    )
    seconds_until_auto_pause: int | None = Field(
        None,
        ge=300,
        le=86400,
        description="Seconds without connections before an instance pauses (300-86400); only with minCapacity 0. "
        "Default from the profile (dev 300, staging 1800). No cost",
    )
    readers: int | None = Field(
        None,
        ge=0,
        le=15,
        description="Reader instances, each in another AZ than the writer (failover tier 1: it scales and pauses "
        "with the writer). Default from the profile (prod 1: CONTROLS row 35 needs one there). Cost: each costs as "
        "the writer, about $44-47 a month at a floor of 0.5 ACU",
    )
    backup_retention_days: int | None = Field(
        None,
        ge=1,
        le=35,
        description="Days of automated backups (1-35; 7 or more outside dev). Default from the profile (dev 1, "
        "staging 7, prod 14). Cost: backup storage beyond the cluster's size, about $0.021 per GB-month",
    )
    performance_insights_retention_days: int = Field(
        7,
        description="Days Performance Insights keeps (7, a multiple of 31 up to 713, or 731). 7 is free; longer is "
        "billed per vCPU-month (see the Performance Insights pricing page)",
    )
    memory_mb: int = Field(1024, ge=128, le=10240, description="Memory of its Lambdas in MB (128-10240)")
    timeout_seconds: int = Field(
        900, ge=60, le=900, description="Timeout of its stage Lambdas in seconds (60-900); the Data API waits on SQL"
    )
    architecture: LambdaArchitecture = Field(LambdaArchitecture.ARM64, description="`arm64` or `x86_64` (Lambdas)")

    @field_validator("database_name")
    @classmethod
    def _database(cls, value: str) -> str:
        if value in RESERVED_DATABASES:
            raise ValueError(f"{value!r} is reserved by PostgreSQL or RDS; choose another name, e.g. 'etl'")
        return value

    @field_validator("master_username")
    @classmethod
    def _user(cls, value: str) -> str:
        if value in RESERVED_USERS:
            raise ValueError(f"{value!r} is a default or reserved user name (CONTROLS row 37); choose e.g. 'etl_admin'")
        return value

    @field_validator("performance_insights_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value in (7, 731) or (value % 31 == 0 and 31 <= value <= 713):
            return value
        raise ValueError(f"{value} is not a Performance Insights retention; use 7, a multiple of 31 up to 713, or 731")

    @model_validator(mode="after")
    def _capacity(self) -> DatabaseSettings:
        if self.min_capacity is not None and self.max_capacity is not None and self.min_capacity > self.max_capacity:
            raise ValueError(f"minCapacity {self.min_capacity} is above maxCapacity {self.max_capacity}")
        if self.min_capacity == 0 and not auto_pause_supported(self.engine_version):
            raise ValueError(
                f"minCapacity 0 needs an engine version that scales to 0 ACU; {self.engine_version} does not "
                f"(use {DEFAULT_ENGINE_VERSION}, or a minCapacity of 0.5)"
            )
        if self.seconds_until_auto_pause is not None and self.min_capacity not in (None, 0):
            raise ValueError(
                f"secondsUntilAutoPause applies only with minCapacity 0 (an instance with a floor of "
                f"{self.min_capacity} ACU never pauses); remove it or set minCapacity: 0"
            )
        return self

    def resolved(self, environment: Environment, deletion_protection: bool) -> ResolvedDatabase:
        """These settings over the profile's defaults; raises ConfigError for what only the profile makes wrong."""
        profile = PROFILES[environment]
        key = f"{PROJECT}:{NAME}"
        minimum = self.min_capacity if self.min_capacity is not None else profile.min_capacity
        maximum = self.max_capacity if self.max_capacity is not None else max(profile.max_capacity, minimum)
        readers = self.readers if self.readers is not None else profile.readers
        retention = self.backup_retention_days or profile.backup_retention_days
        problems = []
        if minimum > maximum:
            problems.append(f"{key}.maxCapacity: {maximum} is below the minimum capacity {minimum}")
        if minimum == 0 and not auto_pause_supported(self.engine_version):
            problems.append(
                f"{key}.engineVersion: {self.engine_version} cannot scale to 0 ACU, which the {environment.value} "
                f"profile does; use {DEFAULT_ENGINE_VERSION} or set {key}.minCapacity: 0.5"
            )
        if environment is Environment.PROD and readers < 1:
            problems.append(f"{key}.readers: prod needs a reader in another AZ (CONTROLS row 35); set it to 1 or more")
        if environment is not Environment.DEV and retention < 7:
            problems.append(f"{key}.backupRetentionDays: {environment.value} keeps at least 7 days (CONTROLS row 34)")
        if self.seconds_until_auto_pause is not None and minimum != 0:
            problems.append(
                f"{key}.secondsUntilAutoPause: the {environment.value} profile keeps a floor of {minimum} ACU, so "
                f"nothing pauses; set {key}.minCapacity: 0 too, or remove it"
            )
        if problems:
            raise ConfigError("; ".join(problems))
        return ResolvedDatabase(
            min_capacity=minimum,
            max_capacity=maximum,
            seconds_until_auto_pause=(self.seconds_until_auto_pause or profile.seconds_until_auto_pause or 300)
            if minimum == 0
            else None,
            readers=readers,
            backup_retention_days=retention,
            final_snapshot=profile.final_snapshot,
            apply_immediately=profile.apply_immediately,
            deletion_protection=deletion_protection,
        )

    def budget(self) -> StageBudget:
        return StageBudget(timeout_seconds=self.timeout_seconds + INVOKE_MARGIN_SECONDS, retry=STAGE_RETRY)


MIGRATE_BUDGET = StageBudget(timeout_seconds=MIGRATE_TIMEOUT_SECONDS + INVOKE_MARGIN_SECONDS, retry=(RESUME_RETRY,))


# ---------------------------------------------------------------------------------------------------------------------
# Policy documents and definitions (plain functions over resolved values)
# ---------------------------------------------------------------------------------------------------------------------


def data_api_statements(cluster_arn: str, secret_arn: str, key_arn: str, region: str) -> list[policies.Statement]:
    """What a job needs to reach the database through the Data API: its actions on this cluster only, the master
    user secret (the Data API reads it with the caller's credentials) and the stack key that encrypts the secret,
    through Secrets Manager only."""
    return [
        policies.allow(DATA_API_ACTIONS, [cluster_arn], sid="DataApi"),
        policies.allow(["secretsmanager:GetSecretValue"], [secret_arn], sid="MasterUserSecret"),
        policies.allow(
            ["kms:Decrypt"],
            [key_arn],
            sid="SecretKeyThroughSecretsManager",
            Condition={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
        ),
    ]


def stage_command(call: StageCall) -> str:
    """The Task's `argv`: the stage's command line (as a container runs it) on the SQL engine."""
    arguments = [*call.arguments(), "'--engine'", f"'{SQL_ENGINE}'"]
    return f"States.Array({', '.join(arguments)})"


def parameter_group_family(version: str) -> str:
    return f"{ENGINE.value}{version.split('.')[0]}"


# ---------------------------------------------------------------------------------------------------------------------
# The stage runner
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DatabaseStages(BoundRunner):
    """Stages as synchronous invokes of the command functions; the migrations run before the transform."""

    architecture: str
    function_arns: Mapping[Stage, str]
    migrate_function_arn: str
    budgets: Mapping[Stage, StageBudget]

    returns_payload: ClassVar[bool] = True

    def task(self, call: StageCall, *, name: str, **options: Any) -> asl.Task:
        payload = {"argv.$": stage_command(call)}
        return asl.lambda_invoke(name, self.function_arns[call.stage], payload=payload, **options)

    def before(self, stage: Stage, next_state: str) -> tuple[asl.State, ...]:
        # Before the transform, whether or not it runs here: it precedes validate too, and migrating is idempotent.
        # The first call of a run, it also resumes a paused instance before the stages need it.
        if stage is not Stage.TRANSFORM:
            return ()
        return (
            asl.lambda_invoke(
                MIGRATE_STATE,
                self.migrate_function_arn,
                payload={"argv": list(MIGRATE_ARGV)},
                comment="Apply the schema migrations the job code carries (idempotent); resumes a paused database",
                result_path="$.database_migrations",
                timeout_seconds=MIGRATE_BUDGET.timeout_seconds,
                retry=MIGRATE_BUDGET.retry,
                next=next_state,
            ),
        )

    def hook_seconds(self) -> int:
        return MIGRATE_BUDGET.worst_case_seconds()


@dataclasses.dataclass(frozen=True)
class DatabaseRunner(StageRunner):
    """The command functions, before their ARNs are known."""

    architecture: str
    function_arns: Mapping[Stage, pulumi.Output[str]]
    migrate_function_arn: pulumi.Output[str]
    budgets: Mapping[Stage, StageBudget]

    returns_payload: ClassVar[bool] = True

    def hook_seconds(self) -> int:
        return MIGRATE_BUDGET.worst_case_seconds()

    def bind(self) -> pulumi.Output[BoundRunner]:
        stages = list(self.function_arns)
        return pulumi.Output.all(self.migrate_function_arn, *[self.function_arns[stage] for stage in stages]).apply(
            lambda arns: DatabaseStages(
                self.architecture, dict(zip(stages, arns[1:], strict=True)), arns[0], self.budgets
            )
        )


# ---------------------------------------------------------------------------------------------------------------------
# The component
# ---------------------------------------------------------------------------------------------------------------------


def _secret_arn(secrets: Sequence[Any] | None) -> str:
    """The ARN of the master user secret RDS created (`manage_master_user_password`)."""
    if not secrets:
        raise ValueError("the cluster reports no master user secret; manage_master_user_password must be on")
    first = secrets[0]
    arn = first.get("secret_arn") or first.get("secretArn") if isinstance(first, dict) else first.secret_arn
    return str(arn)


class Database(Architecture):
    """Aurora PostgreSQL Serverless v2 and its stage runner: see the module docstring."""

    type_token = "etl:architectures:Database"
    settings_model: ClassVar[type[ArchitectureSettings]] = DatabaseSettings
    # The Lambdas run outside the VPC and reach the database through the Data API's public endpoint (IAM + TLS).
    interface_endpoints: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def runner_capabilities(cls, settings: ArchitectureSettings) -> RunnerCapabilities:
        return RunnerCapabilities(stages=frozenset(RUNS))

    cluster: aws.rds.Cluster
    instances: list[aws.rds.ClusterInstance]
    functions: dict[str, EtlFunction]
    secret_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ArchitectureArgs[DatabaseSettings], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, opts)
        settings, foundation = args.settings, args.foundation
        if not isinstance(settings, DatabaseSettings):
            raise TypeError(f"{NAME}: settings must be DatabaseSettings, got {type(settings).__name__}")
        environment = Environment(foundation.stack.environment)
        resolved = settings.resolved(environment, foundation.profile.deletion_protection)
        self._name, self._settings, self._foundation, self._resolved = name, settings, foundation, resolved
        stack = foundation.stack
        child = pulumi.ResourceOptions(parent=self)
        # Fixed, so the export's log group can exist (with retention and key) before RDS writes to it. A change that
        # would replace the cluster then fails on the name instead of creating an empty database: see the docs.
        self.cluster_identifier = f"{stack.project}-{stack.stack}-db"

        logs = aws.cloudwatch.LogGroup(
            f"{name}-postgresql-logs",
            name=f"/aws/rds/cluster/{self.cluster_identifier}/postgresql",
            retention_in_days=foundation.log_retention_days,
            kms_key_id=foundation.key.arn,
            opts=foundation.stateful(self),
        )
        parameters = aws.rds.ClusterParameterGroup(
            f"{name}-parameters",
            family=parameter_group_family(settings.engine_version),
            description="TLS only (rds.force_ssl), TLS 1.2 or later, slow statements and lock waits logged",
            parameters=[
                aws.rds.ClusterParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ClusterParameterGroupParameterArgs(name="ssl_min_protocol_version", value="TLSv1.2"),
                aws.rds.ClusterParameterGroupParameterArgs(name="log_min_duration_statement", value="10000"),
                aws.rds.ClusterParameterGroupParameterArgs(name="log_lock_waits", value="1"),
            ],
            opts=child,
        )
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=list(foundation.network.private_subnet_ids),
            description="The private subnets of the stack's VPC",
            opts=child,
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=foundation.network.vpc_id,
            description="Aurora: no inbound or outbound rules; every runner uses the Data API, none connects to 5432",
            opts=child,
        )

        scaling = aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
            min_capacity=resolved.min_capacity,
            max_capacity=resolved.max_capacity,
            seconds_until_auto_pause=resolved.seconds_until_auto_pause,
        )
        self.cluster = aws.rds.Cluster(
            f"{name}-cluster",
            cluster_identifier=self.cluster_identifier,
            engine=ENGINE,
            engine_mode="provisioned",
            engine_version=settings.engine_version,
            # No paid extended support: an engine past its standard support is upgraded, not billed extra.
            engine_lifecycle_support="open-source-rds-extended-support-disabled",
            allow_major_version_upgrade=True,
            auto_minor_version_upgrade=True,
            database_name=settings.database_name,
            master_username=settings.master_username,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=foundation.key.arn,
            iam_database_authentication_enabled=True,
            enable_http_endpoint=True,
            storage_encrypted=True,
            kms_key_id=foundation.key.arn,
            db_cluster_parameter_group_name=parameters.name,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[self.security_group.id],
            port=PORT,
            serverlessv2_scaling_configuration=scaling,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            backup_retention_period=resolved.backup_retention_days,
            # Before the nightly runs (02:00 and 03:00 UTC); maintenance on Sunday morning.
            preferred_backup_window="00:00-00:30",
            preferred_maintenance_window="sun:04:00-sun:05:00",
            copy_tags_to_snapshot=True,
            deletion_protection=resolved.deletion_protection,
            skip_final_snapshot=not resolved.final_snapshot,
            final_snapshot_identifier=f"{self.cluster_identifier}-final" if resolved.final_snapshot else None,
            delete_automated_backups=not resolved.final_snapshot,
            apply_immediately=resolved.apply_immediately,
            # RDS starts exporting as the cluster comes up: the log group must be there with its retention first.
            opts=foundation.stateful(self, depends_on=[logs]),
        )
        self.secret_arn = self.cluster.master_user_secrets.apply(_secret_arn)
        self._instances()
        self._runner()
        self._alarms()
        self._widgets()
        self.register_outputs(self.outputs())

    # -----------------------------------------------------------------------------------------------------------------
    def _instances(self) -> None:
        """The writer in the first private subnet's AZ, each reader in the next one (tier 1: scales with it)."""
        foundation, resolved = self._foundation, self._resolved
        zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=self))
        az_count = len(foundation.network.private_subnet_ids)
        self.instances = []
        for index in range(1 + resolved.readers):
            role = "writer" if index == 0 else f"reader-{index}"
            self.instances.append(
                aws.rds.ClusterInstance(
                    f"{self._name}-{role}",
                    cluster_identifier=self.cluster.id,
                    instance_class=INSTANCE_CLASS,
                    engine=ENGINE,
                    availability_zone=zones.names[index % az_count],
                    promotion_tier=0 if index == 0 else 1,
                    publicly_accessible=False,
                    auto_minor_version_upgrade=True,
                    ca_cert_identifier=CA_CERTIFICATE,
                    performance_insights_enabled=True,
                    performance_insights_kms_key_id=foundation.key.arn,
                    performance_insights_retention_period=self._settings.performance_insights_retention_days,
                    copy_tags_to_snapshot=True,
                    apply_immediately=resolved.apply_immediately,
                    # The first instance of a cluster becomes its writer: readers wait for it.
                    opts=foundation.stateful(self, depends_on=self.instances[:1]),
                )
            )

    def _runner(self) -> None:
        name, settings, foundation = self._name, self._settings, self._foundation
        region = foundation.stack.region
        access = pulumi.Output.all(self.cluster.arn, self.secret_arn, foundation.key.arn).apply(
            lambda values: data_api_statements(values[0], values[1], values[2], region)
        )
        layer = dependency_layer(name, settings.architecture, foundation, self)
        code = packaging.function_package()
        signed_code = signed_package(f"{name}-code", code, foundation, self)
        environment: dict[str, pulumi.Input[str]] = {
            "ETL_ENGINE": SQL_ENGINE,
            CLUSTER_ARN_VARIABLE: self.cluster.arn,
            LOGIN_ARN_VARIABLE: self.secret_arn,
            DATABASE_VARIABLE: settings.database_name,
        }

        def function(label: str, statements: list[Any], timeout: int, description: str) -> EtlFunction:
            return EtlFunction(
                f"{name}-{label}",
                EtlFunctionArgs(
                    foundation=foundation,
                    handler=COMMAND_HANDLER,
                    service_name=f"{NAME}-{label}",
                    policy_statements=statements,
                    memory_mb=settings.memory_mb,
                    timeout_seconds=timeout,
                    architecture=settings.architecture,
                    code=code,
                    signed_code=signed_code,
                    layers=[layer.arn],
                    environment=environment,
                    description=description,
                    run_by_pipeline=True,  # every one is a step or stage of a pipeline
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.functions = {
            stage.value: function(
                stage.value,
                # Its result is the payload: no result object to write.
                [lake_access.role_statements(stage.value, foundation, writes_results=False), access],
                settings.timeout_seconds,
                f"{stage.value} as SQL in {self.cluster_identifier} (--engine {SQL_ENGINE})",
            )
            for stage in RUNS
        }
        # The migrations touch no lake zone: the Data API alone.
        self.functions["migrate"] = function(
            "migrate", [access], MIGRATE_TIMEOUT_SECONDS, f"Schema migrations of {self.cluster_identifier}"
        )
        for etl_function in self.functions.values():
            self.widgets.extend(etl_function.widgets)
        self.runner = DatabaseRunner(
            architecture=NAME,
            function_arns={stage: self.functions[stage.value].function_arn for stage in RUNS},
            migrate_function_arn=self.functions["migrate"].function_arn,
            budgets={stage: settings.budget() for stage in RUNS},
        )

    def _alarms(self) -> None:
        name, foundation, resolved = self._name, self._foundation, self._resolved
        cluster = {"DBClusterIdentifier": self.cluster_identifier}

        def alarm(label: str, metric: str, description: str, **options: Any) -> None:
            metric_alarm(
                f"{name}-{label}",
                parent=self,
                alerts=foundation.alerts,
                description=description,
                namespace="AWS/RDS",
                metric_name=metric,
                dimensions=options.pop("dimensions", cluster),
                **options,
            )

        alarm(
            "acu-utilization", "ACUUtilization",
            f"{self.cluster_identifier}: above 90% of its maximum capacity for 15 minutes; raise maxCapacity.",
            statistic="Average", threshold=90, evaluation_periods=3,
        )  # fmt: skip
        if not foundation.profile.diagnostic_alarms:
            return  # what follows explains a slow or failed run the pipeline's alarms already report
        alarm(
            "cpu", "CPUUtilization", f"{self.cluster_identifier}: CPU above 90% for 15 minutes.",
            statistic="Average", threshold=90, evaluation_periods=3,
        )  # fmt: skip
        alarm(
            "capacity", "ServerlessDatabaseCapacity",
            f"{self.cluster_identifier}: at its maximum of {resolved.max_capacity} ACU for 15 minutes.",
            statistic="Maximum", threshold=resolved.max_capacity, comparison="GreaterThanOrEqualToThreshold",
            evaluation_periods=3,
        )  # fmt: skip
        free = int(resolved.max_capacity * 2 * GIB * FREE_MEMORY_SHARE)
        alarm(
            "freeable-memory", "FreeableMemory",
            f"{self.cluster_identifier}: under {free // 2**20} MiB would be free even at the maximum capacity.",
            statistic="Minimum", threshold=free, comparison="LessThanThreshold", evaluation_periods=3,
        )  # fmt: skip
        connections = int(max_connections(resolved.max_capacity) * CONNECTIONS_ALARM_SHARE)
        alarm(
            "connections", "DatabaseConnections",
            f"{self.cluster_identifier}: over {connections} connections (80% of max_connections).",
            statistic="Maximum", threshold=connections,
        )  # fmt: skip
        alarm(
            "deadlocks", "Deadlocks", f"{self.cluster_identifier}: transactions deadlocked (one was rolled back).",
            statistic="Maximum",
        )  # fmt: skip
        if resolved.readers:
            alarm(
                "replica-lag", "AuroraReplicaLagMaximum",
                f"{self.cluster_identifier}: a reader lags over {REPLICA_LAG_ALARM_MS // 1000} s behind the writer.",
                statistic="Maximum", threshold=REPLICA_LAG_ALARM_MS, evaluation_periods=3,
            )  # fmt: skip

    def _widgets(self) -> None:
        region, cluster = self._foundation.stack.region, self.cluster_identifier
        metric = ["AWS/RDS", "", "DBClusterIdentifier", cluster]

        def series(*names: str, **options: Any) -> list[list[Any]]:
            return [[metric[0], name, *metric[2:], *([options] if options else [])] for name in names]

        self.widgets.extend(
            [
                metric_widget(
                    f"{cluster}: capacity (ACU) and utilisation (%)",
                    [*series("ServerlessDatabaseCapacity"), *series("ACUUtilization", yAxis="right")],
                    region=region,
                    stat="Maximum",
                ),
                metric_widget(
                    f"{cluster}: CPU (%) and freeable memory",
                    [*series("CPUUtilization"), *series("FreeableMemory", yAxis="right")],
                    region=region,
                    stat="Average",
                ),
                metric_widget(
                    f"{cluster}: connections, deadlocks, replica lag (ms)",
                    [
                        *series("DatabaseConnections", "Deadlocks"),
                        *series("AuroraReplicaLagMaximum", yAxis="right"),
                    ],
                    region=region,
                    stat="Maximum",
                ),
            ]
        )

    def outputs(self) -> dict[str, Any]:
        return {
            "clusterArn": self.cluster.arn,
            "clusterIdentifier": self.cluster_identifier,
            "endpoint": self.cluster.endpoint,
            "readerEndpoint": self.cluster.reader_endpoint,
            "masterUserSecretArn": self.secret_arn,
            "databaseName": self._settings.database_name,
            # What the cluster should report (a provider bug once left 0 <-> 0.5 changes unapplied: compare them).
            "scaling": {
                "minCapacity": self._resolved.min_capacity,
                "maxCapacity": self._resolved.max_capacity,
                "secondsUntilAutoPause": self._resolved.seconds_until_auto_pause,
            },
            "functionArns": {label: function.function_arn for label, function in self.functions.items()},
        }
