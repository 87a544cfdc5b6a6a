"""Athena over the curated zone: the stack's workgroup, the quarantine table and the named queries.

Part of the foundation (nothing here costs anything at rest): Athena charges per byte scanned, the catalog table
and the named queries are free. Provisions:

- the workgroup `<project>-<stack>`: its configuration enforced (clients cannot override it), Athena engine version 3
  pinned (a new engine version is a deliberate change, not a surprise), CloudWatch metrics published, a per-query
  bytes-scanned cutoff (the `athena.bytesScannedCutoffGb` setting), results written to the artifacts bucket under
  `RESULTS_PREFIX`, encrypted with the stack key (SSE_KMS) and owned by this account; the lake's lifecycle rule on
  that prefix expires them (`DataLakeArgs.artifact_expirations`);
- the `quarantine` table over the quarantine zone's `deliveries/` (the rows quarantined per delivery, Parquet: the
  quarantine columns and the contract's), which the quarantine-rate and late/updated queries read beside `orders`;
- one `aws.athena.NamedQuery` per query of `components.foundation.queries.NAMED_QUERIES`, in the lake's database.

Takes `AthenaArgs`. Exposes `workgroup` and `outputs()`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pulumi_aws as aws

from components.foundation import curated_table, queries
from components.refs import LakeRefs
from etl_jobs.contract import CURATED_COLUMNS

ENGINE_VERSION = "Athena engine version 3"
RESULTS_PREFIX = "athena-results/"
QUARANTINED_ROWS = "deliveries/"
"""Where the quarantine zone keeps quarantined rows (`etl_jobs.layout.QUARANTINED_ROWS`)."""
_QUARANTINE_TYPES = {
    "landing_source": "string",
    "landing_seq": "bigint",
    "source_file": "string",
    "line": "bigint",
    "reason": "string",
    "raw_line": "string",
}
QUARANTINE_COLUMNS: tuple[tuple[str, str], ...] = (
    *_QUARANTINE_TYPES.items(),
    *((column, curated_table.hive_type(column)) for column in CURATED_COLUMNS),
)
"""(name, Hive type) of the quarantined rows' files, in the order the engines write them."""


@dataclasses.dataclass(frozen=True)
class AthenaArgs:
    workgroup_name: str
    """The workgroup's name (`<project>-<stack>`)."""
    lake: LakeRefs
    key_arn: pulumi.Input[str]
    """The stack key: query results are encrypted with it."""
    account_id: pulumi.Input[str]
    bytes_scanned_cutoff: int
    """Bytes a query may scan before Athena cancels it (at least 10 MB, Athena's minimum)."""
    force_destroy: bool = False
    """Let `pulumi destroy` delete the workgroup with its saved queries and history (dev)."""
    stateful: pulumi.ResourceOptions = dataclasses.field(default_factory=pulumi.ResourceOptions)
    """Protection of the catalog table (as the lake's)."""

    def __post_init__(self) -> None:
        if self.bytes_scanned_cutoff < 10 * 1024**2:
            raise ValueError(
                f"bytes_scanned_cutoff must be at least 10 MB (Athena's minimum), got {self.bytes_scanned_cutoff}"
            )


class Athena(pulumi.ComponentResource):
    workgroup: aws.athena.Workgroup

    def __init__(self, name: str, args: AthenaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("etl:foundation:Athena", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        lake = args.lake
        location = lake.quarantine.uri(QUARANTINED_ROWS)
        self.quarantine_table = aws.glue.CatalogTable(
            f"{name}-quarantine-table",
            name=queries.QUARANTINE_TABLE,
            database_name=lake.catalog_database,
            description="Quarantined rows of every delivery (broken rows and superseded versions), with the reason",
            table_type="EXTERNAL_TABLE",
            parameters={"classification": "parquet", "EXTERNAL": "TRUE"},
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=location,
                input_format=curated_table.PARQUET["input_format"],
                output_format=curated_table.PARQUET["output_format"],
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    serialization_library=curated_table.PARQUET["serialization_library"],
                    parameters={"serialization.format": "1"},
                ),
                columns=[
                    aws.glue.CatalogTableStorageDescriptorColumnArgs(name=column, type=kind)
                    for column, kind in QUARANTINE_COLUMNS
                ],
            ),
            opts=pulumi.ResourceOptions.merge(args.stateful, child),
        )
        self.workgroup = aws.athena.Workgroup(
            f"{name}-workgroup",
            name=args.workgroup_name,
            description="Queries over the curated zone; results encrypted with the stack key, scans capped per query",
            state="ENABLED",
            force_destroy=args.force_destroy,
            configuration=aws.athena.WorkgroupConfigurationArgs(
                # Clients cannot send results elsewhere, unencrypted, or past the cutoff.
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=args.bytes_scanned_cutoff,
                requester_pays_enabled=False,
                engine_version=aws.athena.WorkgroupConfigurationEngineVersionArgs(
                    selected_engine_version=ENGINE_VERSION
                ),
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location=lake.artifacts.uri(RESULTS_PREFIX),
                    expected_bucket_owner=args.account_id,
                    encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_KMS", kms_key_arn=args.key_arn
                    ),
                ),
            ),
            opts=child,
        )
        self.named_queries = [
            aws.athena.NamedQuery(
                f"{name}-{query.name}",
                name=query.name,
                description=query.description,
                database=lake.catalog_database,
                workgroup=self.workgroup.name,
                query=query.sql,
                opts=child,
            )
            for query in queries.NAMED_QUERIES
        ]
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        return {
            "workgroup": self.workgroup.name,
            "namedQueries": [query.name for query in queries.NAMED_QUERIES],
            "quarantineTable": self.quarantine_table.name,
        }
