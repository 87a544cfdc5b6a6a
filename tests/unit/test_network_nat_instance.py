"""The network's `instance` NAT mode (dev's cheap egress), built from its args: one hardened t4g.nano in a public
subnet that every private route table sends its default route to, and no NAT gateway. What only AWS shows (the
instance forwarding traffic once its user data ran) is not checked here; the user data's commands are."""

from __future__ import annotations

from pathlib import Path

import pulumi

from components.foundation.network import Network, NetworkArgs
from components.settings import NatGateways
from etlctl.mocks import Registration
from tests.support.components import register
from tests.support.stacks import evaluate_config

CIDR = "10.40.0.0/16"


def network(mode: NatGateways) -> list[Registration]:
    def program() -> None:
        args = NetworkArgs(
            cidr=CIDR,
            az_count=2,
            nat_gateways=mode,
            region="eu-west-1",
            flow_log_bucket_arn=pulumi.Output.from_input("arn:aws:s3:::logs"),
        )
        Network("net", args)

    return register(program)


def of_type(registrations: list[Registration], token: str) -> list[Registration]:
    return [r for r in registrations if r.type == token]


def test_one_hardened_nat_instance_and_no_gateway() -> None:
    built = network(NatGateways.INSTANCE)
    assert not of_type(built, "aws:ec2/natGateway:NatGateway") and not of_type(built, "aws:ec2/eip:Eip")
    (instance,) = of_type(built, "aws:ec2/instance:Instance")
    inputs = instance.inputs
    assert inputs["instanceType"] == "t4g.nano"
    assert inputs["sourceDestCheck"] is False and inputs["associatePublicIpAddress"] is True
    assert inputs["metadataOptions"]["httpTokens"] == "required"
    assert inputs["rootBlockDevice"] == {"volumeSize": 8, "volumeType": "gp3", "encrypted": True}
    assert "keyName" not in inputs
    (public,) = [s for s in of_type(built, "aws:ec2/subnet:Subnet") if s.inputs["tags"]["Tier"] == "public"]
    assert (
        inputs["subnetId"] == public.outputs.get("id", inputs["subnetId"])
        and public.inputs["mapPublicIpOnLaunch"] is False
    )
    (template,) = of_type(built, "aws:ec2/launchTemplate:LaunchTemplate")
    assert template.inputs["imageId"].startswith("resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-")
    assert template.inputs["imageId"].endswith("-arm64")  # t4g is Graviton
    for command in ("net.ipv4.ip_forward = 1", "MASQUERADE", "systemctl enable --now iptables"):
        assert command in inputs["userData"]


def test_private_subnets_route_out_through_the_instance_and_only_https_leaves() -> None:
    built = network(NatGateways.INSTANCE)
    (instance,) = of_type(built, "aws:ec2/instance:Instance")
    defaults = [r for r in of_type(built, "aws:ec2/route:Route") if "private" in r.name]
    assert len(defaults) == 2
    assert all(r.inputs["destinationCidrBlock"] == "0.0.0.0/0" and instance.urn in r.dependencies for r in defaults)
    (ingress,) = [
        r for r in of_type(built, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if "nat" in r.name
    ]
    assert ingress.inputs["cidrIpv4"] == CIDR
    (egress,) = [
        r for r in of_type(built, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") if "nat" in r.name
    ]
    assert (egress.inputs["fromPort"], egress.inputs["toPort"], egress.inputs["ipProtocol"]) == (443, 443, "tcp")


def test_other_modes_build_no_instance() -> None:
    for mode in (NatGateways.NONE, NatGateways.SINGLE):
        assert not of_type(network(mode), "aws:ec2/instance:Instance"), mode


def test_with_a_nat_instance_the_stack_declares_no_interface_endpoints(tmp_path: Path) -> None:
    """The endpoints exist for private workloads without egress; with the instance, containers needs none."""
    config = {
        "aws:region": "eu-west-1",
        "etl-platform:environment": "dev",
        "etl-platform:architectures": ["containers"],
        "etl-platform:containers": {"schedule": "cron(0 3 * * ? *)", "buildOnPreview": False},
        "etl-platform:network": {"natGateways": "instance"},
    }
    endpoints = of_type(evaluate_config(tmp_path, config).resources, "aws:ec2/vpcEndpoint:VpcEndpoint")
    assert {e.inputs["vpcEndpointType"] for e in endpoints} == {"Gateway"}
