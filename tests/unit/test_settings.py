"""The typed stack config: valid files load with profile defaults; every mistake is one clear RunError."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.registry import ARCHITECTURES, Registry
from components.settings import (
    CapacityProvider,
    ConfigError,
    Environment,
    NatGateways,
    NetworkSettings,
    ReplicationSettings,
    StackConfig,
    load_settings,
    validate_schedule,
)
from components.stages import Stage
from etlctl.stack_config import load_stack_config
from tests.support.config_cases import CONFIG_MISTAKES
from tests.support.stacks import ROOT, STACKS


def raw(**keys: Any) -> dict[str, str]:
    """A minimal valid dev config plus overrides; values are encoded as the engine passes them."""
    values: dict[str, Any] = {"aws:region": "eu-west-1", "environment": "dev", **keys}
    return {
        (k if ":" in k else f"etl-platform:{k}"): (v if isinstance(v, str) else json.dumps(v))
        for k, v in values.items()
        if v is not None
    }


def load(registry: Registry | None = None, **keys: Any):  # type: ignore[no-untyped-def]
    return load_settings(raw(**keys), project="etl-platform", stack="dev", architectures=registry)


def error_of(registry: Registry | None = None, **keys: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load(registry, **keys)
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
    prod = load(environment="prod", replication={"region": "eu-central-1"})
    assert prod.environment is Environment.PROD
    assert prod.nat_gateways is NatGateways.PER_AZ and prod.profile.protect and prod.profile.retain_on_delete
    assert prod.audit_log_retention_days >= 365
    assert prod.code_signing and prod.replication and not (dev.code_signing or dev.replication)
    replica = {"region": "eu-central-1"}
    assert load(environment="prod", replication=replica, logRetentionDays=731).log_retention_days == 731
    assert (
        load(environment="prod", replication=replica, network={"natGateways": "single"}).nat_gateways
        is NatGateways.SINGLE
    )
    assert not load(environment="prod", codeSigning=False, replication={"enabled": False}).replication


def test_default_tags_merge_the_profile_and_the_tags_key() -> None:
    tags = load(tags={"CostCenter": "42", "Environment": "override"}).default_tags
    assert tags["Project"] == "etl-platform" and tags["Stack"] == "dev" and tags["CostCenter"] == "42"
    assert tags["Environment"] == "override"


def test_selected_architecture_without_settings_gets_defaults() -> None:
    settings = load(architectures=["containers"])
    containers = settings.architecture_settings("containers")
    assert containers.build_on_preview is False and containers.cpu == 512


@pytest.mark.parametrize(("keys", "expected"), CONFIG_MISTAKES)
def test_config_mistakes_name_the_key_value_and_what_is_allowed(keys: dict[str, Any], expected: str) -> None:
    message = error_of(**keys)
    assert "stack 'dev' (Pulumi.dev.yaml)" in message
    assert expected in message


def test_reserved_architecture_is_not_available_yet() -> None:
    registry = Registry({"containers": ARCHITECTURES["containers"], "glue": None})
    message = error_of(registry, architectures=["glue"])
    assert "etl-platform:architectures: 'glue' is not available yet in this version; available: containers." in message
    assert "etl-platform:glue: 'glue' is not available yet in this version, so it takes no settings." in error_of(
        registry, glue={"schedule": "rate(1 hour)"}
    )


def test_a_registered_architecture_whose_module_is_broken_fails_loudly() -> None:
    """A typo in an import path is a bug, not an architecture "not available yet"."""
    registry = Registry({"containers": "components.architectures.no_such_module:Containers"})
    with pytest.raises(ModuleNotFoundError):
        load(registry, architectures=["containers"])


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


def test_staging_runs_prods_architectures_and_runners_at_smaller_sizes() -> None:
    """prod's orchestration path (transform and load on Fargate through runTask.sync) must run in staging first."""
    staging, prod = (
        load_settings(load_stack_config(ROOT, name).values, project="etl-platform", stack=name)
        for name in ("staging", "prod")
    )
    assert staging.architectures == prod.architectures
    runners = [s.architecture_settings("stepfunctions").runners.by_stage() for s in (staging, prod)]
    assert runners[0] == runners[1]
    small, large = staging.architecture_settings("containers"), prod.architecture_settings("containers")
    for stage in Stage:
        assert small.size(stage).cpu <= large.size(stage).cpu and small.size(stage).memory <= large.size(stage).memory
    assert small.size(Stage.TRANSFORM).memory < large.size(Stage.TRANSFORM).memory
    assert staging.architecture_settings("serverless").memory_mb < prod.architecture_settings("serverless").memory_mb
    assert small.platform == large.platform, "the same image platform as prod"


def test_every_hardening_setting_states_its_monthly_cost() -> None:
    fields = {
        "ownsCatalogEncryption": StackConfig.model_fields["owns_catalog_encryption"],
        "lambdaConcurrencyQuota": StackConfig.model_fields["lambda_concurrency_quota"],
        "codeSigning": StackConfig.model_fields["code_signing"],
        "replication.enabled": ReplicationSettings.model_fields["enabled"],
        "network.flowLogAggregationSeconds": NetworkSettings.model_fields["flow_log_aggregation_seconds"],
    }
    for key, field in fields.items():
        description = field.description or ""
        assert "$" in description or "No cost" in description, f"{key} does not state its cost"
