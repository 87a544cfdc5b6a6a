"""Build a component (or any resources) from its args under fresh mocks and record what it registers.

Component tests use this instead of evaluating a whole stack: `registrations = register(lambda: Thing("t", args))`.
`foundation_refs()` gives the frozen refs an architecture receives, made of known values (no foundation is built).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.refs import AlertRefs, BucketRef, FoundationRefs, KeyRefs, LakeRefs, NetworkRefs, StackRefs
from components.settings import PROFILES, Environment
from etlctl.mocks import ACCOUNT_ID, PlatformMocks, RecordingMonitor, Registration

REGION = "eu-west-1"


def register(program: Callable[[], Any], *, preview: bool = False) -> list[Registration]:
    """Run `program` under fresh mocks; every registration it made, in order."""
    mocks = PlatformMocks(region=REGION, preview=preview)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="etl-platform", stack="test", preview=preview, monitor=monitor)
    _sync_await(run_pulumi_func(program))
    return list(monitor.registrations)


def _known(value: str) -> pulumi.Output[str]:
    return pulumi.Output.from_input(value)


def _bucket(zone: str) -> BucketRef:
    name = f"etl-platform-lake-{zone}-0000000"
    return BucketRef(name=_known(name), arn=_known(f"arn:aws:s3:::{name}"))


def foundation_refs(environment: Environment = Environment.DEV) -> FoundationRefs:
    """Refs with fixed, realistic values, as the foundation would hand them over (create inside `register`)."""
    profile = PROFILES[environment]
    return FoundationRefs(
        stack=StackRefs(
            project="etl-platform",
            stack="test",
            environment=environment.value,
            region=REGION,
            account_id=_known(ACCOUNT_ID),
            partition=_known("aws"),
        ),
        profile=profile,
        log_retention_days=profile.log_retention_days,
        audit_log_retention_days=profile.audit_log_retention_days,
        key=KeyRefs(arn=_known(f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/test"), id=_known("test")),
        lake=LakeRefs(
            raw=_bucket("raw"),
            staged=_bucket("staged"),
            curated=_bucket("curated"),
            quarantine=_bucket("quarantine"),
            artifacts=_bucket("artifacts"),
            access_logs=_bucket("access-logs"),
            catalog_database=_known("etl_platform_test_curated"),
            curated_table=_known("orders"),
        ),
        network=NetworkRefs(
            vpc_id=_known("vpc-0test"),
            cidr="10.40.0.0/16",
            private_subnet_ids=[_known("subnet-0a"), _known("subnet-0b")],
            has_nat=False,
            s3_prefix_list_id=_known("pl-6da54004"),
            endpoint_security_group_id=_known("sg-0endpoints"),
        ),
        alerts=AlertRefs(topic_arn=_known(f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:alerts")),
    )


def one(registrations: list[Registration], token: str) -> Registration:
    (found,) = [r for r in registrations if r.type == token]
    return found
