"""Architecture 6, containers: the ETL stages as Fargate tasks, run in order by a Step Functions state machine.

Provisions:
- one ECR repository per image (scan on push, immutable tags, KMS, lifecycle policy; protected in prod) and the image,
  built and pushed by pulumi-docker with a content-hash tag (`components.images.context_hash`);
- an ECS cluster (Container Insights, execute-command logging to a KMS log group) with FARGATE and FARGATE_SPOT
  capacity providers, a task security group (no ingress, HTTPS egress only), one execution role and, per stage
  (extract, transform, validate, load), a task definition pinned to the pushed digest and a task role scoped to the
  lake zones that stage touches;
- a STANDARD state machine from `components.workflows.sequential_pipeline` (`ecs:runTask.sync`, Retry, Catch -> alerts),
  logging ALL with execution data to a KMS log group, X-Ray tracing, its role derived from `required_permissions()`;
- an EventBridge Scheduler schedule that starts it (retry policy, KMS SQS DLQ with a TLS-only policy);
- alarms to the alerts topic (ExecutionsFailed, ExecutionsTimedOut, DLQ depth), an EventBridge rule that alerts when a
  task of this cluster stops with a non-zero exit code, and dashboard widgets.

Takes `ArchitectureArgs[ContainersSettings]`. Exposes `engine` (`EcsEngineRef`, so the stepfunctions architecture can
run a stage here), `widgets`, and `outputs()` (repository URLs, image digests, cluster ARN, state machine ARN).

One image, not four (see components/images.py and containers/README.md): the four stages share all their code
(`etl_jobs`) and dependencies, so one image means one build, one push, one scan and one digest to pin; each task
definition picks its stage with the container command (the entrypoint is `python -m etl_jobs`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components import asl, images, policies, workflows
from components.architectures.base import Architecture, ArchitectureArgs
from components.foundation.alarms import metric_alarm, metric_widget
from components.queues import dead_letter_queue
from components.refs import EcsEngineRef
from components.roles import service_role
from components.settings import ContainerPlatform, ContainersSettings, Stage

CONTAINER_NAME = "etl"
# The UID:GID the Dockerfile creates and switches to (containers/etl/Dockerfile); never root.
CONTAINER_USER = "10001:10001"
# The only writable path on the read-only root filesystem (the image's HOME and TMPDIR).
SCRATCH_PATH = "/tmp"
# Where a validate task writes its result for the state machine to read (workflows.ValidationResultLocation).
VALIDATION_PREFIX = "manifests/validation/"
# Source files are dropped here in the raw bucket; extract reads them.
LANDING_PREFIX = "landing/"

_CPU_ARCHITECTURE = {ContainerPlatform.ARM64: "ARM64", ContainerPlatform.AMD64: "X86_64"}


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """One image the architecture builds: its build context and Dockerfile.

    pulumi-docker reads only `<context>/.dockerignore`; the repository root's `.dockerignore` is a link to the
    image's own `containers/etl/Dockerfile.dockerignore`, so the context sent to the builder is exactly the set of
    files the tag is computed from (a unit test holds the two together).
    """

    name: str
    context_dir: Path
    dockerfile: Path


ETL_IMAGE = ImageSource("etl", images.REPO_ROOT, images.ETL_DOCKERFILE)


def image_tag(source: ImageSource, settings: ContainersSettings) -> str:
    """The content-hash tag: context files (honouring the ignore file), Dockerfile, build args and platform."""
    return images.context_hash(source.context_dir, source.dockerfile, build_args(settings), settings.platform.value)


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


@dataclasses.dataclass(frozen=True)
class LakeArns:
    """Resolved ARNs of the buckets and key the stage roles are scoped to."""

    raw: str
    staged: str
    curated: str
    quarantine: str
    artifacts: str
    key: str


def task_role_policy(stage: Stage, lake: LakeArns) -> policies.PolicyDocument:
    """Each stage reads the zone before it and writes the zone it produces, nothing else."""
    statements: list[policies.Statement] = [policies.key_use(lake.key)]
    if stage is Stage.EXTRACT:
        statements += policies.read_prefixes(lake.raw, [LANDING_PREFIX])
        statements += policies.write_prefixes(lake.raw)
    elif stage is Stage.TRANSFORM:
        statements += policies.read_prefixes(lake.raw)
        statements += policies.write_prefixes(lake.staged)
    elif stage is Stage.VALIDATE:
        statements += policies.read_prefixes(lake.staged)
        statements += policies.write_prefixes(lake.quarantine)
        statements += policies.write_prefixes(lake.artifacts, [VALIDATION_PREFIX])
    else:
        statements += policies.read_prefixes(lake.staged)
        # Load replaces a run date's partition, so it deletes what it overwrites.
        statements += policies.write_prefixes(lake.curated, delete=True)
    return policies.document(*statements)


def _task_policy_json(stage: Stage, lake: LakeArns) -> str:
    return json.dumps(task_role_policy(stage, lake))


def state_machine_policy(machine: asl.StateMachine, key_arn: str) -> policies.PolicyDocument:
    """The Tasks' own statements plus vended logging, X-Ray and the stack key (execution data is encrypted)."""
    return policies.state_machine_role_policy(machine.required_permissions(), key_arn)


# ---------------------------------------------------------------------------------------------------------------------
# The state machine
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PipelineRefs:
    """Resolved values the definition is rendered from."""

    engine: workflows.EcsInvoker
    task_definition_arns: Mapping[Stage, str]
    alerts_topic_arn: str
    artifacts_bucket: str
    key_arn: str
    partition: str


def pipeline_definition(refs: PipelineRefs, settings: ContainersSettings, pipeline_name: str) -> asl.StateMachine:
    """`sequential_pipeline` on ECS, with two adapters of ours around it:

    - `RunDate`: a scheduled run starts with `{"scheduled_time": <ISO timestamp>}` (Scheduler cannot format a date),
      so the run date is its date part; a manual run that gives `run_date` keeps it.
    - `PlatformVersion: LATEST` on every runTask (ECS.10), which the builder leaves to the service default.
    """
    invokers = {
        stage: dataclasses.replace(refs.engine, task_definition_arn=refs.task_definition_arns[stage]) for stage in Stage
    }
    machine = workflows.sequential_pipeline(
        workflows.PipelineStages(
            extract=invokers[Stage.EXTRACT],
            transform=invokers[Stage.TRANSFORM],
            validate=invokers[Stage.VALIDATE],
            load=invokers[Stage.LOAD],
        ),
        refs.alerts_topic_arn,
        max_quarantine_rate=settings.max_quarantine_rate,
        validation_result=workflows.ValidationResultLocation(
            bucket=refs.artifacts_bucket, prefix=VALIDATION_PREFIX, partition=refs.partition, kms_key_arn=refs.key_arn
        ),
        pipeline_name=pipeline_name,
    )
    first = machine.start_at or machine.states[0].name
    states: list[asl.State] = [
        asl.Choice(
            name="RunDate",
            comment="Manual runs give run_date; scheduled runs give scheduled_time",
            choices=(asl.ChoiceRule(asl.IsPresent("$.run_date"), first),),
            default="RunDateFromSchedule",
        ),
        asl.Pass(
            name="RunDateFromSchedule",
            parameters={
                "run_date.$": "States.ArrayGetItem(States.StringSplit($.scheduled_time, 'T'), 0)",
                "source.$": "$.source",
            },
            next=first,
        ),
    ]
    for state in machine.states:
        if isinstance(state, asl.Task) and state.resource.endswith(":ecs:runTask.sync") and state.parameters:
            state = dataclasses.replace(state, parameters={**state.parameters, "PlatformVersion": "LATEST"})
        states.append(state)
    return asl.StateMachine(
        tuple(states),
        start_at="RunDate",
        comment=machine.comment,
        timeout_seconds=machine.timeout_seconds,
        defaults=machine.defaults,
    )


# ---------------------------------------------------------------------------------------------------------------------
# The component
# ---------------------------------------------------------------------------------------------------------------------


class Containers(Architecture):
    type_token = "etl:architectures:Containers"
    # Without NAT, Fargate still pulls the image (ECR API + registry) and ships logs through these endpoints; image
    # layers come from S3, which the foundation's gateway endpoint already covers.
    interface_endpoints: ClassVar[tuple[str, ...]] = ("ecr.api", "ecr.dkr", "logs")
    images: ClassVar[tuple[ImageSource, ...]] = (ETL_IMAGE,)
    """What it builds; one image serves every stage (see the module docstring)."""

    repositories: dict[str, aws.ecr.Repository]
    built_images: dict[str, docker.Image]
    cluster: aws.ecs.Cluster
    task_definitions: dict[Stage, aws.ecs.TaskDefinition]
    state_machine: aws.sfn.StateMachine

    def __init__(
        self, name: str, args: ArchitectureArgs[ContainersSettings], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, opts)
        settings, platform = args.settings, args.platform
        if not self.images:
            raise ValueError("Containers.images must name at least one image to build")
        self._name = name
        self._settings = settings
        self._platform = platform
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"{platform.stack.project}-{platform.stack.stack}"
        capacity = (settings.capacity_provider or platform.profile.fargate_capacity).value

        self.repositories, self.built_images = {}, {}
        for source in self.images:
            self._image(source, prefix)
        image = self.built_images[self.images[0].name]

        def log_group(role: str, retention: int) -> aws.cloudwatch.LogGroup:
            return aws.cloudwatch.LogGroup(
                f"{name}-{role}-logs",
                retention_in_days=retention,
                kms_key_id=platform.key.arn,
                opts=platform.stateful(self),
            )

        task_logs = log_group("tasks", platform.log_retention_days)
        exec_logs = log_group("exec", platform.audit_log_retention_days)
        machine_logs = log_group("pipeline", platform.audit_log_retention_days)

        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            configuration=aws.ecs.ClusterConfigurationArgs(
                execute_command_configuration=aws.ecs.ClusterConfigurationExecuteCommandConfigurationArgs(
                    kms_key_id=platform.key.arn,
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
            vpc_id=platform.network.vpc_id,
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

        account = platform.stack.account_id
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

        lake = platform.lake
        lake_arns = pulumi.Output.all(
            lake.raw.arn, lake.staged.arn, lake.curated.arn, lake.quarantine.arn, lake.artifacts.arn, platform.key.arn
        ).apply(lambda values: LakeArns(*values))
        environment = [{"name": key, "value": value} for key, value in sorted(lake.zone_environment().items())]
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
                description=f"The {stage.value} task: its own lake zones and the stack key",
                policy=lake_arns.apply(functools.partial(_task_policy_json, stage)),
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
                        "awslogs-region": platform.stack.region,
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
                opts=child,
            )

        pass_roles = [execution_role.arn, *[task_roles[stage].arn for stage in Stage]]
        subnet_ids = list(platform.network.private_subnet_ids)
        self.engine = EcsEngineRef(
            cluster_arn=self.cluster.arn,
            task_definition_arns={stage: td.arn for stage, td in self.task_definitions.items()},
            container_name=CONTAINER_NAME,
            subnet_ids=subnet_ids,
            security_group_ids=[security_group.id],
            pass_role_arns=pass_roles,
            capacity_provider=capacity,
        )
        failed_tasks = self._failed_task_rule(name)
        self._orchestration(name, prefix, machine_logs, capacity, failed_tasks)
        self._failure_alerts(name, failed_tasks)
        self._dashboard()
        self.register_outputs(self.outputs())

    # -----------------------------------------------------------------------------------------------------------------
    def _image(self, source: ImageSource, prefix: str) -> None:
        settings, platform = self._settings, self._platform
        repository = aws.ecr.Repository(
            f"{self._name}-{source.name}-repo",
            name=f"{prefix}/{source.name}",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            image_tag_mutability="IMMUTABLE",
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=platform.key.arn)
            ],
            force_delete=platform.profile.force_destroy,
            opts=platform.stateful(self),
        )
        aws.ecr.LifecyclePolicy(
            f"{self._name}-{source.name}-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_policy(settings.keep_images)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        tag = image_tag(source, settings)
        # A fresh token every run: ECR tokens last 12 hours, so a cached one would break the next push.
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.built_images[source.name] = docker.Image(
            f"{self._name}-{source.name}-image",
            image_name=pulumi.Output.concat(repository.repository_url, ":", tag),
            build=docker.DockerBuildArgs(
                context=_portable(source.context_dir),
                dockerfile=_portable(source.dockerfile),
                platform=settings.platform.value,
                args=build_args(settings),
                builder_version=docker.BuilderVersion.BUILDER_BUILD_KIT,
            ),
            build_on_preview=settings.build_on_preview,
            registry=docker.RegistryArgs(
                server=repository.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            skip_push=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.repositories[source.name] = repository

    # -----------------------------------------------------------------------------------------------------------------
    def _orchestration(
        self,
        name: str,
        prefix: str,
        machine_logs: aws.cloudwatch.LogGroup,
        capacity: str,
        failed_tasks: aws.cloudwatch.EventRule,
    ) -> None:
        platform, settings = self._platform, self._settings
        child = pulumi.ResourceOptions(parent=self)
        account = platform.stack.account_id
        engine = self.engine
        assert isinstance(engine, EcsEngineRef)

        def build(values: list[Any]) -> asl.StateMachine:
            (cluster, topic, artifacts, key, partition, security_group, *rest) = values
            count = len(engine.subnet_ids)
            subnets, definitions, pass_roles = (
                rest[:count],
                rest[count : count + len(Stage)],
                rest[count + len(Stage) :],
            )
            arns = dict(zip(Stage, definitions, strict=True))
            return pipeline_definition(
                PipelineRefs(
                    engine=workflows.EcsInvoker(
                        cluster_arn=cluster,
                        task_definition_arn=arns[Stage.EXTRACT],
                        container_name=CONTAINER_NAME,
                        subnet_ids=tuple(subnets),
                        security_group_ids=(security_group,),
                        pass_role_arns=tuple(pass_roles),
                        capacity_provider=capacity,
                    ),
                    task_definition_arns=arns,
                    alerts_topic_arn=topic,
                    artifacts_bucket=artifacts,
                    key_arn=key,
                    partition=partition,
                ),
                settings,
                pipeline_name=f"{prefix} containers pipeline",
            )

        machine = pulumi.Output.all(
            engine.cluster_arn,
            platform.alerts.topic_arn,
            platform.lake.artifacts.name,
            platform.key.arn,
            platform.stack.partition,
            *engine.security_group_ids,
            *engine.subnet_ids,
            *[engine.task_definition_arns[stage] for stage in Stage],
            *engine.pass_role_arns,
        ).apply(build)

        pipeline = service_role(
            f"{name}-pipeline-role",
            policy_name=f"{name}-pipeline-policy",
            service="states.amazonaws.com",
            account_id=account,
            description="The containers state machine: runs the stage tasks, reads the validation result, alerts",
            policy=pulumi.Output.all(machine, platform.key.arn).apply(
                lambda values: json.dumps(state_machine_policy(values[0], values[1]))
            ),
            parent=self,
        )
        self.state_machine = aws.sfn.StateMachine(
            f"{name}-pipeline",
            type="STANDARD",
            role_arn=pipeline.role.arn,
            definition=machine.apply(lambda m: m.to_json()),
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ALL", include_execution_data=True, log_destination=machine_logs.arn.apply(lambda a: f"{a}:*")
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            # Execution data (inputs, outputs, the validation result) is encrypted with the stack key.
            encryption_configuration=aws.sfn.StateMachineEncryptionConfigurationArgs(
                type="CUSTOMER_MANAGED_KMS_KEY",
                kms_key_id=platform.key.arn,
                kms_data_key_reuse_period_seconds=300,
            ),
            # Step Functions checks at creation that the role may deliver logs.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pipeline.policy]),
        )

        # Schedules the scheduler could not start and failure events EventBridge could not deliver wait here.
        self.dead_letters = dead_letter_queue(
            f"{name}-dlq",
            parent=self,
            key_arn=platform.key.arn,
            account_id=account,
            alerts=platform.alerts,
            stateful=platform.stateful(self),
            holds="a schedule or failure event of the containers pipeline could not be delivered.",
            senders=[("events.amazonaws.com", failed_tasks.arn)],
        )
        scheduler_role = service_role(
            f"{name}-scheduler-role",
            policy_name=f"{name}-scheduler-policy",
            service="scheduler.amazonaws.com",
            account_id=account,
            description="EventBridge Scheduler: starts the containers pipeline",
            policy=pulumi.Output.all(self.state_machine.arn, self.dead_letters.arn, platform.key.arn).apply(
                lambda values: json.dumps(policies.start_execution_schedule_policy(*values))
            ),
            parent=self,
        ).role
        retry = {"maximum_event_age_in_seconds": 3600, "maximum_retry_attempts": 3}
        aws.scheduler.Schedule(
            f"{name}-schedule",
            description="Starts the containers ETL pipeline",
            schedule_expression=settings.schedule,
            schedule_expression_timezone="UTC",
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            kms_key_arn=platform.key.arn,
            target=aws.scheduler.ScheduleTargetArgs(
                arn=self.state_machine.arn,
                role_arn=scheduler_role.arn,
                input=json.dumps({"scheduled_time": "<aws.scheduler.scheduled-time>", "source": "orders"}),
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(**retry),
                dead_letter_config=aws.scheduler.ScheduleTargetDeadLetterConfigArgs(arn=self.dead_letters.arn),
            ),
            opts=child,
        )
        alerts = platform.alerts
        for metric, what in (("ExecutionsFailed", "failed"), ("ExecutionsTimedOut", "timed out")):
            metric_alarm(
                f"{name}-pipeline-{metric.removeprefix('Executions').lower()}",
                parent=self,
                alerts=alerts,
                description=f"A run of the containers ETL pipeline {what}.",
                namespace="AWS/States",
                metric_name=metric,
                dimensions={"StateMachineArn": self.state_machine.arn},
            )

    # -----------------------------------------------------------------------------------------------------------------
    def _failed_task_rule(self, name: str) -> aws.cloudwatch.EventRule:
        """ECS tasks of this cluster that stop with a non-zero exit code (runTask.sync itself does not fail on it)."""
        return aws.cloudwatch.EventRule(
            f"{name}-task-failed",
            description="An ETL task of this cluster stopped with a non-zero exit code",
            event_pattern=pulumi.Output.json_dumps(
                {
                    "source": ["aws.ecs"],
                    "detail-type": ["ECS Task State Change"],
                    "detail": {
                        "clusterArn": [self.cluster.arn],
                        "lastStatus": ["STOPPED"],
                        "containers": {"exitCode": [{"anything-but": 0}]},
                    },
                }
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _failure_alerts(self, name: str, rule: aws.cloudwatch.EventRule) -> None:
        """Failed tasks alert at once, through the alerts topic."""
        platform = self._platform
        child = pulumi.ResourceOptions(parent=self)
        aws.cloudwatch.EventTarget(
            f"{name}-task-failed-alert",
            rule=rule.name,
            arn=platform.alerts.topic_arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self.dead_letters.arn),
            opts=child,
        )

    def _dashboard(self) -> None:
        region = self._platform.stack.region
        machine, cluster = self.state_machine.arn, self.cluster.name
        self.widgets.extend(
            [
                metric_widget(
                    "Containers pipeline: executions",
                    [
                        ["AWS/States", metric, "StateMachineArn", machine]
                        for metric in (
                            "ExecutionsStarted",
                            "ExecutionsSucceeded",
                            "ExecutionsFailed",
                            "ExecutionsTimedOut",
                        )
                    ],
                    region=region,
                ),
                metric_widget(
                    "Containers cluster: CPU and memory",
                    [
                        ["ECS/ContainerInsights", "CpuUtilized", "ClusterName", cluster],
                        ["ECS/ContainerInsights", "MemoryUtilized", "ClusterName", cluster],
                    ],
                    region=region,
                    stat="Average",
                ),
                metric_widget(
                    "Containers DLQ depth",
                    [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", self.dead_letters.name]],
                    region=region,
                    stat="Maximum",
                ),
            ]
        )

    def outputs(self) -> dict[str, Any]:
        return {
            "repositoryUrls": {name: repo.repository_url for name, repo in self.repositories.items()},
            "imageDigests": {name: image.repo_digest for name, image in self.built_images.items()},
            "clusterArn": self.cluster.arn,
            "stateMachineArn": self.state_machine.arn,
        }
