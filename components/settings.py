"""The typed model of the whole stack config: the only place configuration is read.

`load_settings()` reads every key of the stack's config (project defaults already applied by the Pulumi CLI, or by
`etlctl preview --offline`), validates it against `StackSettings` and the environment profile, and returns a frozen
object that the program hands to components. Every mistake becomes one `pulumi.RunError` (printed by Pulumi without a
traceback) that names the stack file, the key, the bad value and what is allowed, before any resource is registered.

Keys in the `etl-platform` namespace are camelCase (`logRetentionDays`); Python attributes are snake_case.

This module holds what every stack has (environment, network, tags, ...) and the value types architectures share.
Each architecture's own settings model lives beside its component and reaches the stack model through the registry
(`components.registry`): `config_model()` adds one optional key per registered architecture.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic.alias_generators import to_camel

from components.stages import RunnerCapabilities

PROJECT = "etl-platform"


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


class LambdaArchitecture(StrEnum):
    ARM64 = "arm64"
    X86_64 = "x86_64"


class CapacityProvider(StrEnum):
    FARGATE = "FARGATE"
    FARGATE_SPOT = "FARGATE_SPOT"


# The values CloudWatch Logs accepts for retention_in_days.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_RATE = re.compile(r"^rate\((?P<value>\d+) (?P<unit>minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((?P<body>[^()]+)\)$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?,/\-#L W]+$")


def _retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        nearest = min(LOG_RETENTION_DAYS, key=lambda allowed: abs(allowed - value))
        raise ValueError(
            f"{value} is not a retention CloudWatch Logs accepts (nearest: {nearest}); "
            f"allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}"
        )
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value.strip()):
        raise ValueError(f"{value!r} is not an e-mail address (expected name@example.com)")
    return value.strip()


def validate_schedule(expression: str) -> str:
    """Check an EventBridge/Scheduler `rate(...)` or `cron(...)` expression the way AWS parses it."""
    expression = expression.strip()
    if rate := _RATE.match(expression):
        value, unit = int(rate["value"]), rate["unit"]
        if value < 1:
            raise ValueError(f"{expression!r}: a rate must be at least 1")
        if value == 1 and unit.endswith("s"):
            raise ValueError(f"{expression!r}: AWS wants the singular unit for 1, e.g. 'rate(1 {unit[:-1]})'")
        if value > 1 and not unit.endswith("s"):
            raise ValueError(f"{expression!r}: AWS wants the plural unit above 1, e.g. 'rate({value} {unit}s)'")
        return expression
    if cron := _CRON.match(expression):
        fields = cron["body"].split()
        if len(fields) != 6:
            raise ValueError(
                f"{expression!r}: cron takes 6 fields (minutes hours day-of-month month day-of-week year), "
                f"got {len(fields)}; e.g. 'cron(0 2 * * ? *)'"
            )
        if not all(_CRON_FIELD.match(field) for field in fields):
            raise ValueError(f"{expression!r}: a cron field holds characters AWS does not accept")
        day_of_month, day_of_week = fields[2], fields[4]
        if (day_of_month == "?") == (day_of_week == "?"):
            raise ValueError(
                f"{expression!r}: exactly one of day-of-month and day-of-week must be '?', e.g. 'cron(0 2 * * ? *)'"
            )
        return expression
    raise ValueError(f"{expression!r} is not a schedule: use 'rate(<n> <minutes|hours|days>)' or 'cron(<6 fields>)'")


RetentionDays = Annotated[int, AfterValidator(_retention)]
EmailAddress = Annotated[str, AfterValidator(_email)]
Schedule = Annotated[str, AfterValidator(validate_schedule)]
QuarantineRate = Annotated[float, Field(ge=0.0, le=1.0)]
# A source is a folder of the lake zones (`landing/<source>/`): lowercase letters, digits and dashes.
SourceName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class SettingsModel(BaseModel):
    """camelCase keys, unknown keys rejected, values frozen once validated."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, use_enum_values=False
    )


# --------------------------------------------------------------------------------------------------------------------
# Foundation settings
# --------------------------------------------------------------------------------------------------------------------


class NetworkSettings(SettingsModel):
    """The VPC every private workload runs in."""

    cidr: str = Field("10.40.0.0/16", description="IPv4 CIDR of the VPC, /16 to /24")
    az_count: int = Field(2, ge=2, le=3, description="Availability zones with a private subnet each (2-3)")
    nat_gateways: NatGateways | None = Field(
        None, description="`none` (gateway endpoints only), `single` or `per-az`; default from the profile"
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
        if not 16 <= network.prefixlen <= 24:
            raise ValueError(f"{value!r}: a VPC CIDR must be between /16 and /24")
        if not network.is_private:
            raise ValueError(f"{value!r} is not a private (RFC 1918) range")
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
    code_signing: bool = False  # Lambda code signing enforced, every package and layer signed
    replication: bool = False  # raw and curated copied to a second region


PROFILES: dict[Environment, Profile] = {
    Environment.DEV: Profile(
        protect=False, retain_on_delete=False, force_destroy=True, log_retention_days=14,
        audit_log_retention_days=30, nat_gateways=NatGateways.NONE, fargate_capacity=CapacityProvider.FARGATE_SPOT,
        noncurrent_version_days=7, deletion_protection=False,
    ),
    Environment.STAGING: Profile(
        protect=False, retain_on_delete=False, force_destroy=False, log_retention_days=30,
        audit_log_retention_days=90, nat_gateways=NatGateways.SINGLE, fargate_capacity=CapacityProvider.FARGATE,
        noncurrent_version_days=30, deletion_protection=True,
    ),
    Environment.PROD: Profile(
        protect=True, retain_on_delete=True, force_destroy=False, log_retention_days=90,
        audit_log_retention_days=365, nat_gateways=NatGateways.PER_AZ, fargate_capacity=CapacityProvider.FARGATE,
        noncurrent_version_days=90, deletion_protection=True, code_signing=True, replication=True,
    ),
}  # fmt: skip


# --------------------------------------------------------------------------------------------------------------------
# Production hardening
# --------------------------------------------------------------------------------------------------------------------

# Lambda keeps this much of the account's concurrency unreserved; reservations may only take the rest.
LAMBDA_UNRESERVED_MINIMUM = 100
_REGION = r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d"


class ReplicationSettings(SettingsModel):
    """Cross-region replication of the raw (source of truth) and curated (product) zones."""

    enabled: bool | None = Field(
        None,
        description="Replicate raw and curated to `region`; default from the profile (on in prod). Monthly cost: "
        "inter-region transfer about $0.02/GB replicated, replica storage at the replica region's S3 prices (same "
        "Intelligent-Tiering as the source), $1 for the replica KMS key plus its requests, replication metrics "
        "about $1.20 per bucket (4 CloudWatch metrics) and $0.10 per alarm",
    )
    region: str | None = Field(
        None, description="The replica region (another region than aws:region), e.g. `eu-central-1`"
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(_REGION, value):
            raise ValueError(f"{value!r} is not an AWS region name such as 'eu-central-1'")
        return value


# --------------------------------------------------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------------------------------------------------


class StackConfig(SettingsModel):
    """The keys of the `etl-platform` namespace every stack has; `config_model()` adds one per architecture."""

    environment: Environment = Field(description="`dev`, `staging` or `prod`: the profile that fills defaults")
    architectures: list[str] = Field(
        default_factory=list, description="Architectures to provision; empty means the foundation alone"
    )
    alert_emails: list[EmailAddress] = Field(default_factory=list, description="Subscribers of the alerts topic")
    log_retention_days: RetentionDays | None = Field(
        None, description="Retention of every log group (a value CloudWatch accepts); default from the profile"
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Added to the provider's default tags")
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

    @field_validator("architectures")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in value:
            if name in seen:
                raise ValueError(f"{name!r} is listed twice")
            seen.add(name)
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key, tag in value.items():
            if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r} must be 1-128 characters and not start with 'aws:'")
            if len(tag) > 256:
                raise ValueError(f"tag {key!r}: the value is {len(tag)} characters, AWS allows 256")
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
    def default_tags(self) -> dict[str, str]:
        return {
            "Project": self.project,
            "Stack": self.stack,
            "Environment": self.environment.value,
            "ManagedBy": "pulumi",
            **self.config.tags,
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


def _decode(value: Any) -> Any:
    """Structured values arrive as JSON text; scalars stay strings and pydantic coerces them."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _location(loc: tuple[Any, ...]) -> str:
    """`('network', 'azCount')` -> `network.azCount`; list indexes as `[0]`. Errors carry the aliases given."""
    text = ""
    for item in loc:
        if isinstance(item, int):
            text += f"[{item}]"
        else:
            text += ("." if text else "") + to_camel(str(item))
    return text


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_at(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model class that owns the last element of an error location, for did-you-mean suggestions."""
    model: Any = root
    for item in loc[:-1]:
        if isinstance(item, int) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        field = next(
            (f for n, f in model.model_fields.items() if item in (n, f.alias)),
            None,
        )
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _describe(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    key = f"{PROJECT}:{_location(loc)}" if loc else PROJECT
    value = error.get("input")
    kind = error["type"]
    if kind == "extra_forbidden":
        owner = _model_at(loc, root)
        allowed = _allowed_keys(owner) if owner else []
        hint = _suggest(str(loc[-1]), allowed)
        return f"{key}: unknown key.{hint} Allowed here: {', '.join(allowed)}."
    if kind == "missing":
        return f"{key}: required, but not set."
    if kind == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        choices = re.findall(r"'([^']+)'", expected)
        hint = _suggest(str(value), choices)
        return f"{key}: {value!r} is not allowed.{hint} Allowed: {', '.join(choices)}."
    message = str(error["msg"]).removeprefix("Value error, ")
    shown = json.dumps(value) if not isinstance(value, str) else repr(value)
    if message.startswith(repr(value)) or message.startswith(str(value)):
        return f"{key}: {message}."
    return f"{key}: {shown} is invalid: {message}."


def _fail(stack: str, problems: list[str]) -> ConfigError:
    listing = "\n".join(f"  - {problem}" for problem in problems)
    noun = "error" if len(problems) == 1 else "errors"
    return ConfigError(f"stack '{stack}' (Pulumi.{stack}.yaml) has {len(problems)} config {noun}:\n{listing}")


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
            hint = _suggest(name, list(known))
            problems.append(
                f"{PROJECT}:architectures[{index}]: {name!r} is not an architecture.{hint} Allowed: {', '.join(known)}."
            )
        elif name not in available:
            problems.append(
                f"{PROJECT}:architectures: {name!r} is not available yet in this version; "
                f"available: {', '.join(available)}."
            )
    return problems


def load_settings(
    raw: Mapping[str, Any] | None = None,
    *,
    project: str | None = None,
    stack: str | None = None,
    architectures: ArchitectureSource | None = None,
) -> StackSettings:
    """Validate the stack's config.

    `raw` defaults to what the engine passed, `architectures` to the registry of architectures.
    """
    raw = read_raw_config() if raw is None else raw
    project = project or pulumi.get_project()
    stack = stack or pulumi.get_stack()
    source = architectures or _default_source()
    known, available = source.names(), source.available()
    model = config_model(source)

    problems: list[str] = []
    prefix = f"{project}:"
    values: dict[str, Any] = {}
    for full_key, value in raw.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix) :]
        if key in known and key not in available:
            problems.append(f"{PROJECT}:{key}: '{key}' is not available yet in this version, so it takes no settings.")
            continue
        values[key] = _decode(value)

    region = raw.get("aws:region")
    if not region:
        problems.append("aws:region: required, but not set. Set it with `pulumi config set aws:region eu-west-1`.")
    elif not re.fullmatch(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d", str(region)):
        problems.append(f"aws:region: {region!r} is not an AWS region name such as 'eu-west-1'.")

    config: StackConfig | None = None
    try:
        config = model.model_validate(values)
    except ValidationError as exc:
        problems.extend(_describe(error, model) for error in exc.errors())

    named = values.get("architectures")
    if isinstance(named, list) and all(isinstance(name, str) for name in named):
        problems.extend(_architecture_names(named, known, available))
    configs: dict[str, ArchitectureSettings] = {}
    if config is not None:
        selected = [name for name in config.architectures if name in available]
        for name in available:
            if getattr(config, name) is not None and name not in config.architectures:
                problems.append(
                    f"{PROJECT}:{name}: settings for '{name}', which is not selected in "
                    f"{PROJECT}:architectures; add it there or remove the settings."
                )
        for name in selected:
            configs[name] = getattr(config, name) or source.settings_model(name)()
        context = StackContext(
            selected=tuple(selected),
            runners={n: c for n in selected if (c := source.capabilities(n, configs[n])) is not None},
        )
        for name in selected:
            problems.extend(configs[name].stack_problems(context))
        problems.extend(hardening_problems(config, configs, str(region) if region else None))

    if problems:
        raise _fail(stack, problems)
    assert config is not None
    return StackSettings(
        project=project,
        stack=stack,
        region=str(region),
        config=config,
        profile=PROFILES[config.environment],
        architecture_configs=configs,
    )


def hardening_problems(
    config: StackConfig, configs: Mapping[str, ArchitectureSettings], region: str | None
) -> list[str]:
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


def json_schema(architectures: ArchitectureSource | None = None) -> dict[str, Any]:
    """JSON Schema of a `Pulumi.<stack>.yaml` file, for editors (`etlctl schema`)."""
    source = architectures or _default_source()
    inner = config_model(source).model_json_schema(by_alias=True)
    definitions = inner.pop("$defs", {})
    inner["properties"]["architectures"]["items"] = {"enum": list(source.available()), "type": "string"}
    namespaced = {f"{PROJECT}:{key}": spec for key, spec in inner["properties"].items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Pulumi.<stack>.yaml for {PROJECT}",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": {
                    "aws:region": {"type": "string", "pattern": r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"},
                    **namespaced,
                },
                "required": ["aws:region", f"{PROJECT}:environment"],
                # Other namespaces (aws:, pulumi:) pass; an unknown key of ours does not.
                "patternProperties": {f"^(?!{PROJECT}:)": {}},
                "additionalProperties": False,
            },
            "secretsprovider": {"type": "string"},
            "encryptionsalt": {"type": "string"},
            "encryptedkey": {"type": "string"},
        },
        "$defs": definitions,
    }
