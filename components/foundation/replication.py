"""Replication: the raw zone (the source of truth) and the curated zone (the product) copied to a second region.

Provisions, in the replica region through the second explicit provider it is given: a customer key (rotation, 30-day
window, explicit policy) and a `ReplicaLake` (replica buckets built like the lake's, rows 1-7, with their own access
log bucket there). In the stack's region: one least-privilege replication role for S3 (read the sources' versions,
replicate into the replicas, decrypt with the stack key and encrypt with the replica key, each only via S3 in its own
region), a replication configuration per zone (every object, SSE-KMS objects included, re-encrypted with the replica
key, delete markers replicated, replication metrics on), and an alarm per zone when any operation fails to
replicate. Permanent deletions of versions are never replicated (S3 does not), and the replicas keep noncurrent
versions as long as the source does, so a deletion in the source stays recoverable in the replica.

Takes: `ReplicationArgs`. Exposes: `replicas` (zone -> replica bucket), `key_arn` (the replica key).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import policies
from components.foundation.alarms import metric_alarm
from components.foundation.data_lake import ReplicaLake, ReplicaLakeArgs
from components.refs import AlertRefs
from components.roles import service_role

REPLICATED_ZONES = ("raw", "curated")
RULE_ID = "replicate-everything"


@dataclasses.dataclass(frozen=True)
class ReplicationArgs:
    provider: aws.Provider
    """The explicit provider of the replica region."""
    replica_region: str
    region: str
    sources: Mapping[str, aws.s3.Bucket]
    """The buckets to replicate, by zone."""
    source_versioning: Sequence[pulumi.Resource]
    """Replication needs versioning on the source first."""
    key_arn: pulumi.Input[str]
    """The stack key the sources are encrypted with."""
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    alerts: AlertRefs
    force_destroy: bool
    noncurrent_version_days: int
    access_log_days: int
    stateful: pulumi.ResourceOptions


class Replication(pulumi.ComponentResource):
    replicas: dict[str, aws.s3.Bucket]
    key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ReplicationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("etl:foundation:Replication", name, {}, opts)
        if args.replica_region == args.region:
            raise ValueError(f"the replica region must differ from the stack's region ({args.region})")
        in_replica_region = pulumi.ResourceOptions(parent=self, provider=args.provider)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"Replica key of {name} in {args.replica_region}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(args.account_id, args.partition).apply(
                lambda values: json.dumps(policies.replica_key_policy(values[0], values[1]))
            ),
            opts=pulumi.ResourceOptions.merge(args.stateful, in_replica_region),
        )
        self.key_arn = key.arn
        lake = ReplicaLake(
            f"{name}-replica",
            ReplicaLakeArgs(
                key_arn=key.arn,
                account_id=args.account_id,
                partition=args.partition,
                force_destroy=args.force_destroy,
                noncurrent_version_days=args.noncurrent_version_days,
                access_log_days=args.access_log_days,
                stateful=args.stateful,
                zones=tuple(args.sources),
            ),
            opts=pulumi.ResourceOptions(parent=self, providers={"aws": args.provider}),
        )
        self.replicas = lake.buckets

        zones = list(args.sources)
        pairs = pulumi.Output.all(
            *[args.sources[zone].arn for zone in zones], *[self.replicas[zone].arn for zone in zones]
        ).apply(lambda arns: list(zip(arns[: len(zones)], arns[len(zones) :], strict=True)))
        role = service_role(
            f"{name}-role",
            policy_name=f"{name}-role-policy",
            service="s3.amazonaws.com",
            account_id=args.account_id,
            description=f"S3 replication of {', '.join(zones)} to {args.replica_region}",
            policy=pulumi.Output.all(pairs, args.key_arn, key.arn).apply(
                lambda values: json.dumps(
                    policies.replication_role_policy(values[0], values[1], values[2], args.region, args.replica_region)
                )
            ),
            parent=self,
        )
        for zone in zones:
            source, replica = args.sources[zone], self.replicas[zone]
            aws.s3.BucketReplicationConfig(
                f"{name}-{zone}",
                bucket=source.id,
                role=role.role.arn,
                rules=[
                    aws.s3.BucketReplicationConfigRuleArgs(
                        id=RULE_ID,
                        status="Enabled",
                        filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                        delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                            status="Enabled"
                        ),
                        source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                            sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                                status="Enabled"
                            )
                        ),
                        destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                            bucket=replica.arn,
                            encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                                replica_kms_key_id=key.arn
                            ),
                            # OperationsFailedReplication, ReplicationLatency, Bytes/OperationsPendingReplication.
                            metrics=aws.s3.BucketReplicationConfigRuleDestinationMetricsArgs(status="Enabled"),
                        ),
                    )
                ],
                # S3 checks the role and both buckets' versioning when the configuration is put.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*args.source_versioning, *lake.versioning.values(), role.policy],
                ),
            )
            metric_alarm(
                f"{name}-{zone}-failed",
                parent=self,
                alerts=args.alerts,
                description=f"Objects of the {zone} zone failed to replicate to {args.replica_region}.",
                namespace="AWS/S3",
                metric_name="OperationsFailedReplication",
                dimensions={"SourceBucket": source.bucket, "DestinationBucket": replica.bucket, "RuleId": RULE_ID},
            )
        self.register_outputs({f"{zone}Replica": bucket.bucket for zone, bucket in self.replicas.items()})
