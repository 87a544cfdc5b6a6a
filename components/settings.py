"""The typed model of the whole stack config: the only place configuration is read.

`load_settings()` reads every key of the stack's config (project defaults already applied by the Pulumi CLI, or by
`etlctl preview --offline`), validates it against `StackSettings` and the environment profile, and returns a frozen
object that the program hands to components. Every mistake becomes one `pulumi.RunError` (printed by Pulumi without a
traceback) that names the stack file, the key, the bad value and what is allowed, before any resource is registered.

Keys in the `etl-platform` namespace are camelCase (`logRetentionDays`); Python attributes are snake_case.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

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


class ArchitectureName(StrEnum):
    SERVERLESS = "serverless"
    GLUE = "glue"
    STREAMING = "streaming"
    EMR = "emr"
    DATABASE = "database"
    CONTAINERS = "containers"
    STEPFUNCTIONS = "stepfunctions"


class NatGateways(StrEnum):
    NONE = "none"
    SINGLE = "single"
    PER_AZ = "per-az"


class LambdaArchitecture(StrEnum):
    ARM64 = "arm64"
    X86_64 = "x86_64"


class StateMachineType(StrEnum):
    STANDARD = "STANDARD"
    EXPRESS = "EXPRESS"


class CapacityProvider(StrEnum):
    FARGATE = "FARGATE"
    FARGATE_SPOT = "FARGATE_SPOT"


class ContainerPlatform(StrEnum):
    AMD64 = "linux/amd64"
    ARM64 = "linux/arm64"


class Stage(StrEnum):
    EXTRACT = "extract"
    TRANSFORM = "transform"
    VALIDATE = "validate"
    LOAD = "load"


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


class _Model(BaseModel):
    """camelCase keys, unknown keys rejected, values frozen once validated."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, use_enum_values=False
    )


# --------------------------------------------------------------------------------------------------------------------
# Foundation settings
# --------------------------------------------------------------------------------------------------------------------


class NetworkSettings(_Model):
    """The VPC every private workload runs in."""

    cidr: str = Field("10.40.0.0/16", description="IPv4 CIDR of the VPC, /16 to /24")
    az_count: int = Field(2, ge=2, le=3, description="Availability zones with a private subnet each (2-3)")
    nat_gateways: NatGateways | None = Field(
        None, description="`none` (gateway endpoints only), `single` or `per-az`; default from the profile"
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
# Architecture settings: one object per architecture name
# --------------------------------------------------------------------------------------------------------------------


class ServerlessSettings(_Model):
    """Architecture 1: scheduled extract Lambda -> SQS -> process Lambda; S3 file drops trigger the same path."""

    schedule: Schedule = Field("rate(1 hour)", description="EventBridge Scheduler expression for the extract Lambda")
    memory_mb: int = Field(1024, ge=128, le=10240, description="Lambda memory in MB (128-10240)")
    timeout_seconds: int = Field(300, ge=1, le=900, description="Lambda timeout in seconds (1-900)")
    reserved_concurrency: int | None = Field(
        2, ge=1, le=1000, description="Reserved concurrency of each function; null for the unreserved pool"
    )
    architecture: LambdaArchitecture = Field(LambdaArchitecture.ARM64, description="`arm64` or `x86_64`")
    batch_size: int = Field(5, ge=1, le=10, description="SQS messages per process-Lambda invocation (1-10)")
    max_quarantine_rate: QuarantineRate = Field(0.10, description="Quarantined share of rows that fails a run")
    landing_prefix: str = Field("landing/", description="Prefix in the raw bucket where file drops start a run")

    @field_validator("landing_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9!_.*'()/-]+/", value) or value.startswith("/"):
            raise ValueError(f"{value!r} is not an S3 prefix ending in '/', e.g. 'landing/'")
        return value


class StageEngines(_Model):
    """Which selected architecture runs each stage; `stepfunctions` means the orchestrator's own Lambdas."""

    extract: ArchitectureName = ArchitectureName.STEPFUNCTIONS
    transform: ArchitectureName = ArchitectureName.STEPFUNCTIONS
    # `validate` would shadow BaseModel.validate; the config key is still `validate`.
    validate_: ArchitectureName = Field(ArchitectureName.STEPFUNCTIONS, alias="validate")
    load: ArchitectureName = ArchitectureName.STEPFUNCTIONS

    def by_stage(self) -> dict[Stage, ArchitectureName]:
        return {
            Stage.EXTRACT: self.extract,
            Stage.TRANSFORM: self.transform,
            Stage.VALIDATE: self.validate_,
            Stage.LOAD: self.load,
        }


# An EXPRESS execution's limit, and the engines the orchestrator runs with a `.sync` (wait-for-job) integration.
EXPRESS_MAX_SECONDS = 300
SYNC_ENGINES: frozenset[ArchitectureName] = frozenset({ArchitectureName.CONTAINERS})


class StepFunctionsSettings(_Model):
    """Architecture 7: a state machine orchestrating the stages on the engines chosen per stage."""

    type: StateMachineType = Field(StateMachineType.STANDARD, description="`STANDARD` or `EXPRESS`")
    schedule: Schedule = Field("cron(0 2 * * ? *)", description="EventBridge Scheduler expression that starts a run")
    engines: StageEngines = Field(default_factory=StageEngines, description="Engine per stage")
    max_quarantine_rate: QuarantineRate = Field(0.10, description="Validation gate: quarantined share that fails")
    sources: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]] = Field(
        default_factory=lambda: ["orders"], min_length=1, description="Source names extracted in parallel"
    )
    max_concurrency: int = Field(4, ge=1, le=40, description="Map concurrency over partitions")
    timeout_seconds: int = Field(3600, ge=60, le=86400, description="Execution timeout in seconds")
    memory_mb: int = Field(1024, ge=128, le=10240, description="Memory of the orchestrator's own Lambdas")
    architecture: LambdaArchitecture = Field(LambdaArchitecture.ARM64, description="Architecture of its Lambdas")

    @model_validator(mode="after")
    def _express_limits(self) -> StepFunctionsSettings:
        # EXPRESS executions last at most 5 minutes and cannot wait for a job (`.sync`), e.g. an ECS task.
        if self.type is StateMachineType.EXPRESS:
            if self.timeout_seconds > EXPRESS_MAX_SECONDS:
                raise ValueError(
                    f"timeoutSeconds {self.timeout_seconds} exceeds the {EXPRESS_MAX_SECONDS} seconds an EXPRESS "
                    "execution may run; lower it or use type STANDARD"
                )
            waiting = [f"{s.value} on {e.value}" for s, e in self.engines.by_stage().items() if e in SYNC_ENGINES]
            if waiting:
                raise ValueError(
                    f"type EXPRESS cannot wait for a job ({', '.join(waiting)}): `.sync` integrations need "
                    "type STANDARD"
                )
        return self


_FARGATE_SIZES: dict[int, range] = {
    256: range(512, 2048 + 1, 512),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
    8192: range(16384, 61440 + 1, 4096),
    16384: range(32768, 122880 + 1, 8192),
}


def _fargate_size(cpu: int, memory: int) -> None:
    if cpu not in _FARGATE_SIZES:
        raise ValueError(f"cpu {cpu} is not a Fargate size; allowed: {', '.join(map(str, _FARGATE_SIZES))}")
    allowed = _FARGATE_SIZES[cpu]
    if memory not in allowed:
        raise ValueError(
            f"memory {memory} does not fit cpu {cpu} on Fargate; allowed: {allowed.start}-{allowed.stop - 1} "
            f"in steps of {allowed.step}"
        )


class TaskSize(_Model):
    """Fargate task size of one stage."""

    cpu: int = Field(512, description="Fargate CPU units (256, 512, 1024, ...)")
    memory: int = Field(1024, description="MiB; must be a size Fargate allows for the CPU")

    @model_validator(mode="after")
    def _fits(self) -> TaskSize:
        _fargate_size(self.cpu, self.memory)
        return self


class ContainersSettings(_Model):
    """Architecture 6: images built by the program, stages run on ECS Fargate in order by a state machine."""

    cpu: int = Field(512, description="Default Fargate CPU units of every stage")
    memory: int = Field(1024, description="Default memory (MiB) of every stage")
    stages: dict[Stage, TaskSize] = Field(default_factory=dict, description="Per-stage size overrides")
    platform: ContainerPlatform = Field(ContainerPlatform.ARM64, description="`linux/arm64` or `linux/amd64`")
    schedule: Schedule = Field("cron(0 3 * * ? *)", description="EventBridge Scheduler expression that starts a run")
    build_on_preview: bool = Field(False, description="Build images during `pulumi preview` too")
    capacity_provider: CapacityProvider | None = Field(
        None, description="`FARGATE` or `FARGATE_SPOT`; default from the profile (Spot in dev)"
    )
    base_image: str = Field(
        "public.ecr.aws/docker/library/python:3.12-slim", description="BASE_IMAGE build arg of every image"
    )
    keep_images: int = Field(20, ge=1, le=1000, description="Tagged images the ECR lifecycle policy keeps")
    max_quarantine_rate: QuarantineRate = Field(0.10, description="Quarantined share of rows that fails a run")

    @model_validator(mode="after")
    def _fits(self) -> ContainersSettings:
        _fargate_size(self.cpu, self.memory)
        return self

    def size(self, stage: Stage) -> TaskSize:
        return self.stages.get(stage) or TaskSize(cpu=self.cpu, memory=self.memory)


class GlueSettings(_Model):
    """Architecture 2 (reserved)."""

    schedule: Schedule = "cron(0 4 * * ? *)"
    worker_type: Literal["G.1X", "G.2X", "G.4X"] = "G.1X"
    number_of_workers: int = Field(2, ge=2, le=100)


class StreamingSettings(_Model):
    """Architecture 3 (reserved)."""

    shard_count: int | None = Field(None, ge=1, le=500, description="null for on-demand capacity")
    retention_hours: int = Field(24, ge=24, le=8760)


class EmrSettings(_Model):
    """Architecture 4 (reserved)."""

    mode: Literal["serverless", "cluster"] = "serverless"
    release_label: str = "emr-7.5.0"


class DatabaseSettings(_Model):
    """Architecture 5 (reserved)."""

    min_capacity: float = Field(0.0, ge=0.0, le=256.0)
    max_capacity: float = Field(4.0, ge=1.0, le=256.0)


ARCHITECTURE_SETTINGS: dict[ArchitectureName, type[_Model]] = {
    ArchitectureName.SERVERLESS: ServerlessSettings,
    ArchitectureName.GLUE: GlueSettings,
    ArchitectureName.STREAMING: StreamingSettings,
    ArchitectureName.EMR: EmrSettings,
    ArchitectureName.DATABASE: DatabaseSettings,
    ArchitectureName.CONTAINERS: ContainersSettings,
    ArchitectureName.STEPFUNCTIONS: StepFunctionsSettings,
}


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
        noncurrent_version_days=90, deletion_protection=True,
    ),
}  # fmt: skip


# --------------------------------------------------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------------------------------------------------


class StackConfig(_Model):
    """Every key of the `etl-platform` namespace of a `Pulumi.<stack>.yaml` file."""

    environment: Environment = Field(description="`dev`, `staging` or `prod`: the profile that fills defaults")
    architectures: list[ArchitectureName] = Field(
        default_factory=list, description="Architectures to provision; empty means the foundation alone"
    )
    alert_emails: list[EmailAddress] = Field(default_factory=list, description="Subscribers of the alerts topic")
    log_retention_days: RetentionDays | None = Field(
        None, description="Retention of every log group (a value CloudWatch accepts); default from the profile"
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Added to the provider's default tags")
    network: NetworkSettings = Field(default_factory=NetworkSettings, description="The VPC")
    serverless: ServerlessSettings | None = None
    glue: GlueSettings | None = None
    streaming: StreamingSettings | None = None
    emr: EmrSettings | None = None
    database: DatabaseSettings | None = None
    containers: ContainersSettings | None = None
    stepfunctions: StepFunctionsSettings | None = None

    @field_validator("architectures")
    @classmethod
    def _unique(cls, value: list[ArchitectureName]) -> list[ArchitectureName]:
        seen: set[ArchitectureName] = set()
        for name in value:
            if name in seen:
                raise ValueError(f"{name.value!r} is listed twice")
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

    @property
    def environment(self) -> Environment:
        return self.config.environment

    @property
    def architectures(self) -> list[ArchitectureName]:
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
    def default_tags(self) -> dict[str, str]:
        return {
            "Project": self.project,
            "Stack": self.stack,
            "Environment": self.environment.value,
            "ManagedBy": "pulumi",
            **self.config.tags,
        }

    def architecture_settings(self, name: ArchitectureName) -> Any:
        """The settings object of a selected architecture, defaults filled when the stack file gives none."""
        return getattr(self.config, name.value) or ARCHITECTURE_SETTINGS[name]()


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


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the last element of an error location, for did-you-mean suggestions."""
    model: Any = StackConfig
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


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    key = f"{PROJECT}:{_location(loc)}" if loc else PROJECT
    value = error.get("input")
    kind = error["type"]
    if kind == "extra_forbidden":
        owner = _model_at(loc)
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


def load_settings(
    raw: Mapping[str, Any] | None = None,
    *,
    project: str | None = None,
    stack: str | None = None,
    available: frozenset[ArchitectureName] | None = None,
) -> StackSettings:
    """Validate the stack's config.

    `raw` defaults to what the engine passed, `available` to the architectures the registry can build.
    """
    raw = read_raw_config() if raw is None else raw
    project = project or pulumi.get_project()
    stack = stack or pulumi.get_stack()
    if available is None:
        from components.registry import available_architectures

        available = available_architectures()

    problems: list[str] = []
    prefix = f"{project}:"
    values: dict[str, Any] = {}
    for full_key, value in raw.items():
        if full_key.startswith(prefix):
            values[full_key[len(prefix) :]] = _decode(value)

    region = raw.get("aws:region")
    if not region:
        problems.append("aws:region: required, but not set. Set it with `pulumi config set aws:region eu-west-1`.")
    elif not re.fullmatch(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d", str(region)):
        problems.append(f"aws:region: {region!r} is not an AWS region name such as 'eu-west-1'.")

    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(values)
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())

    if config is not None:
        selected = set(config.architectures)
        for name in ArchitectureName:
            if getattr(config, name.value) is not None and name not in selected:
                problems.append(
                    f"{PROJECT}:{name.value}: settings for '{name.value}', which is not selected in "
                    f"{PROJECT}:architectures; add it there or remove the settings."
                )
        for name in config.architectures:
            if name not in available:
                problems.append(
                    f"{PROJECT}:architectures: '{name.value}' is not available yet in this version; "
                    f"available: {', '.join(sorted(a.value for a in available))}."
                )
        if config.stepfunctions is not None or ArchitectureName.STEPFUNCTIONS in selected:
            engines = (config.stepfunctions or StepFunctionsSettings()).engines
            for stage, engine in engines.by_stage().items():
                if engine not in selected:
                    problems.append(
                        f"{PROJECT}:stepfunctions.engines.{stage.value}: engine '{engine.value}' is not selected "
                        f"in {PROJECT}:architectures; select '{engine.value}' too or choose one of: "
                        f"{', '.join(sorted(n.value for n in selected))}."
                    )
                elif engine not in ENGINE_ARCHITECTURES:
                    problems.append(
                        f"{PROJECT}:stepfunctions.engines.{stage.value}: '{engine.value}' cannot run a stage yet; "
                        f"choose one of: {', '.join(sorted(a.value for a in ENGINE_ARCHITECTURES & selected))}."
                    )

    if problems:
        raise _fail(stack, problems)
    assert config is not None
    return StackSettings(
        project=project, stack=stack, region=str(region), config=config, profile=PROFILES[config.environment]
    )


# Architectures that can run a pipeline stage for the orchestrator.
ENGINE_ARCHITECTURES: frozenset[ArchitectureName] = frozenset(
    {ArchitectureName.SERVERLESS, ArchitectureName.CONTAINERS, ArchitectureName.STEPFUNCTIONS}
)


def json_schema() -> dict[str, Any]:
    """JSON Schema of a `Pulumi.<stack>.yaml` file, for editors (`etlctl schema`)."""
    inner = StackConfig.model_json_schema(by_alias=True)
    definitions = inner.pop("$defs", {})
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
