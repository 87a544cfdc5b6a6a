"""Every stack file, evaluated under mocks: the foundation controls of CONTROLS.md hold, and preview and update
register the same resources."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from components.policies import wildcard_actions
from etlctl.offline import Evaluation
from tests.support.definitions import arn_of
from tests.support.resources import as_list, named, of_type, policy, statements
from tests.support.stacks import STACKS, evaluate_config, evaluated

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


def test_explicit_providers_reach_every_resource(stack: Evaluation) -> None:
    """One provider for the stack's region; a second only where replication is on, used by the replica region's
    resources alone (replica key and buckets), never by the rest."""
    providers = {p.name: p for p in stack.registrations if p.type == "pulumi:providers:aws"}
    replicated = stack.config.stack == "prod"
    assert sorted(providers) == (["aws", "aws-replica"] if replicated else ["aws"])
    assert providers["aws"].inputs["region"] == "eu-west-1"
    # Provider inputs travel as JSON text.
    for provider in providers.values():
        tags = json.loads(provider.inputs["defaultTags"])["tags"]
        assert tags["Environment"] == stack.config.environment and tags["ManagedBy"] == "pulumi"
    in_replica_region = set()
    for resource in stack.resources:
        if resource.type.startswith("aws:"):
            # A provider reference is "<provider urn>::<provider id>".
            (used,) = [name for name, p in providers.items() if resource.provider.rsplit("::", 1)[0] == p.urn]
            if used == "aws-replica":
                in_replica_region.add(resource.name)
    if replicated:
        assert providers["aws-replica"].inputs["region"] == "eu-central-1"
        assert "etl-platform-replication-key" in in_replica_region
        assert {"etl-platform-replication-replica-raw", "etl-platform-replication-replica-curated"} <= in_replica_region
        assert all(name.startswith("etl-platform-replication-") for name in in_replica_region)
        assert "etl-platform-replication-raw" not in in_replica_region, "the configuration lives with its source"


def test_default_providers_are_disabled(stack: Evaluation) -> None:
    assert stack.config.values["pulumi:disable-default-providers"] == '["aws"]'


# ---------------------------------------------------------------------------------------------------------------------
# KMS (rows 8-9)
# ---------------------------------------------------------------------------------------------------------------------


def test_stack_key_rotates_with_a_30_day_window_and_an_explicit_policy(stack: Evaluation) -> None:
    key = named(stack, "encryption-key")
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
    key = named(stack, "encryption-key")
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


@pytest.mark.parametrize("zone", DATA_ZONES)
def test_bucket_logging_waits_for_the_log_bucket_policy(stack: Evaluation, zone: str) -> None:
    """S3 refuses a logging target whose policy does not yet admit the logging service
    (InvalidTargetBucketForLogging), so the logging resource depends on the policy, not just on the bucket."""
    logging = named(stack, f"lake-{zone}-logging")
    assert named(stack, "lake-access-logs-policy").urn in logging.dependencies


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


CATALOG_ENCRYPTION = "aws:glue/dataCatalogEncryptionSettings:DataCatalogEncryptionSettings"


def test_catalog_is_encrypted_with_the_stack_key(stack: Evaluation) -> None:
    (settings,) = of_type(stack, CATALOG_ENCRYPTION)
    encryption = settings.inputs["dataCatalogEncryptionSettings"]
    assert encryption["encryptionAtRest"]["catalogEncryptionMode"] == "SSE-KMS"
    assert encryption["encryptionAtRest"]["sseAwsKmsKeyId"].startswith("arn:aws:kms:")
    assert encryption["connectionPasswordEncryption"]["returnConnectionPasswordEncrypted"] is True
    database = named(stack, "lake-catalog")
    assert database.inputs["name"] == f"etl_platform_{stack.config.stack}_curated"


def test_the_account_wide_catalog_setting_and_its_key_outlive_the_owner(stack: Evaluation) -> None:
    """The provider's delete writes an empty setting (encryption off for every stack in the account and region), and
    the setting keeps pointing at the owner's key: both are retained on delete, in every profile."""
    (settings,) = of_type(stack, CATALOG_ENCRYPTION)
    assert settings.retain_on_delete
    key = named(stack, "encryption-key")
    assert key.retain_on_delete
    assert settings.inputs["dataCatalogEncryptionSettings"]["encryptionAtRest"]["sseAwsKmsKeyId"] == arn_of(key)


def _dev(**keys: object) -> dict[str, object]:
    return {
        "aws:region": "eu-west-1",
        "etl-platform:environment": "dev",
        **{f"etl-platform:{k}": v for k, v in keys.items()},
    }


def test_a_stack_that_does_not_own_the_catalog_setting_declares_none(tmp_path: Path) -> None:
    other = evaluate_config(tmp_path, _dev(ownsCatalogEncryption=False))
    assert of_type(other, CATALOG_ENCRYPTION) == []
    (key,) = of_type(other, "aws:kms/key:Key")
    assert not key.retain_on_delete, "dev's key is not retained when nothing account-wide points at it"


def test_handing_the_catalog_setting_over_deletes_nothing(tmp_path: Path) -> None:
    """The migration (docs/operations.md): the owner runs `up` with this version (the setting is recorded as
    retained), then with ownsCatalogEncryption false. The setting leaves the stack's state only, since Pulumi reads
    retainOnDelete from the state it deletes from; nothing else in the stack changes, so the new owner's `up` simply
    writes the setting with its key (the provider's create is a put, no import needed)."""
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    before = evaluate_config(tmp_path / "before", _dev())
    after = evaluate_config(tmp_path / "after", _dev(ownsCatalogEncryption=False))
    gone = {r.name for r in before.resources} - {r.name for r in after.resources}
    assert gone == {"etl-platform-lake-catalog-encryption"}
    assert named(before, "lake-catalog-encryption").retain_on_delete
    assert {r.name for r in after.resources} <= {r.name for r in before.resources}


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


def test_flow_logs_record_all_traffic_into_the_log_bucket_as_parquet(stack: Evaluation) -> None:
    """Row 56 as amended: ALL traffic, delivered to S3 as Parquet at 600 s, after the bucket admits the delivery."""
    (flow_log,) = of_type(stack, "aws:ec2/flowLog:FlowLog")
    logs = named(stack, "lake-access-logs")
    inputs = flow_log.inputs
    assert inputs["trafficType"] == "ALL"
    assert inputs["logDestinationType"] == "s3"
    assert inputs["logDestination"] == f"{arn_of(logs)}/vpc-flow-logs/"
    assert inputs["destinationOptions"] == {
        "fileFormat": "parquet",
        "hiveCompatiblePartitions": True,
        "perHourPartition": True,
    }
    assert inputs["maxAggregationInterval"] == 600
    assert "iamRoleArn" not in inputs, "S3 delivery needs no role"
    assert named(stack, "lake-access-logs-policy").urn in flow_log.dependencies
    assert not [group.name for group in of_type(stack, "aws:cloudwatch/logGroup:LogGroup") if "flow" in group.name]


def test_the_log_bucket_admits_flow_log_delivery_for_this_account_and_region_only(stack: Evaluation) -> None:
    document = policy(named(stack, "lake-access-logs-policy").inputs["policy"])
    delivery = [s for s in statements(document) if s.get("Principal") == {"Service": "delivery.logs.amazonaws.com"}]
    assert {s["Sid"] for s in delivery} == {"FlowLogDeliveryWrite", "FlowLogDeliveryCheck"}
    for statement in delivery:
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
        assert statement["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:logs:eu-west-1:123456789012:*"}
    write = next(s for s in delivery if s["Sid"] == "FlowLogDeliveryWrite")
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"].endswith("/vpc-flow-logs/AWSLogs/123456789012/*")


def test_flow_log_aggregation_follows_the_network_setting(tmp_path: Path) -> None:
    config = {"aws:region": "eu-west-1", "etl-platform:environment": "dev",
              "etl-platform:network": {"flowLogAggregationSeconds": 60}}  # fmt: skip
    (flow_log,) = of_type(evaluate_config(tmp_path, config), "aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["maxAggregationInterval"] == 60


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
        # Flow logs are audit logs too: the log bucket keeps them (and access logs) for the audit retention.
        (rule,) = named(stack, "lake-access-logs-lifecycle").inputs["rules"]
        assert rule["expiration"]["days"] >= 365


# ---------------------------------------------------------------------------------------------------------------------
# IAM (rows 10-11) and protection
# ---------------------------------------------------------------------------------------------------------------------


def test_roles_trust_one_service_for_this_account_only(stack: Evaluation) -> None:
    for role in of_type(stack, "aws:iam/role:Role"):
        for statement in statements(policy(role.inputs["assumeRolePolicy"])):
            services = as_list(statement["Principal"]["Service"])
            assert len(services) == 1, f"{role.name} trusts {services}"
            if services == ["ec2.amazonaws.com"]:
                # An instance profile's role (EMR cluster instances): AWS documents it without source conditions.
                assert "Condition" not in statement and role.name.endswith("emr-instance-role"), role.name
                continue
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


@pytest.mark.parametrize("name", ["dev", "staging"])
def test_non_prod_stacks_protect_nothing(name: str) -> None:
    assert not [r.name for r in evaluated(name).resources if r.protect]
