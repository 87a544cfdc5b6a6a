"""Cross-region replication of raw and curated (the prod profile's default, `replication` elsewhere): replica buckets
and key in a second region through a second explicit provider, a least-privilege role, replication with metrics and
an alarm per zone (docs/CONTROLS.md row 63)."""

from __future__ import annotations

from pathlib import Path

from etlctl.offline import Evaluation
from tests.support.definitions import arn_of
from tests.support.resources import named, of_type, policy, statements
from tests.support.stacks import evaluate_config, evaluated

CONFIG = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
PREFIX = "etl-platform-replication"


def prod() -> Evaluation:
    return evaluated("prod")


def test_raw_and_curated_replicate_into_replicas_under_the_replica_key() -> None:
    stack = prod()
    replica_key = named(stack, "replication-key")
    configs = {c.name.removeprefix(f"{PREFIX}-"): c for c in of_type(stack, CONFIG)}
    assert sorted(configs) == ["curated", "raw"]
    role = named(stack, "replication-role")
    for zone, config in configs.items():
        source, replica = named(stack, f"lake-{zone}"), named(stack, f"replication-replica-{zone}")
        assert config.inputs["bucket"] == arn_of(source).removeprefix("arn:aws:s3:::")
        assert config.inputs["role"] == arn_of(role)
        (rule,) = config.inputs["rules"]
        assert rule["status"] == "Enabled" and rule["filter"] == {"prefix": ""}
        assert rule["sourceSelectionCriteria"] == {"sseKmsEncryptedObjects": {"status": "Enabled"}}
        assert rule["deleteMarkerReplication"] == {"status": "Enabled"}
        destination = rule["destination"]
        assert destination["bucket"] == arn_of(replica)
        assert destination["encryptionConfiguration"] == {"replicaKmsKeyId": arn_of(replica_key)}
        assert destination["metrics"] == {"status": "Enabled"}
        # Versioning on both sides first: S3 refuses a configuration on an unversioned bucket.
        for versioning in (f"lake-{zone}-versioning", f"replication-replica-{zone}-versioning"):
            assert named(stack, versioning).urn in config.dependencies


def test_replica_buckets_meet_the_bucket_controls_with_the_replica_key() -> None:
    stack = prod()
    replica_key = named(stack, "replication-key")
    assert replica_key.inputs["enableKeyRotation"] is True and replica_key.inputs["deletionWindowInDays"] == 30
    assert replica_key.protect and replica_key.retain_on_delete
    for zone in ("raw", "curated"):
        bucket = named(stack, f"replication-replica-{zone}")
        assert bucket.protect and bucket.retain_on_delete and bucket.inputs["forceDestroy"] is False
        (rule,) = named(stack, f"replication-replica-{zone}-encryption").inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": arn_of(replica_key),
        }
        assert named(stack, f"replication-replica-{zone}-versioning").inputs["versioningConfiguration"] == {
            "status": "Enabled"
        }
        logging = named(stack, f"replication-replica-{zone}-logging")
        assert logging.inputs["targetBucket"].startswith(f"{PREFIX}-replica-access-logs-")
        assert named(stack, "replication-replica-access-logs-policy").urn in logging.dependencies


def test_the_role_replicates_these_buckets_only_with_each_key_through_s3_in_its_region() -> None:
    stack = prod()
    document = policy(named(stack, "replication-role-policy").inputs["policy"])
    by_sid = {s["Sid"]: s for s in statements(document)}
    sources = sorted(arn_of(named(stack, f"lake-{zone}")) for zone in ("raw", "curated"))
    replicas = sorted(arn_of(named(stack, f"replication-replica-{zone}")) for zone in ("raw", "curated"))
    assert sorted(by_sid["SourceBuckets"]["Resource"]) == sources
    assert sorted(by_sid["SourceObjects"]["Resource"]) == [f"{arn}/*" for arn in sources]
    assert sorted(by_sid["ReplicaObjects"]["Resource"]) == [f"{arn}/*" for arn in replicas]
    assert by_sid["ReplicaObjects"]["Action"] == ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"]
    assert by_sid["SourceKey"]["Resource"] == [arn_of(named(stack, "encryption-key"))]
    assert by_sid["SourceKey"]["Condition"]["StringEquals"] == {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    assert by_sid["ReplicaKey"]["Resource"] == [arn_of(named(stack, "replication-key"))]
    assert by_sid["ReplicaKey"]["Condition"]["StringEquals"] == {"kms:ViaService": "s3.eu-central-1.amazonaws.com"}
    (trust,) = statements(policy(named(stack, "replication-role").inputs["assumeRolePolicy"]))
    assert trust["Principal"] == {"Service": "s3.amazonaws.com"}


def test_a_failed_replication_alarms_per_zone() -> None:
    stack = prod()
    for zone in ("raw", "curated"):
        alarm = named(stack, f"replication-{zone}-failed")
        assert alarm.inputs["namespace"] == "AWS/S3" and alarm.inputs["metricName"] == "OperationsFailedReplication"
        assert alarm.inputs["dimensions"] == {
            "SourceBucket": arn_of(named(stack, f"lake-{zone}")).removeprefix("arn:aws:s3:::"),
            "DestinationBucket": arn_of(named(stack, f"replication-replica-{zone}")).removeprefix("arn:aws:s3:::"),
            "RuleId": "replicate-everything",
        }
        assert alarm.inputs["alarmActions"] == [arn_of(named(stack, "monitoring-alerts"))]


def test_other_profiles_replicate_only_when_asked(tmp_path: Path) -> None:
    assert not of_type(evaluated("dev"), CONFIG) and not of_type(evaluated("staging"), CONFIG)
    config = {
        "aws:region": "eu-west-1",
        "etl-platform:environment": "dev",
        "etl-platform:replication": {"enabled": True, "region": "eu-north-1"},
    }
    dev = evaluate_config(tmp_path, config)
    assert len(of_type(dev, CONFIG)) == 2
    (replica,) = [p for p in dev.registrations if p.name == "aws-replica"]
    assert replica.inputs["region"] == "eu-north-1"
    assert named(dev, "replication-replica-raw").inputs["forceDestroy"] is True, "dev's profile, also for replicas"
