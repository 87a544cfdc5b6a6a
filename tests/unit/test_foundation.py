"""Every stack file, evaluated under mocks: the foundation controls of CONTROLS.md hold, and preview and update
register the same resources."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from components.policies import wildcard_actions
from etlctl.offline import Evaluation
from tests.support.resources import as_list, named, of_type, policy, statements
from tests.support.stacks import STACKS, evaluated

DATA_ZONES = ("raw", "staged", "curated", "quarantine", "artifacts")


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> Evaluation:
    return evaluated(request.param)


@pytest.mark.parametrize("name", STACKS)
def test_preview_and_update_register_the_same_resources(name: str) -> None:
    def census(evaluation: Evaluation) -> Counter[tuple[str, str, bool, bool]]:
        return Counter((r.type, r.name, r.protect, r.retain_on_delete) for r in evaluation.registrations)

    update, preview = evaluated(name), evaluated(name, preview=True)
    assert len(update.resources) > 50
    assert census(preview) == census(update)


def test_preview_mode_leaves_computed_values_unknown() -> None:
    preview = evaluated("dev", preview=True)
    bucket_policy = named(preview, "lake-raw-policy")
    assert not isinstance(bucket_policy.inputs.get("policy"), str), "a bucket ARN is not known before creation"


def test_one_explicit_provider_reaches_every_resource(stack: Evaluation) -> None:
    providers = [r for r in stack.registrations if r.type == "pulumi:providers:aws"]
    assert [p.name for p in providers] == ["aws"]
    assert providers[0].inputs["region"] == "eu-west-1"
    # Provider inputs travel as JSON text.
    tags = json.loads(providers[0].inputs["defaultTags"])["tags"]
    assert tags["Environment"] == stack.config.environment and tags["ManagedBy"] == "pulumi"
    for resource in stack.resources:
        if resource.type.startswith("aws:"):
            assert resource.provider.startswith(providers[0].urn), f"{resource.name} does not use the stack's provider"


def test_default_providers_are_disabled(stack: Evaluation) -> None:
    assert stack.config.values["pulumi:disable-default-providers"] == '["aws"]'


# ---------------------------------------------------------------------------------------------------------------------
# KMS (rows 8-9)
# ---------------------------------------------------------------------------------------------------------------------


def test_stack_key_rotates_with_a_30_day_window_and_an_explicit_policy(stack: Evaluation) -> None:
    (key,) = of_type(stack, "aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    for statement in statements(policy(key.inputs["policy"])):
        principal = statement.get("Principal")
        assert principal != "*" and principal != {"AWS": "*"}, "no unconditioned '*' principal"
        if isinstance(principal, dict) and "Service" in principal:
            assert "Condition" in statement, f"service statement {statement.get('Sid')} must be conditioned"


# ---------------------------------------------------------------------------------------------------------------------
# S3 (rows 1-7)
# ---------------------------------------------------------------------------------------------------------------------


def _bucket_child(stack: Evaluation, token: str, zone: str) -> dict:  # type: ignore[type-arg]
    return named(stack, f"lake-{zone}-{token}").inputs


@pytest.mark.parametrize("zone", [*DATA_ZONES, "access-logs"])
def test_every_bucket_blocks_public_access_and_enforces_owner(stack: Evaluation, zone: str) -> None:
    block = _bucket_child(stack, "public-access", zone)
    assert all(
        block[flag] is True
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    assert _bucket_child(stack, "ownership", zone)["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    assert _bucket_child(stack, "versioning", zone)["versioningConfiguration"]["status"] == "Enabled"


@pytest.mark.parametrize("zone", DATA_ZONES)
def test_data_buckets_use_the_stack_key_with_bucket_keys(stack: Evaluation, zone: str) -> None:
    (key,) = of_type(stack, "aws:kms/key:Key")
    (rule,) = _bucket_child(stack, "encryption", zone)["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    assert default["kmsMasterKeyId"].startswith("arn:aws:kms:eu-west-1:123456789012:key/")
    assert rule["bucketKeyEnabled"] is True
    assert key.name.endswith("encryption-key")


def test_access_log_bucket_uses_sse_s3(stack: Evaluation) -> None:
    (rule,) = _bucket_child(stack, "encryption", "access-logs")["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"


@pytest.mark.parametrize("zone", [*DATA_ZONES, "access-logs"])
def test_bucket_policies_deny_plain_http_and_allow_nobody_public(stack: Evaluation, zone: str) -> None:
    document = policy(_bucket_child(stack, "policy", zone)["policy"])
    deny = next(s for s in statements(document) if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Action"] == "s3:*"
    arn = deny["Resource"][0]
    assert deny["Resource"] == [arn, f"{arn}/*"] and arn.startswith("arn:aws:s3:::")
    for statement in statements(document):
        if statement["Effect"] == "Allow":
            assert statement["Principal"] != "*" and "Condition" in statement


@pytest.mark.parametrize("zone", DATA_ZONES)
def test_data_buckets_log_access_to_the_log_bucket(stack: Evaluation, zone: str) -> None:
    logging = _bucket_child(stack, "logging", zone)
    logs_bucket = named(stack, "lake-access-logs")
    assert logging["targetBucket"].startswith("etl-platform-lake-access-logs-")
    assert logging["targetPrefix"] == f"{zone}/"
    assert logs_bucket.type == "aws:s3/bucket:Bucket"


@pytest.mark.parametrize("zone", [*DATA_ZONES, "access-logs"])
def test_lifecycle_expires_noncurrent_versions_and_aborts_uploads(stack: Evaluation, zone: str) -> None:
    for rule in _bucket_child(stack, "lifecycle", zone)["rules"]:
        assert rule["status"] == "Enabled"
        assert rule["noncurrentVersionExpiration"]["noncurrentDays"] >= 1
        assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] <= 7


def test_force_destroy_only_in_dev(stack: Evaluation) -> None:
    for bucket in of_type(stack, "aws:s3/bucket:Bucket"):
        assert bucket.inputs["forceDestroy"] is (stack.config.environment == "dev")


def test_raw_zone_events_go_to_eventbridge(stack: Evaluation) -> None:
    (notification,) = of_type(stack, "aws:s3/bucketNotification:BucketNotification")
    assert notification.inputs["eventbridge"] is True
    assert notification.inputs["bucket"].startswith("etl-platform-lake-raw-")


def test_catalog_is_encrypted_with_the_stack_key(stack: Evaluation) -> None:
    (settings,) = of_type(stack, "aws:glue/dataCatalogEncryptionSettings:DataCatalogEncryptionSettings")
    encryption = settings.inputs["dataCatalogEncryptionSettings"]
    assert encryption["encryptionAtRest"]["catalogEncryptionMode"] == "SSE-KMS"
    assert encryption["encryptionAtRest"]["sseAwsKmsKeyId"].startswith("arn:aws:kms:")
    assert encryption["connectionPasswordEncryption"]["returnConnectionPasswordEncrypted"] is True
    (database,) = of_type(stack, "aws:glue/catalogDatabase:CatalogDatabase")
    assert database.inputs["name"] == f"etl_platform_{stack.config.stack}_curated"


# ---------------------------------------------------------------------------------------------------------------------
# SNS / SQS (rows 18-23)
# ---------------------------------------------------------------------------------------------------------------------


def test_alerts_topic_is_encrypted_and_tls_only(stack: Evaluation) -> None:
    topic = named(stack, "monitoring-alerts")
    assert topic.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")
    document = policy(named(stack, "monitoring-alerts-policy").inputs["policy"])
    deny = next(s for s in statements(document) if s["Effect"] == "Deny")
    assert deny["Action"] == "sns:Publish" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for statement in statements(document):
        assert statement.get("Principal") != "*" or statement["Effect"] == "Deny"


def test_alert_subscriptions_follow_the_config_and_redrive_to_an_encrypted_dlq(stack: Evaluation) -> None:
    subscriptions = of_type(stack, "aws:sns/topicSubscription:TopicSubscription")
    expected = {
        "dev": [],
        "staging": ["data-platform-staging@example.com"],
        "prod": ["data-platform-oncall@example.com"],
    }
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == expected[stack.config.stack]
    for subscription in subscriptions:
        assert subscription.inputs["protocol"] == "email"
        assert "deadLetterTargetArn" in subscription.inputs["redrivePolicy"]
    dlqs = [r for r in of_type(stack, "aws:sqs/queue:Queue") if r.name.endswith("monitoring-alerts-dlq")]
    assert len(dlqs) == (1 if subscriptions else 0), "an alerts DLQ exactly when there is someone to deliver to"
    for dlq in dlqs:
        assert dlq.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")
        assert dlq.inputs["messageRetentionSeconds"] == 1209600


def test_every_alarm_notifies_the_alerts_topic(stack: Evaluation) -> None:
    alarms = of_type(stack, "aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarms
    for alarm in alarms:
        assert [a for a in alarm.inputs["alarmActions"] if ":sns:" in a], f"{alarm.name} notifies nobody"


def test_one_dashboard_per_stack(stack: Evaluation) -> None:
    (dashboard,) = of_type(stack, "aws:cloudwatch/dashboard:Dashboard")
    assert dashboard.inputs["dashboardName"] == f"etl-platform-{stack.config.stack}"


# ---------------------------------------------------------------------------------------------------------------------
# VPC (rows 56-59) and logs (row 53)
# ---------------------------------------------------------------------------------------------------------------------


def test_vpc_has_private_subnets_endpoints_flow_logs_and_a_closed_default_sg(stack: Evaluation) -> None:
    (vpc,) = of_type(stack, "aws:ec2/vpc:Vpc")
    assert vpc.inputs["enableDnsSupport"] is True and vpc.inputs["enableDnsHostnames"] is True
    azs = {"dev": 2, "staging": 2, "prod": 3}[stack.config.stack]
    private = [s for s in of_type(stack, "aws:ec2/subnet:Subnet") if "-private-" in s.name]
    assert len(private) == azs
    assert len({s.inputs["availabilityZone"] for s in private}) == azs
    for subnet in of_type(stack, "aws:ec2/subnet:Subnet"):
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
    gateways = {
        e.inputs["serviceName"]
        for e in of_type(stack, "aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs["vpcEndpointType"] == "Gateway"
    }
    assert gateways == {"com.amazonaws.eu-west-1.s3", "com.amazonaws.eu-west-1.dynamodb"}
    (default_sg,) = of_type(stack, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg.inputs.get("ingress", []) == [] and default_sg.inputs.get("egress", []) == []
    (flow_log,) = of_type(stack, "aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["trafficType"] == "ALL" and flow_log.inputs["logDestinationType"] == "cloud-watch-logs"


def test_nat_gateways_follow_the_profile(stack: Evaluation) -> None:
    expected = {"dev": 0, "staging": 1, "prod": 3}[stack.config.stack]
    assert len(of_type(stack, "aws:ec2/natGateway:NatGateway")) == expected


def test_no_ingress_from_anywhere(stack: Evaluation) -> None:
    for rule in of_type(stack, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        assert rule.inputs.get("cidrIpv4") != "0.0.0.0/0" and rule.inputs.get("cidrIpv6") != "::/0"
        assert rule.inputs.get("description")


def test_log_groups_have_retention_and_the_stack_key(stack: Evaluation) -> None:
    groups = of_type(stack, "aws:cloudwatch/logGroup:LogGroup")
    assert groups
    for group in groups:
        assert group.inputs["retentionInDays"] >= 1
        assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    if stack.config.stack == "prod":
        assert named(stack, "network-flow-logs").inputs["retentionInDays"] >= 365


# ---------------------------------------------------------------------------------------------------------------------
# IAM (rows 10-11) and protection
# ---------------------------------------------------------------------------------------------------------------------


def test_roles_trust_one_service_for_this_account_only(stack: Evaluation) -> None:
    for role in of_type(stack, "aws:iam/role:Role"):
        for statement in statements(policy(role.inputs["assumeRolePolicy"])):
            services = as_list(statement["Principal"]["Service"])
            assert len(services) == 1, f"{role.name} trusts {services}"
            assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_no_policy_allows_wildcard_actions(stack: Evaluation) -> None:
    for resource in stack.resources:
        for key in ("policy", "inlinePolicies"):
            value = resource.inputs.get(key)
            if isinstance(value, str) and value.startswith("{") and resource.type.startswith("aws:iam/"):
                assert wildcard_actions(policy(value)) == [], resource.name


STATEFUL = {
    "aws:s3/bucket:Bucket",
    "aws:kms/key:Key",
    "aws:glue/catalogDatabase:CatalogDatabase",
    "aws:sqs/queue:Queue",
    "aws:ecr/repository:Repository",
    "aws:kinesis/stream:Stream",
    "aws:rds/cluster:Cluster",
    "aws:secretsmanager/secret:Secret",
}


def test_prod_protects_and_retains_every_stateful_resource() -> None:
    prod = evaluated("prod")
    stateful = [r for r in prod.resources if r.type in STATEFUL]
    assert len(stateful) >= 8
    for resource in stateful:
        assert resource.protect and resource.retain_on_delete, f"{resource.name} is not protected in prod"
    assert named(prod, "network-flow-logs").protect


@pytest.mark.parametrize("name", ["dev", "staging"])
def test_non_prod_stacks_protect_nothing(name: str) -> None:
    assert not [r.name for r in evaluated(name).resources if r.protect]
