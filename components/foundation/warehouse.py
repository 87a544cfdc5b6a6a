"""Redshift Serverless over curated, behind the `warehouse` setting (`engine: redshift`; off by default).

Provisions, when the foundation builds it:

- a namespace encrypted with the stack key, its admin password managed by Redshift in Secrets Manager (encrypted
  with the stack key too, never in the program or its state), non-default admin and database names, every log
  exported to CloudWatch (user, connection and user-activity logs), and the COPY role as its default IAM role;
- a workgroup with a small base capacity (8 RPU by default, not AWS's 128), a maximum capacity, enhanced VPC routing
  (COPY from S3 goes through the VPC's S3 gateway endpoint), no public access, TLS required, in the VPC's private
  subnets (three AZs: the settings refuse fewer), behind its own security group (no ingress; HTTPS out);
- a usage limit of RPU-hours per period with a breach action (`deactivate` stops queries until the period ends);
- the COPY role (trusted by Redshift for this account only), generated from explicit ARNs: read curated's published
  partitions, decrypt them through S3, and read the lake's Data Catalog database for the external schema.

The load itself runs in each pipeline, after its load stage (`WarehouseLoad`, a `PipelineHooks` the orchestration
adds when `FoundationRefs.warehouse` is set): the Data API (`redshift-data`, through Step Functions' SDK integration)
creates the external schema over the Data Catalog, then, in one transaction, copies curated's partitions into a
staging table and merges them into `public.orders` (SQL in `components/foundation/sql/redshift/`). Each call is
asynchronous, so each is polled until it finishes, fails, or runs out of polls.

Takes `WarehouseArgs`. Exposes `refs` (`WarehouseRefs`) and `outputs()`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components import asl, policies
from components.foundation import queries
from components.pipelines import FAILED_STEP, PipelineHooks
from components.refs import BucketRef, WarehouseRefs
from components.roles import service_role
from components.settings import REDSHIFT_MIN_AZS, Warehouse
from components.stages import Stage
from etl_jobs import layout

ADMIN_USERNAME = "etl_admin"
DATABASE = "analytics"
EXTERNAL_SCHEMA = "curated"
LOG_EXPORTS = ("connectionlog", "useractivitylog", "userlog")
# Poll every 15 s, for at most 20 minutes per statement (a merge of a small curated zone takes seconds).
POLL_SECONDS = 15
MAX_POLLS = 80
# The submit and describe calls are single API calls.
CALL_BUDGET_SECONDS = 30
HOOK_STATEMENTS = 2  # the external schema, then the load
HOOK_SECONDS = HOOK_STATEMENTS * (CALL_BUDGET_SECONDS + MAX_POLLS * (POLL_SECONDS + CALL_BUDGET_SECONDS))
"""The worst case of the load step, added to every pipeline's execution timeout."""
STATEMENT_NAME = "etl-platform-warehouse-load"


def copy_role_policy(
    curated_arn: str, key_arn: str, region: str, partition: str, account_id: str, catalog_database: str
) -> policies.PolicyDocument:
    """The COPY role: list and read curated's published partitions (nothing under its `_` folders), decrypt them
    through S3, and read the catalog database's tables and partitions (the external schema)."""
    prefix = layout.PARTITIONS
    glue = f"arn:{partition}:glue:{region}:{account_id}"
    return policies.document(
        policies.allow(["s3:GetObject"], [f"{curated_arn}/{prefix}*"], sid="ReadCuratedPartitions"),
        policies.allow(
            ["s3:ListBucket"],
            [curated_arn],
            sid="ListCuratedPartitions",
            Condition={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        ),
        policies.key_use(key_arn, via=["s3"], region=region, encrypt=False),
        policies.allow(
            [
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetTables",
                "glue:GetPartition",
                "glue:GetPartitions",
                "glue:BatchGetPartition",
            ],
            [f"{glue}:catalog", f"{glue}:database/{catalog_database}", f"{glue}:table/{catalog_database}/*"],
            sid="ReadCatalogDatabase",
        ),
    )


@dataclasses.dataclass(frozen=True)
class WarehouseArgs:
    prefix: str
    """`<project>-<stack>`: names the namespace and workgroup."""
    sizes: Warehouse
    key_arn: pulumi.Output[str]
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]
    region: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    curated: BucketRef
    catalog_database: pulumi.Output[str]
    stateful: pulumi.ResourceOptions = dataclasses.field(default_factory=pulumi.ResourceOptions)
    """Protection of the namespace (it holds the data): protected and retained in prod."""

    def __post_init__(self) -> None:
        if not self.sizes.enabled:
            raise ValueError("WarehouseArgs: the warehouse engine is 'none'; build no Warehouse")
        if len(self.private_subnet_ids) < REDSHIFT_MIN_AZS:
            raise ValueError(
                f"WarehouseArgs.private_subnet_ids: Redshift Serverless needs subnets in at least {REDSHIFT_MIN_AZS} "
                f"AZs, got {len(self.private_subnet_ids)} (set network.azCount: {REDSHIFT_MIN_AZS})"
            )
        if self.sizes.max_capacity < self.sizes.base_capacity:
            raise ValueError(
                f"WarehouseArgs.sizes: max_capacity {self.sizes.max_capacity} is below base_capacity "
                f"{self.sizes.base_capacity}"
            )


class RedshiftWarehouse(pulumi.ComponentResource):
    refs: WarehouseRefs

    def __init__(self, name: str, args: WarehouseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("etl:foundation:Warehouse", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        sizes = args.sizes
        copy_role = service_role(
            f"{name}-copy-role",
            policy_name=f"{name}-copy-policy",
            service="redshift.amazonaws.com",
            account_id=args.account_id,
            description="Redshift Serverless: COPY from curated and the external schema over the Data Catalog",
            policy=pulumi.Output.all(
                args.curated.arn, args.key_arn, args.partition, args.account_id, args.catalog_database
            ).apply(
                lambda values: json.dumps(
                    copy_role_policy(values[0], values[1], args.region, values[2], values[3], values[4])
                )
            ),
            parent=self,
        )
        self.namespace = aws.redshiftserverless.Namespace(
            f"{name}-namespace",
            namespace_name=args.prefix,
            db_name=DATABASE,
            admin_username=ADMIN_USERNAME,
            manage_admin_password=True,
            admin_password_secret_kms_key_id=args.key_arn,
            kms_key_id=args.key_arn,
            log_exports=list(LOG_EXPORTS),
            iam_roles=[copy_role.role.arn],
            default_iam_role_arn=copy_role.role.arn,
            opts=pulumi.ResourceOptions.merge(args.stateful, pulumi.ResourceOptions(parent=self)),
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="Redshift Serverless workgroup: no inbound traffic (the Data API needs none); HTTPS out",
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-https-out",
            security_group_id=self.security_group.id,
            description="HTTPS to S3 (the gateway endpoint) and AWS APIs, as enhanced VPC routing sends COPY",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
            opts=child,
        )
        self.workgroup = aws.redshiftserverless.Workgroup(
            f"{name}-workgroup",
            workgroup_name=args.prefix,
            namespace_name=self.namespace.namespace_name,
            # AWS's default is 128 RPU (about $48 an hour while queries run); the setting's default is 8.
            base_capacity=sizes.base_capacity,
            max_capacity=sizes.max_capacity,
            enhanced_vpc_routing=True,
            publicly_accessible=False,
            subnet_ids=list(args.private_subnet_ids),
            security_group_ids=[self.security_group.id],
            config_parameters=[
                aws.redshiftserverless.WorkgroupConfigParameterArgs(parameter_key="require_ssl", parameter_value="true")
            ],
            opts=child,
        )
        self.usage_limit = aws.redshiftserverless.UsageLimit(
            f"{name}-usage-limit",
            resource_arn=self.workgroup.arn,
            usage_type="serverless-compute",
            amount=sizes.usage_limit_rpu_hours,
            period=sizes.usage_period.value,
            breach_action=sizes.breach_action.value,
            opts=child,
        )
        self.refs = WarehouseRefs(
            workgroup_name=self.workgroup.workgroup_name,
            workgroup_arn=self.workgroup.arn,
            database=DATABASE,
            admin_secret_arn=self.namespace.admin_password_secret_arn,
            curated_partitions=args.curated.uri(layout.PARTITIONS),
            catalog_database=args.catalog_database,
        )
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace.namespace_name,
            "workgroup": self.workgroup.workgroup_name,
            "database": DATABASE,
            "adminSecretArn": self.namespace.admin_password_secret_arn,
        }


# ---------------------------------------------------------------------------------------------------------------------
# The load step every pipeline runs after its load stage
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WarehouseLoad(PipelineHooks):
    """After the pipeline's load: the external schema, then COPY + MERGE into `public.orders`, each submitted
    through the Data API and polled (`POLL_SECONDS` apart, at most `MAX_POLLS` times). A statement that fails, is
    aborted, or outlasts its polls goes to the pipeline's failed-step alert."""

    workgroup_name: str
    workgroup_arn: str
    database: str
    secret_arn: str
    key_arn: str
    curated_partitions: str
    catalog_database: str
    partition: str = "aws"

    def after(self, stage: Stage, next_state: str) -> tuple[asl.State, ...]:
        if stage is not Stage.LOAD:
            return ()
        schema = queries.warehouse_statement(
            queries.EXTERNAL_SCHEMA, catalog_database=self.catalog_database, external_schema=EXTERNAL_SCHEMA
        )
        load = [queries.warehouse_statement(name, curated_partitions=self.curated_partitions) for name in queries.LOAD]
        loaded = self._statement("WarehouseLoad", load, next_state)
        return (*self._statement("WarehouseSchema", [schema], loaded[0].name), *loaded)

    def hook_seconds(self) -> int:
        return HOOK_SECONDS

    def _statement(self, name: str, sqls: Sequence[str], next_state: str) -> list[asl.State]:
        """Submit `sqls`, then wait, describe, and decide until the statement is done."""
        status, polls = f"$.{_snake(name)}_status.Status", f"$.{_snake(name)}.Polls"
        submitted = f"$.{_snake(name)}"
        return [
            asl.redshift_data_execute(
                name,
                workgroup_arn=self.workgroup_arn,
                workgroup_name=self.workgroup_name,
                database=self.database,
                secret_arn=self.secret_arn,
                key_arn=self.key_arn,
                sqls=sqls,
                statement_name=STATEMENT_NAME,
                result_selector={"Id.$": "$.Id", "Polls": 0},
                result_path=submitted,
                timeout_seconds=CALL_BUDGET_SECONDS,
                next=f"{name}Wait",
            ),
            asl.Wait(name=f"{name}Wait", seconds=POLL_SECONDS, next=f"{name}Check"),
            asl.redshift_data_describe(
                f"{name}Check",
                id_path=f"{submitted}.Id",
                partition=self.partition,
                result_selector={"Status.$": "$.Status"},
                result_path=f"$.{_snake(name)}_status",
                timeout_seconds=CALL_BUDGET_SECONDS,
                next=f"{name}Done",
            ),
            asl.Choice(
                name=f"{name}Done",
                comment="FINISHED goes on; FAILED or ABORTED alerts; otherwise poll again, a bounded number of times",
                choices=(
                    asl.ChoiceRule(asl.StringEquals(status, "FINISHED"), next_state),
                    asl.ChoiceRule(
                        asl.Or(asl.StringEquals(status, "FAILED"), asl.StringEquals(status, "ABORTED")),
                        f"{name}Failed",
                    ),
                    asl.ChoiceRule(asl.NumericGreaterThan(polls, MAX_POLLS - 1), f"{name}Failed"),
                ),
                default=f"{name}Count",
            ),
            asl.Pass(
                name=f"{name}Count",
                parameters={"Id.$": f"{submitted}.Id", "Polls.$": f"States.MathAdd({polls}, 1)"},
                result_path=submitted,
                next=f"{name}Wait",
            ),
            asl.Pass(
                name=f"{name}Failed",
                parameters={
                    "Error": "WarehouseStatementFailed",
                    "Cause.$": f"States.Format('Redshift Data API statement {{}} ended {{}} after {{}} polls; see "
                    f"describe-statement for its error', {submitted}.Id, {status}, {polls})",
                },
                result_path="$.error",
                next=FAILED_STEP,
            ),
        ]


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def warehouse_load(
    refs: WarehouseRefs, key_arn: pulumi.Output[str], partition: pulumi.Output[str]
) -> pulumi.Output[WarehouseLoad]:
    """The load step with the warehouse's ARNs resolved (bind it where the pipeline's runners are bound)."""
    return pulumi.Output.all(
        refs.workgroup_name,
        refs.workgroup_arn,
        refs.admin_secret_arn,
        key_arn,
        refs.curated_partitions,
        refs.catalog_database,
        partition,
    ).apply(
        lambda values: WarehouseLoad(
            workgroup_name=values[0],
            workgroup_arn=values[1],
            database=refs.database,
            secret_arn=values[2],
            key_arn=values[3],
            curated_partitions=values[4],
            catalog_database=values[5],
            partition=values[6],
        )
    )
