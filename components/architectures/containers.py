"""Architecture 6, containers: the ETL stages as Fargate tasks, run in order by a Step Functions state machine.

Provisions:
- one ECR repository per image (scan on push, immutable tags, KMS, lifecycle policy; protected in prod) and the image,
  built and pushed by pulumi-docker with a content-hash tag (`components.images.context_hash`);
- an ECS cluster (Container Insights, execute-command logging to a KMS log group) with FARGATE and FARGATE_SPOT
  capacity providers, a task security group (no ingress, HTTPS egress only), one execution role and, per stage
  (extract, transform, validate, load), a task definition pinned to the pushed digest and a task role scoped to the
  lake zones that stage touches;
- its pipeline: an `Orchestration` (state machine, schedule with its dead-letter queue, alarms) over its own tasks.

It is a stage runner (`EcsRunner`, bound: `EcsTasks`): a stage is an `ecs:runTask.sync` Task in the private subnets,
whose container writes its result to the result object the pipeline names (`--result-uri`). Step Functions fails such
a Task with `States.TaskFailed` when the container exits non-zero, so a job that completed (a validate whose gate
failed included) exits 0 and says how it went in its result; the pipeline's gate and alert read that result.

Takes `ArchitectureArgs[ContainersSettings]`. Exposes `runner`, `pipeline`, `widgets`, and `outputs()` (repository
URLs, image digests, cluster ARN, the pipeline's state machine and schedule dead-letter queue).

One image, not four (see components/images.py and containers/README.md): the four stages share all their code
(`etl_jobs`) and dependencies, so one image means one build, one push, one scan and one digest to pin; each task
definition picks its stage with the container command (the entrypoint is `python -m etl_jobs`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker
from pydantic import ConfigDict, Field, JsonValue, model_validator

from components import asl, images, lake_access, policies
from components.architectures.base import Architecture, ArchitectureArgs
from components.foundation.alarms import metric_widget
from components.orchestration import Orchestration, OrchestrationArgs
from components.pipelines import BoundRunner, StageCall
from components.roles import service_role
from components.runners import StageRunner
from components.settings import (
    ArchitectureSettings,
    CapacityProvider,
    QuarantineRate,
    Schedule,
    SettingsModel,
    SourceName,
    located_error,
    raise_located,
)
from components.stages import RunnerCapabilities, Stage, StageBudget

CONTAINER_NAME = "etl"
# The UID:GID the Dockerfile creates and switches to (containers/etl/Dockerfile); never root.
CONTAINER_USER = "10001:10001"
# The only writable path on the read-only root filesystem (the image's HOME and TMPDIR).
SCRATCH_PATH = "/tmp"


class ContainerPlatform(StrEnum):
    AMD64 = "linux/amd64"
    ARM64 = "linux/arm64"


_CPU_ARCHITECTURE = {ContainerPlatform.ARM64: "ARM64", ContainerPlatform.AMD64: "X86_64"}

# ---------------------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------------------

_FARGATE_SIZES: dict[int, range] = {
    256: range(512, 2048 + 1, 512),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
    8192: range(16384, 61440 + 1, 4096),
    16384: range(32768, 122880 + 1, 8192),
}
FargateCpu = Literal[256, 512, 1024, 2048, 4096, 8192, 16384]
FargateMemory = Annotated[int, Field(ge=512, le=122880)]
DEFAULT_CPU: FargateCpu = 512
DEFAULT_MEMORY = 1024


def _fit_problem(cpu: int, memory: int) -> str | None:
    allowed = _FARGATE_SIZES[cpu]
    if memory in allowed:
        return None
    return (
        f"memory {memory} does not fit cpu {cpu} on Fargate; allowed: {allowed.start}-{allowed.stop - 1} "
        f"in steps of {allowed.step}"
    )


def _fargate_schema(defaults: tuple[int, int] | None) -> list[JsonValue]:
    """JSON Schema branches, one per Fargate CPU size with the memories it allows. With `defaults` (cpu, memory), a
    key left out takes its default; without, the branch applies only when both keys are given."""
    branches: list[JsonValue] = []
    for cpu, memories in _FARGATE_SIZES.items():
        required: list[JsonValue]
        if defaults is None:
            required = ["cpu", "memory"]
        else:
            default_cpu, default_memory = defaults
            required = [
                key
                for key, default_fits in (("cpu", cpu == default_cpu), ("memory", default_memory in memories))
                if not default_fits
            ]
        branch: dict[str, JsonValue] = {"properties": {"cpu": {"const": cpu}, "memory": {"enum": list(memories)}}}
        if required:
            branch["required"] = required
        branches.append(branch)
    return branches


@dataclasses.dataclass(frozen=True)
class ResolvedSize:
    """A stage's Fargate size after inheritance."""

    cpu: int
    memory: int


class TaskSize(SettingsModel):
    """Fargate task size of one stage; a key left out is inherited from the architecture's `cpu` / `memory`."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [{"not": {"required": ["cpu", "memory"]}}, *_fargate_schema(None)],
        }
    )

    cpu: FargateCpu | None = Field(None, description="Fargate CPU units; default: the architecture's `cpu`")
    memory: FargateMemory | None = Field(
        None, description="MiB, a size Fargate allows for the CPU; default: the architecture's `memory`"
    )


class ContainersSettings(ArchitectureSettings):
    """Architecture 6: images built by the program, stages run on ECS Fargate in order by a state machine."""

    model_config = ConfigDict(json_schema_extra={"anyOf": _fargate_schema((DEFAULT_CPU, DEFAULT_MEMORY))})

    cpu: FargateCpu = Field(DEFAULT_CPU, description="Default Fargate CPU units of every stage")
    memory: FargateMemory = Field(DEFAULT_MEMORY, description="Default memory (MiB) of every stage")
    stages: dict[Stage, TaskSize] = Field(
        default_factory=dict, description="Per-stage overrides of `cpu` and/or `memory`; the other is inherited"
    )
    platform: ContainerPlatform = Field(ContainerPlatform.ARM64, description="`linux/arm64` or `linux/amd64`")
    schedule: Schedule = Field("cron(0 3 * * ? *)", description="EventBridge Scheduler expression that starts a run")
    sources: list[SourceName] = Field(
        default_factory=lambda: ["orders"], min_length=1, description="Sources its pipeline extracts"
    )
    max_concurrency: int = Field(2, ge=1, le=40, description="Sources extracted and transformed at once")
    task_timeout_seconds: int = Field(
        3600, ge=60, le=86400, description="Longest one stage task may run before Step Functions stops waiting"
    )
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
        """Every stage's size after inheritance is one Fargate allows; each misfit is reported at its own key."""
        errors = []
        top = _fit_problem(self.cpu, self.memory)
        if top:
            if "memory" not in self.model_fields_set:
                top += f" (memory is the default {DEFAULT_MEMORY}: set containers.memory too)"
            errors.append(located_error(("memory",), top, self.memory))
        for stage, override in self.stages.items():
            inherited = [key for key in ("cpu", "memory") if getattr(override, key) is None]
            if top and inherited:
                continue  # it inherits the misfit reported above
            size = self.size(stage)
            if problem := _fit_problem(size.cpu, size.memory):
                note = ", ".join(f"{key} {getattr(size, key)} from containers.{key}" for key in inherited)
                message = problem + (f" ({note})" if note else "")
                errors.append(located_error(("stages", stage.value), message, override.model_dump(exclude_none=True)))
        raise_located(type(self), errors)
        return self

    def size(self, stage: Stage) -> ResolvedSize:
        """The stage's Fargate size: its override where given, the architecture's `cpu` / `memory` otherwise."""
        override = self.stages.get(stage) or TaskSize()
        return ResolvedSize(
            cpu=override.cpu if override.cpu is not None else self.cpu,
            memory=override.memory if override.memory is not None else self.memory,
        )

    def budget(self) -> StageBudget:
        return StageBudget(timeout_seconds=self.task_timeout_seconds, retry=asl.JOB_RETRY)


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """One image the architecture builds: its build context and Dockerfile.

    The builder never reads this context directly: `images.stage_context()` copies the files the tag covers (the
    ignore file applied) into a directory of their own, which is what pulumi-docker hashes and sends. The repository
    root's `.dockerignore` is a link to the image's own ignore file, for tools run on the checkout itself.
    """

    name: str
    context_dir: Path
    dockerfile: Path


ETL_IMAGE = ImageSource("etl", images.REPO_ROOT, images.ETL_DOCKERFILE)


# BuildKit, and always pushed: both are inputs pulumi-docker diffs on, so the tag covers them (images.py).
BUILDER = docker.BuilderVersion.BUILDER_BUILD_KIT
SKIP_PUSH = False


def image_tag(source: ImageSource, settings: ContainersSettings) -> str:
    """The content-hash tag: context files (honouring the ignore file), Dockerfile, build args, platform, and every
    other image input that makes pulumi-docker rebuild, so a rebuild always pushes a new tag (see images.py)."""
    extra = {
        "builderVersion": str(BUILDER.value),
        "buildOnPreview": str(settings.build_on_preview).lower(),
        "skipPush": str(SKIP_PUSH).lower(),
    }
    return images.context_hash(
        source.context_dir, source.dockerfile, build_args(settings), settings.platform.value, extra=extra
    )


def build_args(settings: ContainersSettings) -> dict[str, str]:
    return {"BASE_IMAGE": settings.base_image}


def _portable(path: Path) -> str:
    """The path relative to the working directory (the project directory under the Pulumi CLI) when it is inside it,
    so the image's `build.context` input is the same on every checkout and shows no diff."""
    try:
        return Path(os.path.relpath(path)).as_posix() if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def lifecycle_policy(keep_images: int) -> dict[str, Any]:
    """Untagged layers (superseded pushes) go after a day; the newest `keep_images` tagged images stay."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Expire untagged images after 1 day",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep the newest {keep_images} tagged images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep_images,
                },
                "action": {"type": "expire"},
            },
        ]
    }


# ---------------------------------------------------------------------------------------------------------------------
# Policy documents (plain functions over resolved ARNs)
# ---------------------------------------------------------------------------------------------------------------------


def execution_role_policy(repository_arns: Sequence[str], log_group_arn: str) -> policies.PolicyDocument:
    """What ECS needs to start a task: pull the image from our repositories and write its log streams."""
    return policies.document(
        policies.allow(
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            list(repository_arns),
            sid="PullImage",
        ),
        policies.allow(["ecr:GetAuthorizationToken"], "*", sid="RegistryToken"),
        policies.log_writer(log_group_arn),
    )


# ---------------------------------------------------------------------------------------------------------------------
# The stage runner
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EcsTasks(BoundRunner):
    """Stages as Fargate tasks (`ecs:runTask.sync`) of resolved task definitions, in private subnets."""

    architecture: str
    cluster_arn: str
    task_definition_arns: Mapping[Stage, str]
    container_name: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    pass_role_arns: tuple[str, ...]
    """The task roles and the execution role: Step Functions passes them to ECS."""
    capacity_provider: str | None
    budgets: Mapping[Stage, StageBudget]

    returns_payload: ClassVar[bool] = False
    waits_for_jobs: ClassVar[bool] = True

    def task(self, call: StageCall, *, name: str, **options: Any) -> asl.Task:
        return asl.ecs_run_task(
            name,
            cluster_arn=self.cluster_arn,
            task_definition_arn=self.task_definition_arns[call.stage],
            container_name=self.container_name,
            subnet_ids=self.subnet_ids,
            security_group_ids=self.security_group_ids,
            pass_role_arns=self.pass_role_arns,
            capacity_provider=self.capacity_provider,
            command_path=call.command(),
            platform_version="LATEST",
            # The task description is large and says nothing the result object does not; keep its ARN.
            result_selector={"TaskArn.$": "$.TaskArn"},
            **options,
        )


@dataclasses.dataclass(frozen=True)
class EcsRunner(StageRunner):
    architecture: str
    cluster_arn: pulumi.Output[str]
    task_definition_arns: Mapping[Stage, pulumi.Output[str]]
    container_name: str
    subnet_ids: Sequence[pulumi.Output[str]]
    security_group_ids: Sequence[pulumi.Output[str]]
    pass_role_arns: Sequence[pulumi.Output[str]]
    capacity_provider: str | None
    budgets: Mapping[Stage, StageBudget]

    returns_payload: ClassVar[bool] = False
    waits_for_jobs: ClassVar[bool] = True

    def bind(self) -> pulumi.Output[BoundRunner]:
        stages = list(self.task_definition_arns)
        return pulumi.Output.all(
            self.cluster_arn,
            pulumi.Output.all(*[self.task_definition_arns[stage] for stage in stages]),
            pulumi.Output.all(*self.subnet_ids),
            pulumi.Output.all(*self.security_group_ids),
            pulumi.Output.all(*self.pass_role_arns),
        ).apply(
            lambda values: EcsTasks(
                architecture=self.architecture,
                cluster_arn=values[0],
                task_definition_arns=dict(zip(stages, values[1], strict=True)),
                container_name=self.container_name,
                subnet_ids=tuple(values[2]),
                security_group_ids=tuple(values[3]),
                pass_role_arns=tuple(values[4]),
                capacity_provider=self.capacity_provider,
                budgets=self.budgets,
            )
        )


# ---------------------------------------------------------------------------------------------------------------------
# The component
# ---------------------------------------------------------------------------------------------------------------------


class Containers(Architecture):
    type_token = "etl:architectures:Containers"
    settings_model: ClassVar[type[ArchitectureSettings]] = ContainersSettings
    # Without NAT, Fargate still pulls the image (ECR API + registry) and ships logs through these endpoints; image
    # layers come from S3, which the foundation's gateway endpoint already covers.
    interface_endpoints: ClassVar[tuple[str, ...]] = ("ecr.api", "ecr.dkr", "logs")
    images: ClassVar[tuple[ImageSource, ...]] = (ETL_IMAGE,)
    """What it builds; one image serves every stage (see the module docstring)."""

    @classmethod
    def runner_capabilities(cls, settings: ArchitectureSettings) -> RunnerCapabilities:
        return RunnerCapabilities(stages=frozenset(Stage), waits_for_jobs=True)

    repositories: dict[str, aws.ecr.Repository]
    built_images: dict[str, docker.Image]
    cluster: aws.ecs.Cluster
    task_definitions: dict[Stage, aws.ecs.TaskDefinition]
    pipeline: Orchestration

    def __init__(
        self, name: str, args: ArchitectureArgs[ContainersSettings], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, opts)
        settings, foundation = args.settings, args.foundation
        if not self.images:
            raise ValueError("Containers.images must name at least one image to build")
        self._name = name
        self._settings = settings
        self._foundation = foundation
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"{foundation.stack.project}-{foundation.stack.stack}"
        capacity = (settings.capacity_provider or foundation.profile.fargate_capacity).value

        self.repositories, self.built_images = {}, {}
        for source in self.images:
            self._image(source, prefix)
        image = self.built_images[self.images[0].name]

        def log_group(role: str, retention: int) -> aws.cloudwatch.LogGroup:
            return aws.cloudwatch.LogGroup(
                f"{name}-{role}-logs",
                retention_in_days=retention,
                kms_key_id=foundation.key.arn,
                opts=foundation.stateful(self),
            )

        task_logs = log_group("tasks", foundation.log_retention_days)
        exec_logs = log_group("exec", foundation.audit_log_retention_days)

        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            configuration=aws.ecs.ClusterConfigurationArgs(
                execute_command_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationArgs(
                    kms_key_id=foundation.key.arn,
                    logging="OVERRIDE",
                    log_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationLogConfigurationArgs(
                        cloud_watch_encryption_enabled=True,
                        cloud_watch_log_group_name=exec_logs.name,
                    ),
                )
            ),
            opts=child,
        )
        aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity",
            cluster_name=self.cluster.name,
            capacity_providers=["FARGATE", "FARGATE_SPOT"],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider=capacity, weight=1, base=0
                )
            ],
            opts=child,
        )

        security_group = aws.ec2.SecurityGroup(
            f"{name}-tasks-sg",
            vpc_id=foundation.network.vpc_id,
            description="ETL tasks: no inbound traffic; HTTPS out to AWS APIs",
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-tasks-https-out",
            security_group_id=security_group.id,
            description="HTTPS to S3, ECR, CloudWatch Logs and KMS (endpoints or NAT)",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
            opts=child,
        )

        account = foundation.stack.account_id
        execution_role = service_role(
            f"{name}-execution-role",
            policy_name=f"{name}-execution-policy",
            service="ecs-tasks.amazonaws.com",
            account_id=account,
            description="ECS agent: pulls the ETL image and writes task logs",
            policy=pulumi.Output.all(task_logs.arn, *[repo.arn for repo in self.repositories.values()]).apply(
                lambda values: json.dumps(execution_role_policy(values[1:], values[0]))
            ),
            parent=self,
        ).role

        lake = foundation.lake
        variables = {**lake.zone_environment(), "ETL_MAX_QUARANTINE_RATE": str(settings.max_quarantine_rate)}
        environment = [{"name": key, "value": value} for key, value in sorted(variables.items())]
        size_platform = aws.ecs.TaskDefinitionRuntimePlatformArgs(
            operating_system_family="LINUX", cpu_architecture=_CPU_ARCHITECTURE[settings.platform]
        )

        self.task_definitions = {}
        task_roles: dict[Stage, aws.iam.Role] = {}
        for stage in Stage:
            role = service_role(
                f"{name}-{stage.value}-task-role",
                policy_name=f"{name}-{stage.value}-task-policy",
                service="ecs-tasks.amazonaws.com",
                account_id=account,
                description=f"The {stage.value} task: what etl_jobs.access declares for it, and its result object",
                policy=lake_access.role_statements(stage.value, foundation).apply(
                    lambda statements: json.dumps(policies.document(*statements))
                ),
                parent=self,
            ).role
            task_roles[stage] = role
            size = settings.size(stage)
            container = {
                "name": CONTAINER_NAME,
                "image": image.repo_digest,
                "essential": True,
                "command": [stage.value, "--json"],
                "user": CONTAINER_USER,
                "privileged": False,
                "readonlyRootFilesystem": True,
                "environment": environment,
                "mountPoints": [{"sourceVolume": "scratch", "containerPath": SCRATCH_PATH, "readOnly": False}],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": task_logs.name,
                        "awslogs-region": foundation.stack.region,
                        "awslogs-stream-prefix": stage.value,
                    },
                },
            }
            self.task_definitions[stage] = aws.ecs.TaskDefinition(
                f"{name}-{stage.value}",
                family=f"{prefix}-{stage.value}",
                cpu=str(size.cpu),
                memory=str(size.memory),
                network_mode="awsvpc",
                requires_compatibilities=["FARGATE"],
                runtime_platform=size_platform,
                execution_role_arn=execution_role.arn,
                task_role_arn=role.arn,
                # A task-private scratch volume: the only writable place on the read-only root filesystem.
                volumes=[aws.ecs.TaskDefinitionVolumeArgs(name="scratch")],
                container_definitions=pulumi.Output.json_dumps([container]),
                # An image change registers a new revision; the old one stays active, because executions that
                # started before the update still run tasks from it (the state machine names the revision).
                skip_destroy=True,
                opts=child,
            )

        self.runner = EcsRunner(
            architecture="containers",
            cluster_arn=self.cluster.arn,
            task_definition_arns={stage: td.arn for stage, td in self.task_definitions.items()},
            container_name=CONTAINER_NAME,
            subnet_ids=list(foundation.network.private_subnet_ids),
            security_group_ids=[security_group.id],
            pass_role_arns=[execution_role.arn, *[task_roles[stage].arn for stage in Stage]],
            capacity_provider=capacity,
            budgets={stage: settings.budget() for stage in Stage},
        )
        self.pipeline = Orchestration(
            f"{name}-pipeline",
            OrchestrationArgs(
                foundation=foundation,
                sources=tuple(settings.sources),
                runners=dict.fromkeys(Stage, self.runner),
                schedule=settings.schedule,
                max_quarantine_rate=settings.max_quarantine_rate,
                max_concurrency=settings.max_concurrency,
                settings_key="etl-platform:containers",
                # The schedule's dead letters, once this component's own queue.
                adopt={"schedule-dlq": pulumi.Alias(name=f"{name}-dlq", parent=self)},
            ),
            opts=child,
        )
        self.widgets.extend(self.pipeline.widgets)
        self._dashboard()
        self.register_outputs(self.outputs())

    # -----------------------------------------------------------------------------------------------------------------
    def _image(self, source: ImageSource, prefix: str) -> None:
        settings, foundation = self._settings, self._foundation
        repository = aws.ecr.Repository(
            f"{self._name}-{source.name}-repo",
            name=f"{prefix}/{source.name}",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            image_tag_mutability="IMMUTABLE",
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=foundation.key.arn)
            ],
            force_delete=foundation.profile.force_destroy,
            opts=foundation.stateful(self),
        )
        aws.ecr.LifecyclePolicy(
            f"{self._name}-{source.name}-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_policy(settings.keep_images)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        tag = image_tag(source, settings)
        # Built from a staged copy with normalised modes: what pulumi-docker hashes is then what the tag covers.
        staged = images.stage_context(source.context_dir, source.dockerfile, tag, source.name)
        # A fresh token every run: ECR tokens last 12 hours, so a cached one would break the next push.
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.built_images[source.name] = docker.Image(
            f"{self._name}-{source.name}-image",
            image_name=pulumi.Output.concat(repository.repository_url, ":", tag),
            build=docker.DockerBuildArgs(
                context=_portable(staged),
                dockerfile=_portable(staged / "Dockerfile"),
                platform=settings.platform.value,
                args=build_args(settings),
                builder_version=BUILDER,
            ),
            build_on_preview=settings.build_on_preview,
            registry=docker.RegistryArgs(
                server=repository.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            skip_push=SKIP_PUSH,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.repositories[source.name] = repository

    def _dashboard(self) -> None:
        self.widgets.append(
            metric_widget(
                "Containers cluster: CPU and memory",
                [
                    ["ECS/ContainerInsights", "CpuUtilized", "ClusterName", self.cluster.name],
                    ["ECS/ContainerInsights", "MemoryUtilized", "ClusterName", self.cluster.name],
                ],
                region=self._foundation.stack.region,
                stat="Average",
            )
        )

    def outputs(self) -> dict[str, Any]:
        return {
            "repositoryUrls": {name: repo.repository_url for name, repo in self.repositories.items()},
            "imageDigests": {name: image.repo_digest for name, image in self.built_images.items()},
            "clusterArn": self.cluster.arn,
            "pipeline": self.pipeline.outputs(),
        }
