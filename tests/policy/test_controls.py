"""The policy pack of CONTROLS.md: the real program passes every check, each check catches the mistake it is about
(a real recorded resource, mutated), and the pack wires every check as a mandatory policy. Stacks are judged by
their environment (the provider's `Environment` default tag), so `dev-eu` and `prod-us` pass as dev and prod do."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from components.settings import PROFILES, Environment
from etlctl.mocks import Registration
from etlctl.offline import Evaluation
from policy import __main__ as pack
from policy.controls import (
    DISPOSABLE_ENVIRONMENTS,
    ENVIRONMENTS,
    PROTECTED_ENVIRONMENTS,
    RESOURCE_CHECKS,
    STACK_CHECKS,
    Context,
    StackResource,
    bucket_companions,
    check_resource,
    environment_of,
    environment_tagged,
    logging_after_target_policy,
    prod_protects_state,
    prod_rds_multi_az,
    prod_replicates_raw_and_curated,
    queues_redrive,
    redshift_usage_limited,
    signed_code_only,
)
from tests.support.config_cases import DEV_EU, EXTRA_STACKS, PROD_US, PROD_WAREHOUSE, StackFile, evaluated_file
from tests.support.resources import named
from tests.support.stacks import ROOT, STACKS, evaluated

BY_NAME = {c.name: c for c in RESOURCE_CHECKS}


def providers_of(evaluation: Evaluation) -> list[Registration]:
    """Every aws provider of the stack: the main one and, with replication on, the replica region's."""
    return [r for r in evaluation.registrations if r.type == "pulumi:providers:aws"]


def provider_of(evaluation: Evaluation) -> Registration:
    """The stack's main aws provider (named `aws`)."""
    (provider,) = [r for r in providers_of(evaluation) if r.name == "aws"]
    return provider


def environment_in(evaluation: Evaluation) -> str | None:
    """The stack's environment as the pack reads it: from its provider's default tags."""
    return environment_of(provider_of(evaluation).inputs)


def stack_resources(evaluation: Evaluation) -> list[StackResource]:
    """Every resource a stack check sees, the providers included."""
    return [
        StackResource(r.urn, r.type, r.name, r.inputs, r.protect, tuple(r.dependencies))
        for r in [*providers_of(evaluation), *evaluation.resources]
    ]


# prod with the Redshift warehouse on (no checked-in stack selects it): the pack must pass it too.
EXTRA = {case.stack: case for case in (*EXTRA_STACKS, PROD_WAREHOUSE)}


def stack_named(stack: str, *, preview: bool = False) -> Evaluation:
    """A checked-in stack, or one of the extra stacks the tests add (dev-eu, prod-us)."""
    return evaluated_file(EXTRA[stack], preview=preview) if stack in EXTRA else evaluated(stack, preview=preview)


# ---------------------------------------------------------------------------------------------------------------------
# (1) The program meets the controls: every stack file, in update and preview mode
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
@pytest.mark.parametrize("stack", [*STACKS, *EXTRA])
def test_every_stack_passes_every_check(stack: str, preview: bool) -> None:
    evaluation = stack_named(stack, preview=preview)
    environment = environment_in(evaluation)
    assert environment == evaluation.config.environment
    violations = [
        (r.name, policy, message)
        for r in evaluation.resources
        for policy, message in check_resource(r.type, r.inputs, Context(environment, r.name))
    ]
    resources = stack_resources(evaluation)
    violations += [(urn, c.name, message) for c in STACK_CHECKS for urn, message in c.check(resources, environment)]
    assert violations == []


def test_the_checks_see_the_program_not_nothing() -> None:
    """Every check applies to at least one resource type the stacks register (ECS services, repository policies,
    role attachments, interface endpoints and ingress rules are checked but not deployed today)."""
    deployed = {r.type for stack in STACKS for r in evaluated(stack).resources}
    deployed |= {r.type for r in stack_named(PROD_WAREHOUSE.stack).resources}  # Redshift is off in every stack file
    assert [c.name for c in RESOURCE_CHECKS if not set(c.resource_types) & deployed] == []


# ---------------------------------------------------------------------------------------------------------------------
# (2) Each check catches its mistake on a real recorded resource
# ---------------------------------------------------------------------------------------------------------------------

Props = dict[str, Any]


def edit_json(key: str, change: Callable[[Any], Any]) -> Callable[[Props], None]:
    """Mutate a JSON-text property (policies, definitions, container definitions) in place."""

    def apply(props: Props) -> None:
        document = json.loads(props[key])
        change(document)
        props[key] = json.dumps(document)

    return apply


def statements_without(sid: str) -> Callable[[Any], Any]:
    def change(document: Any) -> None:
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]

    return change


def states(machine: Any) -> Any:
    return machine["States"]


@dataclass
class Case:
    policy: str
    resource: str
    mutate: Callable[[Props], Any]
    expected: list[str]
    stack: str = "prod"

    def __str__(self) -> str:
        return f"{self.policy}:{self.resource}"


def _set(path: str, value: Any) -> Callable[[Props], None]:
    def apply(props: Props) -> None:
        *parents, last = path.split(".")
        target: Any = props
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[last] = value

    return apply


def _drop(path: str) -> Callable[[Props], None]:
    def apply(props: Props) -> None:
        *parents, last = path.split(".")
        target: Any = props
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        del target[last]

    return apply


def _first_container(change: Callable[[dict[str, Any]], None]) -> Callable[[Props], None]:
    return edit_json("containerDefinitions", lambda containers: change(containers[0]))


PUBLIC_READ = {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
S3_STAR = {
    "Sid": "Everything",
    "Effect": "Allow",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::etl-platform-lake-raw-5ad3701/*"],
}

CASES = [
    Case("etl-1-s3-public-access-block", "lake-raw-public-access", _set("blockPublicPolicy", False), ["blockPublicPolicy must be true"]),
    Case("etl-2-s3-sse-kms", "lake-raw-encryption", _set("rules.0.bucketKeyEnabled", False), ["bucketKeyEnabled must be true"]),
    Case("etl-2-s3-sse-kms", "lake-raw-encryption", _set("rules.0.applyServerSideEncryptionByDefault", {"sseAlgorithm": "AES256"}), ["sseAlgorithm is 'AES256', not 'aws:kms'"]),
    Case("etl-2-s3-sse-kms", "lake-curated-encryption", _drop("rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId"), ["kmsMasterKeyId unset: the AWS managed aws/s3 key is used, not the customer key"]),
    Case("etl-3-s3-tls-only-policy", "lake-raw-policy", edit_json("policy", statements_without("DenyInsecureTransport")), ["no statement denies s3:* without TLS (aws:SecureTransport=false) on the bucket and its objects"]),
    Case("etl-3-s3-tls-only-policy", "lake-raw-policy", edit_json("policy", lambda d: d["Statement"].append(PUBLIC_READ)), ["statement PublicRead allows the public principal '*'"]),
    Case("etl-4-s3-access-logging", "lake-raw-logging", _drop("targetPrefix"), ["targetPrefix unset"]),
    Case("etl-5-s3-versioning", "lake-raw-versioning", _set("versioningConfiguration.status", "Suspended"), ["versioning status is Suspended, not 'Enabled'"]),
    Case("etl-5-s3-versioning", "lake-raw", _set("forceDestroy", True), ["forceDestroy must be false outside dev (environment prod)"]),
    Case("etl-6-s3-lifecycle", "lake-access-logs-lifecycle", _set("rules.0.abortIncompleteMultipartUpload.daysAfterInitiation", 30.0), ["rule expire-access-logs aborts incomplete multipart uploads after 30 days (at most 7)"]),
    Case("etl-6-s3-lifecycle", "lake-access-logs-lifecycle", _drop("rules.0.noncurrentVersionExpiration"), ["rule expire-access-logs has no noncurrentVersionExpiration"]),
    Case("etl-7-s3-owner-enforced", "lake-raw-ownership", _set("rule.objectOwnership", "ObjectWriter"), ["objectOwnership is ObjectWriter, not 'BucketOwnerEnforced'"]),
    Case("etl-7-s3-owner-enforced", "lake-raw-events", _set("eventbridge", False), ["eventbridge must be true: pipelines are driven by EventBridge"]),
    Case("etl-8-kms-rotation", "encryption-key", _set("enableKeyRotation", False), ["enableKeyRotation must be true"]),
    Case("etl-9-kms-key-policy", "encryption-key", _set("deletionWindowInDays", 7.0), ["deletionWindowInDays is 7, not 30"]),
    Case("etl-9-kms-key-policy", "encryption-key", edit_json("policy", lambda d: d["Statement"][2].pop("Condition")), ["statement ServicesOfThisAccount allows a service principal without an aws:SourceAccount condition"]),
    Case("etl-9-kms-key-policy", "encryption-key", _drop("policy"), ["no explicit key policy (the default policy grants the whole account)"]),
    Case("etl-10-iam-least-privilege", "containers-extract-task-policy", edit_json("policy", lambda d: d["Statement"].append(S3_STAR)), ["Allow of wildcard action 's3:*'"]),
    Case("etl-10-iam-least-privilege", "containers-extract-task-policy", edit_json("policy", lambda d: next(s for s in d["Statement"] if s.get("Sid") == "LakeKeyThroughS3").update(Resource="*")), ["statement LakeKeyThroughS3 grants ['kms:Decrypt', 'kms:GenerateDataKey'] on '*'; scope them to ARNs", "statement LakeKeyThroughS3 allows kms:Decrypt on ['*'], not on key ARNs"]),
    Case("etl-11-iam-trust-one-service", "containers-execution-role", edit_json("assumeRolePolicy", lambda d: d["Statement"][0]["Principal"].update(Service=["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"])), ["trust statement 0 must name exactly one service principal, names {'Service': ['ecs-tasks.amazonaws.com', 'lambda.amazonaws.com']}"]),
    Case("etl-11-iam-trust-one-service", "containers-execution-role", edit_json("assumeRolePolicy", lambda d: d["Statement"][0].pop("Condition")), ["trust statement 0 has no aws:SourceAccount or aws:SourceArn condition"]),
    Case("etl-11-iam-trust-one-service", "containers-execution-role", _set("managedPolicyArns", ["arn:aws:iam::aws:policy/AdministratorAccess"]), ["AWS managed policy arn:aws:iam::aws:policy/AdministratorAccess is not a documented exception"]),
    Case("etl-12-lambda-permission-source", "serverless-file-drops-invoke", _drop("sourceArn"), ["sourceArn unset: any resource of the principal's service could invoke the function"]),
    Case("etl-13-lambda-runtime-and-vpc", "serverless-extract-function", _set("runtime", "python3.9"), ["runtime python3.9 is not current (python3.12 or later)"]),
    Case("etl-13-lambda-runtime-and-vpc", "serverless-extract-function", _set("vpcConfig", {"subnetIds": ["subnet-1"], "securityGroupIds": ["sg-1"]}), ["in a VPC with 1 subnet(s); use private subnets in at least two AZs"]),
    Case("etl-14-lambda-tracing-limits-logs", "serverless-extract-function", _drop("tracingConfig"), ["tracingConfig.mode is unset, not 'Active'"]),
    Case("etl-14-lambda-tracing-limits-logs", "serverless-extract-function", _set("environment.variables.DB_PASSWORD", "hunter2"), ["environment carries secret-like variables ['DB_PASSWORD']; read them from Secrets Manager"]),
    Case("etl-14-lambda-tracing-limits-logs", "serverless-extract-function", _set("environment.variables.DB_SECRET_ARN", "hunter2"), ["environment carries secret-like variables ['DB_SECRET_ARN']; read them from Secrets Manager"]),
    Case("etl-14-lambda-tracing-limits-logs", "serverless-extract-function", _drop("kmsKeyArn"), ["environment used without kmsKeyArn (customer key)"]),
    Case("etl-15-lambda-async-failure-destination", "serverless-extract-async", _set("maximumRetryAttempts", 5.0), ["maximumRetryAttempts is 5, not 0-2"]),
    Case("etl-15-lambda-async-failure-destination", "serverless-extract-async", _drop("destinationConfig"), ["no destinationConfig.onFailure destination"]),
    Case("etl-16-lambda-event-source-failures", "serverless-process-source", _drop("functionResponseTypes"), ["functionResponseTypes must include ReportBatchItemFailures"]),
    Case("etl-16-lambda-event-source-failures", "serverless-process-source", _set("startingPosition", "LATEST"), ["no destinationConfig.onFailure for the stream", "maximumRetryAttempts must be finite", "maximumRecordAgeInSeconds must be finite", "bisectBatchOnFunctionError must be true"]),
    Case("etl-17-sqs-redrive", "serverless-work", edit_json("redrivePolicy", lambda d: d.update(maxReceiveCount=10)), ["maxReceiveCount is 10, not 3-5"]),
    Case("etl-18-sqs-customer-key", "serverless-work", _drop("kmsMasterKeyId"), ["not encrypted with the customer key (kms key unset, the AWS managed key of sqs is used)"]),
    Case("etl-18-sqs-customer-key", "serverless-work", _set("sqsManagedSseEnabled", True), ["sqsManagedSseEnabled: SSE-SQS is used, not the customer key"]),
    Case("etl-19-sqs-tls-only-policy", "monitoring-alerts-dlq-policy", edit_json("policy", statements_without("DenyInsecureTransport")), ["no statement denies sqs:* without TLS (aws:SecureTransport=false)"]),
    Case("etl-20-sqs-dlq-retention", "serverless-work-dlq", _drop("messageRetentionSeconds"), ["dead-letter queue messageRetentionSeconds is unset (4 days), not 1209600 (14 days)"]),
    Case("etl-21-sns-customer-key", "monitoring-alerts", _set("kmsMasterKeyId", "alias/aws/sns"), ["encrypted with the AWS managed key alias/aws/sns, not the customer key"]),
    Case("etl-22-sns-tls-only-policy", "monitoring-alerts-policy", edit_json("policy", statements_without("DenyInsecureTransport")), ["no statement denies sns:Publish without TLS (aws:SecureTransport=false)"]),
    Case("etl-22-sns-tls-only-policy", "monitoring-alerts-policy", edit_json("policy", lambda d: d["Statement"][2].update(Principal={"AWS": "*"})), ["statement OwnerAccount allows the public principal '*'"]),
    Case("etl-45-ecs-cluster-insights-exec-logging", "containers-cluster", _set("settings.0.value", "disabled"), ["containerInsights is not enabled"]),
    Case("etl-45-ecs-cluster-insights-exec-logging", "containers-cluster", _drop("configuration.executeCommandConfiguration.kmsKeyId"), ["executeCommandConfiguration.kmsKeyId unset"]),
    Case("etl-46-ecs-task-logs-and-secrets", "containers-extract", _first_container(lambda c: c["environment"].append({"name": "API_TOKEN", "value": "x"})), ["container etl passes secret-like variables ['API_TOKEN'] in environment; use secrets"]),
    Case("etl-46-ecs-task-logs-and-secrets", "containers-extract", _first_container(lambda c: c.pop("logConfiguration")), ["container etl log driver is None, not awslogs"]),
    Case("etl-47-ecs-task-hardening", "containers-extract", _first_container(lambda c: c.update(readonlyRootFilesystem=False)), ["container etl root filesystem is writable (readonlyRootFilesystem must be true)"]),
    Case("etl-47-ecs-task-hardening", "containers-extract", lambda p: p.update(taskRoleArn=p["executionRoleArn"]), ["the execution role is also the task role"]),
    Case("etl-48-ecs-private-tasks", "containers-pipeline-machine", edit_json("definition", lambda d: states(d)["Sources"]["ItemProcessor"]["States"]["Extract"]["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"].update(AssignPublicIp="ENABLED")), ["task state Sources/Extract assigns a public IP"]),
    Case("etl-49-ecr-repository", "containers-etl-repo", _set("imageTagMutability", "MUTABLE"), ["imageTagMutability is MUTABLE, not IMMUTABLE"]),
    Case("etl-49-ecr-repository", "containers-etl-repo", _set("forceDelete", True), ["forceDelete must be false outside dev (environment prod)"]),
    Case("etl-50-ecr-lifecycle-and-policy", "containers-etl-lifecycle", edit_json("policy", lambda d: d.update(rules=[])), ["the lifecycle policy has no rules"]),
    Case("etl-51-sfn-logging-tracing", "stepfunctions-machine", _set("tracingConfiguration.enabled", False), ["tracingConfiguration.enabled must be true"]),
    Case("etl-51-sfn-logging-tracing", "stepfunctions-machine", _set("loggingConfiguration.level", "ERROR"), ["loggingConfiguration.level is ERROR, not ALL"]),
    Case("etl-52-sfn-task-reliability", "stepfunctions-machine", edit_json("definition", lambda d: states(d)["Validate"].pop("Retry")), ["task Validate has no Retry"]),
    Case("etl-52-sfn-task-reliability", "stepfunctions-machine", edit_json("definition", lambda d: states(d)["Sources"].pop("Catch")), ["map Sources does not catch States.ALL"]),
    Case("etl-52-sfn-task-reliability", "stepfunctions-machine", edit_json("definition", lambda d: states(d)["Load"]["Retry"][0].update(JitterStrategy="NONE")), ["task Load retrier 0 JitterStrategy is NONE, not FULL"]),
    Case("etl-52-sfn-task-reliability", "containers-pipeline-machine", edit_json("definition", lambda d: states(d)["Load"].update(Resource="arn:aws:states:::ecs:runTask")), ["task Load calls arn:aws:states:::ecs:runTask without .sync: the run would not wait for the job"]),
    Case("etl-53-log-retention-and-key", "containers-tasks-logs", _drop("retentionInDays"), ["retentionInDays unset: logs never expire"]),
    Case("etl-53-log-retention-and-key", "containers-tasks-logs", _drop("kmsKeyId"), ["kmsKeyId unset: not encrypted with the customer key"]),
    Case("etl-54-alarm-notifies", "monitoring-alerts-dlq-depth", _set("alarmActions", []), ["no alarmActions: the alarm notifies nobody"]),
    Case("etl-55-event-target-dlq-retry", "serverless-file-drops-target", _drop("deadLetterConfig"), ["no deadLetterConfig: failed deliveries are dropped"]),
    Case("etl-55-event-target-dlq-retry", "containers-pipeline-schedule", _drop("target.retryPolicy"), ["no retryPolicy"]),
    Case("etl-56-vpc-flow-logs-all", "network-flow-log", _set("trafficType", "REJECT"), ["trafficType is REJECT, not ALL"]),
    Case("etl-57-vpc-closed-default-sg-private-subnets", "network-private-0", _set("mapPublicIpOnLaunch", True), ["mapPublicIpOnLaunch must be false"]),
    Case("etl-57-vpc-closed-default-sg-private-subnets", "network-default-sg", _set("ingress", [{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}]), ["the default security group has ingress rules"]),
    Case("etl-58-vpc-dns-and-endpoints", "network-vpc", _set("enableDnsHostnames", False), ["enableDnsHostnames must be true"]),
    Case("etl-59-vpc-no-open-ingress", "containers-tasks-https-out", _drop("description"), ["rule has no description"]),
    Case("etl-28-glue-catalog-encryption", "lake-catalog-encryption", _set("dataCatalogEncryptionSettings.encryptionAtRest.catalogEncryptionMode", "DISABLED"), ["catalogEncryptionMode is DISABLED, not SSE-KMS"]),
    Case("etl-28-glue-catalog-encryption", "lake-catalog-encryption", _drop("dataCatalogEncryptionSettings.connectionPasswordEncryption.awsKmsKeyId"), ["connectionPasswordEncryption.awsKmsKeyId unset"]),
    Case("etl-55-event-target-dlq-retry", "serverless-schedule", _drop("kmsKeyArn"), ["kmsKeyArn unset: the schedule's target input is not encrypted with the customer key"]),
    Case("etl-56-vpc-flow-logs-all", "network-flow-log", _set("logDestinationType", "cloud-watch-logs"), ["logDestinationType is cloud-watch-logs: deliver to the log bucket (s3) as Parquet"]),
    Case("etl-56-vpc-flow-logs-all", "network-flow-log", _set("destinationOptions.fileFormat", "plain-text"), ["destinationOptions.fileFormat is plain-text, not parquet"]),
    Case("etl-61-lambda-no-reservation-in-dev", "serverless-extract-function", _set("reservedConcurrentExecutions", 2.0), ["reservedConcurrentExecutions is 2 in dev; dev runs in the unreserved pool (-1)"], stack="dev"),
    Case("etl-62-lambda-code-signing", "serverless-extract-function", _drop("codeSigningConfigArn"), ["codeSigningConfigArn unset: prod functions must run signed code only"]),
    Case("etl-62-lambda-code-signing", "signing-config", _set("policies.untrustedArtifactOnDeployment", "Warn"), ["untrustedArtifactOnDeployment is Warn, not Enforce"]),
    Case("etl-62-lambda-code-signing", "signing-profile", _set("platformId", "AWSIoTDeviceManagement-SHA256-ECDSA"), ["platformId is AWSIoTDeviceManagement-SHA256-ECDSA, not AWSLambda-SHA384-ECDSA"]),
    Case("etl-63-s3-replication", "replication-raw", _drop("rules.0.destination.encryptionConfiguration"), ["rule replicate-everything: replicas are not encrypted with a customer key (replicaKmsKeyId unset)"]),
    Case("etl-63-s3-replication", "replication-curated", _set("rules.0.sourceSelectionCriteria.sseKmsEncryptedObjects.status", "Disabled"), ["rule replicate-everything: sourceSelectionCriteria.sseKmsEncryptedObjects.status is Disabled, not Enabled"]),
    Case("etl-27-glue-security-configuration", "glue-security", _set("encryptionConfiguration.s3Encryption.s3EncryptionMode", "DISABLED"), ["s3Encryption.s3EncryptionMode is DISABLED, not SSE-KMS"]),
    Case("etl-27-glue-security-configuration", "glue-security", _drop("encryptionConfiguration.cloudwatchEncryption.kmsKeyArn"), ["cloudwatchEncryption.kmsKeyArn unset: not encrypted with the customer key"]),
    Case("etl-27-glue-security-configuration", "glue-security", _set("encryptionConfiguration.jobBookmarksEncryption.jobBookmarksEncryptionMode", "DISABLED"), ["jobBookmarksEncryption.jobBookmarksEncryptionMode is DISABLED, not CSE-KMS"]),
    Case("etl-27-glue-security-configuration", "glue-transform", _drop("securityConfiguration"), ["no securityConfiguration: its logs and output are not encrypted with the customer key"]),
    Case("etl-27-glue-security-configuration", "glue-raw-crawler", _drop("securityConfiguration"), ["no securityConfiguration: its logs and output are not encrypted with the customer key"]),
    Case("etl-29-glue-job", "glue-transform", _set("glueVersion", "4.0"), ["glueVersion 4.0 is not current (5.0, 5.1)"]),
    Case("etl-29-glue-job", "glue-transform", _set("maxCapacity", 2.0), ["maxCapacity set on a Spark job: size it with workerType and numberOfWorkers"]),
    Case("etl-29-glue-job", "glue-transform", _drop("timeout"), ["timeout unset: a stuck run would hold its workers for Glue's default 48 hours"]),
    Case("etl-29-glue-job", "glue-transform", _set("defaultArguments.--enable-continuous-cloudwatch-log", "false"), ["defaultArguments --enable-continuous-cloudwatch-log is 'false', not 'true'"]),
    Case("etl-29-glue-job", "glue-transform", _set("defaultArguments.--job-bookmark-option", "job-bookmark-enable"), ["defaultArguments --job-bookmark-option is 'job-bookmark-enable', not 'job-bookmark-disable'"]),
    Case("etl-29-glue-job", "glue-transform", _set("command.scriptLocation", "s3://bucket/glue/scripts/orders.py"), ["scriptLocation 's3://bucket/glue/scripts/orders.py' is not content-addressed (<name>-<sha256 prefix>.py)"]),
    Case("etl-29-glue-job", "glue-transform", _set("maxRetries", 3.0), ["maxRetries is 3, not 0: retries are the orchestrator's"]),
    Case("etl-16-lambda-event-source-failures", "streaming-consumer-source", _set("parallelizationFactor", 4.0), ["parallelizationFactor is 4, not 1: a shard must be read in order, one batch at a time"]),
    Case("etl-16-lambda-event-source-failures", "streaming-consumer-source", _drop("destinationConfig"), ["no destinationConfig.onFailure for the stream"]),
    Case("etl-24-kinesis-customer-key", "streaming-stream", _drop("encryptionType"), ["encryptionType is unset, not KMS"]),
    Case("etl-24-kinesis-customer-key", "streaming-stream", _set("kmsKeyId", "alias/aws/kinesis"), ["encrypted with the AWS managed key alias/aws/kinesis, not the customer key"]),
    Case("etl-25-kinesis-retention", "streaming-stream", _set("retentionPeriod", 24.0), ["retentionPeriod is 24 hours outside dev (environment prod); keep at least 168 so a consumer outage can be replayed"]),
    Case("etl-26-firehose-key-errors-logging", "streaming-archive", _drop("extendedS3Configuration.errorOutputPrefix"), ["extendedS3Configuration.errorOutputPrefix unset: failed records mix with delivered ones"]),
    Case("etl-26-firehose-key-errors-logging", "streaming-archive", _drop("extendedS3Configuration.kmsKeyArn"), ["extendedS3Configuration.kmsKeyArn unset: objects are not encrypted with the customer key"]),
    Case("etl-26-firehose-key-errors-logging", "streaming-archive", _set("extendedS3Configuration.cloudwatchLoggingOptions.enabled", False), ["extendedS3Configuration.cloudwatchLoggingOptions.enabled must be true"]),
    Case("etl-65-alarm-dimensions", "streaming-iterator-age", _set("dimensions", {}), ["an alarm on AWS/Kinesis GetRecords.IteratorAgeMilliseconds without the StreamName dimension never fires"]),
    Case("etl-65-alarm-dimensions", "streaming-archive-freshness", _set("dimensions", {"StreamName": "x"}), ["an alarm on AWS/Firehose DeliveryToS3.DataFreshness without the DeliveryStreamName dimension never fires"]),
    Case("etl-63-s3-replication", "replication-raw", _drop("rules.0.destination.metrics"), ["rule replicate-everything: destination.metrics.status is unset, not Enabled"]),
    Case("etl-33-rds-storage-encrypted", "database-cluster", _set("storageEncrypted", False), ["storageEncrypted must be true"]),
    Case("etl-33-rds-storage-encrypted", "database-cluster", _drop("kmsKeyId"), ["kmsKeyId unset: storage is encrypted with the AWS managed key aws/rds, not the customer key"]),
    Case("etl-34-rds-backups-and-deletion", "database-cluster", _set("backupRetentionPeriod", 1.0), ["backupRetentionPeriod is 1 day(s), at least 7 outside dev (environment prod)"]),
    Case("etl-34-rds-backups-and-deletion", "database-cluster", _drop("backupRetentionPeriod"), ["backupRetentionPeriod is 1 day(s), at least 7 outside dev (environment prod)"]),
    Case("etl-34-rds-backups-and-deletion", "database-cluster", _set("deletionProtection", False), ["deletionProtection must be true in prod"]),
    Case("etl-34-rds-backups-and-deletion", "database-cluster", _set("skipFinalSnapshot", True), ["skipFinalSnapshot is true: no final snapshot outside dev (environment prod)"]),
    Case("etl-34-rds-backups-and-deletion", "database-cluster", _drop("finalSnapshotIdentifier"), ["finalSnapshotIdentifier unset: deleting the cluster would fail or leave no snapshot"]),
    Case("etl-34-rds-backups-and-deletion", "database-cluster", _drop("deleteAutomatedBackups"), ["deleteAutomatedBackups must be false outside dev (environment prod)"]),
    Case("etl-36-rds-not-public", "database-writer", _set("publiclyAccessible", True), ["publiclyAccessible must be false"]),
    Case("etl-37-rds-auth-logs-secret", "database-cluster", _set("iamDatabaseAuthenticationEnabled", False), ["iamDatabaseAuthenticationEnabled must be true"]),
    Case("etl-37-rds-auth-logs-secret", "database-cluster", _set("enabledCloudwatchLogsExports", []), ["enabledCloudwatchLogsExports must include 'postgresql', got []"]),
    Case("etl-37-rds-auth-logs-secret", "database-cluster", _set("masterUsername", "postgres"), ["masterUsername 'postgres' is a default name; choose another"]),
    Case("etl-37-rds-auth-logs-secret", "database-cluster", lambda p: p.update(manageMasterUserPassword=False, masterPassword="hunter22"), ["a master password is set in the program: it would sit in config and state; let RDS manage it", "manageMasterUserPassword must be true (RDS keeps and rotates the password in Secrets Manager)"]),
    Case("etl-37-rds-auth-logs-secret", "database-cluster", _drop("masterUserSecretKmsKeyId"), ["masterUserSecretKmsKeyId unset: the master secret is encrypted with aws/secretsmanager"]),
    Case("etl-38-rds-instance-hardening", "database-writer", _set("performanceInsightsEnabled", False), ["performanceInsightsEnabled must be true"]),
    Case("etl-38-rds-instance-hardening", "database-writer", _drop("performanceInsightsKmsKeyId"), ["performanceInsightsKmsKeyId unset: Performance Insights uses the AWS managed key aws/rds"]),
    Case("etl-38-rds-instance-hardening", "database-writer", _set("autoMinorVersionUpgrade", False), ["autoMinorVersionUpgrade must be true"]),
    Case("etl-38-rds-instance-hardening", "database-cluster", _drop("copyTagsToSnapshot"), ["copyTagsToSnapshot must be true"]),
    Case("etl-39-rds-force-tls", "database-parameters", lambda p: p.update(parameters=[q for q in p["parameters"] if q["name"] != "rds.force_ssl"]), ["rds.force_ssl is unset, not 1: connections without TLS are accepted"]),
    Case("etl-39-rds-force-tls", "database-parameters", lambda p: next(q for q in p["parameters"] if q["name"] == "rds.force_ssl").update(value="0"), ["rds.force_ssl is 0, not 1: connections without TLS are accepted"]),
    Case("etl-39-rds-force-tls", "database-cluster", _drop("dbClusterParameterGroupName"), ["dbClusterParameterGroupName unset: the default parameter group does not force TLS"]),
    Case("etl-64-rds-serverless-idle-cost", "database-writer", _set("instanceClass", "db.r6g.large"), ["instanceClass is db.r6g.large: a provisioned instance is paid for around the clock; use db.serverless"]),
    Case("etl-64-rds-serverless-idle-cost", "database-cluster", _set("serverlessv2ScalingConfiguration.minCapacity", 0.5), ["minCapacity is 0.5 in dev: an idle cluster keeps paying for it; use 0 (with secondsUntilAutoPause)"], stack="dev"),
    Case("etl-64-rds-serverless-idle-cost", "database-cluster", _drop("serverlessv2ScalingConfiguration.secondsUntilAutoPause"), ["secondsUntilAutoPause unset: say how long an idle instance waits before it pauses"], stack="dev"),
    Case("etl-64-rds-serverless-idle-cost", "database-cluster", _drop("serverlessv2ScalingConfiguration"), ["no serverlessv2ScalingConfiguration: db.serverless instances need a capacity range"]),
    Case("etl-30-emr-private-network", "emr-application", _set("networkConfiguration.subnetIds", []), ["no networkConfiguration.subnetIds: jobs would run outside the VPC"], stack="dev"),
    Case("etl-30-emr-private-network", "emr-pipeline-machine", edit_json("definition", lambda d: states(d)["EmrCreateCluster"]["Parameters"]["Instances"].pop("Ec2SubnetIds")), ["task state EmrCreateCluster creates a cluster in no named subnet"]),
    Case("etl-30-emr-private-network", "emr-pipeline-machine", edit_json("definition", lambda d: states(d)["EmrCreateCluster"]["Parameters"]["Instances"].pop("ServiceAccessSecurityGroup")), ["task state EmrCreateCluster creates a cluster without ServiceAccessSecurityGroup"]),
    Case("etl-31-emr-security-configuration", "emr-security", edit_json("configuration", lambda d: d["EncryptionConfiguration"]["AtRestEncryptionConfiguration"]["LocalDiskEncryptionConfiguration"].update(EnableEbsEncryption=False)), ["LocalDiskEncryptionConfiguration.EnableEbsEncryption must be true"]),
    Case("etl-31-emr-security-configuration", "emr-security", edit_json("configuration", lambda d: d["EncryptionConfiguration"]["AtRestEncryptionConfiguration"]["S3EncryptionConfiguration"].update(EncryptionMode="SSE-S3")), ["S3EncryptionConfiguration must be SSE-KMS with the customer key (AwsKmsKey)"]),
    Case("etl-31-emr-security-configuration", "emr-security", edit_json("configuration", lambda d: d["EncryptionConfiguration"].update(EnableInTransitEncryption=True)), ["EnableInTransitEncryption without a TLSCertificateConfiguration"]),
    Case("etl-31-emr-security-configuration", "emr-pipeline-machine", edit_json("definition", lambda d: states(d)["EmrCreateCluster"]["Parameters"].pop("SecurityConfiguration")), ["task state EmrCreateCluster creates a cluster without a SecurityConfiguration"]),
    Case("etl-32-emr-logs-and-stop", "emr-application", _set("autoStopConfiguration.enabled", False), ["autoStopConfiguration must be enabled with an idleTimeoutMinutes (started capacity bills)"], stack="dev"),
    Case("etl-32-emr-logs-and-stop", "emr-application", _drop("maximumCapacity"), ["no maximumCapacity: a job could scale without bound"], stack="dev"),
    Case("etl-32-emr-logs-and-stop", "emr-application", _drop("monitoringConfiguration.s3MonitoringConfiguration.encryptionKeyArn"), ["s3MonitoringConfiguration without encryptionKeyArn: logs not encrypted with the customer key"], stack="dev"),
    Case("etl-32-emr-logs-and-stop", "emr-pipeline-machine", edit_json("definition", lambda d: states(d)["EmrCreateCluster"]["Parameters"].pop("AutoTerminationPolicy")), ["task state EmrCreateCluster creates a cluster without an idle AutoTerminationPolicy"]),
    Case("etl-32-emr-logs-and-stop", "emr-pipeline-machine", edit_json("definition", lambda d: states(d)["EmrCreateCluster"]["Parameters"].pop("LogEncryptionKmsKeyId")), ["task state EmrCreateCluster creates a cluster whose logs are not encrypted with the customer key"]),
    Case("etl-32-emr-logs-and-stop", "emr-pipeline-machine", edit_json("definition", lambda d: states(d)["Validate"]["Parameters"]["Step"].update(ActionOnFailure="CONTINUE")), ["task state Validate adds a step with ActionOnFailure CONTINUE: later steps would run"]),
    Case("etl-66-iam-no-wildcard-s3", "emr-instance-policy", edit_json("policy", lambda d: d["Statement"].append({"Sid": "AnyBucket", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::*/*"]})), ["statement AnyBucket grants ['s3:GetObject'] on ['arn:aws:s3:::*/*']: name the buckets"]),
    Case("etl-66-iam-no-wildcard-s3", "emr-transform-job-policy", edit_json("policy", lambda d: d["Statement"].append({"Sid": "AnyBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::*"})), ["statement AnyBucket grants ['s3:ListBucket'] on ['arn:aws:s3:::*']: name the buckets"], stack="dev"),
    Case("etl-11-iam-trust-one-service", "emr-service-managed-policy", _set("policyArn", "arn:aws:iam::aws:policy/service-role/AmazonElasticMapReduceforEC2Role"), ["AWS managed policy arn:aws:iam::aws:policy/service-role/AmazonElasticMapReduceforEC2Role is not a documented exception"]),
    Case("etl-11-iam-trust-one-service", "emr-service-role", edit_json("assumeRolePolicy", lambda d: d["Statement"][0].pop("Condition")), ["trust statement 0 has no aws:SourceAccount or aws:SourceArn condition"]),
    Case("etl-40-athena-workgroup", "athena-workgroup", _set("configuration.enforceWorkgroupConfiguration", False), ["enforceWorkgroupConfiguration must be true"]),
    Case("etl-40-athena-workgroup", "athena-workgroup", _set("configuration.publishCloudwatchMetricsEnabled", False), ["publishCloudwatchMetricsEnabled must be true"]),
    Case("etl-40-athena-workgroup", "athena-workgroup", _drop("configuration.bytesScannedCutoffPerQuery"), ["bytesScannedCutoffPerQuery unset: a query may scan (and bill) without limit"]),
    Case("etl-40-athena-workgroup", "athena-workgroup", _set("configuration.engineVersion.selectedEngineVersion", "AUTO"), ["selectedEngineVersion is AUTO: pin the engine version, so an upgrade is a deliberate change"]),
    Case("etl-40-athena-workgroup", "athena-workgroup", _set("configuration.resultConfiguration.encryptionConfiguration", {"encryptionOption": "SSE_S3"}), ["results are encrypted with SSE_S3, not SSE_KMS"]),
    Case("etl-40-athena-workgroup", "athena-workgroup", _drop("configuration.resultConfiguration.encryptionConfiguration.kmsKeyArn"), ["not encrypted with the customer key (kms key unset, the AWS managed key of athena is used)"], stack="dev"),
    Case("etl-44-redshift-serverless", "warehouse-workgroup", _set("publiclyAccessible", True), ["publiclyAccessible must be false"], stack="prod-warehouse"),
    Case("etl-44-redshift-serverless", "warehouse-workgroup", _set("enhancedVpcRouting", False), ["enhancedVpcRouting must be true"], stack="prod-warehouse"),
    Case("etl-44-redshift-serverless", "warehouse-workgroup", _drop("configParameters"), ["require_ssl is not true: connections without TLS are accepted"], stack="prod-warehouse"),
    Case("etl-44-redshift-serverless", "warehouse-namespace", _drop("kmsKeyId"), ["not encrypted with the customer key (kms key unset, the AWS managed key of redshift is used)"], stack="prod-warehouse"),
    Case("etl-44-redshift-serverless", "warehouse-namespace", _set("manageAdminPassword", False), ["manageAdminPassword must be true (Redshift keeps the password in Secrets Manager)"], stack="prod-warehouse"),
    Case("etl-44-redshift-serverless", "warehouse-namespace", _drop("adminPasswordSecretKmsKeyId"), ["adminPasswordSecretKmsKeyId unset: the admin secret is encrypted with aws/secretsmanager"], stack="prod-warehouse"),
    Case("etl-44-redshift-serverless", "warehouse-namespace", _set("adminUserPassword", "hunter2"), ["an admin password is set in the program: it would sit in config and state; let Redshift manage it"], stack="prod-warehouse"),
    Case("etl-44-redshift-serverless", "warehouse-namespace", _set("adminUsername", "admin"), ["adminUsername 'admin' is a default name; choose another"], stack="prod-warehouse"),
    Case("etl-44-redshift-serverless", "warehouse-namespace", _set("logExports", ["userlog"]), ["logExports lacks connectionlog, useractivitylog"], stack="prod-warehouse"),
    Case("etl-67-redshift-serverless-cost", "warehouse-workgroup", _drop("baseCapacity"), ["baseCapacity unset: AWS's default of 128 RPU costs about $48 an hour while queries run"], stack="prod-warehouse"),
    Case("etl-67-redshift-serverless-cost", "warehouse-workgroup", _set("baseCapacity", 128.0), ["baseCapacity is 128 RPU, above 32"], stack="prod-warehouse"),
    Case("etl-67-redshift-serverless-cost", "warehouse-workgroup", _drop("maxCapacity"), ["maxCapacity unset: the workgroup may scale without limit"], stack="prod-warehouse"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_check_reports_the_mistake_on_a_real_resource(case: Case) -> None:
    evaluation = stack_named(case.stack)
    resource = named(evaluation, case.resource)
    control = BY_NAME[case.policy]
    context = Context(environment_in(evaluation), resource.name)
    assert control.check(resource.type, resource.inputs, context) == [], "the recorded resource must pass first"
    props = copy.deepcopy(resource.inputs)
    case.mutate(props)
    assert control.check(resource.type, props, context) == case.expected
    # No other check is tripped by the same mistake: each message belongs to one row.
    others = [name for name, _ in check_resource(resource.type, props, context) if name != case.policy]
    assert others == []


def test_open_ingress_is_reported() -> None:
    """No ingress rule is deployed; the HTTPS egress rule, read as an ingress rule, is open to the world."""
    rule = named(evaluated("prod"), "containers-tasks-https-out")
    check = BY_NAME["etl-59-vpc-no-open-ingress"].check
    assert check("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", rule.inputs) == ["ingress from 0.0.0.0/0"]


def test_every_check_has_a_negative_case() -> None:
    assert sorted(BY_NAME) == sorted({case.policy for case in CASES})


def test_documented_exceptions_and_dev_allowances_hold() -> None:
    prod = evaluated("prod")
    access_logs = named(prod, "lake-access-logs-encryption")
    sse = BY_NAME["etl-2-s3-sse-kms"].check
    assert sse(access_logs.type, access_logs.inputs, Context("prod", access_logs.name)) == []
    assert sse(access_logs.type, access_logs.inputs, Context("prod", "etl-platform-lake-raw-encryption")) == [
        "sseAlgorithm is 'AES256', not 'aws:kms'",
        "bucketKeyEnabled must be true",
    ]
    stream = named(evaluated("dev"), "streaming-stream")
    assert stream.inputs["retentionPeriod"] == 24  # a day is enough for a disposable stack
    assert BY_NAME["etl-25-kinesis-retention"].check(stream.type, stream.inputs, Context("dev", stream.name)) == []
    bucket = named(evaluated("dev"), "lake-raw")
    assert bucket.inputs["forceDestroy"] is True
    assert BY_NAME["etl-5-s3-versioning"].check(bucket.type, bucket.inputs, Context("dev", bucket.name)) == []


def test_tasks_inside_parallel_and_map_are_caught_by_the_enclosing_state() -> None:
    machine = named(evaluated("prod"), "stepfunctions-machine")
    definition = json.loads(machine.inputs["definition"])
    nested = definition["States"]["Sources"]["ItemProcessor"]["States"]
    assert all("Catch" not in s for s in nested.values() if s["Type"] == "Task")
    check = BY_NAME["etl-52-sfn-task-reliability"].check
    assert check(machine.type, machine.inputs) == []


def test_unknown_values_are_never_violations() -> None:
    """During preview the engine does not know computed values: a check reports nothing about them."""
    for control in RESOURCE_CHECKS:
        for token in control.resource_types:
            # Judged as prod (the strictest context), so taken from prod where prod has one.
            stacks = sorted(STACKS, key=lambda stack: stack != "prod")
            real = [r for stack in stacks for r in evaluated(stack).resources if r.type == token]
            for resource in real[:1]:
                unknown_props = {key: None for key in resource.inputs}
                assert control.check(token, unknown_props, Context("prod", resource.name)) == [], control.name


# ---------------------------------------------------------------------------------------------------------------------
# Stack checks
# ---------------------------------------------------------------------------------------------------------------------


def test_a_bucket_without_its_public_access_block_is_reported() -> None:
    resources = [r for r in stack_resources(evaluated("prod")) if not r.name.endswith("lake-raw-public-access")]
    raw = next(r for r in resources if r.name.endswith("lake-raw"))
    assert bucket_companions(resources, "prod") == [
        (raw.urn, "bucket etl-platform-lake-raw has no public access block (BucketPublicAccessBlock)")
    ]


def test_a_repository_without_a_lifecycle_policy_is_reported() -> None:
    resources = [r for r in stack_resources(evaluated("prod")) if not r.name.endswith("etl-lifecycle")]
    assert [m for _, m in bucket_companions(resources, "prod")] == [
        "repository etl-platform-containers-etl-repo has no lifecycle policy"
    ]


def test_bucket_logging_created_before_its_target_policy_is_reported() -> None:
    resources = stack_resources(evaluated("prod"))
    log_policy = next(r for r in resources if r.name.endswith("lake-access-logs-policy"))
    raw_logging = next(r for r in resources if r.name.endswith("lake-raw-logging"))
    early = StackResource(raw_logging.urn, raw_logging.type, raw_logging.name, raw_logging.props,
                          dependencies=tuple(d for d in raw_logging.dependencies if d != log_policy.urn))  # fmt: skip
    assert logging_after_target_policy(resources, "prod") == []
    assert logging_after_target_policy([early if r is raw_logging else r for r in resources], "prod") == [
        (raw_logging.urn, "etl-platform-lake-raw-logging is not created after its target bucket's policy")
    ]


def test_an_unsigned_layer_under_an_enforcing_config_is_reported() -> None:
    resources = stack_resources(evaluated("prod"))
    assert signed_code_only(resources, "prod") == []
    layer = next(r for r in resources if r.type == "aws:lambda/layerVersion:LayerVersion")
    jobs = {r.urn for r in resources if r.type == "aws:signer/signingJob:SigningJob"}
    unsigned = StackResource(layer.urn, layer.type, layer.name, layer.props,
                             dependencies=tuple(d for d in layer.dependencies if d not in jobs))  # fmt: skip
    assert signed_code_only([unsigned if r is layer else r for r in resources], "prod") == [
        (layer.urn, f"{layer.name} does not deploy a signed package (its s3Key comes from no signing job)")
    ]
    assert signed_code_only(stack_resources(evaluated("dev")), "dev") == [], "no config, nothing enforced"


def test_a_redshift_workgroup_without_a_usage_limit_is_reported() -> None:
    resources = stack_resources(stack_named(PROD_WAREHOUSE.stack))
    assert redshift_usage_limited(resources, "prod") == []
    workgroup = next(r for r in resources if r.type == "aws:redshiftserverless/workgroup:Workgroup")
    without = [r for r in resources if r.type != "aws:redshiftserverless/usageLimit:UsageLimit"]
    assert redshift_usage_limited(without, "prod") == [
        (workgroup.urn, f"workgroup {workgroup.name} has no serverless-compute usage limit")
    ]
    limit = next(r for r in resources if r.type == "aws:redshiftserverless/usageLimit:UsageLimit")
    no_action = StackResource(limit.urn, limit.type, limit.name,
                              {k: v for k, v in limit.props.items() if k != "breachAction"}, dependencies=limit.dependencies)  # fmt: skip
    assert redshift_usage_limited([no_action if r is limit else r for r in resources], "prod") == [
        (workgroup.urn, f"workgroup {workgroup.name}'s usage limit has no breachAction")
    ]


def test_a_prod_raw_bucket_without_replication_is_reported() -> None:
    resources = stack_resources(evaluated("prod"))
    assert prod_replicates_raw_and_curated(resources, "prod") == []
    raw = next(r for r in resources if r.name.endswith("lake-raw"))
    without = [r for r in resources if r.name != "etl-platform-replication-raw"]
    assert prod_replicates_raw_and_curated(without, "prod") == [
        (raw.urn, "bucket etl-platform-lake-raw has no replication to another region")
    ]
    assert prod_replicates_raw_and_curated(stack_resources(evaluated("dev")), "dev") == []


def test_a_work_queue_without_a_redrive_policy_is_reported() -> None:
    resources = stack_resources(evaluated("prod"))
    work = next(r for r in resources if r.name.endswith("serverless-work"))
    props = {k: v for k, v in work.props.items() if k != "redrivePolicy"}
    resources = [StackResource(r.urn, r.type, r.name, props) if r is work else r for r in resources]
    assert queues_redrive(resources, "prod") == [
        (work.urn, "queue etl-platform-serverless-work has no redrive policy and is nobody's dead-letter queue")
    ]


def test_an_unprotected_prod_bucket_is_reported_and_other_stacks_are_not_held_to_it() -> None:
    resources = stack_resources(evaluated("prod"))
    raw = next(r for r in resources if r.name.endswith("lake-raw"))
    resources = [StackResource(r.urn, r.type, r.name, r.props, False) if r is raw else r for r in resources]
    assert prod_protects_state(resources, "prod") == [
        (raw.urn, "etl-platform-lake-raw (aws:s3/bucket:Bucket) is not protected in prod")
    ]
    assert prod_protects_state(stack_resources(evaluated("dev")), "dev") == []


def test_a_prod_cluster_without_a_reader_in_another_az_is_reported() -> None:
    resources = stack_resources(evaluated("prod"))
    assert prod_rds_multi_az(resources, "prod") == []
    cluster = next(r for r in resources if r.name.endswith("database-cluster"))
    reader = next(r for r in resources if r.name.endswith("database-reader-1"))
    writer = next(r for r in resources if r.name.endswith("database-writer"))
    assert prod_rds_multi_az([r for r in resources if r is not reader], "prod") == [
        (cluster.urn, "cluster etl-platform-database-cluster has 1 instance(s); prod needs a reader in another AZ")
    ]
    same_az = StackResource(reader.urn, reader.type, reader.name,
                            {**reader.props, "availabilityZone": writer.props["availabilityZone"]}, reader.protect,
                            reader.dependencies)  # fmt: skip
    assert prod_rds_multi_az([same_az if r is reader else r for r in resources], "prod") == [
        (cluster.urn, "cluster etl-platform-database-cluster does not place its instances in two named AZs")
    ]
    assert prod_rds_multi_az(stack_resources(evaluated("dev")), "dev") == [], "dev runs a writer alone"


def test_the_database_rows_say_why_they_changed() -> None:
    document = (ROOT / "docs" / "CONTROLS.md").read_text()
    for row, note in ((34, "Amended:"), (35, "Amended:"), (37, "Amended:"), (38, "Amended:"), (39, "Amended:"),
                      (64, "Added:")):  # fmt: skip
        (line,) = [line for line in document.splitlines() if line.startswith(f"| {row} |")]
        assert note in line, f"row {row} lacks its {note} note"
    assert "- Issue 17 (the database architecture):" in document


def test_a_provider_that_does_not_name_the_environment_is_reported() -> None:
    resources = stack_resources(evaluated("dev"))
    provider = resources[0]
    tags = json.loads(provider.props["defaultTags"])
    assert environment_tagged(resources) == []
    for changed, what in ((None, "has no Environment default tag"), ("qa", "names 'qa'")):
        if changed is None:
            tags["tags"].pop("Environment")
        else:
            tags["tags"]["Environment"] = changed
        props = {**provider.props, "defaultTags": json.dumps(tags)}
        edited = [StackResource(provider.urn, provider.type, provider.name, props), *resources[1:]]
        assert environment_tagged(edited) == [
            (provider.urn, f"aws provider aws {what}; expected one of dev, staging, prod")
        ]


def test_the_packs_environments_are_the_settings_profiles() -> None:
    assert tuple(environment.value for environment in Environment) == ENVIRONMENTS
    assert {e.value for e, profile in PROFILES.items() if profile.force_destroy} == DISPOSABLE_ENVIRONMENTS
    assert {e.value for e, profile in PROFILES.items() if profile.protect} == PROTECTED_ENVIRONMENTS


def test_environment_of_reads_the_default_tags_as_json_text_or_a_mapping() -> None:
    assert environment_of({"defaultTags": '{"tags": {"Environment": "prod"}}'}) == "prod"
    assert environment_of({"defaultTags": {"tags": {"Environment": "dev"}}}) == "dev"
    assert environment_of({"defaultTags": "not json"}) is None
    assert environment_of({}) is None and environment_of(None) is None


# ---------------------------------------------------------------------------------------------------------------------
# (3) The pack wires every check
# ---------------------------------------------------------------------------------------------------------------------


def test_the_pack_wires_every_check_as_a_mandatory_policy() -> None:
    resource_policies = [p for p in pack.POLICIES if isinstance(p, ResourceValidationPolicy)]
    stack_policies = [p for p in pack.POLICIES if isinstance(p, StackValidationPolicy)]
    assert [p.name for p in resource_policies] == [c.name for c in RESOURCE_CHECKS]
    assert [p.name for p in stack_policies] == [c.name for c in STACK_CHECKS]
    assert len({p.name for p in pack.POLICIES}) == len(pack.POLICIES)
    for policy in pack.POLICIES:
        assert policy.enforcement_level == EnforcementLevel.MANDATORY
        assert policy.description.startswith("docs/CONTROLS.md row"), policy.name
    assert pack.PACK_NAME == "etl-platform-controls"


def _opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def test_a_resource_policy_reports_through_the_engine_proxy_and_skips_unknowns() -> None:
    key = named(evaluated("prod"), "encryption-key")
    policy = next(p for p in pack.POLICIES if p.name == "etl-8-kms-rotation")
    assert isinstance(policy, ResourceValidationPolicy)
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    props = unknown_checking_proxy({**key.inputs, "enableKeyRotation": False, "policy": UNKNOWN_STRING_VALUE})
    args = ResourceValidationArgs(key.type, props, key.urn, key.name, _opts(), None)
    policy.validate(args, report)
    assert reported == ["enableKeyRotation must be true"]

    key_policy = next(p for p in pack.POLICIES if p.name == "etl-9-kms-key-policy")
    assert isinstance(key_policy, ResourceValidationPolicy)
    key_policy.validate(args, report)
    assert reported == ["enableKeyRotation must be true"], "an unknown key policy is not a missing one"


def _provider(evaluation: Evaluation) -> PolicyProviderResource:
    provider = provider_of(evaluation)
    return PolicyProviderResource(
        provider.type, unknown_checking_proxy(dict(provider.inputs)), provider.urn, provider.name
    )


def test_a_stack_policy_reads_protect_from_the_resource_options() -> None:
    prod = evaluated("prod")
    bucket = named(prod, "lake-raw")
    policy = next(p for p in pack.POLICIES if p.name == "etl-prod-protects-state")
    assert isinstance(policy, StackValidationPolicy)
    resource = PolicyResource(bucket.type, unknown_checking_proxy(dict(bucket.inputs)), bucket.urn, bucket.name,
                              _opts(protect=False), _provider(prod), None, [], {})  # fmt: skip
    reported: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append((message, urn))

    policy.validate(StackValidationArgs([resource]), report)
    assert reported == [("etl-platform-lake-raw (aws:s3/bucket:Bucket) is not protected in prod", bucket.urn)]


def test_every_policy_cites_a_row_of_the_projects_controls_document() -> None:
    """The pack cites docs/CONTROLS.md by path; each row it names is there, amended rows with their reason."""
    document = (ROOT / "docs" / "CONTROLS.md").read_text()
    rows = {
        int(line.split("|")[1])
        for line in document.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    }
    assert {c.row for c in RESOURCE_CHECKS} <= rows
    for row in (4, 16, 26, 28, 55, 56):
        (line,) = [line for line in document.splitlines() if line.startswith(f"| {row} |")]
        assert "Amended:" in line, f"row {row} changed without its reason"
    for row in (61, 62, 63, 64, 65, 66, 67):
        (line,) = [line for line in document.splitlines() if line.startswith(f"| {row} |")]
        assert "Added:" in line
    assert "## Changelog" in document


def run_pack(evaluation: Evaluation, change: Callable[[Registration], Registration] = lambda r: r) -> list[str]:
    """Every policy of the pack over a stack as the engine hands it over: each resource with its provider (whose
    default tags carry the environment), then the whole stack; `change` edits resources first. The violations."""
    provider = _provider(evaluation)
    resources = [change(r) for r in evaluation.resources]
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(f"{urn.rsplit('::', 1)[-1] if urn else ''}: {message}")

    for policy in pack.POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                props = unknown_checking_proxy(copy.deepcopy(r.inputs))
                policy.validate(
                    ResourceValidationArgs(r.type, props, r.urn, r.name, _opts(r.protect), provider), report
                )
    by_urn = {
        r.urn: PolicyResource(r.type, unknown_checking_proxy(copy.deepcopy(r.inputs)), r.urn, r.name, _opts(r.protect),
                              provider, None, [], {})
        for r in resources
    }  # fmt: skip
    for r in resources:
        by_urn[r.urn].dependencies = [by_urn[urn] for urn in r.dependencies if urn in by_urn]
    for policy in pack.POLICIES:
        if isinstance(policy, StackValidationPolicy):
            policy.validate(StackValidationArgs(list(by_urn.values())), report)
    return reported


@pytest.mark.parametrize("case", EXTRA_STACKS, ids=str)
def test_stacks_named_otherwise_pass_the_pack_as_their_environment(case: StackFile) -> None:
    """dev-eu (a dev copy: force-destroyed buckets, nothing protected) and prod-us (a prod copy) through the pack
    as the engine runs it: judged by the Environment default tag, not by a stack name the pack has never heard of."""
    evaluation = evaluated_file(case)
    assert evaluation.config.stack == case.stack and environment_in(evaluation) in ("dev", "prod")
    assert run_pack(evaluation) == []


def test_dev_eu_may_force_destroy_and_prod_us_is_held_to_prod() -> None:
    dev_eu, prod_us = evaluated_file(DEV_EU), evaluated_file(PROD_US)
    assert [b.inputs["forceDestroy"] for b in dev_eu.resources if b.type == "aws:s3/bucket:Bucket"] == [True] * 6

    def unprotect_raw(r: Registration) -> Registration:
        return dataclasses.replace(r, protect=False) if r.name.endswith("lake-raw") else r

    def force_destroy_raw(r: Registration) -> Registration:
        return dataclasses.replace(r, inputs={**r.inputs, "forceDestroy": True}) if r.name.endswith("lake-raw") else r

    assert run_pack(prod_us, unprotect_raw) == [
        "etl-platform-lake-raw: etl-platform-lake-raw (aws:s3/bucket:Bucket) is not protected in prod"
    ]
    assert run_pack(prod_us, force_destroy_raw) == [": forceDestroy must be false outside dev (environment prod)"]


def test_importing_the_pack_never_starts_the_policy_server() -> None:
    code = "import policy.controls, policy.__main__ as pack; print(len(pack.POLICIES))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(RESOURCE_CHECKS) + len(STACK_CHECKS))


# ---------------------------------------------------------------------------------------------------------------------
# The real engine
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.engine
@pytest.mark.skipif(
    shutil.which("pulumi") is None,
    reason="needs the Pulumi CLI on PATH (and a stack it can preview) to run the pack in the real policy engine",
)
def test_pulumi_preview_with_the_pack_passes() -> None:
    env = {**os.environ, "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", "")}
    result = subprocess.run(
        ["pulumi", "preview", "--stack", "dev", "--policy-pack", "policy", "--non-interactive"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "etl-platform-controls" in result.stdout
