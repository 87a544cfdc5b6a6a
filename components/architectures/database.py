"""Architecture 5, database: Aurora PostgreSQL Serverless v2, and the stage runner that runs transform and validate as
SQL in it.

Provisions:
- an Aurora PostgreSQL Serverless v2 cluster (`db.serverless` instances) on a current engine version: storage and
  Performance Insights encrypted with the stack key; the master password created, kept and rotated by RDS in Secrets
  Manager (`manage_master_user_password`, encrypted with the stack key: it is never in config, code or state); IAM
  database authentication; no RDS Data API (nothing uses it); TLS forced by its cluster parameter group
  (`rds.force_ssl`); PostgreSQL logs exported to a log group created beforehand with the stack's retention and key;
  backups, deletion protection and a final snapshot per profile; `protect` and retain in prod (CONTROLS rows 33-39,
  64);
- capacity per profile: dev scales to 0 ACU and pauses after `secondsUntilAutoPause` of no connections (no compute
  charge at idle); prod keeps a floor and a reader in another AZ in failover tier 1, which scales with the writer;
- a subnet group in the private subnets and the cluster's security group, which admits 5432 from the runner's
  security group only (no outbound rule: the database starts no connection);
- the stage runner (`DatabaseRunner`, bound: `DatabaseStages`): one Lambda per stage it runs (transform, validate)
  and one for the schema migrations, each running the job's command line through `etl_jobs.handlers.command`:
  `<stage> --run-date D [--source S] --engine postgres` and, before the transform (a before-stage step of the
  pipeline), `migrate --engine postgres` (idempotent). They run in the stack's private subnets with the runner's
  security group (see "Network" below) and connect with psycopg as the SQL engine does (`etl_jobs.database`,
  `AuroraDatabase`): the stages as `RUNNER_USER` with an IAM authentication token, `migrate` as the master user with
  the secret RDS keeps; TLS verify-full against the RDS CA bundle either way. Each stage role is generated from the
  job code's declaration (`components.lake_access`) plus `rds-db:connect` as the runner user
  (`etl_jobs.database.access_statement`); the migration role has the master secret and the stack key through
  Secrets Manager (`migrate_statements`) and no lake zone;
- alarms (CPU, ACU utilisation, capacity at the ceiling, freeable memory, connections, deadlocks, replica lag; the
  functions' errors and throttles: a failed run) and dashboard widgets.

The stage split: extract and the publication to the lake (load) stay on the shared runners (serverless, containers);
transform and validate run here, on `--engine postgres`. The job code reads and writes every lake object itself (the
engine never touches storage), so the functions' S3 grants are the same declaration every runner's are, and the
database needs no S3 access (no `aws_s3` extension, no role on the cluster).

Network (what the functions reach, and how; `runner_security_group_rules` is the table):
- the cluster on 5432: an egress rule to the cluster's security group, the only group that group admits;
- S3 (every lake object the job reads and writes) through the VPC's S3 gateway endpoint: HTTPS egress to its prefix
  list (`FoundationRefs.network.s3_prefix_list_id`), never through NAT;
- Secrets Manager (migrate only: the master secret) through an interface endpoint where the VPC has no NAT, and in
  staging and prod even with NAT (`private_endpoints`, `DatabaseProfile.secrets_endpoint`: the group never needs the
  internet): HTTPS egress to the endpoints' security group; about $7.30 a month per AZ plus $0.01 per GB (us-east-1 /
  eu-west-1), so $14.60-21.90 a month for 2-3 AZs. Dev, whose NAT instance is there anyway, reaches its public
  endpoint through NAT instead (HTTPS egress to anywhere, for the migration's one call), which keeps dev's $25;
- nothing else: the IAM token is signed locally from the role's credentials (no call to AWS), logs, metrics and
  X-Ray segments leave through the Lambda service, not the function's network interface, and KMS is called by S3 and
  Secrets Manager on the function's behalf. A new AWS call in the job code needs its endpoint and rule here.
The security groups are created without inline rules, so the provider removes the allow-all egress AWS adds to a
new group: every rule is one of the standalone rules below, each described (CONTROLS row 59).

The functions find the database through the environment the engine reads (`etl_jobs.database`): ETL_DATABASE_HOST
(the writer endpoint), ETL_DATABASE_PORT, ETL_DATABASE_NAME, ETL_DATABASE_CA_BUNDLE (`CA_BUNDLE_PATH`, in the postgres
layer) and ETL_DATABASE_USER (the stages) or ETL_DATABASE_SECRET_ARN (migrate); AWS_REGION is Lambda's own. The
secret's ARN names where the secret is kept, not the secret: CONTROLS row 14 (amended) admits a `_ARN` variable whose
value is an ARN. The runner user is created by the engine's migration `0002_runner_role.sql` with `rds_iam` and only
the privileges the engine uses.

psycopg and the RDS CA bundle: the functions carry a second layer (`postgres_layer`), built by `make layers` from
uv.lock's `postgres` group export with the bundle downloaded from AWS's trust store at build time (no network: the
build fails and says so), beside the main layer (the `jobs` export, unchanged).

Takes `ArchitectureArgs[DatabaseSettings]` (its foundation refs must carry the network's S3 prefix list and the
interface endpoints' security group). Exposes `runner`, `cluster`, `security_group` (the cluster's),
`runner_security_group`, `instances`, `functions`, `widgets` and `outputs()` (cluster ARN, endpoints, the master
secret's ARN, the runner user, the functions' ARNs).
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
from components.functions import EtlFunction, EtlFunctionArgs, FunctionVpc, dependency_layer, signed_package
from components.pipelines import BoundRunner, StageCall
from components.runners import StageRunner
from components.settings import PROJECT, ArchitectureSettings, ConfigError, Environment, LambdaArchitecture
from components.stages import RunnerCapabilities, Stage, StageBudget
from etl_jobs import database as sql_engine

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
# The database user the stage functions connect as (IAM authentication): created, with `rds_iam` and the engine's
# privileges only, by the engine's migration etl_jobs/sql/migrations/0002_runner_role.sql.
RUNNER_USER = "etl_runner"
# Where the postgres layer puts the RDS CA bundle (layers unpack under /opt); ETL_DATABASE_CA_BUNDLE names it.
CA_BUNDLE_PATH = "/opt/rds/global-bundle.pem"
# The interface endpoint the migration function reaches Secrets Manager through (see the module docstring).
PRIVATE_ENDPOINTS = ("secretsmanager",)
HTTPS = 443
COMMAND_HANDLER = "etl_jobs.handlers.command.handler"
MIGRATE_ARGV = ("migrate", "--engine", SQL_ENGINE)
MIGRATE_STATE = "DatabaseMigrate"
RUNS = (Stage.TRANSFORM, Stage.VALIDATE)
# Step Functions gives up on an invoke a little after the function would time out (as functions.INVOKE_MARGIN_SECONDS).
INVOKE_MARGIN_SECONDS = 60
# The error name `etl_jobs.handlers.command` raises for exit code 4 (the database unreachable, e.g. still resuming
# after CONNECT_TIMEOUT_S, or the connection broken): what a retry may fix. Usage, data and permission errors are not.
RETRIED_ERRORS = ("CommandInfrastructureError",)
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
    secrets_endpoint: bool
    """Migrate reaches Secrets Manager through an interface endpoint even where the VPC has NAT (no internet path);
    off: through the stack's NAT (dev, whose NAT instance is already there; the endpoint would cost $7.30 a month
    per AZ)."""


PROFILES: dict[Environment, DatabaseProfile] = {
    # Scales to zero: nothing to pay for compute between runs; backups for a day, no snapshot on destroy.
    Environment.DEV: DatabaseProfile(
        min_capacity=0, max_capacity=4, seconds_until_auto_pause=300, readers=0, backup_retention_days=1,
        final_snapshot=False, apply_immediately=True, secrets_endpoint=False,
    ),
    # Prod's architectures at smaller sizes: still pauses, a week of backups, a snapshot on delete.
    Environment.STAGING: DatabaseProfile(
        min_capacity=0, max_capacity=8, seconds_until_auto_pause=1800, readers=0, backup_retention_days=7,
        final_snapshot=True, apply_immediately=True, secrets_endpoint=True,
    ),
    # Never paused, a reader in another AZ to fail over to, two weeks of backups; changes wait for the window.
    Environment.PROD: DatabaseProfile(
        min_capacity=0.5, max_capacity=16, seconds_until_auto_pause=None, readers=1, backup_retention_days=14,
        final_snapshot=True, apply_immediately=False, secrets_endpoint=True,
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
        900, ge=60, le=900, description="Timeout of its stage Lambdas in seconds (60-900); a stage waits on its SQL"
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


def runner_statements(region: str, account: str, cluster_resource_id: str) -> list[policies.Statement]:
    """What a stage function needs to open connections as `RUNNER_USER`: `rds-db:connect` on that user of this
    cluster, the statement the engine declares (`etl_jobs.database.access_statement`)."""
    statement = sql_engine.access_statement(region, account, cluster_resource_id, RUNNER_USER)
    return [{"Sid": "DatabaseConnectAsRunner", **statement}]


def migrate_statements(secret_arn: str, key_arn: str, region: str) -> list[policies.Statement]:
    """What the migration function needs to connect as the master user: the secret RDS keeps for it and the stack
    key that encrypts the secret, through Secrets Manager only."""
    return [
        policies.allow(["secretsmanager:GetSecretValue"], [secret_arn], sid="MasterUserSecret"),
        policies.allow(
            ["kms:Decrypt"],
            [key_arn],
            sid="SecretKeyThroughSecretsManager",
            Condition={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
        ),
    ]


def engine_environment(host: pulumi.Input[str], database_name: str) -> dict[str, pulumi.Input[str]]:
    """The variables the SQL engine reads to reach the deployed cluster (`etl_jobs.database.from_environment`), less
    the login (ETL_DATABASE_USER or ETL_DATABASE_SECRET_ARN, per function) and AWS_REGION (Lambda sets it)."""
    return {
        "ETL_ENGINE": SQL_ENGINE,
        sql_engine.HOST_ENV: host,
        sql_engine.PORT_ENV: str(PORT),
        sql_engine.NAME_ENV: database_name,
        sql_engine.CA_BUNDLE_ENV: CA_BUNDLE_PATH,
    }


def runner_security_group_rules(
    *, cluster_group: pulumi.Input[str], s3_prefix_list: pulumi.Input[str], endpoints_group: pulumi.Input[str] | None
) -> dict[str, dict[str, Any]]:
    """The runner group's egress rules by label (`SecurityGroupEgressRule` arguments): PostgreSQL to the cluster's
    group, HTTPS to the S3 gateway endpoint's prefix list, and HTTPS to the interface endpoints' group, or without
    one (`endpoints_group` None: a profile that reaches Secrets Manager through NAT) to Secrets Manager's public
    endpoint through the stack's NAT. Nothing else."""
    tcp = {"ip_protocol": "tcp"}
    secrets = (
        {
            **tcp, "from_port": HTTPS, "to_port": HTTPS, "referenced_security_group_id": endpoints_group,
            "description": "HTTPS to the VPC's interface endpoints (Secrets Manager: the master secret, migrate)",
        }
        if endpoints_group is not None
        else {
            **tcp, "from_port": HTTPS, "to_port": HTTPS, "cidr_ipv4": "0.0.0.0/0",
            "description": "HTTPS to Secrets Manager's public endpoint through NAT (migrate's master secret)",
        }
    )  # fmt: skip
    return {
        "aurora": {
            **tcp, "from_port": PORT, "to_port": PORT, "referenced_security_group_id": cluster_group,
            "description": "PostgreSQL to the Aurora cluster (IAM token or master secret, TLS verify-full)",
        },
        "s3": {
            **tcp, "from_port": HTTPS, "to_port": HTTPS, "prefix_list_id": s3_prefix_list,
            "description": "HTTPS to S3 through the VPC's gateway endpoint (the lake zones)",
        },
        "endpoints" if endpoints_group is not None else "secrets-via-nat": secrets,
    }  # fmt: skip


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
    # The functions run in the private subnets and reach S3 through the gateway endpoint every VPC has; migrate
    # reaches Secrets Manager through its interface endpoint where the VPC has no NAT, and where the profile keeps the
    # runner off the internet (`DatabaseProfile.secrets_endpoint`) even with NAT.
    interface_endpoints: ClassVar[tuple[str, ...]] = PRIVATE_ENDPOINTS

    @classmethod
    def private_endpoints(cls, settings: ArchitectureSettings, environment: Environment) -> tuple[str, ...]:
        return PRIVATE_ENDPOINTS if PROFILES[environment].secrets_endpoint else ()

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
            description="Aurora: admits 5432 from the database runner's functions only; no outbound rule",
            opts=child,
        )
        self.runner_security_group = aws.ec2.SecurityGroup(
            f"{name}-runner-sg",
            vpc_id=foundation.network.vpc_id,
            description="Database runner functions: out to Aurora on 5432 and HTTPS to the S3 and Secrets Manager "
            "endpoints only; nothing in",
            opts=child,
        )
        self._network_rules()

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
            # No runner uses the Data API (the engine connects with a driver inside the VPC): it stays off.
            enable_http_endpoint=False,
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
    def _network_rules(self) -> None:
        """The runner's way to the cluster and its endpoints, and the cluster's one way in (module docstring)."""
        network, child = self._foundation.network, pulumi.ResourceOptions(parent=self)
        environment = Environment(self._foundation.stack.environment)
        via_endpoint = PROFILES[environment].secrets_endpoint or not network.has_nat
        if network.s3_prefix_list_id is None or (via_endpoint and network.endpoint_security_group_id is None):
            raise ValueError(
                f"{NAME}: the foundation's network must give the S3 gateway endpoint's prefix list and the interface "
                f"endpoints' security group (the stack gets the {', '.join(PRIVATE_ENDPOINTS)} endpoint through "
                "`private_endpoints`); build the foundation with them"
            )
        for label, rule in runner_security_group_rules(
            cluster_group=self.security_group.id,
            s3_prefix_list=network.s3_prefix_list_id,
            endpoints_group=network.endpoint_security_group_id if via_endpoint else None,
        ).items():
            aws.vpc.SecurityGroupEgressRule(
                f"{self._name}-runner-to-{label}", security_group_id=self.runner_security_group.id, **rule, opts=child
            )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-from-runner",
            security_group_id=self.security_group.id,
            description="PostgreSQL from the database runner's functions",
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            referenced_security_group_id=self.runner_security_group.id,
            opts=child,
        )

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
        connect = pulumi.Output.all(foundation.stack.account_id, self.cluster.cluster_resource_id).apply(
            lambda values: runner_statements(region, values[0], values[1])
        )
        master_secret = pulumi.Output.all(self.secret_arn, foundation.key.arn).apply(
            lambda values: migrate_statements(values[0], values[1], region)
        )
        layer = dependency_layer(name, settings.architecture, foundation, self)
        # psycopg and the RDS CA bundle (CA_BUNDLE_PATH): the postgres group's export, beside the jobs export.
        postgres_layer = dependency_layer(
            f"{name}-postgres",
            settings.architecture,
            foundation,
            self,
            package=packaging.postgres_layer_package(settings.architecture),
        )
        code = packaging.function_package()
        signed_code = signed_package(f"{name}-code", code, foundation, self)
        vpc = FunctionVpc(
            subnet_ids=list(foundation.network.private_subnet_ids),
            security_group_ids=[self.runner_security_group.id],
        )

        def function(
            label: str,
            statements: list[Any],
            timeout: int,
            description: str,
            login: dict[str, pulumi.Input[str]],
        ) -> EtlFunction:
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
                    layers=[layer.arn, postgres_layer.arn],
                    environment={**engine_environment(self.cluster.endpoint, settings.database_name), **login},
                    description=description,
                    run_by_pipeline=True,  # every one is a step or stage of a pipeline
                    vpc=vpc,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.functions = {
            stage.value: function(
                stage.value,
                # Its result is the payload: no result object to write.
                [lake_access.role_statements(stage.value, foundation, writes_results=False), connect],
                settings.timeout_seconds,
                f"{stage.value} as SQL in {self.cluster_identifier} (--engine {SQL_ENGINE})",
                {sql_engine.USER_ENV: RUNNER_USER},
            )
            for stage in RUNS
        }
        # The migrations touch no lake zone: the master user's secret alone.
        self.functions["migrate"] = function(
            "migrate",
            [master_secret],
            MIGRATE_TIMEOUT_SECONDS,
            f"Schema migrations of {self.cluster_identifier}",
            {sql_engine.SECRET_ENV: self.secret_arn},
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
            "runnerUser": RUNNER_USER,
            # What the cluster should report (a provider bug once left 0 <-> 0.5 changes unapplied: compare them).
            "scaling": {
                "minCapacity": self._resolved.min_capacity,
                "maxCapacity": self._resolved.max_capacity,
                "secondsUntilAutoPause": self._resolved.seconds_until_auto_pause,
            },
            "functionArns": {label: function.function_arn for label, function in self.functions.items()},
        }
