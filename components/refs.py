"""Small frozen records passed between components, so architectures depend on data, not on each other.

The foundation fills `FoundationRefs`; every architecture receives it in its args. A ref holds `pulumi.Output`s
(values known once deployed); code that needs the plain values resolves them inside an `apply`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pulumi

from components.settings import Profile


@dataclasses.dataclass(frozen=True)
class StackRefs:
    """Who and where: stack identity plus the account and partition the provider resolved."""

    project: str
    stack: str
    environment: str
    region: str
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]


@dataclasses.dataclass(frozen=True)
class KeyRefs:
    """The stack's customer-managed KMS key."""

    arn: pulumi.Output[str]
    id: pulumi.Output[str]


@dataclasses.dataclass(frozen=True)
class BucketRef:
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def uri(self, prefix: str = "") -> pulumi.Output[str]:
        return pulumi.Output.concat("s3://", self.name, "/", prefix)


@dataclasses.dataclass(frozen=True)
class LakeRefs:
    """The data lake zones, the artifacts bucket, and the curated zone's Glue database and table."""

    raw: BucketRef
    staged: BucketRef
    curated: BucketRef
    quarantine: BucketRef
    artifacts: BucketRef
    access_logs: BucketRef
    catalog_database: pulumi.Output[str]
    curated_table: pulumi.Output[str] | None = None
    """The curated table's name in `catalog_database` (the foundation always declares it: `orders`)."""

    def zone_environment(self) -> dict[str, pulumi.Output[str]]:
        """The environment variables through which deployed jobs find their zones (see etl_jobs.zones)."""
        return {
            "ETL_RAW_URI": self.raw.uri(),
            "ETL_STAGED_URI": self.staged.uri(),
            "ETL_CURATED_URI": self.curated.uri(),
            "ETL_QUARANTINE_URI": self.quarantine.uri(),
        }


@dataclasses.dataclass(frozen=True)
class NetworkRefs:
    vpc_id: pulumi.Output[str]
    cidr: str
    private_subnet_ids: Sequence[pulumi.Output[str]]
    has_nat: bool
    s3_prefix_list_id: pulumi.Output[str] | None = None
    """The S3 gateway endpoint's prefix list (`pl-...`): what a security group's HTTPS egress to S3 names."""
    endpoint_security_group_id: pulumi.Output[str] | None = None
    """The interface endpoints' security group (HTTPS from the VPC); None when the stack has no interface endpoint."""


@dataclasses.dataclass(frozen=True)
class AlertRefs:
    topic_arn: pulumi.Output[str]


@dataclasses.dataclass(frozen=True)
class SigningRefs:
    """The stack's Lambda code signing: the Signer profile that signs uploads and the config that enforces it."""

    profile_name: pulumi.Output[str]
    config_arn: pulumi.Output[str]


@dataclasses.dataclass(frozen=True)
class WarehouseRefs:
    """The Redshift Serverless warehouse a pipeline loads after its load stage (`components.foundation.warehouse`)."""

    workgroup_name: pulumi.Output[str]
    workgroup_arn: pulumi.Output[str]
    database: str
    admin_secret_arn: pulumi.Output[str]
    """The admin password Redshift keeps in Secrets Manager (encrypted with the stack key); the load runs as admin."""
    curated_partitions: pulumi.Output[str]
    """The S3 prefix of curated's published partitions (`s3://<curated>/order_date=`), what COPY reads."""
    catalog_database: pulumi.Output[str]


@dataclasses.dataclass(frozen=True)
class FoundationRefs:
    """Everything the foundation shares with architectures."""

    stack: StackRefs
    profile: Profile
    log_retention_days: int
    audit_log_retention_days: int
    key: KeyRefs
    lake: LakeRefs
    network: NetworkRefs
    alerts: AlertRefs
    signing: SigningRefs | None = None
    """Set when the stack enforces Lambda code signing: every function package and layer must be signed with it."""
    warehouse: WarehouseRefs | None = None
    """Set when the stack turns the Redshift warehouse on: every pipeline loads it after its load stage."""

    def stateful(self, parent: pulumi.Resource, **options: object) -> pulumi.ResourceOptions:
        """Options for a resource that holds data: protected and retained on delete where the profile says so."""
        return pulumi.ResourceOptions(
            parent=parent,
            protect=self.profile.protect,
            retain_on_delete=self.profile.retain_on_delete,
            **options,  # type: ignore[arg-type]
        )
