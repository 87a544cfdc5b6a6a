"""Network: the VPC that private workloads (Fargate tasks, later Glue/EMR/Aurora) run in.

Private subnets over `az_count` AZs (no public IPs, EC2.15), one route table each, S3 and DynamoDB gateway endpoints on
every private route table (free, EC2.10), NAT per `nat_gateways` (`none`: no internet at all; `single`; `per-az`;
`instance`: one NAT instance, the cheap egress for dev),
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

NAT_INSTANCE_TYPE = "t4g.nano"
NAT_INSTANCE_VOLUME_GB = 8
"""The AL2023 AMI's own root size."""
NAT_INSTANCE_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
NAT_INSTANCE_USER_DATA = """#!/bin/bash
# NAT: forward and masquerade what the private subnets send out through this instance's public interface.
set -euo pipefail
dnf install -y iptables-services
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-nat.conf
sysctl -p /etc/sysctl.d/90-nat.conf
iface=$(ip route show default | awk '{print $5; exit}')
iptables -t nat -A POSTROUTING -o "$iface" -j MASQUERADE
iptables -F FORWARD
service iptables save
systemctl enable --now iptables
"""


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

        if args.nat_gateways is NatGateways.INSTANCE:
            self._nat_instance(name, vpc, zones, public_cidrs, route_tables, args.cidr)
        elif args.nat_gateways is not NatGateways.NONE:
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

    def _public_tier(
        self, name: str, vpc: aws.ec2.Vpc, zones: pulumi.Output[aws.GetAvailabilityZonesResult], public_cidr: str
    ) -> tuple[aws.ec2.InternetGateway, aws.ec2.Subnet]:
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
        subnet = aws.ec2.Subnet(
            f"{name}-public-0",
            vpc_id=vpc.id,
            cidr_block=public_cidr,
            availability_zone=zones.names[0],
            map_public_ip_on_launch=False,
            tags={"Name": f"{name}-public-0", "Tier": "public"},
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-0-routes", subnet_id=subnet.id, route_table_id=public_table.id, opts=child
        )
        return gateway, subnet

    def _nat_instance(
        self,
        name: str,
        vpc: aws.ec2.Vpc,
        zones: pulumi.Output[aws.GetAvailabilityZonesResult],
        public_cidrs: list[str],
        route_tables: list[aws.ec2.RouteTable],
        cidr: str,
    ) -> None:
        """One t4g.nano translating the private subnets' outbound HTTPS, for a fraction of a NAT gateway's price.

        The trade-off (dev only): one instance in one AZ, no failover, its own bandwidth limit, patched by replacing
        it (the AMI is resolved from the AL2023 public parameter at launch, through the launch template, so an update
        never sees an AMI id drift). Only HTTPS leaves (ECR, CloudWatch Logs and the other AWS APIs); ingress is the
        VPC's own CIDR; IMDSv2 only; the root volume encrypted; the instance gets a public IPv4 address (billed like
        an Elastic IP) and never a key pair or SSH.
        """
        child = pulumi.ResourceOptions(parent=self)
        gateway, subnet = self._public_tier(name, vpc, zones, public_cidrs[0])
        group = aws.ec2.SecurityGroup(
            f"{name}-nat-instance-sg",
            vpc_id=vpc.id,
            description="NAT instance: traffic from the VPC in, HTTPS out",
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-nat-instance-from-vpc",
            security_group_id=group.id,
            description="Everything the private subnets send out",
            ip_protocol="-1",
            cidr_ipv4=cidr,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-nat-instance-https-out",
            security_group_id=group.id,
            description="HTTPS to AWS APIs and package mirrors",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
            opts=child,
        )
        template = aws.ec2.LaunchTemplate(
            f"{name}-nat-instance",
            description="NAT instance: the latest AL2023 arm64 AMI, resolved at launch",
            image_id=f"resolve:ssm:{NAT_INSTANCE_AMI_PARAMETER}",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            opts=child,
        )
        instance = aws.ec2.Instance(
            f"{name}-nat-instance",
            instance_type=NAT_INSTANCE_TYPE,
            launch_template=aws.ec2.InstanceLaunchTemplateArgs(id=template.id, version="$Latest"),
            subnet_id=subnet.id,
            vpc_security_group_ids=[group.id],
            associate_public_ip_address=True,
            source_dest_check=False,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(http_tokens="required", http_endpoint="enabled"),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_size=NAT_INSTANCE_VOLUME_GB, volume_type="gp3", encrypted=True
            ),
            user_data=NAT_INSTANCE_USER_DATA,
            user_data_replace_on_change=True,
            tags={"Name": f"{name}-nat-instance"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
        )
        for index, table in enumerate(route_tables):
            aws.ec2.Route(
                f"{name}-private-{index}-default",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                network_interface_id=instance.primary_network_interface_id,
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
