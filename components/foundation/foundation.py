"""Foundation: the parts every architecture shares, built once per stack and handed on as frozen refs.

Composes Encryption (the stack key), DataLake (zone buckets, access logs, Glue database), Athena (the workgroup and
named queries over curated), Network (VPC), Monitoring (alerts topic, dashboard) and, where the settings turn them on
(the prod profile does), CodeSigning (Lambda code signing) and Replication (raw and curated copied to a second
region); the Redshift warehouse when `warehouse.engine` is `redshift` (no profile turns it on). Resolves the account
and partition through the stack's provider.

Takes: `FoundationArgs` (the validated settings and the interface endpoints architectures need). Exposes: `refs`
(`FoundationRefs`, what architectures receive) and `monitoring` (to publish the dashboard once everything is built).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.foundation import athena
from components.foundation.athena import Athena, AthenaArgs
from components.foundation.data_lake import FLOW_LOG_PREFIX, DataLake, DataLakeArgs
from components.foundation.encryption import Encryption, EncryptionArgs
from components.foundation.monitoring import Monitoring, MonitoringArgs
from components.foundation.network import Network, NetworkArgs
from components.foundation.replication import REPLICATED_ZONES, Replication, ReplicationArgs
from components.foundation.signing import CodeSigning, CodeSigningArgs
from components.foundation.warehouse import RedshiftWarehouse, WarehouseArgs
from components.refs import FoundationRefs, StackRefs
from components.settings import StackSettings


@dataclasses.dataclass(frozen=True)
class FoundationArgs:
    settings: StackSettings
    interface_endpoints: Sequence[str] = ()
    """Interface endpoints the selected architectures need when the VPC has no NAT."""
    replica_provider: aws.Provider | None = None
    """The explicit provider of the replica region; required when the settings turn replication on."""


class Foundation(pulumi.ComponentResource):
    foundation: FoundationRefs
    monitoring: Monitoring

    def __init__(self, name: str, args: FoundationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("etl:foundation:Foundation", name, {}, opts)
        settings = args.settings
        profile = settings.profile
        invoke = pulumi.InvokeOutputOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke).partition
        account_id = identity.account_id
        stateful = pulumi.ResourceOptions(protect=profile.protect, retain_on_delete=profile.retain_on_delete)
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"{settings.project}-{settings.stack}"

        # The account-wide catalog setting points at this key: its owner keeps the key when the stack goes.
        key_options = (
            pulumi.ResourceOptions.merge(stateful, pulumi.ResourceOptions(retain_on_delete=True))
            if settings.config.owns_catalog_encryption
            else stateful
        )
        encryption = Encryption(
            f"{name}-encryption",
            EncryptionArgs(
                alias=prefix, account_id=account_id, partition=partition, region=settings.region, stateful=key_options
            ),
            opts=child,
        )
        key = encryption.key

        lake = DataLake(
            f"{name}-lake",
            DataLakeArgs(
                key_arn=key.arn,
                account_id=account_id,
                catalog_database_name=prefix.replace("-", "_") + "_curated",
                force_destroy=profile.force_destroy,
                noncurrent_version_days=profile.noncurrent_version_days,
                access_log_days=settings.audit_log_retention_days,
                stateful=stateful,
                region=settings.region,
                partition=partition,
                owns_catalog_encryption=settings.config.owns_catalog_encryption,
                artifact_expirations={athena.RESULTS_PREFIX: settings.config.athena.result_retention_days},
            ),
            opts=child,
        )
        # Athena over curated costs nothing at rest: every stack has its workgroup and named queries.
        Athena(
            f"{name}-athena",
            AthenaArgs(
                workgroup_name=prefix,
                lake=lake.lake,
                key_arn=key.arn,
                account_id=account_id,
                bytes_scanned_cutoff=settings.athena_cutoff_bytes,
                force_destroy=profile.force_destroy,
                stateful=stateful,
            ),
            opts=child,
        )

        nat = settings.nat_gateways
        network = Network(
            f"{name}-network",
            NetworkArgs(
                cidr=settings.config.network.cidr,
                az_count=settings.config.network.az_count,
                nat_gateways=nat,
                region=settings.region,
                flow_log_bucket_arn=lake.lake.access_logs.arn,
                flow_log_prefix=FLOW_LOG_PREFIX,
                flow_log_aggregation_seconds=settings.config.network.flow_log_aggregation_seconds,
                flow_log_after=[lake.access_log_policy],
                interface_endpoints=tuple(args.interface_endpoints),
            ),
            opts=child,
        )

        self.monitoring = Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(
                key_arn=key.arn,
                account_id=account_id,
                region=settings.region,
                alert_emails=tuple(settings.config.alert_emails),
                stateful=stateful,
            ),
            opts=child,
        )

        if settings.replication:
            if args.replica_provider is None or settings.config.replication.region is None:
                raise ValueError("replication is on: FoundationArgs.replica_provider and a replica region are required")
            Replication(
                f"{name}-replication",
                ReplicationArgs(
                    provider=args.replica_provider,
                    replica_region=settings.config.replication.region,
                    region=settings.region,
                    sources={zone: lake.buckets[zone] for zone in REPLICATED_ZONES},
                    source_versioning=[lake.versioning[zone] for zone in REPLICATED_ZONES],
                    key_arn=key.arn,
                    account_id=account_id,
                    partition=partition,
                    alerts=self.monitoring.alerts,
                    force_destroy=profile.force_destroy,
                    noncurrent_version_days=profile.noncurrent_version_days,
                    access_log_days=settings.audit_log_retention_days,
                    stateful=stateful,
                ),
                opts=child,
            )

        sizes = settings.warehouse
        warehouse = (
            RedshiftWarehouse(
                f"{name}-warehouse",
                WarehouseArgs(
                    prefix=prefix,
                    sizes=sizes,
                    key_arn=key.arn,
                    account_id=account_id,
                    partition=partition,
                    region=settings.region,
                    vpc_id=network.network.vpc_id,
                    private_subnet_ids=network.network.private_subnet_ids,
                    curated=lake.lake.curated,
                    catalog_database=lake.lake.catalog_database,
                    stateful=stateful,
                ),
                opts=child,
            ).refs
            if sizes.enabled
            else None
        )

        signing = (
            CodeSigning(f"{name}-signing", CodeSigningArgs(prefix=prefix), opts=child).signing
            if settings.code_signing
            else None
        )

        self.refs = FoundationRefs(
            stack=StackRefs(
                project=settings.project,
                stack=settings.stack,
                environment=settings.environment.value,
                region=settings.region,
                account_id=account_id,
                partition=partition,
            ),
            profile=profile,
            log_retention_days=settings.log_retention_days,
            audit_log_retention_days=settings.audit_log_retention_days,
            key=key,
            lake=lake.lake,
            network=network.network,
            alerts=self.monitoring.alerts,
            signing=signing,
            warehouse=warehouse,
        )
        self.register_outputs({"keyArn": key.arn, "alertsTopicArn": self.monitoring.alerts.topic_arn})
