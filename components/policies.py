"""IAM and resource policy documents as plain functions returning dicts.

Every function takes resolved strings (ARNs, account ids), so it is unit-tested without Pulumi; components call them
inside `Output.all(...).apply(...)` and serialize with `json.dumps`. No Allow uses a wildcard action and every
resource is an explicit ARN; the few actions AWS only authorises on `"*"` are listed in `ACTIONS_REQUIRING_STAR`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

PolicyDocument = dict[str, Any]
Statement = dict[str, Any]

# Actions that AWS does not let you scope to a resource ARN; each is allowed on "*" and only these are.
ACTIONS_REQUIRING_STAR: dict[str, str] = {
    "xray:PutTraceSegments": "X-Ray segments have no resource ARN",
    "xray:PutTelemetryRecords": "X-Ray telemetry has no resource ARN",
    "xray:GetSamplingRules": "Sampling rules are account-wide",
    "xray:GetSamplingTargets": "Sampling targets are account-wide",
    "cloudwatch:PutMetricData": "Custom metrics have no ARN; scoped by the cloudwatch:namespace condition instead",
    "logs:CreateLogDelivery": "Vended log deliveries (Step Functions logging) have no resource ARN",
    "logs:GetLogDelivery": "Vended log deliveries have no resource ARN",
    "logs:UpdateLogDelivery": "Vended log deliveries have no resource ARN",
    "logs:DeleteLogDelivery": "Vended log deliveries have no resource ARN",
    "logs:ListLogDeliveries": "Vended log deliveries have no resource ARN",
    "logs:PutResourcePolicy": "Needed by Step Functions vended logging; resource policies are account-wide",
    "logs:DescribeResourcePolicies": "Resource policies are account-wide",
    "logs:DescribeLogGroups": "Listing log groups is account-wide",
    "ecr:GetAuthorizationToken": "The registry token is account-wide",
    "ec2:CreateNetworkInterface": "Lambda/Fargate ENIs are created before their ARN exists",
    "ec2:DescribeNetworkInterfaces": "Describe calls take no resource",
    "ec2:DescribeSubnets": "Describe calls take no resource",
    "ec2:DeleteNetworkInterface": "ENIs are managed by the service",
    "ec2:AssignPrivateIpAddresses": "ENIs are managed by the service",
    "ec2:UnassignPrivateIpAddresses": "ENIs are managed by the service",
    "events:PutTargets": "Managed rules for .sync integrations (StepFunctionsGetEventsFor*) are created by the service",
    "events:PutRule": "Managed rules for .sync integrations are created by the service",
    "events:DescribeRule": "Managed rules for .sync integrations are created by the service",
    "redshift-data:DescribeStatement": (
        "Data API statements have no ARN; scoped to the caller's own statements by the statement-owner condition"
    ),
}


def document(*statements: Statement) -> PolicyDocument:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: Iterable[str], resources: Sequence[str] | str, sid: str | None = None, **extra: Any) -> Statement:
    """An Allow statement; refuses wildcard actions and `"*"` resources for actions that can be scoped."""
    action_list = sorted(set(actions))
    for action in action_list:
        if "*" in action:
            raise ValueError(f"wildcard action {action!r} is not allowed; list the actions the resource needs")
    resource_list = [resources] if isinstance(resources, str) else list(resources)
    if "*" in resource_list:
        scoped = [action for action in action_list if action not in ACTIONS_REQUIRING_STAR]
        if scoped:
            raise ValueError(f"actions {scoped} can be scoped to an ARN; do not grant them on '*'")
    statement: Statement = {"Effect": "Allow", "Action": action_list, "Resource": resource_list}
    if sid:
        statement["Sid"] = sid
    statement.update(extra)
    return statement


def deny_insecure_transport(actions: str | list[str], resources: Sequence[str]) -> Statement:
    """Deny any request that is not made over TLS (S3.5, SNS.4, SQS.3)."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": actions,
        "Resource": list(resources),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


# ---------------------------------------------------------------------------------------------------------------------
# Trust policies
# ---------------------------------------------------------------------------------------------------------------------


def assume_role(service: str, account_id: str, source_arns: Sequence[str] = ()) -> PolicyDocument:
    """Trust one service principal, only on behalf of this account (and these source ARNs when given)."""
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": account_id}}
    if source_arns:
        condition["ArnLike"] = {"aws:SourceArn": list(source_arns)}
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": condition,
        }
    )


def instance_role_trust() -> PolicyDocument:
    """Trust of a role an EC2 instance profile carries: the EC2 service, as AWS documents it for instance profiles
    (EMR's EMR_EC2_DefaultRole included), without aws:SourceAccount/aws:SourceArn, which EC2 does not send when it
    gets an instance its profile's credentials. Who may launch instances with the profile is bounded by iam:PassRole
    on the role instead (docs/CONTROLS.md row 11)."""
    return document({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})


# ---------------------------------------------------------------------------------------------------------------------
# Resource policies of the foundation
# ---------------------------------------------------------------------------------------------------------------------


def key_policy(account_id: str, partition: str, region: str) -> PolicyDocument:
    """The stack key: the account administers it; the services the platform uses may encrypt with it, each only
    when called on behalf of this account (no unconditioned `*` principal, KMS.5)."""
    root = f"arn:{partition}:iam::{account_id}:root"
    key_use = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
               "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]  # fmt: skip
    return document(
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchLogsEncrypt",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": key_use,
            "Resource": "*",
            "Condition": {
                "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:*"}
            },
        },
        {
            "Sid": "ServicesOfThisAccount",
            "Effect": "Allow",
            "Principal": {
                "Service": sorted(
                    [
                        "cloudwatch.amazonaws.com",
                        "scheduler.amazonaws.com",
                        "sns.amazonaws.com",
                        "s3.amazonaws.com",
                        "states.amazonaws.com",
                        "delivery.logs.amazonaws.com",
                    ]
                )
            },
            "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
        # EventBridge's KMS requests carry no aws:SourceAccount/aws:SourceArn, so a statement conditioned on them would
        # silently drop every rule delivery to an encrypted topic or queue. Scope it by encryption context instead:
        # only data keys for this account's SNS topics and SQS queues.
        {
            "Sid": "EventBridgeToTopicsOfThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {"kms:EncryptionContext:aws:sns:topicArn": f"arn:{partition}:sns:{region}:{account_id}:*"}
            },
        },
        {
            "Sid": "EventBridgeToQueuesOfThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {"kms:EncryptionContext:aws:sqs:arn": f"arn:{partition}:sqs:{region}:{account_id}:*"}
            },
        },
    )


def replica_key_policy(account_id: str, partition: str) -> PolicyDocument:
    """The replica region's key: the account administers it and IAM grants its use (the replication role's
    policy); no service principal needs it directly."""
    return document(
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )


def replication_role_policy(
    pairs: Sequence[tuple[str, str]], source_key_arn: str, replica_key_arn: str, region: str, replica_region: str
) -> PolicyDocument:
    """What S3 replication needs for each (source bucket, replica bucket) pair: read the configuration and object
    versions of the sources, replicate into the replicas, decrypt with the source key and encrypt with the replica
    key, each only through S3 in its own region."""
    sources = [source for source, _ in pairs]
    replicas = [replica for _, replica in pairs]
    return document(
        allow(["s3:GetReplicationConfiguration", "s3:ListBucket"], sources, sid="SourceBuckets"),
        allow(
            ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
            [f"{arn}/*" for arn in sources],
            sid="SourceObjects",
        ),
        allow(
            ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            [f"{arn}/*" for arn in replicas],
            sid="ReplicaObjects",
        ),
        allow(
            ["kms:Decrypt"],
            [source_key_arn],
            sid="SourceKey",
            Condition={
                "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [f"{arn}/*" for arn in sources]},
            },
        ),
        allow(
            ["kms:Encrypt", "kms:GenerateDataKey"],
            [replica_key_arn],
            sid="ReplicaKey",
            Condition={
                "StringEquals": {"kms:ViaService": f"s3.{replica_region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [f"{arn}/*" for arn in replicas]},
            },
        ),
    )


def bucket_policy(bucket_arn: str) -> PolicyDocument:
    """Every data bucket: TLS only; no Allow at all (access is granted by IAM roles of this account)."""
    return document(deny_insecure_transport("s3:*", [bucket_arn, f"{bucket_arn}/*"]))


def access_log_bucket_policy(
    bucket_arn: str,
    account_id: str,
    source_bucket_arns: Sequence[str],
    partition: str = "aws",
    *,
    flow_logs: tuple[str, str] | None = None,
) -> PolicyDocument:
    """The access-log bucket: TLS only, and the S3 logging service may write for our buckets only.

    `flow_logs=(region, prefix)` also lets VPC flow log delivery (`delivery.logs.amazonaws.com`) write under
    `prefix` for this account's flow logs in `region` only, and check the bucket as AWS's delivery does first.
    Granted here, the delivery never rewrites the bucket policy itself (it would, finding no grant)."""
    statements: list[Statement] = [
        deny_insecure_transport("s3:*", [bucket_arn, f"{bucket_arn}/*"]),
        {
            "Sid": "S3ServerAccessLogs",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": list(source_bucket_arns)},
            },
        },
    ]
    if flow_logs is not None:
        region, prefix = flow_logs
        source = {"aws:SourceArn": f"arn:{partition}:logs:{region}:{account_id}:*"}
        statements += [
            {
                "Sid": "FlowLogDeliveryWrite",
                "Effect": "Allow",
                "Principal": {"Service": "delivery.logs.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/{prefix}AWSLogs/{account_id}/*",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id, "s3:x-amz-acl": "bucket-owner-full-control"},
                    "ArnLike": source,
                },
            },
            {
                "Sid": "FlowLogDeliveryCheck",
                "Effect": "Allow",
                "Principal": {"Service": "delivery.logs.amazonaws.com"},
                "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
                "Resource": bucket_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}, "ArnLike": source},
            },
        ]
    return document(*statements)


def topic_policy(topic_arn: str, account_id: str) -> PolicyDocument:
    """The alerts topic: TLS only; CloudWatch alarms, EventBridge rules and this account may publish."""
    return document(
        deny_insecure_transport("sns:Publish", [topic_arn]),
        {
            "Sid": "AlarmsAndRulesOfThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
        {
            "Sid": "OwnerAccount",
            "Effect": "Allow",
            "Principal": {"AWS": account_id},
            "Action": ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes"],
            "Resource": topic_arn,
        },
    )


def queue_policy(queue_arn: str, account_id: str, senders: Sequence[tuple[str, str]] = ()) -> PolicyDocument:
    """A queue: TLS only; each (service, source ARN) pair may send, nobody else outside IAM."""
    statements: list[Statement] = [deny_insecure_transport("sqs:*", [queue_arn])]
    for index, (service, source_arn) in enumerate(senders):
        statements.append(
            {
                "Sid": f"Send{index}",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": source_arn},
                },
            }
        )
    return document(*statements)


# ---------------------------------------------------------------------------------------------------------------------
# Role policies
# ---------------------------------------------------------------------------------------------------------------------


def flow_log_policy(log_group_arn: str) -> PolicyDocument:
    return document(
        allow(
            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [log_group_arn, f"{log_group_arn}:*"],
        )
    )


def key_use(key_arn: str, *, via: Sequence[str], region: str, encrypt: bool = True) -> Statement:
    """The stack key, usable only when one of the `via` services (e.g. "s3", "sqs") calls KMS for the role: a role
    never decrypts data with the key on its own. Decrypt to read; GenerateDataKey to write (and Decrypt, which
    multipart uploads and queue receives need)."""
    if not via:
        raise ValueError("key_use needs the services that use the key for the role, e.g. via=['s3']")
    actions = ["kms:Decrypt"]
    if encrypt:
        actions += ["kms:GenerateDataKey"]
    services = sorted(f"{service}.{region}.amazonaws.com" for service in set(via))
    return allow(actions, [key_arn], sid="StackKey", Condition={"StringEquals": {"kms:ViaService": services}})


def log_writer(log_group_arn: str) -> Statement:
    return allow(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"])


def xray_writer() -> Statement:
    return allow(
        ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"],
        "*",
        sid="XRay",
    )


def metrics_writer(namespace: str) -> Statement:
    return allow(
        ["cloudwatch:PutMetricData"],
        "*",
        sid="Metrics",
        Condition={"StringEquals": {"cloudwatch:namespace": namespace}},
    )


# What Step Functions needs to deliver its execution logs ("vended logs"); none of these takes a resource ARN.
STATES_LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)


def state_machine_role_policy(task_statements: Sequence[Statement], key_arn: str, region: str) -> PolicyDocument:
    """A state machine's role: what its Tasks need (from the ASL builder), vended logging and X-Ray (only on `*`),
    and the stack key through Step Functions (its execution data), S3 (result objects) and SNS (the alerts topic)."""
    return document(
        *task_statements,
        allow(STATES_LOG_DELIVERY_ACTIONS, "*", sid="VendedLogDelivery"),
        xray_writer(),
        key_use(key_arn, via=["states", "s3", "sns"], region=region),
    )


def start_execution_schedule_policy(
    state_machine_arn: str, dead_letter_arn: str, key_arn: str, region: str
) -> PolicyDocument:
    """A schedule's role: start this one state machine (its execution data is encrypted with the stack key) and
    dead-letter to its queue (encrypted too)."""
    return document(
        allow(["states:StartExecution"], [state_machine_arn], sid="StartExecution"),
        allow(["sqs:SendMessage"], [dead_letter_arn], sid="DeadLetter"),
        key_use(key_arn, via=["states", "sqs"], region=region),
    )


def wildcard_actions(policy: PolicyDocument) -> list[str]:
    """Actions in Allow statements that use a wildcard: what the controls forbid (IAM.1/IAM.21)."""
    found: list[str] = []
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow" or "Principal" in statement:
            continue
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            if "*" in action:
                found.append(action)
    return found
