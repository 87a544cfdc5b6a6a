"""The program as an importable function: what `__main__.py`, the Automation API and the tests all run."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.architectures.base import Architecture, ArchitectureArgs
from components.foundation.foundation import Foundation, FoundationArgs
from components.registry import REGISTRY
from components.runners import StageRunner
from components.settings import NatGateways, StackSettings, load_settings


def build_stack(settings: StackSettings | None = None) -> dict[str, Any]:
    """Register every resource of the stack and return its outputs."""
    settings = settings or load_settings()
    provider = aws.Provider(
        "aws",
        region=settings.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=settings.default_tags),
    )
    under_provider = pulumi.ResourceOptions(providers={"aws": provider})
    # The second explicit provider: the replica region's resources name it, everything else the first.
    replica = (
        aws.Provider(
            "aws-replica",
            region=settings.config.replication.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=settings.default_tags),
        )
        if settings.replication
        else None
    )

    classes = {name: REGISTRY.architecture_class(name) for name in settings.architectures}
    endpoints: set[str] = set()
    # Without NAT, private workloads reach AWS APIs only through endpoints: give them the ones they declare.
    if settings.nat_gateways is NatGateways.NONE:
        for name, cls in classes.items():
            endpoints.update(cls.endpoints(settings.architecture_settings(name)))
    # Some workloads may not leave the VPC even where NAT exists: their endpoints come in every stack.
    for name, cls in classes.items():
        endpoints.update(cls.private_endpoints(settings.architecture_settings(name), settings.environment))

    foundation = Foundation(
        settings.project,
        FoundationArgs(settings=settings, interface_endpoints=sorted(endpoints), replica_provider=replica),
        opts=under_provider,
    )
    refs = foundation.refs

    built: dict[str, Architecture] = {}
    runners: dict[str, StageRunner] = {}
    # Orchestrators go last: they run stages on the runners the others expose.
    for name in sorted(classes, key=lambda n: (classes[n].orchestrates, settings.architectures.index(n))):
        architecture = classes[name](
            f"{settings.project}-{name}",
            ArchitectureArgs(settings=settings.architecture_settings(name), foundation=refs, runners=dict(runners)),
            opts=under_provider,
        )
        built[name] = architecture
        if architecture.runner is not None:
            runners[name] = architecture.runner

    foundation.monitoring.publish_dashboard(
        f"{settings.project}-{settings.stack}",
        [widget for architecture in built.values() for widget in architecture.widgets],
    )

    lake = refs.lake
    outputs: dict[str, Any] = {
        "environment": settings.environment.value,
        "architectures": list(settings.architectures),
        "keyArn": refs.key.arn,
        # The alerts topic's ARN, and its DLQ's URL and ARN where alerts have subscribers.
        **foundation.monitoring.outputs(),
        "vpcId": refs.network.vpc_id,
        "privateSubnetIds": list(refs.network.private_subnet_ids),
        "buckets": {
            "raw": lake.raw.name,
            "staged": lake.staged.name,
            "curated": lake.curated.name,
            "quarantine": lake.quarantine.name,
            "artifacts": lake.artifacts.name,
            "accessLogs": lake.access_logs.name,
        },
        "catalogDatabase": lake.catalog_database,
    }
    for name, architecture in built.items():
        outputs[name] = architecture.outputs()
    return outputs
