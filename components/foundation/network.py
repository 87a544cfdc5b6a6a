"""Network: the VPC that private workloads (Fargate tasks, later Glue/EMR/Aurora) run in.

Private subnets over `az_count` AZs (no public IPs, EC2.15), one route table each, S3 and DynamoDB gateway endpoints on
every private route table (free, EC2.10), NAT per `nat_gateways` (`none`: no internet at all; `single`; `per-az`),
interface endpoints for the services a NAT-less VPC still needs, VPC flow logs of ALL traffic (EC2.6) delivered to
the stack's log bucket as hourly, Hive-partitioned Parquet at the configured aggregation interval, and the default
security group adopted with no rules (EC2.2).

Flow logs go to S3, not CloudWatch Logs: vended-log delivery to S3 costs about half of CloudWatch ingestion, Parquet
is a fraction of the size and is queried with Athena without an export, and a 600 s aggregation interval writes up to
ten times fewer records than 60 s for the same connections. The log bucket's lifecycle keeps them for the audit
retention (a year in prod), as the log group did.

Takes: `NetworkArgs`. Exposes: `network` (`NetworkRefs`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.refs import NetworkRefs
from components.settings import NatGateways


def subnet_cidrs(cidr: str, az_count: int) -> tuple[list[str], list[str]]:
    """Split the VPC into four equal blocks: private subnets take the first `az_count`, the last holds the small
    public subnets that only NAT gateways use."""
    blocks = list(ipaddress.IPv4Network(cidr).subnets(prefixlen_diff=2))
    private = [str(block) for block in blocks[:az_count]]
    public = [str(block) for block in list(blocks[3].subnets(prefixlen_diff=2))[:az_count]]
    return private, public


@dataclasses.dataclass(frozen=True)
class NetworkArgs:
    cidr: str
    az_count: int
    nat_gateways: NatGateways
    region: str
    flow_log_bucket_arn: pulumi.Input[str]
    """The log bucket the flow logs are delivered to; its policy must admit `delivery.logs.amazonaws.com`."""
    flow_log_prefix: str = "vpc-flow-logs/"
    flow_log_aggregation_seconds: int = 600
    """60 or 600: how long flow log records aggregate before delivery."""
    flow_log_after: Sequence[pulumi.Resource] = ()
    """What the delivery must wait for (the log bucket's policy)."""
    interface_endpoints: Sequence[str] = ()
    """Service names (e.g. `ecr.api`, `logs`) given private endpoints, for workloads in a VPC without NAT."""


class Network(pulumi.ComponentResource):
    network: NetworkRefs

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("etl:foundation:Network", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        zones = aws.get_availability_zones_output(state="available", opts=invoke)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[], opts=child)

        private_cidrs, public_cidrs = subnet_cidrs(args.cidr, args.az_count)
        private_subnets: list[aws.ec2.Subnet] = []
        route_tables: list[aws.ec2.RouteTable] = []
        for index, block in enumerate(private_cidrs):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                cidr_block=block,
                availability_zone=zones.names[index],
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{index}", "Tier": "private"},
                opts=child,
            )
            table = aws.ec2.RouteTable(
                f"{name}-private-{index}-routes", vpc_id=vpc.id, tags={"Name": f"{name}-private-{index}"}, opts=child
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}-routes", subnet_id=subnet.id, route_table_id=table.id, opts=child
            )
            private_subnets.append(subnet)
            route_tables.append(table)

        gateways: dict[str, aws.ec2.VpcEndpoint] = {}
        for service in ("s3", "dynamodb"):
            gateways[service] = aws.ec2.VpcEndpoint(
                f"{name}-{service}-endpoint",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Gateway",
                route_table_ids=[table.id for table in route_tables],
                tags={"Name": f"{name}-{service}"},
                opts=child,
            )

        if args.nat_gateways is not NatGateways.NONE:
            self._nat(name, vpc, zones, public_cidrs, route_tables, args.nat_gateways)

        endpoint_sg: aws.ec2.SecurityGroup | None = None
        if args.interface_endpoints:
            endpoint_sg = aws.ec2.SecurityGroup(
                f"{name}-endpoints-sg",
                vpc_id=vpc.id,
                description="Interface endpoints: HTTPS from inside the VPC only",
                opts=child,
            )
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-endpoints-https",
                security_group_id=endpoint_sg.id,
                description="HTTPS from workloads in this VPC",
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4=args.cidr,
                opts=child,
            )
            for service in args.interface_endpoints:
                aws.ec2.VpcEndpoint(
                    f"{name}-{service.replace('.', '-')}-endpoint",
                    vpc_id=vpc.id,
                    service_name=f"com.amazonaws.{args.region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[subnet.id for subnet in private_subnets],
                    security_group_ids=[endpoint_sg.id],
                    tags={"Name": f"{name}-{service}"},
                    opts=child,
                )

        self._flow_logs(name, vpc, args)

        self.network = NetworkRefs(
            vpc_id=vpc.id,
            cidr=args.cidr,
            private_subnet_ids=[subnet.id for subnet in private_subnets],
            has_nat=args.nat_gateways is not NatGateways.NONE,
            s3_prefix_list_id=gateways["s3"].prefix_list_id,
            endpoint_security_group_id=endpoint_sg.id if endpoint_sg is not None else None,
        )
        self.register_outputs({"vpcId": vpc.id, "privateSubnetIds": [subnet.id for subnet in private_subnets]})

    def _nat(
        self,
        name: str,
        vpc: aws.ec2.Vpc,
        zones: pulumi.Output[aws.GetAvailabilityZonesResult],
        public_cidrs: list[str],
        route_tables: list[aws.ec2.RouteTable],
        mode: NatGateways,
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_table = aws.ec2.RouteTable(f"{name}-public-routes", vpc_id=vpc.id, opts=child)
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_table.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=child,
        )
        count = len(route_tables) if mode is NatGateways.PER_AZ else 1
        nats: list[aws.ec2.NatGateway] = []
        for index in range(count):
            # Only the NAT gateway lives here, so instances never get public IPs even in the public tier.
            subnet = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=vpc.id,
                cidr_block=public_cidrs[index],
                availability_zone=zones.names[index],
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{index}", "Tier": "public"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}-routes", subnet_id=subnet.id, route_table_id=public_table.id, opts=child
            )
            address = aws.ec2.Eip(f"{name}-nat-{index}", domain="vpc", opts=child)
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{index}",
                    subnet_id=subnet.id,
                    allocation_id=address.id,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
                )
            )
        for index, table in enumerate(route_tables):
            aws.ec2.Route(
                f"{name}-private-{index}-default",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nats[index % count].id,
                opts=child,
            )

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, args: NetworkArgs) -> None:
        if args.flow_log_aggregation_seconds not in (60, 600):
            raise ValueError(f"flow_log_aggregation_seconds must be 60 or 600, got {args.flow_log_aggregation_seconds}")
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="s3",
            log_destination=pulumi.Output.concat(args.flow_log_bucket_arn, "/", args.flow_log_prefix),
            destination_options=aws.ec2.FlowLogDestinationOptionsArgs(
                file_format="parquet", hive_compatible_partitions=True, per_hour_partition=True
            ),
            max_aggregation_interval=args.flow_log_aggregation_seconds,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.flow_log_after)),
        )
