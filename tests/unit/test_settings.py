"""The typed stack config: valid files load with profile defaults; every mistake is one clear RunError."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.settings import (
    ArchitectureName,
    CapacityProvider,
    ConfigError,
    Environment,
    NatGateways,
    load_settings,
    validate_schedule,
)
from etlctl.stack_config import load_stack_config
from tests.conftest import ROOT, STACKS

ALL = frozenset(ArchitectureName)


def raw(**keys: Any) -> dict[str, str]:
    """A minimal valid dev config plus overrides; values are encoded as the engine passes them."""
    values: dict[str, Any] = {"aws:region": "eu-west-1", "environment": "dev", **keys}
    return {
        (k if ":" in k else f"etl-platform:{k}"): (v if isinstance(v, str) else json.dumps(v))
        for k, v in values.items()
        if v is not None
    }


def load(available: frozenset[ArchitectureName] = ALL, **keys: Any):  # type: ignore[no-untyped-def]
    return load_settings(raw(**keys), project="etl-platform", stack="dev", available=available)


def error_of(available: frozenset[ArchitectureName] = ALL, **keys: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load(available, **keys)
    assert isinstance(caught.value, pulumi.RunError), "config errors must print without a traceback"
    return str(caught.value)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_loads(stack: str) -> None:
    config = load_stack_config(ROOT, stack)
    settings = load_settings(config.values, project="etl-platform", stack=stack)
    assert settings.environment.value == stack
    assert settings.region == "eu-west-1"


def test_empty_architecture_list_is_the_foundation_alone() -> None:
    assert load(architectures=[]).architectures == []


def test_profiles_fill_defaults_and_keys_override_them() -> None:
    dev = load()
    assert dev.nat_gateways is NatGateways.NONE
    assert dev.log_retention_days == 14
    assert dev.profile.protect is False and dev.profile.fargate_capacity is CapacityProvider.FARGATE_SPOT
    prod = load(environment="prod")
    assert prod.environment is Environment.PROD
    assert prod.nat_gateways is NatGateways.PER_AZ and prod.profile.protect and prod.profile.retain_on_delete
    assert prod.audit_log_retention_days >= 365
    assert load(environment="prod", logRetentionDays=731, network={"natGateways": "single"}).log_retention_days == 731
    assert load(environment="prod", network={"natGateways": "single"}).nat_gateways is NatGateways.SINGLE


def test_default_tags_merge_the_profile_and_the_tags_key() -> None:
    tags = load(tags={"CostCenter": "42", "Environment": "override"}).default_tags
    assert tags["Project"] == "etl-platform" and tags["Stack"] == "dev" and tags["CostCenter"] == "42"
    assert tags["Environment"] == "override"


def test_selected_architecture_without_settings_gets_defaults() -> None:
    settings = load(architectures=["containers"])
    containers = settings.architecture_settings(ArchitectureName.CONTAINERS)
    assert containers.build_on_preview is False and containers.cpu == 512


CONFIG_MISTAKES: list[tuple[dict[str, Any], str]] = [
        ({"environment": "dve"}, "etl-platform:environment: 'dve' is not allowed. Did you mean 'dev'?"),
        ({"environment": None}, "etl-platform:environment: required, but not set."),
        ({"architectures": ["serverles"]}, "etl-platform:architectures[0]: 'serverles' is not allowed. Did you mean 'serverless'?"),
        ({"architectures": "serverless"}, "etl-platform:architectures: 'serverless' is invalid: Input should be a valid list"),
        ({"architectures": ["containers", "containers"]}, "'containers' is listed twice"),
        ({"logRetentionDays": 45}, "etl-platform:logRetentionDays: 45 is not a retention CloudWatch Logs accepts (nearest: 30)"),
        ({"logRetentionDays": "forever"}, "etl-platform:logRetentionDays: 'forever' is invalid: Input should be a valid integer"),
        ({"alertEmails": ["oncall@example"]}, "etl-platform:alertEmails[0]: 'oncall@example' is not an e-mail address"),
        ({"network": {"azCount": 5}}, "etl-platform:network.azCount: 5 is invalid: Input should be less than or equal to 3"),
        ({"network": {"azCount": "two"}}, "etl-platform:network.azCount: 'two' is invalid: Input should be a valid integer"),
        ({"network": {"cidr": "10.0.0.0/8"}}, "etl-platform:network.cidr: '10.0.0.0/8': a VPC CIDR must be between /16 and /24"),
        ({"network": {"cidr": "300.1.0.0/16"}}, "etl-platform:network.cidr: '300.1.0.0/16' is not an IPv4 CIDR block"),
        ({"network": {"natGateway": "single"}}, "etl-platform:network.natGateway: unknown key. Did you mean 'natGateways'?"),
        ({"network": {"natGateways": "one"}}, "etl-platform:network.natGateways: 'one' is not allowed. Did you mean 'none'? Allowed: none, single, per-az."),
        ({"tagz": {"a": "b"}}, "etl-platform:tagz: unknown key. Did you mean 'tags'?"),
        ({"tags": {"aws:owner": "x"}}, "tag key 'aws:owner' must be 1-128 characters and not start with 'aws:'"),
        ({"aws:region": None}, "aws:region: required, but not set."),
        ({"aws:region": "europe"}, "aws:region: 'europe' is not an AWS region name"),
        ({"containers": {"cpu": 512}}, "etl-platform:containers: settings for 'containers', which is not selected"),
        ({"architectures": ["containers"], "containers": {"schedule": "rate(5 minute)"}}, "etl-platform:containers.schedule: 'rate(5 minute)': AWS wants the plural unit above 1"),
        ({"architectures": ["containers"], "containers": {"cpu": 256, "memory": 4096}}, "memory 4096 does not fit cpu 256 on Fargate; allowed: 512-2048 in steps of 512"),
        ({"architectures": ["containers"], "containers": {"buildOnPreveiw": True}}, "etl-platform:containers.buildOnPreveiw: unknown key. Did you mean 'buildOnPreview'?"),
        ({"architectures": ["containers"], "containers": {"buildOnPreview": "sometimes"}}, "etl-platform:containers.buildOnPreview: 'sometimes' is invalid: Input should be a valid boolean"),
        ({"architectures": ["stepfunctions"], "stepfunctions": {"engines": {"transform": "containers"}}}, "etl-platform:stepfunctions.engines.transform: engine 'containers' is not selected in etl-platform:architectures"),
        ({"architectures": ["stepfunctions"], "stepfunctions": {"maxQuarantineRate": 1.5}}, "etl-platform:stepfunctions.maxQuarantineRate: 1.5 is invalid: Input should be less than or equal to 1"),
        ({"architectures": ["serverless"], "serverless": {"timeoutSeconds": 1200}}, "etl-platform:serverless.timeoutSeconds: 1200 is invalid: Input should be less than or equal to 900"),
]  # fmt: skip


@pytest.mark.parametrize(("keys", "expected"), CONFIG_MISTAKES)
def test_config_mistakes_name_the_key_value_and_what_is_allowed(keys: dict[str, Any], expected: str) -> None:
    message = error_of(**keys)
    assert "stack 'dev' (Pulumi.dev.yaml)" in message
    assert expected in message


def test_reserved_architecture_is_not_available_yet() -> None:
    message = error_of(available=frozenset({ArchitectureName.CONTAINERS}), architectures=["glue"])
    assert "etl-platform:architectures: 'glue' is not available yet in this version; available: containers." in message


def test_every_mistake_is_reported_at_once() -> None:
    message = error_of(environment="qa", logRetentionDays=2, network={"azCount": 1})
    assert "has 3 config errors" in message
    assert message.count("\n  - ") == 3


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 hour)",
        "rate(5 minutes)",
        "rate(2 days)",
        "cron(0 2 * * ? *)",
        "cron(15 10 ? * MON-FRI *)",
        "cron(0/15 * * * ? *)",
    ],
)
def test_valid_schedules(expression: str) -> None:
    assert validate_schedule(expression) == expression


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("rate(0 minutes)", "a rate must be at least 1"),
        ("rate(1 hours)", "AWS wants the singular unit for 1"),
        ("rate(3 weeks)", "is not a schedule"),
        ("cron(0 2 * * *)", "cron takes 6 fields"),
        ("cron(0 2 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 2 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("every day", "is not a schedule"),
    ],
)
def test_invalid_schedules(expression: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        validate_schedule(expression)
