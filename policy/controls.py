"""The checks of docs/CONTROLS.md as plain functions, shared by the CrossGuard pack (`policy/__main__.py`) and tests.

A resource check is `check(resource_type, props, context=Context()) -> list[str]`: the violation messages for one
resource, given its properties as the policy engine sees them (engine names, camelCase; JSON documents as text).
A check ignores resource types it is not about, so every check can be run over every resource. Each is registered in
`RESOURCE_CHECKS` with its CONTROLS row, a slug and its sources; the pack names the policy `etl-<row>-<slug>`.
A stack check (`STACK_CHECKS`) sees every resource of the stack at once and returns (urn, message) pairs: companion
resources of each bucket, a redrive policy on every queue that is not a dead-letter queue, protection in prod.

Environments. What a stack may do depends on its profile (`etl-platform:environment`), never on its name: a `dev-eu`
stack is a dev stack, a `prod-us` stack a prod stack. The program writes the profile into the `Environment` default tag
of the stack's aws provider; `environment_of()` reads it from the provider's inputs, and a stack check refuses a
stack whose provider does not name a known environment.

Unknown values. During `pulumi preview` a value the provider computes (an ARN, a bucket name, a policy document
rendered from ARNs) is unknown. The pack hands such values to the checks as `None` (the test mocks hand an `Unknown`
object); a property that is present but unknown never produces a violation: the check cannot know, and the update
that resolves it is checked again. A property that is absent was not set, and is judged as its default.
JSON text that is unknown is skipped the same way.

Not checkable on one resource (and covered instead):
- Lambda.5 "private subnets in >= 2 AZs": a function only names subnet ids; the check asks for >= 2 subnets, and
  tests/unit/test_foundation.py asserts the private subnets sit in distinct AZs.
- Row 15 "async-invoked functions" and row 17 "visibility timeout >= 6x the function timeout" need the function and
  its trigger together; the invoke config and the queue are checked on their own, the pairing in tests/unit.
- Row 54's list of required alarms and row 58's interface endpoints depend on the architectures deployed: tests/unit.
- Row 57 "private subnets": any subnet mapping public IPs is reported (the program maps none).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from components.policies import ACTIONS_REQUIRING_STAR, wildcard_actions

Props = Mapping[str, Any]


ENVIRONMENTS = ("dev", "staging", "prod")
"""The profiles (`components.settings.Environment`; a test keeps the two in step)."""
DISPOSABLE_ENVIRONMENTS = frozenset({"dev"})
"""Buckets and repositories may be force-destroyed here (the profile's `force_destroy`)."""
PROTECTED_ENVIRONMENTS = frozenset({"prod"})
"""Stateful resources must be protected here (the profile's `protect`)."""
ENVIRONMENT_TAG = "Environment"
AWS_PROVIDER = "pulumi:providers:aws"


@dataclasses.dataclass(frozen=True)
class Context:
    """What a check may need beyond the properties: the stack's environment, read from its provider's default tags
    (dev allows force-destroy), and the logical name (for the documented exceptions below)."""

    environment: str | None = None
    name: str = ""


def environment_of(provider_props: Props | None) -> str | None:
    """The `Environment` default tag of an aws provider's inputs (`defaultTags` arrives as JSON text from the engine
    and the mocks, as a mapping from some SDKs); None when it is not there."""
    tags: Any = _get(provider_props or {}, "defaultTags")
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except json.JSONDecodeError:
            return None
    value = _get(tags, "tags", ENVIRONMENT_TAG) if isinstance(tags, Mapping) else None
    return value if isinstance(value, str) else None


ResourceCheck = Callable[..., list[str]]


@dataclasses.dataclass(frozen=True)
class Control:
    row: int
    slug: str
    sources: str
    summary: str
    resource_types: tuple[str, ...]
    check: ResourceCheck

    @property
    def name(self) -> str:
        return f"etl-{self.row}-{self.slug}"

    @property
    def description(self) -> str:
        return f"docs/CONTROLS.md row {self.row} ({self.sources}): {self.summary}"


RESOURCE_CHECKS: list[Control] = []

# Documented exceptions, by the end of the logical resource name.
SSE_S3_EXCEPTIONS: dict[str, str] = {
    "lake-access-logs-encryption": "S3 server access logs can only be delivered to a bucket encrypted with SSE-S3",
    "replica-access-logs-encryption": "the replica region's access-log bucket, for the same reason",
}
MANAGED_POLICY_EXCEPTIONS: dict[str, str] = {
    "arn:aws:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2": (
        "the EMR service role's policy: AWS keeps it in step with what EMR provisions, and it only touches resources "
        "tagged for-use-with-amazon-emr-managed-policies=true (the deprecated AmazonElasticMapReduceRole is not "
        "an exception, nor is AmazonElasticMapReduceforEC2Role, s3:* on *)"
    ),
}
"""AWS managed policy ARN -> why it is used (row 11)."""
INSTANCE_PROFILE_PRINCIPAL = "ec2.amazonaws.com"
"""Trusted without source conditions: AWS documents instance-profile roles that way (row 11, amended)."""


def control(row: int, slug: str, sources: str, summary: str, *types: str) -> Callable[[ResourceCheck], ResourceCheck]:
    """Register a check; the wrapper skips other resource types so the check only reads props of its own."""

    def register(body: ResourceCheck) -> ResourceCheck:
        def check(resource_type: str, props: Props, context: Context | None = None) -> list[str]:
            if resource_type not in types:
                return []
            return list(body(resource_type, props, context or Context()))

        check.__name__ = body.__name__
        check.__doc__ = body.__doc__
        RESOURCE_CHECKS.append(Control(row, slug, sources, summary, types, check))
        return check

    return register


# ---------------------------------------------------------------------------------------------------------------------
# Reading props
# ---------------------------------------------------------------------------------------------------------------------

_PLAIN = (str, int, float, bool, list, dict)


def unknown(value: Any) -> bool:
    """A present value the engine does not know yet (None from the pack, an Unknown object from the mocks)."""
    return value is None or (value is not MISSING and not isinstance(value, _PLAIN))


def _get(props: Any, *path: str) -> Any:
    """The value at a path; `MISSING` when a key on the way is absent, None when a value on the way is unknown."""
    current = props
    for key in path:
        if current is MISSING:
            return MISSING
        if unknown(current):
            return None
        if not isinstance(current, Mapping) or key not in current:
            return MISSING
        current = current[key]
    return current


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _is_set(value: Any) -> bool:
    """Set to something, or unknown (which counts as set: it is computed)."""
    return value is not MISSING and value != "" and value != []


def _document(value: Any) -> Any:
    """A JSON document given as text; None when unknown or not JSON (so nothing is reported on it)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict | list):
        return value
    return None


def _as_list(value: Any) -> list[Any]:
    if value is MISSING or value is None:
        return []
    return value if isinstance(value, list) else [value]


def _statements(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        return []
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, dict)]


def _public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in _as_list(principal.get("AWS"))


def _public_allows(document: Any) -> list[str]:
    return [
        f"statement {s.get('Sid', index)} allows the public principal '*'"
        for index, s in enumerate(_statements(document))
        if s.get("Effect") == "Allow" and _public_principal(s.get("Principal"))
    ]


def _denies_plain_http(document: Any, action: str) -> bool:
    for statement in _statements(document):
        condition = statement.get("Condition", {})
        secure = condition.get("Bool", {}).get("aws:SecureTransport") if isinstance(condition, dict) else None
        actions = _as_list(statement.get("Action"))
        service = action.split(":")[0]
        if (
            statement.get("Effect") == "Deny"
            and str(secure).lower() == "false"
            and (action in actions or f"{service}:*" in actions or "*" in actions)
        ):
            return True
    return False


def _customer_key(value: Any, service: str) -> list[str]:
    if value is MISSING:
        return [f"not encrypted with the customer key (kms key unset, the AWS managed key of {service} is used)"]
    if isinstance(value, str) and value.startswith(f"alias/aws/{service}"):
        return [f"encrypted with the AWS managed key {value}, not the customer key"]
    return []


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL", re.IGNORECASE)


def _secret_like(names: Iterable[Any]) -> list[str]:
    return sorted(name for name in names if isinstance(name, str) and SECRET_NAME.search(name))


def _secret_like_variables(variables: dict[str, Any]) -> list[str]:
    """Secret-like names in a function's environment, less the references: a name ending in `_ARN` whose value is an
    ARN (or unknown, as in a preview) says where a secret is kept, which is not a secret (row 14, amended)."""
    return [
        name
        for name in _secret_like(variables)
        if not (name.endswith("_ARN") and (unknown(variables[name]) or str(variables[name]).startswith("arn:")))
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Kinesis and Firehose (rows 24-26), alarm dimensions (row 65)
# ---------------------------------------------------------------------------------------------------------------------

STREAM = "aws:kinesis/stream:Stream"
DELIVERY_STREAM = "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
RETENTION_HOURS_OUTSIDE_DEV = 168


@control(24, "kinesis-customer-key", "SH Kinesis.1; nag KDS1", "streams are encrypted with the customer key", STREAM)
def kinesis_customer_key(resource_type: str, props: Props, context: Context) -> list[str]:
    encryption = _get(props, "encryptionType")
    if not unknown(encryption) and encryption != "KMS":
        return [f"encryptionType is {'unset' if encryption is MISSING else encryption}, not KMS"]
    return _customer_key(_get(props, "kmsKeyId"), "kinesis")


@control(
    25,
    "kinesis-retention",
    "SH Kinesis.3",
    f"streams keep records at least {RETENTION_HOURS_OUTSIDE_DEV} hours outside dev",
    STREAM,
)
def kinesis_retention(resource_type: str, props: Props, context: Context) -> list[str]:
    hours = _get(props, "retentionPeriod")
    if unknown(hours) or context.environment in DISPOSABLE_ENVIRONMENTS:
        return []
    value = 24 if hours is MISSING else _int(hours)
    if value is not None and value < RETENTION_HOURS_OUTSIDE_DEV:
        return [
            f"retentionPeriod is {value} hours outside dev (environment {context.environment}); keep at least "
            f"{RETENTION_HOURS_OUTSIDE_DEV} so a consumer outage can be replayed"
        ]
    return []


@control(
    26,
    "firehose-key-errors-logging",
    "SH DataFirehose.1; nag KDF1",
    "delivery to S3 encrypted with the customer key, failed records under an error prefix, delivery logging on",
    DELIVERY_STREAM,
)
def firehose_key_errors_logging(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    if _get(props, "destination") not in ("extended_s3", None):
        return found
    s3 = _get(props, "extendedS3Configuration")
    if unknown(s3):
        return found
    if s3 is MISSING:
        return ["no extendedS3Configuration"]
    if not _is_set(_get(s3, "kmsKeyArn")):
        found.append("extendedS3Configuration.kmsKeyArn unset: objects are not encrypted with the customer key")
    if not _is_set(_get(s3, "errorOutputPrefix")):
        found.append("extendedS3Configuration.errorOutputPrefix unset: failed records mix with delivered ones")
    logging = _get(s3, "cloudwatchLoggingOptions", "enabled")
    if not unknown(logging) and logging is not True:
        found.append("extendedS3Configuration.cloudwatchLoggingOptions.enabled must be true")
    source = _get(props, "kinesisSourceConfiguration")
    sse = _get(props, "serverSideEncryption", "keyType")
    if source is MISSING and not unknown(sse) and sse != "CUSTOMER_MANAGED_CMK":
        found.append("a Direct PUT delivery stream must encrypt with serverSideEncryption keyType CUSTOMER_MANAGED_CMK")
    return found


ALARM_DIMENSIONS = {
    "AWS/Kinesis": "StreamName",
    "AWS/Firehose": "DeliveryStreamName",
    "AWS/Lambda": "FunctionName",
    "AWS/SQS": "QueueName",
    "AWS/States": "StateMachineArn",
}
"""The dimension an alarm on a namespace's metrics needs to watch one resource: without it, it watches an aggregate
that is never published, so it never fires."""


@control(
    65,
    "alarm-dimensions",
    "ours (CloudWatch metric dimensions)",
    "alarms on Kinesis, Firehose, Lambda, SQS and Step Functions metrics name the resource they watch",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
)
def alarm_dimensions(resource_type: str, props: Props, context: Context) -> list[str]:
    namespace = _get(props, "namespace")
    dimensions = _get(props, "dimensions")
    needed = ALARM_DIMENSIONS.get(namespace) if isinstance(namespace, str) else None
    if needed is None or unknown(dimensions):
        return []
    if dimensions is MISSING or needed not in dimensions:
        return [f"an alarm on {namespace} {_get(props, 'metricName')} without the {needed} dimension never fires"]
    return []


# ---------------------------------------------------------------------------------------------------------------------
# S3 (rows 1-7)
# ---------------------------------------------------------------------------------------------------------------------

S3 = "aws:s3/"
BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"


@control(
    1,
    "s3-public-access-block",
    "SH S3.8/S3.1; nag S2; ckv CKV_AWS_53-56",
    "all four public access block flags are true",
    PUBLIC_ACCESS_BLOCK,
)
def s3_public_access_block(resource_type: str, props: Props, context: Context) -> list[str]:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    return [
        f"{flag} must be true" for flag in flags if not unknown(_get(props, flag)) and _get(props, flag) is not True
    ]


@control(
    2,
    "s3-sse-kms",
    "SH S3.17; ckv CKV_AWS_145/19",
    "default encryption is aws:kms with the customer key and bucket keys",
    SSE,
)
def s3_sse_kms(resource_type: str, props: Props, context: Context) -> list[str]:
    if any(context.name.endswith(suffix) for suffix in SSE_S3_EXCEPTIONS):
        return []
    rules = _get(props, "rules")
    if unknown(rules):
        return []
    if not rules:
        return ["no encryption rule"]
    found: list[str] = []
    for rule in rules:
        default = _get(rule, "applyServerSideEncryptionByDefault")
        algorithm = _get(default, "sseAlgorithm")
        if not unknown(algorithm) and algorithm not in ("aws:kms", "aws:kms:dsse"):
            found.append(f"sseAlgorithm is {algorithm!r}, not 'aws:kms'")
        elif _get(default, "kmsMasterKeyId") is MISSING:
            found.append("kmsMasterKeyId unset: the AWS managed aws/s3 key is used, not the customer key")
        enabled = _get(rule, "bucketKeyEnabled")
        if not unknown(enabled) and enabled is not True:
            found.append("bucketKeyEnabled must be true")
    return found


@control(
    3,
    "s3-tls-only-policy",
    "SH S3.5/S3.6/S3.2/S3.3; nag S10",
    "the bucket policy denies s3:* without TLS on the bucket and its objects; no public Allow",
    BUCKET_POLICY,
)
def s3_tls_only_policy(resource_type: str, props: Props, context: Context) -> list[str]:
    document = _document(_get(props, "policy"))
    if document is None:
        return []
    found: list[str] = []
    deny = [
        s
        for s in _statements(document)
        if s.get("Effect") == "Deny"
        and "s3:*" in _as_list(s.get("Action"))
        and _denies_plain_http({"Statement": [s]}, "s3:*")
    ]
    covers_objects = any(
        any(isinstance(r, str) and r.endswith("/*") for r in _as_list(s.get("Resource")))
        and any(
            isinstance(r, str) and r.startswith("arn:") and not r.endswith("/*") for r in _as_list(s.get("Resource"))
        )
        for s in deny
    )
    if not covers_objects:
        found.append("no statement denies s3:* without TLS (aws:SecureTransport=false) on the bucket and its objects")
    return found + _public_allows(document)


@control(
    4,
    "s3-access-logging",
    "SH S3.9; nag S1",
    "server access logs go to a separate log bucket under a prefix",
    BUCKET_LOGGING,
)
def s3_access_logging(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    target, bucket = _get(props, "targetBucket"), _get(props, "bucket")
    if not _is_set(target):
        found.append("targetBucket unset")
    elif isinstance(target, str) and target == bucket:
        found.append("access logs are written to the bucket itself; use the separate log bucket")
    if not _is_set(_get(props, "targetPrefix")):
        found.append("targetPrefix unset")
    return found


@control(
    5,
    "s3-versioning",
    "SH S3.14; ckv CKV_AWS_21",
    "versioning is Enabled; buckets are not force-destroyed outside dev",
    VERSIONING,
    BUCKET,
)
def s3_versioning(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type == BUCKET:
        force = _get(props, "forceDestroy")
        if force is True and context.environment not in DISPOSABLE_ENVIRONMENTS:
            return [f"forceDestroy must be false outside dev (environment {context.environment})"]
        return []
    status = _get(props, "versioningConfiguration", "status")
    if not unknown(status) and status != "Enabled":
        return [f"versioning status is {status if status is not MISSING else 'unset'}, not 'Enabled'"]
    return []


@control(
    6,
    "s3-lifecycle",
    "SH S3.10/S3.13",
    "enabled rules expire noncurrent versions and abort multipart uploads within 7 days",
    LIFECYCLE,
)
def s3_lifecycle(resource_type: str, props: Props, context: Context) -> list[str]:
    rules = _get(props, "rules")
    if unknown(rules):
        return []
    if not rules:
        return ["no lifecycle rule"]
    found: list[str] = []
    for index, rule in enumerate(rules):
        rule_id = _get(rule, "id")
        label = rule_id if isinstance(rule_id, str) else str(index)
        status = _get(rule, "status")
        if not unknown(status) and status != "Enabled":
            found.append(f"rule {label} is not Enabled")
        if _get(rule, "noncurrentVersionExpiration") is MISSING:
            found.append(f"rule {label} has no noncurrentVersionExpiration")
        days = _get(rule, "abortIncompleteMultipartUpload", "daysAfterInitiation")
        if days is MISSING:
            found.append(f"rule {label} does not abort incomplete multipart uploads")
        elif _int(days) is not None and (_int(days) or 0) > 7:
            found.append(f"rule {label} aborts incomplete multipart uploads after {_int(days)} days (at most 7)")
    return found


@control(
    7,
    "s3-owner-enforced",
    "SH S3.12/S3.11",
    "object ownership is BucketOwnerEnforced; bucket events go to EventBridge",
    OWNERSHIP,
    NOTIFICATION,
)
def s3_owner_enforced(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type == NOTIFICATION:
        value = _get(props, "eventbridge")
        return (
            [] if unknown(value) or value is True else ["eventbridge must be true: pipelines are driven by EventBridge"]
        )
    ownership = _get(props, "rule", "objectOwnership")
    if not unknown(ownership) and ownership != "BucketOwnerEnforced":
        return [f"objectOwnership is {ownership if ownership is not MISSING else 'unset'}, not 'BucketOwnerEnforced'"]
    return []


REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"


@control(
    63,
    "s3-replication",
    "SH S3.7; ours",
    "replication rules are enabled, include SSE-KMS objects, re-encrypt with a customer key in the replica region "
    "and publish replication metrics",
    REPLICATION,
)
def s3_replication(resource_type: str, props: Props, context: Context) -> list[str]:
    rules = _get(props, "rules")
    if unknown(rules):
        return []
    if not rules:
        return ["no replication rule"]
    found: list[str] = []
    for index, rule in enumerate(_as_list(rules)):
        rule_id = _get(rule, "id")
        label = rule_id if isinstance(rule_id, str) else str(index)
        checks = {
            "status": (_get(rule, "status"), "Enabled"),
            "sourceSelectionCriteria.sseKmsEncryptedObjects.status": (
                _get(rule, "sourceSelectionCriteria", "sseKmsEncryptedObjects", "status"),
                "Enabled",
            ),
            "destination.metrics.status": (_get(rule, "destination", "metrics", "status"), "Enabled"),
        }
        for path, (value, wanted) in checks.items():
            if not unknown(value) and value != wanted:
                found.append(f"rule {label}: {path} is {value if value is not MISSING else 'unset'}, not {wanted}")
        if _get(rule, "destination", "encryptionConfiguration", "replicaKmsKeyId") is MISSING:
            found.append(f"rule {label}: replicas are not encrypted with a customer key (replicaKmsKeyId unset)")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# KMS (rows 8-9)
# ---------------------------------------------------------------------------------------------------------------------

KEY = "aws:kms/key:Key"


@control(8, "kms-rotation", "SH KMS.4; nag KMS5", "customer keys rotate", KEY)
def kms_rotation(resource_type: str, props: Props, context: Context) -> list[str]:
    value = _get(props, "enableKeyRotation")
    return [] if unknown(value) or value is True else ["enableKeyRotation must be true"]


@control(
    9,
    "kms-key-policy",
    "SH KMS.3/KMS.5",
    "30-day deletion window; explicit key policy without an unconditioned '*' or service principal",
    KEY,
)
def kms_key_policy(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    window = _get(props, "deletionWindowInDays")
    if not unknown(window) and _int(window) != 30:
        found.append(f"deletionWindowInDays is {_int(window) if window is not MISSING else 'unset'}, not 30")
    text = _get(props, "policy")
    if text is MISSING:
        return [*found, "no explicit key policy (the default policy grants the whole account)"]
    for index, statement in enumerate(_statements(_document(text))):
        if statement.get("Effect") != "Allow" or "Condition" in statement:
            continue
        principal = statement.get("Principal")
        sid = statement.get("Sid", index)
        if _public_principal(principal):
            found.append(f"statement {sid} allows the principal '*' without a condition")
        elif isinstance(principal, dict) and "Service" in principal:
            found.append(f"statement {sid} allows a service principal without an aws:SourceAccount condition")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# IAM (rows 10-11)
# ---------------------------------------------------------------------------------------------------------------------

IAM_POLICY = "aws:iam/policy:Policy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


def _identity_policy_findings(document: Any) -> list[str]:
    if not isinstance(document, dict):
        return []
    found = [f"Allow of wildcard action {action!r}" for action in wildcard_actions(document)]
    for index, statement in enumerate(_statements(document)):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", index)
        actions = [a for a in _as_list(statement.get("Action")) if isinstance(a, str)]
        resources = _as_list(statement.get("Resource"))
        if "*" in resources:
            scoped = sorted(a for a in actions if a not in ACTIONS_REQUIRING_STAR and "*" not in a)
            if scoped:
                found.append(f"statement {sid} grants {scoped} on '*'; scope them to ARNs")
        if "kms:Decrypt" in actions:
            loose = [
                r for r in resources if not (isinstance(r, str) and re.match(r"^arn:[^:]+:kms:[^:]*:[^:]*:key/", r))
            ]
            if loose:
                found.append(f"statement {sid} allows kms:Decrypt on {loose}, not on key ARNs")
    return found


@control(
    10,
    "iam-least-privilege",
    "SH IAM.1/IAM.21/KMS.1/KMS.2; nag IAM5",
    "no Allow of '*' or 'svc:*' actions; kms:Decrypt only on key ARNs",
    IAM_POLICY,
    ROLE_POLICY,
    ROLE,
)
def iam_least_privilege(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type != ROLE:
        return _identity_policy_findings(_document(_get(props, "policy")))
    found: list[str] = []
    for inline in _as_list(_get(props, "inlinePolicies")):
        found += _identity_policy_findings(_document(_get(inline, "policy")))
    return found


def _managed(arn: Any) -> bool:
    return (
        isinstance(arn, str)
        and bool(re.match(r"^arn:[^:]+:iam::aws:policy/", arn))
        and arn not in MANAGED_POLICY_EXCEPTIONS
    )


@control(
    11,
    "iam-trust-one-service",
    "nag IAM4",
    "a role trusts one service principal on behalf of this account; no undocumented AWS managed policies",
    ROLE,
    ROLE_POLICY_ATTACHMENT,
)
def iam_trust_one_service(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type == ROLE_POLICY_ATTACHMENT:
        arn = _get(props, "policyArn")
        return [f"AWS managed policy {arn} is not a documented exception"] if _managed(arn) else []
    found = [
        f"AWS managed policy {arn} is not a documented exception"
        for arn in _as_list(_get(props, "managedPolicyArns"))
        if _managed(arn)
    ]
    document = _document(_get(props, "assumeRolePolicy"))
    for index, statement in enumerate(_statements(document)):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", index)
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if len(services) != 1 or not isinstance(principal, dict) or set(principal) != {"Service"}:
            found.append(f"trust statement {sid} must name exactly one service principal, names {principal}")
        keys: set[str] = set()
        for operator in (statement.get("Condition") or {}).values():
            if isinstance(operator, dict):
                keys |= set(operator)
        if not keys & {"aws:SourceAccount", "aws:SourceArn"} and services != [INSTANCE_PROFILE_PRINCIPAL]:
            found.append(f"trust statement {sid} has no aws:SourceAccount or aws:SourceArn condition")
    return found


def _wildcard_s3(resource: Any) -> bool:
    """A resource that reaches every bucket (or every object of any bucket): `*`, `arn:aws:s3:::*`, `...:::*/...`."""
    if not isinstance(resource, str):
        return False
    if resource == "*":
        return True
    match = re.match(r"^arn:[^:]+:s3:::([^/]*)", resource)
    return match is not None and "*" in match.group(1)


def _s3_wildcard_findings(document: Any) -> list[str]:
    found = []
    for index, statement in enumerate(_statements(document)):
        if statement.get("Effect") != "Allow":
            continue
        actions = [a for a in _as_list(statement.get("Action")) if isinstance(a, str) and a.startswith("s3:")]
        loose = [r for r in _as_list(statement.get("Resource")) if _wildcard_s3(r)]
        if actions and loose:
            found.append(
                f"statement {statement.get('Sid', index)} grants {sorted(actions)} on {loose}: name the buckets"
            )
    return found


@control(
    66,
    "iam-no-wildcard-s3",
    "ours (EMR instance roles); SH IAM.21",
    "no S3 action on every bucket ('*', 'arn:aws:s3:::*'): instance and job roles name their buckets",
    IAM_POLICY,
    ROLE_POLICY,
    ROLE,
)
def iam_no_wildcard_s3(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type != ROLE:
        return _s3_wildcard_findings(_document(_get(props, "policy")))
    return [
        f
        for inline in _as_list(_get(props, "inlinePolicies"))
        for f in _s3_wildcard_findings(_document(_get(inline, "policy")))
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Glue (row 28)
# ---------------------------------------------------------------------------------------------------------------------

CATALOG_ENCRYPTION = "aws:glue/dataCatalogEncryptionSettings:DataCatalogEncryptionSettings"


@control(
    28,
    "glue-catalog-encryption",
    "ckv CKV_AWS_94",
    "the stack that owns the account-and-region catalog setting encrypts metadata and connection passwords with a "
    "customer key (other stacks declare no setting)",
    CATALOG_ENCRYPTION,
)
def glue_catalog_encryption(resource_type: str, props: Props, context: Context) -> list[str]:
    settings = _get(props, "dataCatalogEncryptionSettings")
    if unknown(settings):
        return []
    found: list[str] = []
    at_rest = _get(settings, "encryptionAtRest")
    mode = _get(at_rest, "catalogEncryptionMode")
    if not unknown(mode) and mode != "SSE-KMS":
        found.append(f"catalogEncryptionMode is {mode if mode is not MISSING else 'unset'}, not SSE-KMS")
    elif _get(at_rest, "sseAwsKmsKeyId") is MISSING:
        found.append("sseAwsKmsKeyId unset: catalog metadata is not encrypted with the customer key")
    passwords = _get(settings, "connectionPasswordEncryption")
    returned = _get(passwords, "returnConnectionPasswordEncrypted")
    if not unknown(returned) and returned is not True:
        found.append("returnConnectionPasswordEncrypted must be true")
    elif _get(passwords, "awsKmsKeyId") is MISSING:
        found.append("connectionPasswordEncryption.awsKmsKeyId unset")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# EMR (rows 30-32): the serverless application and security configuration are resources; a cluster exists only as
# the createCluster request in a state machine's definition, which is where it is checked.
# ---------------------------------------------------------------------------------------------------------------------

EMR_APPLICATION = "aws:emrserverless/application:Application"
EMR_SECURITY_CONFIGURATION = "aws:emr/securityConfiguration:SecurityConfiguration"
EMR_CLUSTER = "aws:emr/cluster:Cluster"
EMR_STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"  # STATE_MACHINE, defined with the ECS checks below


def _emr_tasks(props: Props, integration: str) -> list[tuple[str, dict[str, Any]]]:
    definition = _document(_get(props, "definition"))
    return [
        (path, state.get("Parameters") or {})
        for path, state, _ in _walk_states((definition or {}).get("States"))
        if isinstance(state.get("Resource"), str) and f":elasticmapreduce:{integration}" in state["Resource"]
    ]


@control(
    30,
    "emr-private-network",
    "SH EMR.1/EMR.2",
    "EMR runs in the private subnets: serverless applications with a network configuration, clusters (created by a "
    "state machine or declared) in named subnets with EMR-managed security groups, no public IP",
    EMR_APPLICATION,
    EMR_CLUSTER,
    EMR_STATE_MACHINE,
)
def emr_private_network(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type == EMR_APPLICATION:
        network = _get(props, "networkConfiguration")
        subnets = _get(network, "subnetIds")
        if unknown(network) or unknown(subnets):
            return []
        return [] if _as_list(subnets) else ["no networkConfiguration.subnetIds: jobs would run outside the VPC"]
    if resource_type == EMR_CLUSTER:
        subnet = _get(props, "ec2Attributes", "subnetId")
        subnets = _get(props, "ec2Attributes", "subnetIds")
        return [] if _is_set(subnet) or _is_set(subnets) else ["no ec2Attributes subnet: the cluster is not private"]
    found = []
    for path, parameters in _emr_tasks(props, "createCluster"):
        instances = parameters.get("Instances") or {}
        if not (instances.get("Ec2SubnetIds") or instances.get("Ec2SubnetId")):
            found.append(f"task state {path} creates a cluster in no named subnet")
        for group in ("EmrManagedMasterSecurityGroup", "EmrManagedSlaveSecurityGroup", "ServiceAccessSecurityGroup"):
            if not instances.get(group):
                found.append(f"task state {path} creates a cluster without {group}")
    return found


def _security_configuration_findings(configuration: Any) -> list[str]:
    if not isinstance(configuration, dict):
        return []
    encryption = configuration.get("EncryptionConfiguration") or {}
    found = []
    if encryption.get("EnableAtRestEncryption") is not True:
        found.append("EnableAtRestEncryption must be true")
    at_rest = encryption.get("AtRestEncryptionConfiguration") or {}
    s3 = at_rest.get("S3EncryptionConfiguration") or {}
    if s3.get("EncryptionMode") not in ("SSE-KMS", "CSE-KMS") or not s3.get("AwsKmsKey"):
        found.append("S3EncryptionConfiguration must be SSE-KMS with the customer key (AwsKmsKey)")
    disk = at_rest.get("LocalDiskEncryptionConfiguration") or {}
    if disk.get("EncryptionKeyProviderType") != "AwsKms" or not disk.get("AwsKmsKey"):
        found.append("LocalDiskEncryptionConfiguration must use AwsKms with the customer key")
    if disk.get("EnableEbsEncryption") is not True:
        found.append("LocalDiskEncryptionConfiguration.EnableEbsEncryption must be true")
    in_transit = encryption.get("InTransitEncryptionConfiguration") or {}
    if encryption.get("EnableInTransitEncryption") is True and not in_transit.get("TLSCertificateConfiguration"):
        found.append("EnableInTransitEncryption without a TLSCertificateConfiguration")
    return found


@control(
    31,
    "emr-security-configuration",
    "SH EMR.3/EMR.4; nag EMR4/EMR5",
    "at-rest encryption of S3, local disks and EBS with the customer key; in transit with the stack's certificates "
    "where it names them; every cluster names its security configuration",
    EMR_SECURITY_CONFIGURATION,
    EMR_STATE_MACHINE,
)
def emr_security_configuration(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type == EMR_SECURITY_CONFIGURATION:
        return _security_configuration_findings(_document(_get(props, "configuration")))
    return [
        f"task state {path} creates a cluster without a SecurityConfiguration"
        for path, parameters in _emr_tasks(props, "createCluster")
        if not parameters.get("SecurityConfiguration")
    ]


@control(
    32,
    "emr-logs-and-stop",
    "nag EMR2/EMR6",
    "serverless: auto-stop with an idle timeout, maximum capacity, logs to S3 with the key or to CloudWatch; "
    "clusters: a log URI with the key, idle auto-termination, steps that stop on failure",
    EMR_APPLICATION,
    EMR_STATE_MACHINE,
)
def emr_logs_and_stop(resource_type: str, props: Props, context: Context) -> list[str]:
    found = []
    if resource_type == EMR_APPLICATION:
        stop = _get(props, "autoStopConfiguration")
        if not unknown(stop) and (_get(stop, "enabled") is False or _get(stop, "idleTimeoutMinutes") is MISSING):
            found.append("autoStopConfiguration must be enabled with an idleTimeoutMinutes (started capacity bills)")
        if _get(props, "maximumCapacity") is MISSING:
            found.append("no maximumCapacity: a job could scale without bound")
        monitoring = _get(props, "monitoringConfiguration")
        if unknown(monitoring):
            return found
        s3_logs = _get(monitoring, "s3MonitoringConfiguration")
        cloudwatch = _get(monitoring, "cloudwatchLoggingConfiguration", "enabled")
        if s3_logs is MISSING and cloudwatch is not True:
            found.append("no monitoringConfiguration: job logs go nowhere the stack keeps")
        elif s3_logs is not MISSING and _get(s3_logs, "encryptionKeyArn") is MISSING:
            found.append("s3MonitoringConfiguration without encryptionKeyArn: logs not encrypted with the customer key")
        return found
    for path, parameters in _emr_tasks(props, "createCluster"):
        if not parameters.get("LogUri"):
            found.append(f"task state {path} creates a cluster without a LogUri")
        elif not parameters.get("LogEncryptionKmsKeyId"):
            found.append(f"task state {path} creates a cluster whose logs are not encrypted with the customer key")
        if not (parameters.get("AutoTerminationPolicy") or {}).get("IdleTimeout"):
            found.append(f"task state {path} creates a cluster without an idle AutoTerminationPolicy")
    for path, parameters in _emr_tasks(props, "addStep"):
        action = (parameters.get("Step") or {}).get("ActionOnFailure")
        if action not in ("TERMINATE_CLUSTER", "CANCEL_AND_WAIT"):
            found.append(f"task state {path} adds a step with ActionOnFailure {action}: later steps would run")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# Glue jobs (rows 27, 29)
# ---------------------------------------------------------------------------------------------------------------------

GLUE_JOB = "aws:glue/job:Job"
GLUE_CRAWLER = "aws:glue/crawler:Crawler"
GLUE_SECURITY_CONFIGURATION = "aws:glue/securityConfiguration:SecurityConfiguration"
CURRENT_GLUE_VERSIONS = ("5.0", "5.1")
"""Glue versions with current Spark and Python (5.x); 4.0 and older are not."""
SPARK_COMMANDS = ("glueetl", "gluestreaming")
# A content-addressed key names the content's hash: `...-<16 or more hex>.<suffix>` (components.architectures.glue).
CONTENT_ADDRESSED = re.compile(r"-[0-9a-f]{16,64}\.[a-z]+$")


@control(
    27,
    "glue-security-configuration",
    "nag GL1/GL3",
    "security configurations encrypt S3 output and CloudWatch logs (SSE-KMS) and job bookmarks (CSE-KMS) with a "
    "customer key; every job and crawler names one",
    GLUE_SECURITY_CONFIGURATION,
    GLUE_JOB,
    GLUE_CRAWLER,
)
def glue_security_configuration(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type != GLUE_SECURITY_CONFIGURATION:
        name = _get(props, "securityConfiguration")
        return (
            ["no securityConfiguration: its logs and output are not encrypted with the customer key"]
            if (name is MISSING or name == "")
            else []
        )
    config = _get(props, "encryptionConfiguration")
    if unknown(config):
        return []
    found: list[str] = []
    for part, mode_key, wanted in (
        ("s3Encryption", "s3EncryptionMode", "SSE-KMS"),
        ("cloudwatchEncryption", "cloudwatchEncryptionMode", "SSE-KMS"),
        ("jobBookmarksEncryption", "jobBookmarksEncryptionMode", "CSE-KMS"),
    ):
        section = _get(config, part)
        if isinstance(section, list):  # some engines hand a one-element list
            section = section[0] if section else MISSING
        mode = _get(section, mode_key)
        if not unknown(mode) and mode != wanted:
            found.append(f"{part}.{mode_key} is {mode if mode is not MISSING else 'unset'}, not {wanted}")
        elif _get(section, "kmsKeyArn") is MISSING:
            found.append(f"{part}.kmsKeyArn unset: not encrypted with the customer key")
    return found


@control(
    29,
    "glue-job",
    "SH Glue.4; ours",
    "Spark jobs run a current Glue version (5.x) sized by worker type and number (no MaxCapacity), with a timeout, "
    "continuous logging and metrics, bookmarks disabled (exactly-once comes from the ledger), no retries of their own "
    "(the orchestrator retries), bounded concurrent runs, and a content-addressed script key",
    GLUE_JOB,
)
def glue_job(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    version = _get(props, "glueVersion")
    if not unknown(version) and version not in CURRENT_GLUE_VERSIONS:
        shown = version if version is not MISSING else "unset (0.9)"
        found.append(f"glueVersion {shown} is not current ({', '.join(CURRENT_GLUE_VERSIONS)})")
    command = _get(props, "command", "name")
    if unknown(command) or command is MISSING or command in SPARK_COMMANDS:
        capacity = _get(props, "maxCapacity")
        if not unknown(capacity) and capacity is not MISSING:
            found.append("maxCapacity set on a Spark job: size it with workerType and numberOfWorkers")
        if _get(props, "workerType") is MISSING or _get(props, "numberOfWorkers") is MISSING:
            found.append("workerType and numberOfWorkers must be set")
    timeout = _get(props, "timeout")
    if timeout is MISSING:
        found.append("timeout unset: a stuck run would hold its workers for Glue's default 48 hours")
    retries = _get(props, "maxRetries")
    if not unknown(retries) and retries is not MISSING and _int(retries) != 0:
        found.append(f"maxRetries is {_int(retries)}, not 0: retries are the orchestrator's")
    if _get(props, "executionProperty", "maxConcurrentRuns") is MISSING:
        found.append("executionProperty.maxConcurrentRuns unset")
    arguments = _get(props, "defaultArguments")
    if not unknown(arguments):
        arguments = arguments if isinstance(arguments, Mapping) else {}
        for key, wanted in (
            ("--enable-continuous-cloudwatch-log", "true"),
            ("--enable-metrics", "true"),
            ("--job-bookmark-option", "job-bookmark-disable"),
        ):
            value = arguments.get(key)
            if not unknown(value) and value != wanted:
                found.append(f"defaultArguments {key} is {value!r}, not {wanted!r}")
    script = _get(props, "command", "scriptLocation")
    if not unknown(script) and (not isinstance(script, str) or not CONTENT_ADDRESSED.search(script)):
        found.append(f"scriptLocation {script!r} is not content-addressed (<name>-<sha256 prefix>.py)")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# RDS / Aurora (rows 33-39, 64)
# ---------------------------------------------------------------------------------------------------------------------

RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_CLUSTER_PARAMETERS = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
# The master user names every scanner tries first, and the defaults of the engines (row 37).
DEFAULT_MASTER_USERS = frozenset({"postgres", "admin", "root", "master", "sa", "administrator"})
# What forces TLS in a cluster parameter group, by the family's engine (row 39).
TLS_PARAMETERS = {"aurora-postgresql": ("rds.force_ssl", "1"), "aurora-mysql": ("require_secure_transport", "ON")}
SERVERLESS_INSTANCE_CLASS = "db.serverless"


def _flag(props: Props, key: str, expected: bool, message: str, *, default: bool = False) -> list[str]:
    """`message` when the flag is known and not `expected` (an absent flag is the provider's `default`)."""
    value = _get(props, key)
    if unknown(value):
        return []
    actual = default if value is MISSING else value is True
    return [] if actual == expected else [message]


@control(
    33,
    "rds-storage-encrypted",
    "SH RDS.27; nag RDS2",
    "Aurora storage is encrypted with the customer key",
    RDS_CLUSTER,
)
def rds_storage_encrypted(resource_type: str, props: Props, context: Context) -> list[str]:
    found = _flag(props, "storageEncrypted", True, "storageEncrypted must be true")
    if _get(props, "kmsKeyId") is MISSING:
        found.append("kmsKeyId unset: storage is encrypted with the AWS managed key aws/rds, not the customer key")
    return found


@control(
    34,
    "rds-backups-and-deletion",
    "SH RDS.11; nag RDS10",
    "backups kept 7 days or more outside dev; deletion protection in prod; a final snapshot and the automated "
    "backups kept after deletion outside dev",
    RDS_CLUSTER,
)
def rds_backups_and_deletion(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    disposable = context.environment in DISPOSABLE_ENVIRONMENTS
    retention = _get(props, "backupRetentionPeriod")
    days = 1 if retention is MISSING else _int(retention)
    if days is not None and not disposable and days < 7:
        found.append(
            f"backupRetentionPeriod is {days} day(s), at least 7 outside dev (environment {context.environment})"
        )
    if context.environment in PROTECTED_ENVIRONMENTS:
        found += _flag(props, "deletionProtection", True, f"deletionProtection must be true in {context.environment}")
    if not disposable:
        skip = _get(props, "skipFinalSnapshot")
        if skip is True:
            found.append(
                f"skipFinalSnapshot is true: no final snapshot outside dev (environment {context.environment})"
            )
        elif not unknown(skip) and _get(props, "finalSnapshotIdentifier") is MISSING:
            found.append("finalSnapshotIdentifier unset: deleting the cluster would fail or leave no snapshot")
        # The provider's default deletes them: only an explicit false keeps them.
        found += _flag(
            props,
            "deleteAutomatedBackups",
            False,
            f"deleteAutomatedBackups must be false outside dev (environment {context.environment})",
            default=True,
        )
    return found


@control(36, "rds-not-public", "SH RDS.2", "database instances are not publicly accessible", RDS_INSTANCE, RDS_CLUSTER)
def rds_not_public(resource_type: str, props: Props, context: Context) -> list[str]:
    return ["publiclyAccessible must be false"] if _get(props, "publiclyAccessible") is True else []


@control(
    37,
    "rds-auth-logs-secret",
    "SH RDS.12/RDS.37; nag RDS6/RDS11",
    "IAM database authentication; the engine's logs exported; a non-default master user whose password RDS keeps "
    "in Secrets Manager, encrypted with the customer key",
    RDS_CLUSTER,
)
def rds_auth_logs_secret(resource_type: str, props: Props, context: Context) -> list[str]:
    found = _flag(props, "iamDatabaseAuthenticationEnabled", True, "iamDatabaseAuthenticationEnabled must be true")
    exports = _get(props, "enabledCloudwatchLogsExports")
    engine = _get(props, "engine")
    if not unknown(exports):
        needed = "postgresql" if engine == "aurora-postgresql" else None
        listed = _as_list(exports)
        if needed and needed not in listed:
            found.append(f"enabledCloudwatchLogsExports must include {needed!r}, got {listed}")
        elif not listed:
            found.append("enabledCloudwatchLogsExports is empty: no engine log reaches CloudWatch")
    user = _get(props, "masterUsername")
    if isinstance(user, str) and user.lower() in DEFAULT_MASTER_USERS:
        found.append(f"masterUsername {user!r} is a default name; choose another")
    if _get(props, "masterPassword") is not MISSING or _get(props, "masterPasswordWo") is not MISSING:
        found.append("a master password is set in the program: it would sit in config and state; let RDS manage it")
    managed = _get(props, "manageMasterUserPassword")
    if not unknown(managed) and managed is not True:
        found.append("manageMasterUserPassword must be true (RDS keeps and rotates the password in Secrets Manager)")
    elif managed is True and _get(props, "masterUserSecretKmsKeyId") is MISSING:
        found.append("masterUserSecretKmsKeyId unset: the master secret is encrypted with aws/secretsmanager")
    return found


@control(
    38,
    "rds-instance-hardening",
    "SH RDS.13/RDS.6",
    "automatic minor version upgrades; Performance Insights encrypted with the customer key; tags copied to "
    "snapshots (the cluster's, which Aurora snapshots)",
    RDS_INSTANCE,
    RDS_CLUSTER,
)
def rds_instance_hardening(resource_type: str, props: Props, context: Context) -> list[str]:
    found = _flag(props, "copyTagsToSnapshot", True, "copyTagsToSnapshot must be true")
    upgrades = _get(props, "autoMinorVersionUpgrade")
    if upgrades is False:
        found.append("autoMinorVersionUpgrade must be true")
    if resource_type == RDS_INSTANCE:
        insights = _get(props, "performanceInsightsEnabled")
        if not unknown(insights) and insights is not True:
            found.append("performanceInsightsEnabled must be true")
        elif insights is True and _get(props, "performanceInsightsKmsKeyId") is MISSING:
            found.append("performanceInsightsKmsKeyId unset: Performance Insights uses the AWS managed key aws/rds")
    return found


@control(
    39,
    "rds-force-tls",
    "SH RDS.38",
    "the cluster parameter group forces TLS (rds.force_ssl=1 for PostgreSQL) and the cluster uses it",
    RDS_CLUSTER_PARAMETERS,
    RDS_CLUSTER,
)
def rds_force_tls(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type == RDS_CLUSTER:
        if _get(props, "dbClusterParameterGroupName") is MISSING:
            return ["dbClusterParameterGroupName unset: the default parameter group does not force TLS"]
        return []
    family = _get(props, "family")
    if unknown(family) or not isinstance(family, str):
        return []
    engine = next((e for e in TLS_PARAMETERS if family.startswith(e)), None)
    if engine is None:
        return []
    name, value = TLS_PARAMETERS[engine]
    parameters = _get(props, "parameters")
    if unknown(parameters):
        return []
    values = {_get(p, "name"): _get(p, "value") for p in _as_list(parameters)}
    if str(values.get(name)) != value:
        return [f"{name} is {values.get(name, 'unset')}, not {value}: connections without TLS are accepted"]
    return []


@control(
    64,
    "rds-serverless-idle-cost",
    "ours (idle cost)",
    "Aurora instances are Serverless v2 (db.serverless); in dev the cluster scales to 0 ACU and pauses",
    RDS_INSTANCE,
    RDS_CLUSTER,
)
def rds_serverless_idle_cost(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type == RDS_INSTANCE:
        instance_class = _get(props, "instanceClass")
        if unknown(instance_class) or instance_class == SERVERLESS_INSTANCE_CLASS:
            return []
        return [
            f"instanceClass is {instance_class}: a provisioned instance is paid for around the clock; use db.serverless"
        ]
    scaling = _get(props, "serverlessv2ScalingConfiguration")
    if unknown(scaling):
        return []
    if scaling is MISSING:
        return ["no serverlessv2ScalingConfiguration: db.serverless instances need a capacity range"]
    if context.environment not in DISPOSABLE_ENVIRONMENTS:
        return []
    minimum = _get(scaling, "minCapacity")
    if not unknown(minimum) and minimum != 0:
        return [
            f"minCapacity is {minimum} in {context.environment}: an idle cluster keeps paying for it; use 0 "
            "(with secondsUntilAutoPause)"
        ]
    if minimum == 0 and _get(scaling, "secondsUntilAutoPause") is MISSING:
        return ["secondsUntilAutoPause unset: say how long an idle instance waits before it pauses"]
    return []


# ---------------------------------------------------------------------------------------------------------------------
# Athena and Redshift Serverless (rows 40, 44, 67)
# ---------------------------------------------------------------------------------------------------------------------

ATHENA_WORKGROUP = "aws:athena/workgroup:Workgroup"
REDSHIFT_NAMESPACE = "aws:redshiftserverless/namespace:Namespace"
REDSHIFT_WORKGROUP = "aws:redshiftserverless/workgroup:Workgroup"
REDSHIFT_USAGE_LIMIT = "aws:redshiftserverless/usageLimit:UsageLimit"
KMS_RESULT_ENCRYPTION = ("SSE_KMS", "CSE_KMS")
DEFAULT_REDSHIFT_NAMES = {"adminUsername": frozenset({"admin", "awsuser"}), "dbName": frozenset({"dev"})}
REDSHIFT_LOG_EXPORTS = ("connectionlog", "useractivitylog", "userlog")
# RPUs a query starts with; AWS's default of 128 costs about $48 an hour while queries run.
REDSHIFT_BASE_CAPACITY_MAX = 32


@control(
    40,
    "athena-workgroup",
    "nag ATH1; ckv CKV_AWS_82/CKV_AWS_159; SH Athena.4",
    "workgroups enforce their configuration, encrypt results with a customer key, cap the bytes a query scans, "
    "publish metrics and pin the engine version",
    ATHENA_WORKGROUP,
)
def athena_workgroup(resource_type: str, props: Props, context: Context) -> list[str]:
    configuration = _get(props, "configuration")
    if unknown(configuration):
        return []
    if configuration is MISSING:
        return ["no configuration: clients choose where results go and whether they are encrypted"]
    found = _flag(configuration, "enforceWorkgroupConfiguration", True, "enforceWorkgroupConfiguration must be true")
    found += _flag(
        configuration, "publishCloudwatchMetricsEnabled", True, "publishCloudwatchMetricsEnabled must be true"
    )
    cutoff = _get(configuration, "bytesScannedCutoffPerQuery")
    if cutoff is MISSING:
        found.append("bytesScannedCutoffPerQuery unset: a query may scan (and bill) without limit")
    version = _get(configuration, "engineVersion", "selectedEngineVersion")
    if not unknown(version) and (version is MISSING or version == "AUTO"):
        found.append("selectedEngineVersion is AUTO: pin the engine version, so an upgrade is a deliberate change")
    encryption = _get(configuration, "resultConfiguration", "encryptionConfiguration")
    option = _get(encryption, "encryptionOption")
    if not unknown(option) and option not in KMS_RESULT_ENCRYPTION:
        found.append(f"results are encrypted with {option if option is not MISSING else 'nothing'}, not SSE_KMS")
    elif option in KMS_RESULT_ENCRYPTION:
        found += _customer_key(_get(encryption, "kmsKeyArn"), "athena")
    return found


@control(
    44,
    "redshift-serverless",
    "SH RedshiftServerless.1-.7",
    "namespaces encrypt with a customer key, keep the admin password in Secrets Manager under it, use non-default "
    "names and export every log; workgroups are private, route through the VPC and require TLS",
    REDSHIFT_NAMESPACE,
    REDSHIFT_WORKGROUP,
)
def redshift_serverless(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type == REDSHIFT_WORKGROUP:
        found = _flag(props, "publiclyAccessible", False, "publiclyAccessible must be false")
        found += _flag(props, "enhancedVpcRouting", True, "enhancedVpcRouting must be true")
        parameters = _get(props, "configParameters")
        if not unknown(parameters):
            values = {_get(p, "parameterKey"): _get(p, "parameterValue") for p in _as_list(parameters)}
            if str(values.get("require_ssl", "false")).lower() != "true":
                found.append("require_ssl is not true: connections without TLS are accepted")
        return found
    found = _customer_key(_get(props, "kmsKeyId"), "redshift")
    if _get(props, "adminUserPassword") is not MISSING or _get(props, "adminUserPasswordWo") is not MISSING:
        found.append(
            "an admin password is set in the program: it would sit in config and state; let Redshift manage it"
        )
    managed = _get(props, "manageAdminPassword")
    if not unknown(managed) and managed is not True:
        found.append("manageAdminPassword must be true (Redshift keeps the password in Secrets Manager)")
    elif managed is True and _get(props, "adminPasswordSecretKmsKeyId") is MISSING:
        found.append("adminPasswordSecretKmsKeyId unset: the admin secret is encrypted with aws/secretsmanager")
    for key, defaults in DEFAULT_REDSHIFT_NAMES.items():
        value = _get(props, key)
        if isinstance(value, str) and value.lower() in defaults:
            found.append(f"{key} {value!r} is a default name; choose another")
    exports = _get(props, "logExports")
    if not unknown(exports):
        missing = [
            log for log in REDSHIFT_LOG_EXPORTS if log not in _as_list(exports if exports is not MISSING else [])
        ]
        if missing:
            found.append(f"logExports lacks {', '.join(missing)}")
    return found


@control(
    67,
    "redshift-serverless-cost",
    "ours (idle and run cost)",
    f"workgroups name a base capacity of at most {REDSHIFT_BASE_CAPACITY_MAX} RPU and a maximum capacity",
    REDSHIFT_WORKGROUP,
)
def redshift_serverless_cost(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    base = _get(props, "baseCapacity")
    if base is MISSING:
        found.append("baseCapacity unset: AWS's default of 128 RPU costs about $48 an hour while queries run")
    elif not unknown(base) and (_int(base) or 0) > REDSHIFT_BASE_CAPACITY_MAX:
        found.append(f"baseCapacity is {_int(base)} RPU, above {REDSHIFT_BASE_CAPACITY_MAX}")
    if _get(props, "maxCapacity") is MISSING:
        found.append("maxCapacity unset: the workgroup may scale without limit")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# Lambda (rows 12-16)
# ---------------------------------------------------------------------------------------------------------------------

PERMISSION = "aws:lambda/permission:Permission"
FUNCTION = "aws:lambda/function:Function"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
ESM = "aws:lambda/eventSourceMapping:EventSourceMapping"
CURRENT_PYTHON = (3, 12)
OTHER_CURRENT_RUNTIMES = {"nodejs20.x", "nodejs22.x", "java21", "provided.al2023", "dotnet8", "ruby3.3"}


@control(
    12,
    "lambda-permission-source",
    "SH Lambda.1",
    "an invoke permission names its source ARN (and account for S3)",
    PERMISSION,
)
def lambda_permission_source(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    if not _is_set(_get(props, "sourceArn")):
        found.append("sourceArn unset: any resource of the principal's service could invoke the function")
    principal = _get(props, "principal")
    if principal == "s3.amazonaws.com" and not _is_set(_get(props, "sourceAccount")):
        found.append("sourceAccount unset for an S3 principal")
    if principal == "*":
        found.append("principal is '*'")
    return found


@control(
    13,
    "lambda-runtime-and-vpc",
    "SH Lambda.2/Lambda.5",
    "a current runtime (python3.12+); in a VPC, at least two subnets",
    FUNCTION,
)
def lambda_runtime_and_vpc(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    runtime = _get(props, "runtime")
    if isinstance(runtime, str):
        match = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
        if match:
            if (int(match[1]), int(match[2])) < CURRENT_PYTHON:
                found.append(f"runtime {runtime} is not current (python3.12 or later)")
        elif runtime not in OTHER_CURRENT_RUNTIMES:
            found.append(f"runtime {runtime} is not a current runtime")
    subnets = _get(props, "vpcConfig", "subnetIds")
    if isinstance(subnets, list) and len(subnets) < 2:
        found.append(f"in a VPC with {len(subnets)} subnet(s); use private subnets in at least two AZs")
    return found


@control(
    14,
    "lambda-tracing-limits-logs",
    "nagS tracing/timeouts",
    "active tracing, explicit timeout and memory, encrypted environment without secrets, its own log group",
    FUNCTION,
)
def lambda_tracing_limits_logs(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    mode = _get(props, "tracingConfig", "mode")
    if not unknown(mode) and mode != "Active":
        found.append(f"tracingConfig.mode is {mode if mode is not MISSING else 'unset'}, not 'Active'")
    for name in ("timeout", "memorySize"):
        if _get(props, name) is MISSING:
            found.append(f"{name} unset (explicit limits)")
    variables = _get(props, "environment", "variables")
    if isinstance(variables, dict) and variables:
        if _get(props, "kmsKeyArn") is MISSING:
            found.append("environment used without kmsKeyArn (customer key)")
        secrets = _secret_like_variables(variables)
        if secrets:
            found.append(f"environment carries secret-like variables {secrets}; read them from Secrets Manager")
    if _get(props, "loggingConfig", "logGroup") is MISSING:
        found.append("loggingConfig.logGroup unset: the default log group never expires")
    return found


@control(
    15,
    "lambda-async-failure-destination",
    "nagS LambdaDLQ",
    "async invocations: on-failure destination (SQS/SNS), 0-2 retries, a maximum event age",
    INVOKE_CONFIG,
)
def lambda_async_failure_destination(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    destination = _get(props, "destinationConfig", "onFailure", "destination")
    if destination is MISSING:
        found.append("no destinationConfig.onFailure destination")
    elif isinstance(destination, str) and not re.match(r"^arn:[^:]+:(sqs|sns):", destination):
        found.append(f"on-failure destination {destination} is not an SQS queue or SNS topic")
    retries = _get(props, "maximumRetryAttempts")
    if retries is MISSING:
        found.append("maximumRetryAttempts unset")
    elif _int(retries) is not None and not 0 <= (_int(retries) or 0) <= 2:
        found.append(f"maximumRetryAttempts is {_int(retries)}, not 0-2")
    if _get(props, "maximumEventAgeInSeconds") is MISSING:
        found.append("maximumEventAgeInSeconds unset")
    return found


@control(
    16,
    "lambda-event-source-failures",
    "nagS ESM destination; nag SQS3",
    "batch item failures reported; stream sources: on-failure destination, finite retries and age, bisect, one batch "
    "per shard at a time",
    ESM,
)
def lambda_event_source_failures(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    types = _get(props, "functionResponseTypes")
    if not unknown(types) and "ReportBatchItemFailures" not in _as_list(types):
        found.append("functionResponseTypes must include ReportBatchItemFailures")
    source = _get(props, "eventSourceArn")
    stream = _get(props, "startingPosition") is not MISSING or (
        isinstance(source, str) and bool(re.match(r"^arn:[^:]+:(kinesis|dynamodb):", source))
    )
    if not stream:
        return found
    if _get(props, "destinationConfig", "onFailure", "destinationArn") is MISSING:
        found.append("no destinationConfig.onFailure for the stream")
    for name in ("maximumRetryAttempts", "maximumRecordAgeInSeconds"):
        value = _get(props, name)
        if value is MISSING or _int(value) == -1:
            found.append(f"{name} must be finite")
    bisect = _get(props, "bisectBatchOnFunctionError")
    if not unknown(bisect) and bisect is not True:
        found.append("bisectBatchOnFunctionError must be true")
    factor = _int(_get(props, "parallelizationFactor"))
    if factor is not None and factor != 1:
        found.append(f"parallelizationFactor is {factor}, not 1: a shard must be read in order, one batch at a time")
    return found


@control(
    61,
    "lambda-no-reservation-in-dev",
    "ours (Lambda quotas)",
    "dev functions reserve no concurrency (elsewhere reservations fit etl-platform:lambdaConcurrencyQuota, checked "
    "by the settings)",
    FUNCTION,
)
def lambda_no_reservation_in_dev(resource_type: str, props: Props, context: Context) -> list[str]:
    reserved = _int(_get(props, "reservedConcurrentExecutions"))
    if context.environment == "dev" and reserved is not None and reserved >= 0:
        return [f"reservedConcurrentExecutions is {reserved} in dev; dev runs in the unreserved pool (-1)"]
    return []


CODE_SIGNING_CONFIG = "aws:lambda/codeSigningConfig:CodeSigningConfig"
SIGNING_PROFILE = "aws:signer/signingProfile:SigningProfile"
SIGNING_JOB = "aws:signer/signingJob:SigningJob"
LAYER = "aws:lambda/layerVersion:LayerVersion"


@control(
    62,
    "lambda-code-signing",
    "SH Lambda (code signing); nagS",
    "prod functions run under a code-signing config that enforces a Lambda Signer profile",
    FUNCTION,
    CODE_SIGNING_CONFIG,
    SIGNING_PROFILE,
)
def lambda_code_signing(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type == SIGNING_PROFILE:
        platform = _get(props, "platformId")
        ok = unknown(platform) or platform == "AWSLambda-SHA384-ECDSA"
        return [] if ok else [f"platformId is {platform}, not AWSLambda-SHA384-ECDSA"]
    if resource_type == CODE_SIGNING_CONFIG:
        policy = _get(props, "policies", "untrustedArtifactOnDeployment")
        if unknown(policy) or policy == "Enforce":
            return []
        return [f"untrustedArtifactOnDeployment is {policy if policy is not MISSING else 'unset (Warn)'}, not Enforce"]
    if context.environment == "prod" and _get(props, "codeSigningConfigArn") is MISSING:
        return ["codeSigningConfigArn unset: prod functions must run signed code only"]
    return []


# ---------------------------------------------------------------------------------------------------------------------
# SQS / SNS (rows 17-22)
# ---------------------------------------------------------------------------------------------------------------------

QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
DLQ_RETENTION = 1209600


@control(17, "sqs-redrive", "nag SQS3", "a redrive policy to a dead-letter queue after 3-5 receives", QUEUE)
def sqs_redrive(resource_type: str, props: Props, context: Context) -> list[str]:
    text = _get(props, "redrivePolicy")
    if text is MISSING:
        return []  # A dead-letter queue (row 20); that every other queue has one is a stack check.
    redrive = _document(text)
    if not isinstance(redrive, dict):
        return []
    found: list[str] = []
    if not redrive.get("deadLetterTargetArn"):
        found.append("redrivePolicy has no deadLetterTargetArn")
    count = _int(redrive.get("maxReceiveCount"))
    if count is None or not 3 <= count <= 5:
        found.append(f"maxReceiveCount is {redrive.get('maxReceiveCount')}, not 3-5")
    return found


@control(18, "sqs-customer-key", "SH SQS.1; nag SQS2", "queues are encrypted with the customer key", QUEUE)
def sqs_customer_key(resource_type: str, props: Props, context: Context) -> list[str]:
    if _get(props, "sqsManagedSseEnabled") is True:
        return ["sqsManagedSseEnabled: SSE-SQS is used, not the customer key"]
    return _customer_key(_get(props, "kmsMasterKeyId"), "sqs")


@control(
    19,
    "sqs-tls-only-policy",
    "SH SQS.3; nag SQS4",
    "the queue policy denies requests without TLS; no public Allow",
    QUEUE_POLICY,
)
def sqs_tls_only_policy(resource_type: str, props: Props, context: Context) -> list[str]:
    document = _document(_get(props, "policy"))
    if document is None:
        return []
    found = (
        []
        if _denies_plain_http(document, "sqs:SendMessage")
        else ["no statement denies sqs:* without TLS (aws:SecureTransport=false)"]
    )
    return found + _public_allows(document)


@control(
    20,
    "sqs-dlq-retention",
    "nagS SQSRedrivePolicy",
    "a queue without a redrive policy is a dead-letter queue and keeps messages 14 days",
    QUEUE,
)
def sqs_dlq_retention(resource_type: str, props: Props, context: Context) -> list[str]:
    if _get(props, "redrivePolicy") is not MISSING:
        return []
    retention = _get(props, "messageRetentionSeconds")
    if unknown(retention) or _int(retention) == DLQ_RETENTION:
        return []
    shown = _int(retention) if retention is not MISSING else "unset (4 days)"
    return [f"dead-letter queue messageRetentionSeconds is {shown}, not {DLQ_RETENTION} (14 days)"]


@control(21, "sns-customer-key", "SH SNS.1", "topics are encrypted with the customer key", TOPIC)
def sns_customer_key(resource_type: str, props: Props, context: Context) -> list[str]:
    return _customer_key(_get(props, "kmsMasterKeyId"), "sns")


@control(
    22,
    "sns-tls-only-policy",
    "SH SNS.4; nag SNS3",
    "the topic policy denies sns:Publish without TLS; no public Allow",
    TOPIC_POLICY,
)
def sns_tls_only_policy(resource_type: str, props: Props, context: Context) -> list[str]:
    document = _document(_get(props, "policy"))
    if document is None:
        return []
    found = (
        []
        if _denies_plain_http(document, "sns:Publish")
        else ["no statement denies sns:Publish without TLS (aws:SecureTransport=false)"]
    )
    return found + _public_allows(document)


# ---------------------------------------------------------------------------------------------------------------------
# ECS (rows 45-48) and ECR (rows 49-50)
# ---------------------------------------------------------------------------------------------------------------------

ECS_CLUSTER = "aws:ecs/cluster:Cluster"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ECS_SERVICE = "aws:ecs/service:Service"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
SCHEDULE = "aws:scheduler/schedule:Schedule"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
REPOSITORY = "aws:ecr/repository:Repository"
ECR_LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"


@control(
    45,
    "ecs-cluster-insights-exec-logging",
    "SH ECS.12; nag ECS4",
    "Container Insights on; execute-command sessions logged and encrypted with KMS",
    ECS_CLUSTER,
)
def ecs_cluster_insights_exec_logging(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    settings = _get(props, "settings")
    if not unknown(settings):
        insights = [_get(s, "value") for s in _as_list(settings) if _get(s, "name") == "containerInsights"]
        if not any(unknown(v) or v in ("enabled", "enhanced") for v in insights):
            found.append("containerInsights is not enabled")
    exec_config = _get(props, "configuration", "executeCommandConfiguration")
    if exec_config is MISSING:
        return [*found, "no executeCommandConfiguration (execute-command sessions unlogged)"]
    if _get(exec_config, "kmsKeyId") is MISSING:
        found.append("executeCommandConfiguration.kmsKeyId unset")
    logging = _get(exec_config, "logging")
    if logging == "NONE":
        found.append("execute-command logging is NONE")
    elif logging == "OVERRIDE":
        log = _get(exec_config, "logConfiguration")
        if (
            _get(log, "cloudWatchEncryptionEnabled") is not True
            and _get(log, "s3BucketEncryptionEnabled") is not True
            and not unknown(log)
        ):
            found.append("execute-command logs are not encrypted")
    return found


def _containers(props: Props) -> list[dict[str, Any]]:
    containers = _document(_get(props, "containerDefinitions"))
    return [c for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []


@control(
    46,
    "ecs-task-logs-and-secrets",
    "SH ECS.9/ECS.8",
    "every container logs with awslogs; credentials only through secrets, never environment",
    TASK_DEFINITION,
)
def ecs_task_logs_and_secrets(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    for container in _containers(props):
        name = container.get("name", "?")
        driver = (container.get("logConfiguration") or {}).get("logDriver")
        if driver != "awslogs":
            found.append(f"container {name} log driver is {driver}, not awslogs")
        secrets = _secret_like(v.get("name") for v in container.get("environment") or [] if isinstance(v, dict))
        if secrets:
            found.append(f"container {name} passes secret-like variables {secrets} in environment; use secrets")
    return found


@control(
    47,
    "ecs-task-hardening",
    "SH ECS.4/ECS.5/ECS.3",
    "not privileged, read-only root filesystem, no host PID, awsvpc, execution role != task role",
    TASK_DEFINITION,
)
def ecs_task_hardening(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    for container in _containers(props):
        name = container.get("name", "?")
        if container.get("privileged") is True:
            found.append(f"container {name} is privileged")
        if container.get("readonlyRootFilesystem") is not True:
            found.append(f"container {name} root filesystem is writable (readonlyRootFilesystem must be true)")
    if _get(props, "pidMode") == "host":
        found.append("pidMode is host")
    mode = _get(props, "networkMode")
    if not unknown(mode) and mode != "awsvpc":
        found.append(f"networkMode is {mode if mode is not MISSING else 'unset'}, not awsvpc")
    execution, task = _get(props, "executionRoleArn"), _get(props, "taskRoleArn")
    if isinstance(execution, str) and execution == task:
        found.append("the execution role is also the task role")
    return found


def _network_findings(where: str, network: Any, public_key: str) -> list[str]:
    value = _get(network, public_key)
    if value is True or value == "ENABLED":
        return [f"{where} assigns a public IP"]
    return []


def _walk_states(states: Any, path: str = "") -> Iterable[tuple[str, dict[str, Any], bool]]:
    """Every state of an ASL definition: (path, state, inside a Parallel branch or Map processor)."""
    if not isinstance(states, dict):
        return
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        yield f"{path}{name}", state, bool(path)
        for branch in state.get("Branches") or []:
            yield from _walk_states((branch or {}).get("States"), f"{path}{name}/")
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _walk_states(state[key].get("States"), f"{path}{name}/")


@control(
    48,
    "ecs-private-tasks",
    "SH ECS.2/ECS.10",
    "services and scheduled or orchestrated tasks get no public IP and run platform version LATEST",
    ECS_SERVICE,
    EVENT_TARGET,
    SCHEDULE,
    STATE_MACHINE,
)
def ecs_private_tasks(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    if resource_type == ECS_SERVICE:
        found += _network_findings("the service", _get(props, "networkConfiguration"), "assignPublicIp")
        version = _get(props, "platformVersion")
        if isinstance(version, str) and version != "LATEST":
            found.append(f"platformVersion is {version}, not LATEST")
    elif resource_type == EVENT_TARGET:
        target = _get(props, "ecsTarget")
        found += _network_findings("the ECS event target", _get(target, "networkConfiguration"), "assignPublicIp")
    elif resource_type == SCHEDULE:
        parameters = _get(props, "target", "ecsParameters")
        found += _network_findings("the scheduled ECS task", _get(parameters, "networkConfiguration"), "assignPublicIp")
    else:
        definition = _document(_get(props, "definition"))
        for path, state, _ in _walk_states((definition or {}).get("States")):
            resource = state.get("Resource")
            if not (isinstance(resource, str) and ":ecs:runTask" in resource):
                continue
            parameters = state.get("Parameters") or {}
            vpc = (parameters.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration")
            found += _network_findings(f"task state {path}", vpc, "AssignPublicIp")
            version = parameters.get("PlatformVersion")
            if isinstance(version, str) and version != "LATEST":
                found.append(f"task state {path} runs platform version {version}, not LATEST")
    return found


@control(
    49,
    "ecr-repository",
    "SH ECR.1/ECR.2",
    "scan on push, immutable tags, KMS encryption, no force-delete outside dev",
    REPOSITORY,
)
def ecr_repository(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    scan = _get(props, "imageScanningConfiguration", "scanOnPush")
    if not unknown(scan) and scan is not True:
        found.append("imageScanningConfiguration.scanOnPush must be true")
    mutability = _get(props, "imageTagMutability")
    if not unknown(mutability) and mutability != "IMMUTABLE":
        found.append(
            f"imageTagMutability is {mutability if mutability is not MISSING else 'unset (MUTABLE)'}, not IMMUTABLE"
        )
    encryption = _get(props, "encryptionConfigurations")
    if not unknown(encryption) and not any(_get(e, "encryptionType") == "KMS" for e in _as_list(encryption)):
        found.append("not encrypted with KMS (encryptionConfigurations.encryptionType must be KMS)")
    if _get(props, "forceDelete") is True and context.environment not in DISPOSABLE_ENVIRONMENTS:
        found.append(f"forceDelete must be false outside dev (environment {context.environment})")
    return found


@control(
    50,
    "ecr-lifecycle-and-policy",
    "SH ECR.3; nag ECR1",
    "lifecycle policy with rules; no repository policy for the principal '*'",
    ECR_LIFECYCLE,
    REPOSITORY_POLICY,
)
def ecr_lifecycle_and_policy(resource_type: str, props: Props, context: Context) -> list[str]:
    document = _document(_get(props, "policy"))
    if document is None:
        return []
    if resource_type == REPOSITORY_POLICY:
        return _public_allows(document)
    return [] if isinstance(document, dict) and document.get("rules") else ["the lifecycle policy has no rules"]


# ---------------------------------------------------------------------------------------------------------------------
# Step Functions (rows 51-52)
# ---------------------------------------------------------------------------------------------------------------------


@control(
    51,
    "sfn-logging-tracing",
    "SH StepFunctions.1; nag SF1/SF2",
    "execution logging level ALL with execution data to a log group; X-Ray tracing",
    STATE_MACHINE,
)
def sfn_logging_tracing(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    logging = _get(props, "loggingConfiguration")
    level = _get(logging, "level")
    if not unknown(level) and level != "ALL":
        found.append(f"loggingConfiguration.level is {level if level is not MISSING else 'unset'}, not ALL")
    data = _get(logging, "includeExecutionData")
    if not unknown(data) and data is not True:
        found.append("loggingConfiguration.includeExecutionData must be true")
    if _get(logging, "logDestination") is MISSING:
        found.append("loggingConfiguration.logDestination unset")
    tracing = _get(props, "tracingConfiguration", "enabled")
    if not unknown(tracing) and tracing is not True:
        found.append("tracingConfiguration.enabled must be true")
    return found


SYNC_SERVICES = (
    "glue:startJobRun",
    "ecs:runTask",
    "elasticmapreduce:addStep",
    "elasticmapreduce-containers:startJobRun",
    "emr-serverless:startJobRun",
)


def _retry_findings(path: str, retriers: Any) -> list[str]:
    if not retriers:
        return [f"task {path} has no Retry"]
    found: list[str] = []
    for index, retrier in enumerate(retriers):
        if not isinstance(retrier, dict):
            continue
        if retrier.get("BackoffRate") != 2.0:
            found.append(f"task {path} retrier {index} BackoffRate is {retrier.get('BackoffRate')}, not 2.0")
        if "MaxDelaySeconds" not in retrier:
            found.append(f"task {path} retrier {index} has no MaxDelaySeconds")
        if retrier.get("JitterStrategy") != "FULL":
            found.append(f"task {path} retrier {index} JitterStrategy is {retrier.get('JitterStrategy')}, not FULL")
    return found


def _catches_all(state: dict[str, Any]) -> bool:
    return any(isinstance(c, dict) and "States.ALL" in _as_list(c.get("ErrorEquals")) for c in state.get("Catch") or [])


@control(
    52,
    "sfn-task-reliability",
    "ASL reliability",
    "every Task retries with backoff 2.0, MaxDelaySeconds and full jitter, catches States.ALL (or its enclosing "
    "Parallel/Map does), has TimeoutSeconds; Glue/ECS/EMR integrations use .sync",
    STATE_MACHINE,
)
def sfn_task_reliability(resource_type: str, props: Props, context: Context) -> list[str]:
    definition = _document(_get(props, "definition"))
    if not isinstance(definition, dict):
        return []
    found: list[str] = []
    for path, state, nested in _walk_states(definition.get("States")):
        if state.get("Type") in ("Parallel", "Map") and not _catches_all(state):
            found.append(f"{state['Type'].lower()} {path} does not catch States.ALL")
        if state.get("Type") != "Task":
            continue
        found += _retry_findings(path, state.get("Retry"))
        # A Task inside a Parallel branch or a Map processor fails the whole Parallel/Map, whose Catch handles it.
        if not nested and not _catches_all(state):
            found.append(f"task {path} does not catch States.ALL")
        if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
            found.append(f"task {path} has no TimeoutSeconds")
        resource = state.get("Resource")
        if isinstance(resource, str) and resource.endswith(SYNC_SERVICES):
            found.append(f"task {path} calls {resource} without .sync: the run would not wait for the job")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# Logs, alarms, event targets (rows 53-55)
# ---------------------------------------------------------------------------------------------------------------------

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@control(
    53,
    "log-retention-and-key",
    "nagS log retention",
    "log groups expire (retentionInDays) and are encrypted with the customer key",
    LOG_GROUP,
)
def log_retention_and_key(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    retention = _get(props, "retentionInDays")
    if retention is MISSING or _int(retention) == 0:
        found.append("retentionInDays unset: logs never expire")
    if _get(props, "kmsKeyId") is MISSING:
        found.append("kmsKeyId unset: not encrypted with the customer key")
    return found


@control(54, "alarm-notifies", "ckv CKV_AWS_319", "every alarm notifies an SNS topic", ALARM)
def alarm_notifies(resource_type: str, props: Props, context: Context) -> list[str]:
    actions = _get(props, "alarmActions")
    if unknown(actions):
        return []
    actions = _as_list(actions)
    if not actions:
        return ["no alarmActions: the alarm notifies nobody"]
    if all(isinstance(a, str) and ":sns:" not in a for a in actions):
        return [f"alarmActions {actions} include no SNS topic"]
    return []


@control(
    55,
    "event-target-dlq-retry",
    "nagS EventBusDLQ",
    "EventBridge rule targets and schedules have a dead-letter queue and a retry policy; schedules are encrypted "
    "with the customer key",
    EVENT_TARGET,
    SCHEDULE,
)
def event_target_dlq_retry(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    if resource_type == SCHEDULE and _get(props, "kmsKeyArn") is MISSING:
        found.append("kmsKeyArn unset: the schedule's target input is not encrypted with the customer key")
    target = props if resource_type == EVENT_TARGET else _get(props, "target")
    if unknown(target):
        return found
    if _get(target, "deadLetterConfig", "arn") is MISSING:
        found.append("no deadLetterConfig: failed deliveries are dropped")
    if _get(target, "retryPolicy") is MISSING:
        found.append("no retryPolicy")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# VPC (rows 56-59)
# ---------------------------------------------------------------------------------------------------------------------

FLOW_LOG = "aws:ec2/flowLog:FlowLog"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SUBNET = "aws:ec2/subnet:Subnet"
VPC = "aws:ec2/vpc:Vpc"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


@control(
    56,
    "vpc-flow-logs-all",
    "SH EC2.6; nag VPC7",
    "flow logs record ALL traffic, delivered to S3 as Parquet at 60 or 600 s aggregation",
    FLOW_LOG,
)
def vpc_flow_logs_all(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    traffic = _get(props, "trafficType")
    if not unknown(traffic) and traffic != "ALL":
        found.append(f"trafficType is {traffic if traffic is not MISSING else 'unset'}, not ALL")
    destination = _get(props, "logDestinationType")
    if not unknown(destination) and destination != "s3":
        shown = destination if destination is not MISSING else "unset (cloud-watch-logs)"
        found.append(f"logDestinationType is {shown}: deliver to the log bucket (s3) as Parquet")
    file_format = _get(props, "destinationOptions", "fileFormat")
    if destination == "s3" and not unknown(file_format) and file_format != "parquet":
        shown = file_format if file_format is not MISSING else "unset (plain-text)"
        found.append(f"destinationOptions.fileFormat is {shown}, not parquet")
    interval = _int(_get(props, "maxAggregationInterval"))
    if interval is not None and interval not in (60, 600):
        found.append(f"maxAggregationInterval is {interval}, not 60 or 600")
    return found


@control(
    57,
    "vpc-closed-default-sg-private-subnets",
    "SH EC2.2/EC2.15",
    "the default security group is adopted with no rules; subnets do not map public IPs",
    DEFAULT_SG,
    SUBNET,
)
def vpc_closed_default_sg_private_subnets(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type == SUBNET:
        return ["mapPublicIpOnLaunch must be false"] if _get(props, "mapPublicIpOnLaunch") is True else []
    return [
        f"the default security group has {key} rules" for key in ("ingress", "egress") if _as_list(_get(props, key))
    ]


@control(
    58,
    "vpc-dns-and-endpoints",
    "SH EC2.10",
    "DNS support and hostnames on; interface endpoints resolve privately",
    VPC,
    VPC_ENDPOINT,
)
def vpc_dns_and_endpoints(resource_type: str, props: Props, context: Context) -> list[str]:
    if resource_type == VPC_ENDPOINT:
        interface = _get(props, "vpcEndpointType") == "Interface"
        private_dns = _get(props, "privateDnsEnabled")
        return (
            ["interface endpoint without privateDnsEnabled"]
            if interface and private_dns is not True and not unknown(private_dns)
            else []
        )
    return [
        f"{flag} must be true"
        for flag in ("enableDnsSupport", "enableDnsHostnames")
        if _get(props, flag) is False or (flag == "enableDnsHostnames" and _get(props, flag) is MISSING)
    ]


@control(
    59,
    "vpc-no-open-ingress",
    "SH EC2.18/EC2.19",
    "no ingress from 0.0.0.0/0 or ::/0; every rule has a description",
    INGRESS_RULE,
    EGRESS_RULE,
    SECURITY_GROUP,
)
def vpc_no_open_ingress(resource_type: str, props: Props, context: Context) -> list[str]:
    found: list[str] = []
    if resource_type == SECURITY_GROUP:
        for rule in _as_list(_get(props, "ingress")):
            blocks = _as_list(_get(rule, "cidrBlocks")) + _as_list(_get(rule, "ipv6CidrBlocks"))
            if "0.0.0.0/0" in blocks or "::/0" in blocks:
                found.append("inline ingress rule open to the internet")
        return found
    if resource_type == INGRESS_RULE:
        for key, anywhere in (("cidrIpv4", "0.0.0.0/0"), ("cidrIpv6", "::/0")):
            if _get(props, key) == anywhere:
                found.append(f"ingress from {anywhere}")
    if not _is_set(_get(props, "description")):
        found.append("rule has no description")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# Stack checks
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StackResource:
    """One resource as a stack check sees it. `dependencies` are URNs; `property_dependencies` maps an input to the
    URNs it was computed from (the engine gives both; the test mocks give only `dependencies`)."""

    urn: str
    type: str
    name: str
    props: Props
    protect: bool = False
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)

    def depends_on(self, urn: str, prop: str) -> bool:
        if self.property_dependencies:
            return urn in self.property_dependencies.get(prop, ())
        return urn in self.dependencies


StackCheck = Callable[[Sequence[StackResource], str | None], list[tuple[str, str]]]
"""(the stack's resources, its environment) -> (urn, message) pairs."""


@dataclasses.dataclass(frozen=True)
class StackControl:
    name: str
    rows: str
    summary: str
    check: StackCheck

    @property
    def description(self) -> str:
        return f"docs/CONTROLS.md rows {self.rows}: {self.summary}"


BUCKET_COMPANIONS = {
    PUBLIC_ACCESS_BLOCK: "public access block",
    SSE: "default encryption",
    VERSIONING: "versioning",
    BUCKET_POLICY: "bucket policy",
    OWNERSHIP: "ownership controls",
    LIFECYCLE: "lifecycle configuration",
}


def bucket_companions(resources: Sequence[StackResource], environment: str | None = None) -> list[tuple[str, str]]:
    """Every bucket has each companion resource of rows 1-3 and 5-7, attached through its `bucket` input."""
    found: list[tuple[str, str]] = []
    for bucket in (r for r in resources if r.type == BUCKET):
        for token, label in BUCKET_COMPANIONS.items():
            if not any(r.type == token and r.depends_on(bucket.urn, "bucket") for r in resources):
                found.append((bucket.urn, f"bucket {bucket.name} has no {label} ({token.split(':')[-1]})"))
    for repository in (r for r in resources if r.type == REPOSITORY):
        if not any(r.type == ECR_LIFECYCLE and r.depends_on(repository.urn, "repository") for r in resources):
            found.append((repository.urn, f"repository {repository.name} has no lifecycle policy"))
    return found


# Inputs through which a resource names a dead-letter queue.
DLQ_REFERENCES = {
    QUEUE: "redrivePolicy",
    INVOKE_CONFIG: "destinationConfig",
    EVENT_TARGET: "deadLetterConfig",
    SCHEDULE: "target",
    "aws:sns/topicSubscription:TopicSubscription": "redrivePolicy",
}


def queues_redrive(resources: Sequence[StackResource], environment: str | None = None) -> list[tuple[str, str]]:
    """Every queue without a redrive policy must be a dead-letter queue (row 20): some resource names it as its
    dead-letter target, or it is kept 14 days like one (a DLQ whose senders this stack does not deploy, e.g. the
    alert subscriptions' DLQ in a stack without subscriptions)."""
    found: list[tuple[str, str]] = []
    for queue in (r for r in resources if r.type == QUEUE and _get(r.props, "redrivePolicy") is MISSING):
        referrers = [
            r for r in resources if r.type in DLQ_REFERENCES and r.depends_on(queue.urn, DLQ_REFERENCES[r.type])
        ]
        kept_like_dlq = _int(_get(queue.props, "messageRetentionSeconds")) == DLQ_RETENTION
        if not referrers and not kept_like_dlq:
            found.append((queue.urn, f"queue {queue.name} has no redrive policy and is nobody's dead-letter queue"))
    return found


STATEFUL = {
    BUCKET,
    KEY,
    QUEUE,
    REPOSITORY,
    "aws:glue/catalogDatabase:CatalogDatabase",
    "aws:glue/catalogTable:CatalogTable",
    "aws:kinesis/stream:Stream",
    "aws:rds/cluster:Cluster",
    "aws:redshiftserverless/namespace:Namespace",
    "aws:redshift/cluster:Cluster",
    "aws:secretsmanager/secret:Secret",
}


def prod_protects_state(resources: Sequence[StackResource], environment: str | None = None) -> list[tuple[str, str]]:
    """In prod, stateful resources carry `protect=True` (CONTROLS: Pulumi options that keep data safe)."""
    if environment not in PROTECTED_ENVIRONMENTS:
        return []
    return [
        (r.urn, f"{r.name} ({r.type}) is not protected in {environment}")
        for r in resources
        if r.type in STATEFUL and not r.protect
    ]


def prod_rds_multi_az(resources: Sequence[StackResource], environment: str | None = None) -> list[tuple[str, str]]:
    """In prod, every Aurora cluster has two or more instances in different AZs (row 35): a writer and a reader to
    fail over to. An instance that names no AZ is placed where RDS likes, so it counts for no AZ."""
    if environment not in PROTECTED_ENVIRONMENTS:
        return []
    found: list[tuple[str, str]] = []
    for cluster in (r for r in resources if r.type == RDS_CLUSTER):
        instances = [r for r in resources if r.type == RDS_INSTANCE and r.depends_on(cluster.urn, "clusterIdentifier")]
        zones = [_get(instance.props, "availabilityZone") for instance in instances]
        if len(instances) < 2:
            found.append(
                (cluster.urn, f"cluster {cluster.name} has {len(instances)} instance(s); {environment} needs a reader "
                 "in another AZ")
            )  # fmt: skip
        elif not any(unknown(zone) for zone in zones) and len({z for z in zones if z is not MISSING}) < 2:
            found.append((cluster.urn, f"cluster {cluster.name} does not place its instances in two named AZs"))
    return found


def redshift_usage_limited(resources: Sequence[StackResource], environment: str | None = None) -> list[tuple[str, str]]:
    """Every Redshift Serverless workgroup has a compute usage limit with a breach action (row 67): RPU-hours are
    billed per second of every query, and only a limit bounds them."""
    found: list[tuple[str, str]] = []
    for workgroup in (r for r in resources if r.type == REDSHIFT_WORKGROUP):
        limits = [
            r
            for r in resources
            if r.type == REDSHIFT_USAGE_LIMIT
            and r.depends_on(workgroup.urn, "resourceArn")
            and _get(r.props, "usageType") in ("serverless-compute", None)
        ]
        if not limits:
            found.append((workgroup.urn, f"workgroup {workgroup.name} has no serverless-compute usage limit"))
        elif all(_get(r.props, "breachAction") is MISSING for r in limits):
            found.append((workgroup.urn, f"workgroup {workgroup.name}'s usage limit has no breachAction"))
    return found


def logging_after_target_policy(
    resources: Sequence[StackResource], environment: str | None = None
) -> list[tuple[str, str]]:
    """Every bucket's access logging waits for its target bucket's policy (row 4): S3 refuses to enable logging to a
    bucket whose policy does not admit the logging service yet (InvalidTargetBucketForLogging)."""
    found: list[tuple[str, str]] = []
    buckets = [r for r in resources if r.type == BUCKET]
    for logging in (r for r in resources if r.type == BUCKET_LOGGING):
        targets = [b for b in buckets if logging.depends_on(b.urn, "targetBucket")]
        target_policies = [
            p for b in targets for p in resources if p.type == BUCKET_POLICY and p.depends_on(b.urn, "bucket")
        ]
        if target_policies and not any(p.urn in logging.dependencies for p in target_policies):
            found.append((logging.urn, f"{logging.name} is not created after its target bucket's policy"))
    return found


def signed_code_only(resources: Sequence[StackResource], environment: str | None = None) -> list[tuple[str, str]]:
    """Under a code-signing config, every function and layer deploys the output of a signing job (row 62): an
    enforcing config refuses unsigned layers as well as unsigned functions."""
    if not any(r.type == CODE_SIGNING_CONFIG for r in resources):
        return []
    jobs = [r for r in resources if r.type == SIGNING_JOB]
    return [
        (r.urn, f"{r.name} does not deploy a signed package (its s3Key comes from no signing job)")
        for r in resources
        if r.type in (FUNCTION, LAYER) and not any(r.depends_on(job.urn, "s3Key") for job in jobs)
    ]


REPLICATED_BUCKETS = ("lake-raw", "lake-curated")


def prod_replicates_raw_and_curated(
    resources: Sequence[StackResource], environment: str | None = None
) -> list[tuple[str, str]]:
    """In prod, the raw zone (the source of truth) and the curated zone (the product) replicate to another region
    (row 63)."""
    if environment != "prod":
        return []
    configs = [r for r in resources if r.type == REPLICATION]
    return [
        (bucket.urn, f"bucket {bucket.name} has no replication to another region")
        for bucket in resources
        if bucket.type == BUCKET
        and bucket.name.endswith(REPLICATED_BUCKETS)
        and not any(c.depends_on(bucket.urn, "bucket") for c in configs)
    ]


def environment_tagged(resources: Sequence[StackResource], environment: str | None = None) -> list[tuple[str, str]]:
    """Every aws provider names the stack's environment in its `Environment` default tag: the other checks judge
    force-destroy and protection by it, so a stack that does not say what it is cannot pass as dev."""
    found: list[tuple[str, str]] = []
    for provider in (r for r in resources if r.type == AWS_PROVIDER):
        named = environment_of(provider.props)
        if named not in ENVIRONMENTS:
            what = f"names {named!r}" if named else "has no Environment default tag"
            found.append(
                (provider.urn, f"aws provider {provider.name} {what}; expected one of {', '.join(ENVIRONMENTS)}")
            )
    return found


def stack_environment(resources: Sequence[StackResource]) -> str | None:
    """The environment the stack's aws providers name (None if none does, or they disagree)."""
    named = {environment_of(r.props) for r in resources if r.type == AWS_PROVIDER}
    return named.pop() if len(named) == 1 else None


STACK_CHECKS: list[StackControl] = [
    StackControl(
        "etl-s3-ecr-companions",
        "1-3, 5-7, 50",
        "every bucket has its public access block, encryption, "
        "versioning, policy, ownership and lifecycle resources; every repository a lifecycle policy",
        bucket_companions,
    ),
    StackControl(
        "etl-4-logging-after-target-policy",
        "4",
        "every bucket's access logging is created after its target bucket's policy",
        logging_after_target_policy,
    ),
    StackControl(
        "etl-62-signed-code-only",
        "62",
        "under a code-signing config, every function and layer deploys a signed package",
        signed_code_only,
    ),
    StackControl(
        "etl-63-prod-replicates-raw-and-curated",
        "63",
        "prod replicates the raw and curated buckets to another region",
        prod_replicates_raw_and_curated,
    ),
    StackControl(
        "etl-35-rds-multi-az",
        "35",
        "prod Aurora clusters have instances in two or more AZs",
        prod_rds_multi_az,
    ),
    StackControl(
        "etl-67-redshift-usage-limit",
        "67",
        "every Redshift Serverless workgroup has a compute usage limit with a breach action",
        redshift_usage_limited,
    ),
    StackControl(
        "etl-20-queues-redrive",
        "17, 20",
        "every queue that is not a dead-letter queue has a redrive policy",
        queues_redrive,
    ),
    StackControl(
        "etl-prod-protects-state",
        "'Pulumi options that keep data safe'",
        "prod stacks protect stateful resources (buckets, keys, queues, repositories, databases, secrets)",
        prod_protects_state,
    ),
    StackControl(
        "etl-environment-tagged",
        "5, 49, 'Pulumi options that keep data safe'",
        "the aws provider names the stack's environment (dev, staging or prod) in its Environment default tag",
        environment_tagged,
    ),
]


def check_resource(resource_type: str, props: Props, context: Context | None = None) -> list[tuple[str, str]]:
    """Every resource check over one resource: (policy name, message) pairs."""
    return [(c.name, message) for c in RESOURCE_CHECKS for message in c.check(resource_type, props, context)]
