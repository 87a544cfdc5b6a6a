"""Data lake: the zone buckets, the access-log bucket, and the Glue Data Catalog database and table of the curated zone.

Every data bucket (raw, staged, curated, quarantine, artifacts) meets docs/CONTROLS.md rows 1-7: public access blocked,
SSE-KMS with the stack key and bucket keys, a TLS-only policy with no Allow, access logging to the log bucket under
its own prefix, versioning, lifecycle (tiering, noncurrent expiry, abort multipart), BucketOwnerEnforced. The raw
bucket sends its events to EventBridge, which drives file-drop pipelines without competing bucket notifications.
The access-log bucket uses SSE-S3: S3 server access logging cannot deliver to an SSE-KMS bucket. It also receives
the VPC flow logs (under `FLOW_LOG_PREFIX`), so its policy admits both deliveries, and each zone's `BucketLogging` is
created after that policy: S3 refuses a logging target whose policy does not let the logging service write yet
(`InvalidTargetBucketForLogging`).

Catalog encryption (`aws.glue.DataCatalogEncryptionSettings`) is one setting per account and region, not per stack:
only the stack that `owns_catalog_encryption` declares it, and it is retained on delete, because the provider's delete
writes an empty setting, which would turn catalog encryption off for every stack in the account and region.

The curated table (`orders`, `components.foundation.curated_table`: the contract's columns and types, Parquet, partition
projection on `order_date` over the layout the engines write) is declared for every stack, whatever the architectures:
Athena, Glue Data Quality and Spark read curated by name, and it costs nothing at rest. Protected like the database.

Takes: `DataLakeArgs`. Exposes: `lake` (`LakeRefs`), `buckets` and `versioning` by zone (replication builds on them),
`access_log_policy` (what a delivery into the log bucket must wait for).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Protocol

import pulumi
import pulumi_aws as aws

from components import policies
from components.foundation import curated_table
from components.refs import BucketRef, LakeRefs

ZONES = ("raw", "staged", "curated", "quarantine", "artifacts")
# Where VPC flow logs land in the access-log bucket (the bucket's lifecycle keeps them for the audit retention).
FLOW_LOG_PREFIX = "vpc-flow-logs/"


@dataclasses.dataclass(frozen=True)
class DataLakeArgs:
    key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    catalog_database_name: str
    """Glue database name (lower case, underscores)."""
    force_destroy: bool
    """Let `pulumi destroy` empty buckets (dev only)."""
    noncurrent_version_days: int
    access_log_days: int
    """How long access logs are kept."""
    stateful: pulumi.ResourceOptions
    """Protection options from the profile (protect/retain in prod)."""
    region: str = ""
    """Where the VPC flow logs delivered into the log bucket come from; empty: the log bucket admits none."""
    partition: pulumi.Input[str] = "aws"
    owns_catalog_encryption: bool = True
    """Declare the account-and-region-wide Glue Data Catalog encryption setting (exactly one stack per account and
    region may)."""
    artifact_expirations: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Prefixes of the artifacts bucket whose objects expire after so many days (Athena's query results), each its
    own lifecycle rule (S3 keeps one lifecycle configuration per bucket, so they are declared here)."""


class BucketSettings(Protocol):
    """What `ZoneBuckets` builds its buckets from (DataLakeArgs, ReplicaLakeArgs)."""

    @property
    def key_arn(self) -> pulumi.Input[str]: ...
    @property
    def account_id(self) -> pulumi.Input[str]: ...
    @property
    def partition(self) -> pulumi.Input[str]: ...
    @property
    def region(self) -> str: ...
    @property
    def force_destroy(self) -> bool: ...
    @property
    def noncurrent_version_days(self) -> int: ...
    @property
    def access_log_days(self) -> int: ...
    @property
    def stateful(self) -> pulumi.ResourceOptions: ...


class ZoneBuckets(pulumi.ComponentResource):
    """Base of the components holding zone buckets (the lake, its replica): each zone bucket with rows 1-7, the
    access-log bucket, its policy, then each zone's logging into it."""

    _args: BucketSettings
    buckets: dict[str, aws.s3.Bucket]
    versioning: dict[str, aws.s3.BucketVersioning]
    access_logs: aws.s3.Bucket
    access_log_policy: aws.s3.BucketPolicy

    def _zones(self, name: str, zones: Sequence[str], args: BucketSettings) -> None:
        self._args = args
        self._versioning: dict[str, aws.s3.BucketVersioning] = {}
        logs = self.access_logs = self._access_log_bucket(name)
        buckets = {zone: self._zone_bucket(f"{name}-{zone}", zone, logs) for zone in zones}
        self.buckets = buckets
        self.versioning = {zone: self._versioning[f"{name}-{zone}"] for zone in zones}

        source_arns = pulumi.Output.all(*(bucket.arn for bucket in buckets.values()))
        flow_logs = (args.region, FLOW_LOG_PREFIX) if args.region else None
        self.access_log_policy = aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=logs.bucket,
            policy=pulumi.Output.all(logs.arn, args.account_id, source_arns, args.partition).apply(
                lambda values: json.dumps(
                    policies.access_log_bucket_policy(values[0], values[1], values[2], values[3], flow_logs=flow_logs)
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Only once the log bucket lets the logging service write: S3 checks the target when logging is enabled.
        for zone, bucket in buckets.items():
            aws.s3.BucketLogging(
                f"{name}-{zone}-logging",
                bucket=bucket.id,
                target_bucket=logs.id,
                target_prefix=f"{zone}/",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.access_log_policy]),
            )

    # -----------------------------------------------------------------------------------------------------------------

    def _bucket(self, name: str) -> aws.s3.Bucket:
        bucket = aws.s3.Bucket(
            name,
            force_destroy=self._args.force_destroy,
            opts=pulumi.ResourceOptions.merge(self._args.stateful, pulumi.ResourceOptions(parent=self)),
        )
        child = pulumi.ResourceOptions(parent=self)
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        self._versioning[name] = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        return bucket

    def _access_log_bucket(self, name: str) -> aws.s3.Bucket:
        logs = self._bucket(f"{name}-access-logs")
        child = pulumi.ResourceOptions(parent=self)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-access-logs-encryption",
            bucket=logs.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256",
                    ),
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-access-logs-lifecycle",
            bucket=logs.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=self._args.access_log_days),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=self._args.noncurrent_version_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                )
            ],
            opts=child,
        )
        return logs

    def _zone_bucket(self, name: str, zone: str, logs: aws.s3.Bucket) -> aws.s3.Bucket:
        bucket = self._bucket(name)
        child = pulumi.ResourceOptions(parent=self)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms",
                        kms_master_key_id=self._args.key_arn,
                    ),
                    # Bucket keys cut KMS requests (and cost) by orders of magnitude for many small objects.
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(policies.bucket_policy(arn))),
            opts=child,
        )
        rules = [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="housekeeping",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=self._args.noncurrent_version_days
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7
                ),
                # Intelligent-Tiering moves cold objects to cheaper tiers without retrieval fees.
                transitions=[
                    aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=0, storage_class="INTELLIGENT_TIERING")
                ]
                if zone in ("curated", "raw")
                else None,
            )
        ]
        rules += self._prefix_rules(zone)
        aws.s3.BucketLifecycleConfiguration(f"{name}-lifecycle", bucket=bucket.id, rules=rules, opts=child)
        return bucket

    def _prefix_rules(self, zone: str) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
        """Lifecycle rules for prefixes of `zone` beyond the housekeeping rule (none here)."""
        return []


class DataLake(ZoneBuckets):
    lake: LakeRefs

    def __init__(self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("etl:foundation:DataLake", name, {}, opts)
        self._expirations = dict(args.artifact_expirations)
        self._zones(name, ZONES, args)
        buckets, logs = self.buckets, self.access_logs

        # File drops into the raw zone start pipelines through EventBridge rules (S3.11 / row 7).
        aws.s3.BucketNotification(
            f"{name}-raw-events",
            bucket=buckets["raw"].bucket,
            eventbridge=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

        database = aws.glue.CatalogDatabase(
            f"{name}-catalog",
            name=args.catalog_database_name,
            description="Curated zone of the orders pipeline",
            location_uri=pulumi.Output.concat("s3://", buckets["curated"].bucket, "/"),
            opts=pulumi.ResourceOptions.merge(args.stateful, pulumi.ResourceOptions(parent=self)),
        )
        curated_location = pulumi.Output.concat("s3://", buckets["curated"].bucket, "/")
        table = aws.glue.CatalogTable(
            f"{name}-curated-table",
            name=curated_table.TABLE_NAME,
            database_name=database.name,
            description="Curated orders: one row per order_id across all runs, partitioned by order_date",
            table_type="EXTERNAL_TABLE",
            parameters=curated_location.apply(curated_table.table_parameters),
            partition_keys=[
                aws.glue.CatalogTablePartitionKeyArgs(name=column, type=kind, comment=curated_table.comment(column))
                for column, kind in curated_table.PARTITION_KEYS
            ],
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=curated_location,
                input_format=curated_table.PARQUET["input_format"],
                output_format=curated_table.PARQUET["output_format"],
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    serialization_library=curated_table.PARQUET["serialization_library"],
                    parameters={"serialization.format": "1"},
                ),
                columns=[
                    aws.glue.CatalogTableStorageDescriptorColumnArgs(
                        name=column, type=kind, comment=curated_table.comment(column)
                    )
                    for column, kind in curated_table.COLUMNS
                ],
            ),
            opts=pulumi.ResourceOptions.merge(args.stateful, pulumi.ResourceOptions(parent=self)),
        )
        # One setting per account and region (CKV_AWS_94), declared by its owner only. Retained on delete: the
        # provider's delete writes an empty setting, switching catalog encryption off account-wide.
        if args.owns_catalog_encryption:
            aws.glue.DataCatalogEncryptionSettings(
                f"{name}-catalog-encryption",
                data_catalog_encryption_settings=aws.glue.DataCatalogEncryptionSettingsDataCatalogEncryptionSettingsArgs(
                    encryption_at_rest=aws.glue.DataCatalogEncryptionSettingsDataCatalogEncryptionSettingsEncryptionAtRestArgs(
                        catalog_encryption_mode="SSE-KMS",
                        sse_aws_kms_key_id=args.key_arn,
                    ),
                    connection_password_encryption=aws.glue.DataCatalogEncryptionSettingsDataCatalogEncryptionSettingsConnectionPasswordEncryptionArgs(
                        return_connection_password_encrypted=True,
                        aws_kms_key_id=args.key_arn,
                    ),
                ),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )

        def ref(bucket: aws.s3.Bucket) -> BucketRef:
            return BucketRef(name=bucket.bucket, arn=bucket.arn)

        self.lake = LakeRefs(
            raw=ref(buckets["raw"]),
            staged=ref(buckets["staged"]),
            curated=ref(buckets["curated"]),
            quarantine=ref(buckets["quarantine"]),
            artifacts=ref(buckets["artifacts"]),
            access_logs=ref(logs),
            catalog_database=database.name,
            curated_table=table.name,
        )
        self.register_outputs(
            {f"{zone}Bucket": bucket.bucket for zone, bucket in buckets.items()}
            | {"catalogDatabase": database.name, "curatedTable": table.name}
        )

    def _prefix_rules(self, zone: str) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
        """The artifacts bucket's expiring prefixes; each rule also expires noncurrent versions and aborts incomplete
        multipart uploads (row 6), as every rule must."""
        if zone != "artifacts":
            return []
        return [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=f"expire-{prefix.strip('/').replace('/', '-')}",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=1
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=1
                ),
            )
            for prefix, days in sorted(self._expirations.items())
        ]


@dataclasses.dataclass(frozen=True)
class ReplicaLakeArgs:
    key_arn: pulumi.Input[str]
    """The replica region's key."""
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    force_destroy: bool
    noncurrent_version_days: int
    access_log_days: int
    stateful: pulumi.ResourceOptions
    zones: Sequence[str] = ("raw", "curated")
    region: str = ""
    """No flow logs reach the replica's log bucket."""


class ReplicaLake(ZoneBuckets):
    """The replica buckets of `zones`, built like the lake's (rows 1-7, access logs in the replica region): give it
    the replica region's provider."""

    def __init__(self, name: str, args: ReplicaLakeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("etl:foundation:ReplicaLake", name, {}, opts)
        self._zones(name, args.zones, args)
        self.register_outputs({f"{zone}Bucket": bucket.bucket for zone, bucket in self.buckets.items()})
