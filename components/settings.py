"""The typed model of the whole stack config: the only place configuration is read.

`load_settings()` reads every key of the stack's config (project defaults already applied by the Pulumi CLI, or by
`etlctl preview --offline`), validates it against `StackConfig` and the environment profile, and returns a frozen
object that the program hands to components. Every mistake becomes one line of a `pulumi.RunError` (printed by Pulumi
without a traceback) naming the stack file, the key as written, the bad value and what is allowed; all of them are
reported at once, before any resource is registered. `config_problems()` gives the same lines without raising.

Keys in the `etl-platform` namespace are camelCase (`logRetentionDays`) and are read by alias only; Python attributes
are snake_case. Keys of other namespaces must belong to a provider the program uses (`aws`, `docker`) or to the
engine (`pulumi`); anything else (a namespace typo such as `etl-platfrom:alertEmails`) is refused with a did-you-mean.
Top-level values reach a program as text (`"365"`), structured ones as JSON; nested values are checked strictly
(a quoted `"2"` is not the number 2), exactly as the JSON Schema checks them.

This module holds what every stack has (environment, network, tags, ...) and the value types architectures share.
Each architecture's own settings model lives beside its component and reaches the stack model through the registry
(`components.registry`): `config_model()` adds one optional key per registered architecture. `json_schema()` renders
the same rules for editors; `SCHEMA_LIMITS` lists what JSON Schema cannot express and only the loader checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Protocol, get_args, get_origin

import pulumi
from pulumi_aws import Region
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from components.schedules import SCHEDULE_PATTERN, anchored, check_schedule, number_pattern
from components.stages import RunnerCapabilities
from components.yaml_core import plain_scalar

__all__ = ["RunnerCapabilities"]  # re-exported for the architectures' base class

PROJECT = "etl-platform"
PROVIDER_NAMESPACES: tuple[str, ...] = ("aws", "docker")
"""Config namespaces of the providers the program uses (pulumi-aws, pulumi-docker); `pulumi:` is the engine's."""
ENGINE_NAMESPACE = "pulumi"
AWS_REGIONS: tuple[str, ...] = tuple(sorted(region.value for region in Region))
"""Regions the installed pulumi-aws knows (its `Region` enum)."""
MANAGED_TAGS: tuple[str, ...] = ("Project", "Stack", "Environment", "ManagedBy")
"""Default tags the program sets itself; the policy pack reads the profile from `Environment`."""


class ConfigError(pulumi.RunError):
    """A stack-config mistake. Pulumi prints RunError without a stack trace."""


# --------------------------------------------------------------------------------------------------------------------
# Enumerations and value types
# --------------------------------------------------------------------------------------------------------------------


class Environment(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class NatGateways(StrEnum):
    NONE = "none"
    SINGLE = "single"
    PER_AZ = "per-az"
    INSTANCE = "instance"
    """One NAT instance (t4g.nano, AL2023) instead of a gateway: about $7 a month against $35, no HA (dev)."""


class LambdaArchitecture(StrEnum):
    ARM64 = "arm64"
    X86_64 = "x86_64"


class CapacityProvider(StrEnum):
    FARGATE = "FARGATE"
    FARGATE_SPOT = "FARGATE_SPOT"


class WarehouseEngine(StrEnum):
    NONE = "none"
    REDSHIFT = "redshift"


class UsageLimitPeriod(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class BreachAction(StrEnum):
    """What Redshift Serverless does when the usage limit is reached."""

    LOG = "log"
    EMIT_METRIC = "emit-metric"
    DEACTIVATE = "deactivate"


# The values CloudWatch Logs accepts for retention_in_days.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = anchored(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+")
# RFC 1918: the only ranges a VPC may use here.
PRIVATE_RANGES = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
VPC_PREFIXES = range(16, 25)


def _retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        nearest = min(LOG_RETENTION_DAYS, key=lambda allowed: abs(allowed - value))
        raise ValueError(
            f"{value} is not a retention CloudWatch Logs accepts (nearest: {nearest}); "
            f"allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}"
        )
    return value


def _email(value: str) -> str:
    if not re.fullmatch(EMAIL_PATTERN.removeprefix("^").removesuffix(r"$(?!\n)"), value):
        raise ValueError(f"{value!r} is not an e-mail address (expected name@example.com, no spaces)")
    return value


def validate_schedule(expression: str) -> str:
    """Check an EventBridge Scheduler `rate(...)` or `cron(...)` expression field by field (`components.schedules`)."""
    return check_schedule(expression)


def _cidr_pattern() -> str:
    """IPv4 CIDRs inside RFC 1918 with a /16-/24 prefix and no host bits set, as one regular expression."""
    octet = number_pattern(0, 255, leading_zero=False)
    networks = []
    for network in PRIVATE_RANGES:
        first, second = str(network.network_address).split(".")[:2]
        if network.prefixlen == 8:
            networks.append(rf"{first}\.{octet}")
        else:
            # Every range is /16 or wider: the second octet spans the range, the rest is the host part below.
            high = int(second) + 2 ** (16 - network.prefixlen) - 1
            networks.append(rf"{first}\.{number_pattern(int(second), high, leading_zero=False)}")
    hosts = []
    for prefix in VPC_PREFIXES:
        # The third octet is a multiple of the block size, the fourth is 0.
        block = 2 ** (24 - prefix)
        third = octet if block == 1 else "(?:" + "|".join(str(v) for v in range(0, 256, block)) + ")"
        hosts.append(rf"{third}\.0/{prefix}")
    return anchored(f"(?:{'|'.join(networks)})\\.(?:{'|'.join(hosts)})")


CIDR_PATTERN = _cidr_pattern()

RetentionDays = Annotated[
    int, AfterValidator(_retention), WithJsonSchema({"type": "integer", "enum": list(LOG_RETENTION_DAYS)})
]
EmailAddress = Annotated[
    str, AfterValidator(_email), WithJsonSchema({"type": "string", "format": "email", "pattern": EMAIL_PATTERN})
]
Schedule = Annotated[
    str,
    AfterValidator(validate_schedule),
    WithJsonSchema({"type": "string", "pattern": SCHEDULE_PATTERN}),
]
QuarantineRate = Annotated[float, Field(ge=0.0, le=1.0)]
# A source is a folder of the lake zones (`landing/<source>/`): lowercase letters, digits and dashes.
SourceName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


def located_error(loc: tuple[str | int, ...], message: str, value: Any) -> InitErrorDetails:
    """One error at a location inside the model being validated (raise them with `raise_located`)."""
    return InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value)


def raise_located(model: type[BaseModel], errors: list[InitErrorDetails]) -> None:
    """Raise every error at once, each at its own key (a validator may raise a ValidationError; pydantic prefixes
    the locations with the field the model sits in)."""
    if errors:
        raise ValidationError.from_exception_data(model.__name__, errors)


class SettingsModel(BaseModel):
    """camelCase keys, unknown keys rejected, values frozen once validated.

    `retired_keys` maps a key that no longer exists to what to do instead; the loader prints that instead of
    "unknown key"."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)
    retired_keys: ClassVar[Mapping[str, str]] = {}


# --------------------------------------------------------------------------------------------------------------------
# Foundation settings
# --------------------------------------------------------------------------------------------------------------------


class NetworkSettings(SettingsModel):
    """The VPC every private workload runs in."""

    cidr: Annotated[str, WithJsonSchema({"type": "string", "pattern": CIDR_PATTERN})] = Field(
        "10.40.0.0/16", description="IPv4 CIDR of the VPC inside RFC 1918 (10/8, 172.16/12, 192.168/16), /16 to /24"
    )
    az_count: int = Field(2, ge=2, le=3, description="Availability zones with a private subnet each (2-3)")
    nat_gateways: NatGateways | None = Field(
        None,
        description="`none` (gateway endpoints, plus the interface endpoints the architectures declare, each about "
        "$8 a month per AZ), `single` or `per-az` (NAT gateways, about $35 a month each plus $0.048/GB), or "
        "`instance` (one t4g.nano NAT instance with a public IPv4 address, about $7.70 a month, no failover: for "
        "dev); default from the profile",
    )
    flow_log_aggregation_seconds: Literal[60, 600] = Field(
        600,
        description="Aggregation interval of the VPC flow logs (ALL traffic, delivered to the log bucket as Parquet): "
        "600 writes up to 10x fewer records than 60. Cost: S3 vended-log delivery about $0.25/GB plus $0.03/GB for "
        "Parquet (CloudWatch Logs ingestion was $0.50/GB plus KMS), then S3 storage of compressed Parquet",
    )

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 CIDR block such as '10.40.0.0/16' ({exc})") from None
        if network.prefixlen not in VPC_PREFIXES:
            raise ValueError(f"{value!r}: a VPC CIDR must be between /16 and /24")
        if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
            raise ValueError(
                f"{value!r} is not inside an RFC 1918 private range; allowed: "
                f"{', '.join(map(str, PRIVATE_RANGES))}, e.g. '10.40.0.0/16'"
            )
        return value


# --------------------------------------------------------------------------------------------------------------------
# What architectures build on
# --------------------------------------------------------------------------------------------------------------------


class ArchitectureSettings(SettingsModel):
    """Base of every architecture's settings model (defined beside its component).

    `stack_problems` checks what one model cannot see alone (another architecture's capabilities, say); it returns
    one message per problem, each naming the key as written in the stack file."""

    def stack_problems(self, stack: StackContext) -> list[str]:
        return []

    def concurrency_reservations(self) -> dict[str, int]:
        """Lambda concurrency its functions reserve, by the stack-file key that sets it (none by default)."""
        return {}


@dataclasses.dataclass(frozen=True)
class StackContext:
    """The stack as a settings model sees it when checking across architectures."""

    selected: tuple[str, ...]
    """Architectures selected in the stack file, in order."""
    runners: Mapping[str, RunnerCapabilities]
    """Stage runners among the selected architectures, by name."""


# --------------------------------------------------------------------------------------------------------------------
# Environment profiles
# --------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Profile:
    """Defaults an environment brings; every one can be overridden where a key exists."""

    protect: bool  # Pulumi `protect` on stateful resources
    retain_on_delete: bool  # stateful resources outlive `pulumi destroy`
    force_destroy: bool  # buckets/repositories may be emptied on delete
    log_retention_days: int
    audit_log_retention_days: int  # flow logs, state machine execution logs, access logs
    nat_gateways: NatGateways
    fargate_capacity: CapacityProvider
    noncurrent_version_days: int
    deletion_protection: bool
    min_alert_subscribers: int = 0  # alarms must reach someone
    code_signing: bool = False  # Lambda code signing enforced, every package and layer signed
    replication: bool = False  # raw and curated copied to a second region
    athena_cutoff_gb: int = 10  # Athena's per-query bytes-scanned cutoff (at $5/TB, a query costs at most this)
    warehouse_max_capacity: int = 8  # Redshift Serverless: the RPUs a workgroup may scale to
    warehouse_usage_rpu_hours: int = 8  # Redshift Serverless: the usage limit per period
    warehouse_breach_action: BreachAction = BreachAction.DEACTIVATE
    diagnostic_alarms: bool = True
    """Alarms that only locate or explain what another alarm already reports: a pipeline-run function's own errors
    and throttles (its pipeline's failed-run alarm and alert report the failure), throttled state transitions, Glue
    per-stage durations, EMR at capacity, the database's resource alarms. Off in dev, where each costs $0.10 a month
    and a developer reads the run's alert and logs anyway."""


PROFILES: dict[Environment, Profile] = {
    Environment.DEV: Profile(
        protect=False, retain_on_delete=False, force_destroy=True, log_retention_days=14,
        audit_log_retention_days=30, nat_gateways=NatGateways.NONE, fargate_capacity=CapacityProvider.FARGATE_SPOT,
        noncurrent_version_days=7, deletion_protection=False, athena_cutoff_gb=1, warehouse_max_capacity=8,
        warehouse_usage_rpu_hours=4, warehouse_breach_action=BreachAction.DEACTIVATE, diagnostic_alarms=False,
    ),
    Environment.STAGING: Profile(
        protect=False, retain_on_delete=False, force_destroy=False, log_retention_days=30,
        audit_log_retention_days=90, nat_gateways=NatGateways.SINGLE, fargate_capacity=CapacityProvider.FARGATE,
        noncurrent_version_days=30, deletion_protection=True, athena_cutoff_gb=10, warehouse_max_capacity=16,
        warehouse_usage_rpu_hours=16, warehouse_breach_action=BreachAction.DEACTIVATE,
    ),
    Environment.PROD: Profile(
        protect=True, retain_on_delete=True, force_destroy=False, log_retention_days=90,
        audit_log_retention_days=365, nat_gateways=NatGateways.PER_AZ, fargate_capacity=CapacityProvider.FARGATE,
        noncurrent_version_days=90, deletion_protection=True, min_alert_subscribers=1, code_signing=True,
        replication=True, athena_cutoff_gb=100, warehouse_max_capacity=64, warehouse_usage_rpu_hours=96,
        warehouse_breach_action=BreachAction.EMIT_METRIC,
    ),
}  # fmt: skip


# --------------------------------------------------------------------------------------------------------------------
# Production hardening
# --------------------------------------------------------------------------------------------------------------------

# Lambda keeps this much of the account's concurrency unreserved; reservations may only take the rest.
LAMBDA_UNRESERVED_MINIMUM = 100
# No account is granted more; the bound only gives the text form of the key a finite pattern.
LAMBDA_CONCURRENCY_MAXIMUM = 1_000_000


class ReplicationSettings(SettingsModel):
    """Cross-region replication of the raw (source of truth) and curated (product) zones."""

    enabled: bool | None = Field(
        None,
        description="Replicate raw and curated to `region`; default from the profile (on in prod). Monthly cost: "
        "inter-region transfer about $0.02/GB replicated, replica storage at the replica region's S3 prices (same "
        "Intelligent-Tiering as the source), $1 for the replica KMS key plus its requests, replication metrics "
        "about $1.20 per bucket (4 CloudWatch metrics) and $0.10 per alarm",
    )
    region: Annotated[str, WithJsonSchema({"type": "string", "enum": list(AWS_REGIONS)})] | None = Field(
        None, description="The replica region (another region than aws:region), e.g. `eu-central-1`"
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value not in AWS_REGIONS:
            raise ValueError(
                f"{value!r} is not an AWS region name such as 'eu-central-1'{_suggest(value, AWS_REGIONS)}"
            )
        return value


# --------------------------------------------------------------------------------------------------------------------
# Query and warehouse (issue 19)
# --------------------------------------------------------------------------------------------------------------------

# Redshift Serverless sizes in RPUs: multiples of 8 (AWS's unit), base up to 512, max up to 5632.
RPU_STEP = 8
BASE_CAPACITY_MAX = 512
MAX_CAPACITY_MAX = 5632
# Redshift Serverless places a workgroup in subnets of at least three AZs.
REDSHIFT_MIN_AZS = 3
GIB = 1024**3


class AthenaSettings(SettingsModel):
    """Athena over the curated zone: the stack's workgroup (part of the foundation; no cost at rest)."""

    bytes_scanned_cutoff_gb: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="A query that would scan more than this many GiB is cancelled (the workgroup enforces it); "
        "default from the profile (dev 1, staging 10, prod 100). Cost: Athena charges about $5 per TB scanned "
        "(10 MB minimum per query), so a query costs at most about $0.005 per GiB of the cutoff; nothing at rest",
    )
    result_retention_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="Days query results are kept under `athena-results/` in the artifacts bucket before the "
        "lifecycle rule expires them. Cost: S3 storage of the results only",
    )


class WarehouseSettings(SettingsModel):
    """Redshift Serverless over curated, loaded after every pipeline run; off unless `engine: redshift`."""

    engine: WarehouseEngine = Field(
        WarehouseEngine.NONE,
        description="`none` (Athena only) or `redshift` (a Redshift Serverless namespace and workgroup, loaded "
        "after each run). Needs network.azCount 3. Cost at rest with redshift: storage about $0.024/GB-month; "
        "compute only while queries run, from $0.375/RPU-hour (us-east-1) at the base capacity, 60 s minimum",
    )
    base_capacity: int = Field(
        8,
        ge=RPU_STEP,
        le=BASE_CAPACITY_MAX,
        multiple_of=RPU_STEP,
        description="RPUs a query starts with (multiples of 8, 8-512); AWS's default of 128 costs about $48 an "
        "hour while it runs, 8 about $3",
    )
    max_capacity: int | None = Field(
        None,
        ge=RPU_STEP,
        le=MAX_CAPACITY_MAX,
        multiple_of=RPU_STEP,
        description="RPUs the workgroup may scale to (multiples of 8, at least baseCapacity); default from the "
        "profile (dev 8, staging 16, prod 64)",
    )
    usage_limit_rpu_hours: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="RPU-hours the workgroup may use per usagePeriod before breachAction; default from the profile "
        "(dev 4, staging 16, prod 96 a day: at most about $1.50, $6 and $36 a day in us-east-1)",
    )
    usage_period: UsageLimitPeriod = Field(
        UsageLimitPeriod.DAILY, description="`daily`, `weekly` or `monthly`: the period of usageLimitRpuHours"
    )
    breach_action: BreachAction | None = Field(
        None,
        description="`log`, `emit-metric` or `deactivate` (queries stop until the period ends) when the limit is "
        "reached; default from the profile (dev and staging deactivate, prod emit-metric)",
    )


@dataclasses.dataclass(frozen=True)
class Warehouse:
    """The warehouse settings with the profile's defaults filled in."""

    engine: WarehouseEngine
    base_capacity: int
    max_capacity: int
    usage_limit_rpu_hours: int
    usage_period: UsageLimitPeriod
    breach_action: BreachAction

    @property
    def enabled(self) -> bool:
        return self.engine is WarehouseEngine.REDSHIFT


def resolve_warehouse(settings: WarehouseSettings, profile: Profile) -> Warehouse:
    return Warehouse(
        engine=settings.engine,
        base_capacity=settings.base_capacity,
        max_capacity=settings.max_capacity or max(profile.warehouse_max_capacity, settings.base_capacity),
        usage_limit_rpu_hours=settings.usage_limit_rpu_hours or profile.warehouse_usage_rpu_hours,
        usage_period=settings.usage_period,
        breach_action=settings.breach_action or profile.warehouse_breach_action,
    )


def warehouse_problems(config: StackConfig) -> list[str]:
    """What Redshift Serverless needs from the rest of the stack: private subnets in three AZs, and a maximum
    capacity no lower than the base."""
    warehouse = config.warehouse
    if warehouse.engine is not WarehouseEngine.REDSHIFT:
        return []
    problems = []
    az_count = config.network.az_count
    if az_count < REDSHIFT_MIN_AZS:
        problems.append(
            f"{PROJECT}:warehouse.engine: 'redshift' needs private subnets in at least {REDSHIFT_MIN_AZS} AZs "
            f"(Redshift Serverless refuses fewer), but {PROJECT}:network.azCount is {az_count}; set "
            f"network.azCount: {REDSHIFT_MIN_AZS}, or warehouse.engine: none."
        )
    if warehouse.max_capacity is not None and warehouse.max_capacity < warehouse.base_capacity:
        problems.append(
            f"{PROJECT}:warehouse.maxCapacity: {warehouse.max_capacity} is below warehouse.baseCapacity "
            f"({warehouse.base_capacity}); give at least {warehouse.base_capacity}."
        )
    return problems


# --------------------------------------------------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------------------------------------------------

_TAG_KEYS_SCHEMA = {
    "type": "object",
    "propertyNames": {
        "minLength": 1,
        "maxLength": 128,
        "pattern": r"^(?![Aa][Ww][Ss]:)",
        "not": {"enum": list(MANAGED_TAGS)},
    },
    "additionalProperties": {"type": "string", "maxLength": 256},
}


class StackConfig(SettingsModel):
    """The keys of the `etl-platform` namespace every stack has; `config_model()` adds one per architecture."""

    environment: Environment = Field(description="`dev`, `staging` or `prod`: the profile that fills defaults")
    architectures: Annotated[list[str], WithJsonSchema({"type": "array", "items": {"type": "string"}})] = Field(
        default_factory=list, description="Architectures to provision; empty means the foundation alone"
    )
    alert_emails: list[EmailAddress] = Field(
        default_factory=list, description="Subscribers of the alerts topic, each address once (prod needs one)"
    )
    log_retention_days: RetentionDays | None = Field(
        None, description="Retention of every log group (a value CloudWatch accepts); default from the profile"
    )
    tags: Annotated[dict[str, str], WithJsonSchema(_TAG_KEYS_SCHEMA)] = Field(
        default_factory=dict, description="Added to the provider's default tags (not Project, Stack, Environment, ...)"
    )
    network: NetworkSettings = Field(default_factory=NetworkSettings, description="The VPC")
    owns_catalog_encryption: bool = Field(
        True,
        description="Declare the Glue Data Catalog encryption setting, which is one per account and region: true in "
        "exactly one stack of each account and region (each environment in its own account, the recommended "
        "layout: every stack). Retained when a stack stops owning it or is destroyed. No cost of its own",
    )
    lambda_concurrency_quota: int | None = Field(
        None,
        ge=10,
        le=LAMBDA_CONCURRENCY_MAXIMUM,
        description="The account's Lambda concurrent-executions quota in this region (Service Quotas L-B99A9384); "
        "required when functions reserve concurrency, which may take at most the quota minus the 100 Lambda keeps "
        "unreserved. No cost",
    )
    code_signing: bool | None = Field(
        None,
        description="Enforce Lambda code signing: a Signer profile, an enforcing code-signing config, every function "
        "package and layer signed on upload. Default from the profile (on in prod). Monthly cost: $0 for AWS "
        "Signer with Lambda; the signed copies in the artifacts bucket, under $0.01 per release",
    )
    replication: ReplicationSettings = Field(
        default_factory=ReplicationSettings, description="Cross-region replication of raw and curated"
    )
    athena: AthenaSettings = Field(default_factory=AthenaSettings, description="Athena over curated")
    warehouse: WarehouseSettings = Field(
        default_factory=WarehouseSettings, description="Redshift Serverless over curated (off by default)"
    )

    @field_validator("architectures")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        first: dict[str, int] = {}
        errors = []
        for index, name in enumerate(value):
            if name in first:
                errors.append(located_error((index,), f"{name!r} is listed twice (first at [{first[name]}])", name))
            first.setdefault(name, index)
        raise_located(cls, errors)
        return value

    @field_validator("alert_emails")
    @classmethod
    def _one_subscription_per_address(cls, value: list[str]) -> list[str]:
        first: dict[str, int] = {}
        errors = []
        for index, address in enumerate(value):
            mailbox = address.lower()
            if mailbox in first:
                message = (
                    f"{address!r} repeats alertEmails[{first[mailbox]}] (addresses compare case-insensitively); "
                    "each address is subscribed once"
                )
                errors.append(located_error((index,), message, address))
            first.setdefault(mailbox, index)
        raise_located(cls, errors)
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        errors = []
        for key, tag in value.items():
            if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
                message = "a tag key is 1-128 characters and does not start with 'aws:'"
                errors.append(located_error((key,), message, key))
            elif key in MANAGED_TAGS:
                message = (
                    f"the program sets the {key!r} tag itself ({', '.join(MANAGED_TAGS)}); "
                    f"{'the profile is etl-platform:environment; ' if key == 'Environment' else ''}use another key"
                )
                errors.append(located_error((key,), message, tag))
            elif len(tag) > 256:
                errors.append(located_error((key,), f"the value is {len(tag)} characters, AWS allows 256", tag))
        raise_located(cls, errors)
        return value


@dataclasses.dataclass(frozen=True)
class StackSettings:
    """The validated stack: config, resolved profile defaults and stack identity."""

    project: str
    stack: str
    region: str
    config: StackConfig
    profile: Profile
    architecture_configs: Mapping[str, ArchitectureSettings] = dataclasses.field(default_factory=dict)
    """The settings of each selected architecture, defaults filled where the stack file gives none."""

    @property
    def environment(self) -> Environment:
        return self.config.environment

    @property
    def architectures(self) -> list[str]:
        return self.config.architectures

    @property
    def log_retention_days(self) -> int:
        return self.config.log_retention_days or self.profile.log_retention_days

    @property
    def audit_log_retention_days(self) -> int:
        return max(self.log_retention_days, self.profile.audit_log_retention_days)

    @property
    def nat_gateways(self) -> NatGateways:
        return self.config.network.nat_gateways or self.profile.nat_gateways

    @property
    def code_signing(self) -> bool:
        return self.profile.code_signing if self.config.code_signing is None else self.config.code_signing

    @property
    def replication(self) -> bool:
        enabled = self.config.replication.enabled
        return self.profile.replication if enabled is None else enabled

    @property
    def athena_cutoff_bytes(self) -> int:
        """Athena's per-query bytes-scanned cutoff."""
        return (self.config.athena.bytes_scanned_cutoff_gb or self.profile.athena_cutoff_gb) * GIB

    @property
    def warehouse(self) -> Warehouse:
        return resolve_warehouse(self.config.warehouse, self.profile)

    @property
    def default_tags(self) -> dict[str, str]:
        """The provider's default tags; `Environment` is how the policy pack tells the profile."""
        return {
            **self.config.tags,
            "Project": self.project,
            "Stack": self.stack,
            "Environment": self.environment.value,
            "ManagedBy": "pulumi",
        }

    def architecture_settings(self, name: str) -> Any:
        """The settings object of a selected architecture."""
        return self.architecture_configs[name]


# --------------------------------------------------------------------------------------------------------------------
# Loading and error reporting
# --------------------------------------------------------------------------------------------------------------------


def read_raw_config() -> dict[str, Any]:
    """Every config value the engine handed the program, keyed `namespace:key` (values are strings or JSON)."""
    from pulumi.runtime import config as runtime_config

    merged: dict[str, Any] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return merged


def read_secret_keys(keys: Iterable[str]) -> list[str]:
    """Those of `keys` the engine marked secret (`secure:` values in the stack file)."""
    from pulumi.runtime import config as runtime_config

    from_env = set(runtime_config.get_config_secret_keys_env())
    return [key for key in keys if key in from_env or runtime_config.is_config_secret(key)]


def _suggest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f" Did you mean {close[0]!r}?" if close else ""


def _shown(value: Any) -> str:
    """A value as the user wrote it."""
    return repr(value) if isinstance(value, str) else json.dumps(value)


def _scalar_text(value: Any) -> bool:
    """True for text that reads as a number or a boolean unquoted (`"2"`, `"true"`)."""
    return isinstance(value, str) and isinstance(plain_scalar(value), bool | int | float)


def _takes_text_forms(field: Any) -> bool:
    """True when a field holds a number or a boolean, which the engine hands over as text at the top level."""
    stack = [field.annotation]
    while stack:
        annotation = stack.pop()
        if annotation in (int, float, bool):
            return True
        stack.extend(get_args(annotation))
    return False


def _top_level(value: Any, field: Any) -> Any:
    """A top-level value as the program receives it, decoded: JSON text for lists and objects; for a field that
    holds numbers or booleans, the text as the YAML scalar it was written as (`365`, `30.0`, `true`)."""
    if not isinstance(value, str):
        return value
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if field is not None and _takes_text_forms(field):
        decoded = plain_scalar(value)
        if isinstance(decoded, bool | int | float) and not (isinstance(decoded, float) and not math.isfinite(decoded)):
            return decoded
    return value


def _whole_numbers(value: Any) -> Any:
    """Integral floats (`2.0`) as integers, as JSON Schema counts them; everything else as it is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


def _field_by_alias(model: type[BaseModel], key: str) -> Any:
    return next((f for n, f in model.model_fields.items() if key == (f.alias or n)), None)


def _model_at(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model class that owns the last element of an error location, for did-you-mean suggestions."""
    model: Any = root
    keyed = False  # the previous field was a mapping: this item is one of its keys, not a field
    for item in loc[:-1]:
        if isinstance(item, int) or keyed:
            keyed = False
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = _field_by_alias(model, str(item))
        if field is None:
            return None
        candidates = [field.annotation, *get_args(field.annotation)]
        keyed = any(get_origin(c) is dict for c in candidates)
        # dict[str, Model] / list[Model]: the model behind the container.
        for candidate in list(candidates):
            candidates.extend(get_args(candidate))
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _key_of(loc: Sequence[Any]) -> str:
    """`('network', 'azCount')` -> `etl-platform:network.azCount`; list indexes as `[0]`; keys exactly as written."""
    text = ""
    for item in loc:
        name = str(item) if str(item).isprintable() else repr(str(item))  # a key holding a newline stays on one line
        text += f"[{item}]" if isinstance(item, int) else ("." if text else "") + name
    return f"{PROJECT}:{text}"


def _describe(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    shown = _shown(value)
    if loc and loc[-1] == "[key]":
        # A mapping key that is not allowed (a stage name, say): the key itself is the value.
        loc = loc[:-1]
        choices = re.findall(r"'([^']+)'", error.get("ctx", {}).get("expected", ""))
        allowed = f" Allowed: {', '.join(choices)}." if choices else f" {error['msg']}."
        return f"{_key_of(loc)}: {shown} is not allowed here.{_suggest(str(value), choices)}{allowed}"
    key = _key_of(loc)
    if kind == "extra_forbidden":
        owner = _model_at(loc, root)
        name = str(loc[-1])
        retired: Mapping[str, str] = getattr(owner, "retired_keys", {})
        if name in retired:
            return f"{key}: {retired[name]}."
        keys = _keys(owner) if owner else []
        return f"{key}: unknown key.{_suggest(name, keys)} Allowed here: {', '.join(keys)}."
    if kind == "missing":
        return f"{key}: required, but not set."
    if kind == "enum":
        choices = re.findall(r"'([^']+)'", error.get("ctx", {}).get("expected", ""))
        return f"{key}: {shown} is not allowed.{_suggest(str(value), choices)} Allowed: {', '.join(choices)}."
    if kind in ("model_type", "model_attributes_type", "dict_type") and value in ("", None):
        owner = _model_at((*loc, "_"), root)
        listing = f" ({', '.join(_keys(owner))})" if owner else ""
        return f"{key}: is empty; give its settings as a mapping{listing}, or {{}} for the defaults."
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_type" and isinstance(value, bool | int | float):
        message += f"; quote it to keep it text: '{json.dumps(value)}'"
    elif kind in ("int_type", "int_parsing", "bool_type", "bool_parsing", "float_type") and _scalar_text(value):
        message += f"; write it without quotes: {value}"
    if isinstance(value, str) and message.startswith(repr(value)):
        return f"{key}: {message}."
    return f"{key}: {shown} is invalid: {message}."


def format_problems(stack: str, lines: Sequence[str]) -> str:
    """The one message for every problem of a stack: a header, then the lines (each names its file)."""
    listing = "\n".join(f"  - {line}" for line in lines)
    noun = "error" if len(lines) == 1 else "errors"
    return f"stack '{stack}' (Pulumi.{stack}.yaml) has {len(lines)} config {noun}:\n{listing}"


def _in_stack_file(stack: str, problems: Iterable[str]) -> list[str]:
    """Each problem on one line naming the file (a newline that reached a message is shown, not obeyed)."""
    return [f"Pulumi.{stack}.yaml: {problem}".replace("\n", "\\n") for problem in problems]


class ArchitectureSource(Protocol):
    """What the loader needs from the registry (`components.registry.Registry`)."""

    def names(self) -> tuple[str, ...]: ...

    def available(self) -> tuple[str, ...]: ...

    def settings_model(self, name: str) -> type[ArchitectureSettings]: ...

    def capabilities(self, name: str, settings: ArchitectureSettings) -> RunnerCapabilities | None: ...


def config_model(architectures: ArchitectureSource) -> type[StackConfig]:
    """The model of a whole stack file: the common keys plus one optional key per available architecture."""
    fields: dict[str, Any] = {}
    for name in architectures.available():
        model = architectures.settings_model(name)
        summary = (model.__doc__ or name).strip().splitlines()[0]
        fields[name] = (model | None, Field(None, description=f"Settings of `{name}`: {summary}"))
    return create_model("StackConfig", __base__=StackConfig, **fields)


def _default_source() -> ArchitectureSource:
    from components.registry import REGISTRY

    return REGISTRY


def _architecture_names(names: list[str], known: tuple[str, ...], available: tuple[str, ...]) -> list[str]:
    problems = []
    for index, name in enumerate(names):
        if name not in known:
            hint = _suggest(name, known)
            problems.append(
                f"{PROJECT}:architectures[{index}]: {name!r} is not an architecture.{hint} Allowed: {', '.join(known)}."
            )
        elif name not in available:
            problems.append(
                f"{PROJECT}:architectures[{index}]: {name!r} is not available yet in this version; "
                f"available: {', '.join(available)}."
            )
    return problems


def _namespace_problems(raw: Mapping[str, Any], project: str) -> list[str]:
    """Keys whose namespace is neither the project's, a provider's the program uses, nor the engine's."""
    allowed = (project, *PROVIDER_NAMESPACES, ENGINE_NAMESPACE)
    problems = []
    for key in raw:
        namespace, colon, name = key.partition(":")
        if not colon:
            problems.append(f"{key}: a key needs a namespace; write '{project}:{key}'.")
        elif namespace not in allowed:
            hint = _suggest(namespace, allowed)
            if hint:
                hint = f" Did you mean '{difflib.get_close_matches(namespace, allowed, n=1)[0]}:{name}'?"
            problems.append(
                f"{key}: unknown namespace '{namespace}' (the program reads {', '.join(allowed)}), so nothing would "
                f"read this key.{hint}"
            )
    return problems


def _region_problems(region: Any) -> list[str]:
    if not region:
        return ["aws:region: required, but not set. Set it with `pulumi config set aws:region eu-west-1`."]
    if region not in AWS_REGIONS:
        hint = _suggest(str(region), AWS_REGIONS, cutoff=0.8)
        allowed = f" Allowed: {', '.join(AWS_REGIONS)}." if not hint else " (a region of pulumi-aws's Region enum)"
        return [f"aws:region: {region!r} is not an AWS region.{hint}{allowed}"]
    return []


def _profile_problems(values: Mapping[str, Any]) -> list[str]:
    """What the environment's profile demands of the other keys (checked even when other keys are wrong)."""
    try:
        environment = Environment(str(values.get("environment")))
    except ValueError:
        return []
    needed = PROFILES[environment].min_alert_subscribers
    emails = values.get("alertEmails", [])
    if isinstance(emails, list) and len(emails) < needed:
        return [
            f"{PROJECT}:alertEmails: {environment.value} needs at least {needed} subscriber, so that alarms reach "
            "someone; e.g. 'etl-platform:alertEmails: [oncall@example.com]'."
        ]
    return []


# Stack names become parts of AWS names (ECR repositories and Glue databases take no upper case, dashboards no dots).
STACK_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def _validate(
    raw: Mapping[str, Any], project: str, stack: str, source: ArchitectureSource, secret_keys: Iterable[str]
) -> tuple[StackSettings | None, list[str]]:
    known, available = source.names(), source.available()
    model = config_model(source)
    secrets = set(secret_keys)
    problems: list[str] = []

    if not STACK_NAME.fullmatch(stack):
        problems.append(
            f"stack name {stack!r}: it is part of AWS names (ECR repositories, the Glue database, the dashboard); "
            "use lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. 'prod-us'."
        )
    problems += _namespace_problems(raw, project)
    problems += _region_problems(raw.get("aws:region"))

    prefix = f"{project}:"
    values: dict[str, Any] = {}
    secret_fields: set[str] = set()
    for full_key, value in raw.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix) :]
        if key in known and key not in available:
            problems.append(f"{PROJECT}:{key}: '{key}' is not available yet in this version, so it takes no settings.")
            continue
        if full_key in secrets:
            secret_fields.add(key)
            problems.append(
                f"{PROJECT}:{key}: is a secret (`secure:`), but the program passes it to resources as plain text; "
                "set it without --secret."
            )
        field = _field_by_alias(model, key)
        decoded = _top_level(value, field)
        if decoded == "" and field is not None:
            owner = _model_at((key, "_"), model)
            what = "a value"
            if owner is not None:
                what = f"its settings as a mapping ({', '.join(_keys(owner))}), or {{}} for the defaults"
            problems.append(f"{PROJECT}:{key}: is empty; give {what}, or remove the key.")
            continue
        values[key] = decoded

    config: StackConfig | None = None
    try:
        config = model.model_validate_json(
            json.dumps(_whole_numbers(values)), strict=True, by_alias=True, by_name=False
        )
    except ValidationError as exc:
        for error in exc.errors():
            head = str(error["loc"][0]) if error["loc"] else ""
            if head not in secret_fields:
                problems.append(_describe(error, model))  # a secret key's value is never described

    named = values.get("architectures")
    selected_names = named if isinstance(named, list) and all(isinstance(n, str) for n in named) else None
    if selected_names is not None:
        problems.extend(_architecture_names(selected_names, known, available))
    for name in available:
        if name in values and selected_names is not None and name not in selected_names:
            problems.append(
                f"{PROJECT}:{name}: settings for '{name}', which is not selected in "
                f"{PROJECT}:architectures; add it there or remove the settings."
            )
    problems.extend(_profile_problems(values))
    configs: dict[str, ArchitectureSettings] = {}
    if config is not None:
        selected = [name for name in config.architectures if name in available]
        for name in selected:
            configs[name] = getattr(config, name) or source.settings_model(name)()
        context = StackContext(
            selected=tuple(selected),
            runners={n: c for n in selected if (c := source.capabilities(n, configs[n])) is not None},
        )
        for name in selected:
            problems.extend(configs[name].stack_problems(context))
        problems.extend(hardening_problems(config, configs, raw.get("aws:region")))
        problems.extend(warehouse_problems(config))

    if problems or config is None:
        return None, problems
    return (
        StackSettings(
            project=project,
            stack=stack,
            region=str(raw["aws:region"]),
            config=config,
            profile=PROFILES[config.environment],
            architecture_configs=configs,
        ),
        [],
    )


def hardening_problems(config: StackConfig, configs: Mapping[str, ArchitectureSettings], region: Any) -> list[str]:
    """What the production-hardening keys need from the rest of the stack: a concurrency quota that fits every
    reservation, and a replica region (not the stack's own) whenever replication is on."""
    problems: list[str] = []
    reserved = {
        key: units for settings in configs.values() for key, units in settings.concurrency_reservations().items()
    }
    total = sum(reserved.values())
    if total:
        where = ", ".join(f"{key} ({units})" for key, units in sorted(reserved.items()))
        quota = config.lambda_concurrency_quota
        if quota is None:
            problems.append(
                f"{PROJECT}:lambdaConcurrencyQuota: required, but not set: functions reserve {total} concurrent "
                f"executions ({where}). Set it to the account's quota (`aws service-quotas get-service-quota "
                f"--service-code lambda --quota-code L-B99A9384`), or reserve none."
            )
        elif total > quota - LAMBDA_UNRESERVED_MINIMUM:
            problems.append(
                f"{PROJECT}:lambdaConcurrencyQuota: functions reserve {total} concurrent executions ({where}), but a "
                f"quota of {quota} leaves at most {max(quota - LAMBDA_UNRESERVED_MINIMUM, 0)} to reserve (Lambda "
                f"keeps {LAMBDA_UNRESERVED_MINIMUM} unreserved); reserve less or raise the quota first."
            )
    enabled = config.replication.enabled
    if PROFILES[config.environment].replication if enabled is None else enabled:
        replica = config.replication.region
        if replica is None:
            problems.append(
                f"{PROJECT}:replication.region: required, but not set: replication is on "
                f"({'the ' + config.environment.value + ' profile' if enabled is None else 'replication.enabled'}); "
                "name the replica region, e.g. 'eu-central-1', or set replication.enabled: false."
            )
        elif replica == region:
            problems.append(
                f"{PROJECT}:replication.region: {replica!r} is the stack's own region (aws:region); "
                "a replica must live in another region."
            )
    return problems


def config_problems(
    raw: Mapping[str, Any],
    *,
    project: str,
    stack: str,
    secret_keys: Iterable[str] = (),
    architectures: ArchitectureSource | None = None,
) -> list[str]:
    """Every problem of a stack's config, one line each naming the stack file (empty when it loads); the loader
    without raising."""
    return _in_stack_file(stack, _validate(raw, project, stack, architectures or _default_source(), secret_keys)[1])


def load_settings(
    raw: Mapping[str, Any] | None = None,
    *,
    project: str | None = None,
    stack: str | None = None,
    architectures: ArchitectureSource | None = None,
    secret_keys: Iterable[str] | None = None,
) -> StackSettings:
    """Validate the stack's config; `ConfigError` lists every problem.

    `raw` and `secret_keys` default to what the engine passed, `architectures` to the registry of architectures.
    """
    if raw is None:
        raw = read_raw_config()
        secret_keys = read_secret_keys(raw) if secret_keys is None else secret_keys
    stack = stack or pulumi.get_stack()
    settings, problems = _validate(
        raw, project or pulumi.get_project(), stack, architectures or _default_source(), secret_keys or ()
    )
    if problems:
        raise ConfigError(format_problems(stack, _in_stack_file(stack, problems)))
    assert settings is not None
    return settings


# --------------------------------------------------------------------------------------------------------------------
# The JSON Schema
# --------------------------------------------------------------------------------------------------------------------

SCHEMA_LIMITS: dict[str, str] = {
    "yaml": "a key given twice in one mapping, and keys or values a YAML 1.2 reader types differently from Pulumi",
    "case-duplicates": "alertEmails that differ only in letter case (the same mailbox twice)",
    "runners": (
        "stepfunctions.runners naming an architecture that is not selected, cannot run that stage, or needs "
        "a STANDARD state machine"
    ),
    "inheritance": (
        "a containers stage override that gives only cpu or only memory: it is checked against the other, "
        "inherited from containers.cpu / containers.memory"
    ),
    "stack-name": "the stack's name (from the file name), which names AWS resources",
    "warehouse": "warehouse.engine redshift against network.azCount, and warehouse.maxCapacity against baseCapacity",
    "hardening": (
        "lambdaConcurrencyQuota against the reservations the architectures make, and replication.region against "
        "replication being on (from the profile) and against aws:region"
    ),
}
"""What the loader checks and JSON Schema cannot express; listed in the schema's description."""


def _text_form(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of a top-level value written as text, which the engine hands over the same as the typed value."""
    if schema.get("type") == "integer" and "enum" in schema:
        return {"type": "string", "enum": [str(value) for value in schema["enum"]]}
    if schema.get("type") == "integer" and "minimum" in schema and "maximum" in schema:
        return {
            "type": "string",
            "pattern": anchored(number_pattern(schema["minimum"], schema["maximum"], leading_zero=False)),
        }
    if schema.get("type") == "boolean":
        return {"type": "string", "enum": ["true", "True", "TRUE", "false", "False", "FALSE"]}
    raise NotImplementedError(f"no text form for a top-level {schema}: add one to settings._text_form")


def _tidy(node: Any) -> Any:
    """Drop pydantic's generated titles (editors show descriptions) and make `$` anchors exact in Python too."""
    if isinstance(node, dict):
        tidied = {k: _tidy(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
        pattern = tidied.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("$"):
            tidied["pattern"] = pattern + r"(?!\n)"
        return tidied
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    return node


def _top_level_schema(spec: dict[str, Any]) -> dict[str, Any]:
    """A top-level key: no null (the engine hands an empty text), numbers and booleans also as text."""
    variants = spec.pop("anyOf", None)
    if variants is not None:
        variants = [v for v in variants if v != {"type": "null"}]
        spec.pop("default", None)
        if len(variants) == 1:
            spec.update(variants[0])
        else:
            spec["anyOf"] = variants
    if spec.get("type") in ("integer", "number", "boolean"):
        typed: dict[str, Any] = {k: spec.pop(k) for k in ("type", "enum", "minimum", "maximum") if k in spec}
        spec["anyOf"] = [typed, _text_form(typed)]
    return spec


def json_schema(architectures: ArchitectureSource | None = None) -> dict[str, Any]:
    """JSON Schema of a `Pulumi.<stack>.yaml` file, for editors (`etlctl schema`): the loader's rules that JSON
    Schema can express; `SCHEMA_LIMITS` are the rest."""
    source = architectures or _default_source()
    inner = config_model(source).model_json_schema(by_alias=True)
    definitions = inner.pop("$defs", {})
    properties: dict[str, Any] = inner["properties"]
    properties["architectures"]["items"] = {"enum": list(source.available()), "type": "string"}
    properties["architectures"]["uniqueItems"] = True
    properties["alertEmails"]["uniqueItems"] = True
    namespaced = {f"{PROJECT}:{key}": _top_level_schema(spec) for key, spec in properties.items()}

    rules: list[dict[str, Any]] = []
    # An architecture's settings only when it is selected.
    for name in source.available():
        rules.append(
            {
                "if": {"required": [f"{PROJECT}:{name}"]},
                "then": {
                    "required": [f"{PROJECT}:architectures"],
                    "properties": {f"{PROJECT}:architectures": {"contains": {"const": name}}},
                },
            }
        )
    # Profiles that need someone to alert.
    for environment, profile in PROFILES.items():
        if profile.min_alert_subscribers:
            rules.append(
                {
                    "if": {
                        "required": [f"{PROJECT}:environment"],
                        "properties": {f"{PROJECT}:environment": {"const": environment.value}},
                    },
                    "then": {
                        "required": [f"{PROJECT}:alertEmails"],
                        "properties": {f"{PROJECT}:alertEmails": {"minItems": profile.min_alert_subscribers}},
                    },
                }
            )
    limits = "\n".join(f"- {text}" for text in SCHEMA_LIMITS.values())
    namespaces = "|".join(re.escape(n) for n in (*PROVIDER_NAMESPACES, ENGINE_NAMESPACE))
    return _tidy(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"Pulumi.<stack>.yaml for {PROJECT}",
            "description": (
                f"A stack file of {PROJECT}, generated from the settings model (`etlctl schema --write`). "
                "The loader also refuses what JSON Schema cannot express:\n" + limits + "\n"
                "Pulumi hands top-level values to the program as the text written in the file, so the loader reads "
                "'365' (quoted) as 365; this schema accepts such quoted numbers in plain decimal only."
            ),
            "type": "object",
            "properties": {
                "config": {
                    "type": "object",
                    "properties": {"aws:region": {"type": "string", "enum": list(AWS_REGIONS)}, **namespaced},
                    "required": ["aws:region", f"{PROJECT}:environment"],
                    # Provider and engine namespaces pass; an unknown key of ours or an unknown namespace does not.
                    "patternProperties": {f"^(?:{namespaces}):[^:]+$": {}},
                    "additionalProperties": False,
                    "allOf": rules,
                },
                "secretsprovider": {"type": "string"},
                "encryptionsalt": {"type": "string"},
                "encryptedkey": {"type": "string"},
                "environment": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["config"],
            "additionalProperties": False,
            "$defs": definitions,
        }
    )
