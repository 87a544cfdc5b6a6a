"""A Lambda function running one `etl_jobs.handlers` handler, with its operability contract built in.

Provisions, per function: a KMS-encrypted log group with the platform's retention (CONTROLS row 53), an execution role
trusting only lambda.amazonaws.com on behalf of this account (row 11), one inline role policy made of the caller's
statements plus log writing to its own group, X-Ray, metrics in its namespace and use of the stack key (row 10: no
wildcard actions, `*` only for the actions in `policies.ACTIONS_REQUIRING_STAR`), the function itself (python3.12+,
Active tracing, explicit memory/timeout/concurrency, environment encrypted with the stack key, no secrets: rows 13-14),
optionally an async invoke config whose failures go to an SQS/SNS destination (row 15), and Errors/Throttles alarms to
the alerts topic (row 54).

Takes: `EtlFunctionArgs`. Exposes: `function_arn`, `function_name`, `role_arn`, `log_group_name`, `widgets`.
Reused by the serverless and stepfunctions architectures.

When the stack enforces code signing (`FoundationRefs.signing`), the function deploys from a signed copy in the
artifacts bucket under the stack's enforcing code-signing config: `signed_package()` uploads and signs an
architecture's package once for all its functions, and `dependency_layer()` signs the layer the same way.

Also the Lambda stage runner (`LambdaRunner`, bound: `LambdaStages`): stages as synchronous `lambda:invoke` Tasks
whose result is the handler's return value, for any architecture whose functions run `etl_jobs.handlers.stage_*`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pulumi
import pulumi_aws as aws

from components import asl, packaging, policies
from components.foundation.alarms import METRICS_NAMESPACE, Widget, metric_alarm, metric_widget
from components.pipelines import BoundRunner, StageCall
from components.refs import FoundationRefs
from components.roles import service_role
from components.runners import StageRunner
from components.settings import LambdaArchitecture
from components.stages import Stage, StageBudget

SUPPORTED_RUNTIMES = ("python3.12", "python3.13")
# Names that suggest a credential: those belong in Secrets Manager, read at run time, never in the environment.
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|ACCESS_KEY|API_KEY", re.IGNORECASE)
# Set by the Lambda runtime itself; overriding them breaks the runtime or the SDK.
_RESERVED_PREFIXES = ("AWS_", "LAMBDA_", "_")


@dataclasses.dataclass(frozen=True)
class AsyncFailureDestination:
    """Where an asynchronous invocation goes once its retries are spent (CONTROLS row 15)."""

    arn: pulumi.Input[str]
    """ARN of an SQS queue or SNS topic; the function's role is allowed to send/publish to it."""
    maximum_retry_attempts: int = 2
    """Retries Lambda makes after a failed async invocation (0-2)."""
    maximum_event_age_in_seconds: int = 3600
    """How long an event may wait for (re)delivery before it goes to the destination (60-21600)."""


@dataclasses.dataclass(frozen=True)
class S3Code:
    """A zip in the artifacts bucket that Lambda deploys from (for a function: the signed copy)."""

    bucket: pulumi.Output[str]
    key: pulumi.Output[str]


@dataclasses.dataclass(frozen=True)
class FunctionVpc:
    """Where a function runs inside the stack's VPC: its subnets (private, at least two AZs: CONTROLS row 13) and the
    security groups of its network interfaces."""

    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_ids: Sequence[pulumi.Input[str]]


# What Lambda does with the execution role to attach a function to a VPC (AWS Lambda Developer Guide, "Giving Lambda
# functions access to resources in an Amazon VPC"; the actions of AWSLambdaVPCAccessExecutionRole less the logs ones).
VPC_ENI_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:UnassignPrivateIpAddresses",
)
VPC_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")


def vpc_access_statements(
    region: str, account: str, subnet_ids: Sequence[str], security_group_ids: Sequence[str]
) -> list[policies.Statement]:
    """The execution role's network-interface permissions for a function in a VPC, scoped as far as EC2 allows:
    creating one names the interface (its id is not known before), the function's subnets and security groups;
    deleting one and (un)assigning addresses names interfaces of this account and region (Lambda manages them; their
    ids are not known in advance). DescribeNetworkInterfaces and DescribeSubnets take no resource (AWS: "only works
    if it's allowed on all resources"): they are the two granted on "*"."""
    interfaces = f"arn:aws:ec2:{region}:{account}:network-interface/*"
    return [
        policies.allow(
            ["ec2:CreateNetworkInterface"],
            [
                interfaces,
                *(f"arn:aws:ec2:{region}:{account}:subnet/{subnet}" for subnet in subnet_ids),
                *(f"arn:aws:ec2:{region}:{account}:security-group/{group}" for group in security_group_ids),
            ],
            sid="VpcCreateInterfaces",
        ),
        policies.allow(
            [action for action in VPC_ENI_ACTIONS if action != "ec2:CreateNetworkInterface"],
            [interfaces],
            sid="VpcManageInterfaces",
        ),
        # Describe* cannot be scoped to a resource: "*" is the only resource EC2 accepts for them.
        policies.allow(VPC_DESCRIBE_ACTIONS, "*", sid="VpcDescribe"),
    ]


@dataclasses.dataclass(frozen=True)
class EtlFunctionArgs:
    """What one ETL Lambda is built from."""

    foundation: FoundationRefs
    """The foundation's refs: stack key, lake zones, alerts topic, retention, stack identity."""
    handler: str
    """Dotted handler path inside the package, e.g. `etl_jobs.handlers.extract.handler`."""
    service_name: str
    """POWERTOOLS_SERVICE_NAME: the `service` of every log line, metric and trace segment."""
    policy_statements: Sequence[pulumi.Input[Sequence[policies.Statement]]] = ()
    """IAM statements (`lake_access.role_statements`, `policies.allow`, ...) for what the handler touches; logs, X-Ray,
    metrics and the stack key are added by the component."""
    memory_mb: int = 1024
    """Memory in MB (128-10240); CPU scales with it."""
    timeout_seconds: int = 300
    """Timeout in seconds (1-900). Queues feeding the function must hide messages for 6x this."""
    reserved_concurrency: int | None = None
    """Reserved concurrent executions; None for the account's unreserved pool (recorded explicitly as -1). A
    reservation takes account quota, which the stack's settings check against `lambdaConcurrencyQuota`."""
    architecture: LambdaArchitecture = LambdaArchitecture.ARM64
    """Instruction set; the layer must be built for the same one."""
    runtime: str = "python3.12"
    """A current Python runtime (python3.12 or python3.13)."""
    metrics_namespace: str = METRICS_NAMESPACE
    """POWERTOOLS_METRICS_NAMESPACE; the role may put metrics in this namespace only."""
    environment: Mapping[str, pulumi.Input[str]] = dataclasses.field(default_factory=dict)
    """Extra environment variables (no secrets; the lake zones and Powertools settings are always set)."""
    code: packaging.CodePackage | None = None
    """The function's code; default: the hash-stable `etl_jobs` archive from `packaging.function_package()`."""
    signed_code: S3Code | None = None
    """The signed copy of `code` (`signed_package()`); required when the stack enforces code signing."""
    layers: Sequence[pulumi.Input[str]] = ()
    """Layer version ARNs (the dependency layer holding the single-node engine)."""
    on_failure: AsyncFailureDestination | None = None
    """Set for functions invoked asynchronously (schedules, EventBridge rules)."""
    description: str = ""
    """Shown in the Lambda console."""
    log_level: str = "INFO"
    run_by_pipeline: bool = False
    """Invoked only by a pipeline's state machine, whose failed-run alarm and alert report the function's failures:
    its own errors and throttles alarms are diagnostic (`Profile.diagnostic_alarms`)."""
    """Application log level (Powertools and Lambda's JSON logging)."""
    vpc: FunctionVpc | None = None
    """Run inside the VPC (private subnets, these security groups); the role gets the network-interface permissions
    (`vpc_access_statements`). None: outside any VPC, as the serverless functions run."""

    def __post_init__(self) -> None:
        if not 128 <= self.memory_mb <= 10240:
            raise ValueError(f"memory_mb must be between 128 and 10240, got {self.memory_mb}")
        if not 1 <= self.timeout_seconds <= 900:
            raise ValueError(f"timeout_seconds must be between 1 and 900, got {self.timeout_seconds}")
        if self.reserved_concurrency is not None and self.reserved_concurrency < 0:
            raise ValueError(f"reserved_concurrency must be >= 0 or None, got {self.reserved_concurrency}")
        if self.runtime not in SUPPORTED_RUNTIMES:
            raise ValueError(f"runtime {self.runtime!r} is not supported; use one of {', '.join(SUPPORTED_RUNTIMES)}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+", self.handler):
            raise ValueError(
                f"handler {self.handler!r} is not a dotted path such as 'etl_jobs.handlers.extract.handler'"
            )
        for variable in self.environment:
            # A name ending in _ARN names where a secret is kept (its ARN), which is not a secret: the code reads the
            # secret at run time with the role's permission (CONTROLS row 14).
            if _SECRET_NAME.search(variable) and not variable.endswith("_ARN"):
                raise ValueError(f"environment variable {variable!r} looks like a secret; read it from Secrets Manager")
            if variable.startswith(_RESERVED_PREFIXES):
                raise ValueError(f"environment variable {variable!r} is reserved by the Lambda runtime")
        if self.on_failure is not None:
            if not 0 <= self.on_failure.maximum_retry_attempts <= 2:
                raise ValueError(
                    f"on_failure.maximum_retry_attempts must be 0-2, got {self.on_failure.maximum_retry_attempts}"
                )
            if not 60 <= self.on_failure.maximum_event_age_in_seconds <= 21600:
                raise ValueError(
                    "on_failure.maximum_event_age_in_seconds must be 60-21600, "
                    f"got {self.on_failure.maximum_event_age_in_seconds}"
                )


def _destination_statement(arn: str) -> policies.Statement:
    """Async failure destinations are written by the function's own role."""
    service = arn.split(":")[2] if arn.count(":") >= 5 else ""
    if service == "sqs":
        return policies.allow(["sqs:SendMessage"], [arn], sid="OnFailureDestination")
    if service == "sns":
        return policies.allow(["sns:Publish"], [arn], sid="OnFailureDestination")
    raise ValueError(f"on-failure destination {arn!r} is neither an SQS queue nor an SNS topic ARN")


def _listed(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def function_policy(
    *,
    log_group_arn: str,
    key_arn: str,
    region: str,
    metrics_namespace: str,
    statements: Sequence[Sequence[policies.Statement]] = (),
    destination_arn: str | None = None,
) -> policies.PolicyDocument:
    """The execution role's inline policy (a plain function, unit-tested without Pulumi). The stack key is usable
    through Lambda (its environment is encrypted with it) and through SQS when the role sends to or reads from a
    queue (queues are encrypted with it); the lake's use of the key comes with the caller's S3 statements."""
    extra = [statement for group in statements for statement in group]
    if destination_arn:
        extra.append(_destination_statement(destination_arn))
    actions = {action for statement in extra for action in _listed(statement["Action"])}
    via = ["lambda", *(["sqs"] if any(action.startswith("sqs:") for action in actions) else [])]
    return policies.document(
        policies.log_writer(log_group_arn),
        policies.xray_writer(),
        policies.metrics_writer(metrics_namespace),
        policies.key_use(key_arn, via=via, region=region),
        *extra,
    )


class EtlFunction(pulumi.ComponentResource):
    """One ETL Lambda with its log group, role, policy, optional async failure destination, alarms and widgets."""

    function: aws.lambda_.Function
    function_arn: pulumi.Output[str]
    function_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    widgets: list[Widget]

    def __init__(self, name: str, args: EtlFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("etl:functions:EtlFunction", name, {}, opts)
        foundation = args.foundation
        stack = foundation.stack
        code = args.code or packaging.function_package()
        if foundation.signing is not None and args.signed_code is None:
            raise ValueError(f"{name}: the stack enforces code signing; pass signed_code from signed_package()")
        # Signed code deploys from the artifacts bucket under the enforcing config; otherwise the zip goes directly.
        deployment: dict[str, Any] = (
            {
                "s3_bucket": args.signed_code.bucket,
                "s3_key": args.signed_code.key,
                "code_signing_config_arn": foundation.signing.config_arn,
            }
            if foundation.signing is not None and args.signed_code is not None
            else {"code": code.archive}
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/etl/{stack.project}/{stack.stack}/lambda/{name}",
            retention_in_days=foundation.log_retention_days,
            kms_key_id=foundation.key.arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.log_group_name = log_group.name

        destination_arn: pulumi.Input[str | None] = args.on_failure.arn if args.on_failure else None
        statements: list[pulumi.Input[Sequence[policies.Statement]]] = list(args.policy_statements)
        vpc_config: aws.lambda_.FunctionVpcConfigArgs | None = None
        if args.vpc is not None:
            vpc = args.vpc
            statements.append(
                pulumi.Output.all(
                    stack.account_id,
                    pulumi.Output.all(*vpc.subnet_ids),
                    pulumi.Output.all(*vpc.security_group_ids),
                ).apply(lambda values: vpc_access_statements(stack.region, values[0], values[1], values[2]))
            )
            vpc_config = aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=list(vpc.subnet_ids), security_group_ids=list(vpc.security_group_ids)
            )
        policy_document = pulumi.Output.all(
            log_group.arn,
            foundation.key.arn,
            destination_arn,
            pulumi.Output.all(*statements),
        ).apply(
            lambda values: json.dumps(
                function_policy(
                    log_group_arn=values[0],
                    key_arn=values[1],
                    region=stack.region,
                    destination_arn=values[2],
                    metrics_namespace=args.metrics_namespace,
                    statements=values[3],
                )
            )
        )
        execution = service_role(
            f"{name}-role",
            policy_name=f"{name}-policy",
            service="lambda.amazonaws.com",
            account_id=stack.account_id,
            policy=policy_document,
            parent=self,
            description=f"Execution role of the {name} Lambda",
        )

        environment: dict[str, pulumi.Input[str]] = {
            **foundation.lake.zone_environment(),
            "POWERTOOLS_SERVICE_NAME": args.service_name,
            "POWERTOOLS_METRICS_NAMESPACE": args.metrics_namespace,
            "POWERTOOLS_LOG_LEVEL": args.log_level,
            "ETL_ENVIRONMENT": stack.environment,
            **args.environment,
        }
        self.function = aws.lambda_.Function(
            f"{name}-function",
            description=args.description or f"ETL handler {args.handler}",
            role=execution.role.arn,
            runtime=args.runtime,
            handler=args.handler,
            **deployment,
            source_code_hash=code.source_code_hash,
            layers=list(args.layers),
            architectures=[args.architecture.value],
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            # -1 is Lambda's "unreserved"; recorded explicitly so a reviewer sees the choice.
            reserved_concurrent_executions=(args.reserved_concurrency if args.reserved_concurrency is not None else -1),
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            kms_key_arn=foundation.key.arn,
            vpc_config=vpc_config,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON",
                log_group=log_group.name,
                application_log_level=args.log_level,
                system_log_level="WARN",
            ),
            # The role must carry its policy before the first invocation can write logs or read data.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[execution.policy, log_group]),
        )
        self.function_arn = self.function.arn
        self.service_name = args.service_name
        """The `service` dimension of the function's Powertools metrics."""
        self.function_name = self.function.name
        self.role_arn = execution.role.arn

        if args.on_failure is not None:
            aws.lambda_.FunctionEventInvokeConfig(
                f"{name}-async",
                function_name=self.function.name,
                maximum_retry_attempts=args.on_failure.maximum_retry_attempts,
                maximum_event_age_in_seconds=args.on_failure.maximum_event_age_in_seconds,
                destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                    on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                        destination=args.on_failure.arn
                    )
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )

        dimensions = {"FunctionName": self.function.name}
        if foundation.profile.diagnostic_alarms or not args.run_by_pipeline:
            metric_alarm(
                f"{name}-errors",
                parent=self,
                alerts=foundation.alerts,
                description=f"The {name} Lambda raised errors.",
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions=dimensions,
            )
            metric_alarm(
                f"{name}-throttles",
                parent=self,
                alerts=foundation.alerts,
                description=f"The {name} Lambda was throttled (reserved concurrency exhausted).",
                namespace="AWS/Lambda",
                metric_name="Throttles",
                dimensions=dimensions,
            )
        lambda_metric: list[Any] = ["AWS/Lambda", "", "FunctionName", self.function.name]
        self.widgets = [
            metric_widget(
                f"{name}: invocations, errors, throttles",
                [[*lambda_metric[:1], metric, *lambda_metric[2:]] for metric in ("Invocations", "Errors", "Throttles")],
                region=stack.region,
            ),
            metric_widget(
                f"{name}: duration (p95)",
                [[*lambda_metric[:1], "Duration", *lambda_metric[2:]]],
                region=stack.region,
                stat="p95",
            ),
        ]
        self.register_outputs(
            {"functionArn": self.function_arn, "functionName": self.function_name, "roleArn": self.role_arn}
        )


def dependency_layer(
    name: str,
    architecture: LambdaArchitecture,
    foundation: FoundationRefs,
    parent: pulumi.Resource,
    package: packaging.CodePackage | None = None,
) -> aws.lambda_.LayerVersion:
    """The Polars/Powertools layer of `etl_jobs` functions, built outside the program (`make layers`); or another
    layer built the same way (`package`, e.g. `packaging.postgres_layer_package`), under its own `name`."""
    package = package or packaging.layer_package(architecture)
    # Always through the artifacts bucket: the layer (~51 MB zipped) is at Lambda's 50 MB direct-upload limit, and one
    # path means a fresh clone (layer not built, offline preview) registers the same resources as a deployment.
    # The owner's name in the key: two architectures with their own layer must never write (and delete) one object.
    key = f"lambda/layers/{name}/{architecture.value}-{package.key}.zip"
    layer_zip = aws.s3.BucketObjectv2(
        f"{name}-layer-zip",
        bucket=foundation.lake.artifacts.name,
        key=key,
        source=package.asset,
        server_side_encryption="aws:kms",
        kms_key_id=foundation.key.arn,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    # An enforcing code-signing config rejects unsigned layers too: the layer is the signed copy.
    location = (
        _signed(f"{name}-layer", layer_zip, f"lambda/signed/layers/{name}/", foundation, parent)
        if foundation.signing is not None
        else S3Code(bucket=layer_zip.bucket, key=layer_zip.key)
    )
    return aws.lambda_.LayerVersion(
        f"{name}-layer",
        layer_name=f"{name}-{foundation.stack.stack}-deps",
        description=f"etl_jobs dependencies ({package.key})",
        compatible_runtimes=list(packaging.LAYER_RUNTIMES),
        compatible_architectures=[architecture.value],
        s3_bucket=location.bucket,
        s3_key=location.key,
        source_code_hash=package.source_code_hash,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _signed(
    name: str, source: aws.s3.BucketObjectv2, prefix: str, foundation: FoundationRefs, parent: pulumi.Resource
) -> S3Code:
    """Sign an uploaded zip with the stack's profile; the signed copy lands under `prefix` in the same bucket."""
    assert foundation.signing is not None
    job = aws.signer.SigningJob(
        f"{name}-signing",
        profile_name=foundation.signing.profile_name,
        source=aws.signer.SigningJobSourceArgs(
            s3=aws.signer.SigningJobSourceS3Args(bucket=source.bucket, key=source.key, version=source.version_id)
        ),
        destination=aws.signer.SigningJobDestinationArgs(
            s3=aws.signer.SigningJobDestinationS3Args(bucket=source.bucket, prefix=prefix)
        ),
        # A failed signing fails the deployment instead of leaving an unsigned package to be refused later.
        ignore_signing_job_failure=False,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    signed = job.signed_objects.apply(lambda objects: (objects[0].s3s or [])[0])
    return S3Code(bucket=signed.apply(lambda s3: s3.bucket or ""), key=signed.apply(lambda s3: s3.key or ""))


def signed_package(
    name: str, package: packaging.CodePackage, foundation: FoundationRefs, parent: pulumi.Resource
) -> S3Code | None:
    """The function package, uploaded and signed once for all of an architecture's functions, when the stack
    enforces code signing (None otherwise: the zip is uploaded with each function directly)."""
    if foundation.signing is None:
        return None
    upload = aws.s3.BucketObjectv2(
        f"{name}-zip",
        bucket=foundation.lake.artifacts.name,
        # The owner's name in the key, as for the layer: no two architectures write (and delete) one object.
        key=f"lambda/functions/{name}/{package.key}.zip",
        source=package.asset,
        server_side_encryption="aws:kms",
        kms_key_id=foundation.key.arn,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return _signed(name, upload, f"lambda/signed/functions/{name}/", foundation, parent)


# ---------------------------------------------------------------------------------------------------------------------
# The Lambda stage runner
# ---------------------------------------------------------------------------------------------------------------------

# Step Functions gives up on the invoke a little after the function would time out, so a slow function fails as the
# function's own timeout (a States.TaskFailed the retriers see) rather than the Task's.
INVOKE_MARGIN_SECONDS = 60


def lambda_stage_budget(function_timeout_seconds: int) -> StageBudget:
    return StageBudget(timeout_seconds=function_timeout_seconds + INVOKE_MARGIN_SECONDS, retry=asl.LAMBDA_RETRY)


@dataclasses.dataclass(frozen=True)
class LambdaStages(BoundRunner):
    """Stages as synchronous invokes of resolved function ARNs; the handler's return value is the stage's result."""

    architecture: str
    function_arns: Mapping[Stage, str]
    budgets: Mapping[Stage, StageBudget]

    returns_payload: ClassVar[bool] = True

    def task(self, call: StageCall, *, name: str, **options: Any) -> asl.Task:
        return asl.lambda_invoke(name, self.function_arns[call.stage], payload=call.event(), **options)


@dataclasses.dataclass(frozen=True)
class LambdaRunner(StageRunner):
    """The functions that run each stage, before their ARNs are known."""

    architecture: str
    function_arns: Mapping[Stage, pulumi.Output[str]]
    budgets: Mapping[Stage, StageBudget]

    returns_payload: ClassVar[bool] = True

    def bind(self) -> pulumi.Output[BoundRunner]:
        stages = list(self.function_arns)
        return pulumi.Output.all(*[self.function_arns[stage] for stage in stages]).apply(
            lambda arns: LambdaStages(self.architecture, dict(zip(stages, arns, strict=True)), self.budgets)
        )
