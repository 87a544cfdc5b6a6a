"""The typed stack config: valid files load with profile defaults; every mistake is one line of one clear RunError.

The corpus of whole stack files runs in tests/tooling/test_stack_files.py; these tests call the loader with the
config as the engine hands it over (`namespace:key` -> text or JSON).
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components.architectures.containers import ContainersSettings
from components.registry import ARCHITECTURES, Registry
from components.settings import (
    AWS_REGIONS,
    MANAGED_TAGS,
    PROFILES,
    PROVIDER_NAMESPACES,
    CapacityProvider,
    ConfigError,
    Environment,
    NatGateways,
    NetworkSettings,
    ReplicationSettings,
    StackConfig,
    config_problems,
    load_settings,
)
from components.stages import Stage
from etlctl.stack_config import load_stack_config
from tests.support.stacks import ROOT, STACKS


def raw(**keys: Any) -> dict[str, str]:
    """A minimal valid dev config plus overrides (`aws__region` for `aws:region`); values encoded as the engine
    passes them: text for scalars, JSON for lists and objects. None removes a key."""
    values: dict[str, Any] = {"aws:region": "eu-west-1", "environment": "dev", **keys}
    encoded = {}
    for key, value in values.items():
        full = key.replace("__", ":") if "__" in key else key if ":" in key else f"etl-platform:{key}"
        if value is not None:
            encoded[full] = value if isinstance(value, str) else json.dumps(value)
    return encoded


def load(registry: Registry | None = None, stack: str = "dev", **keys: Any):  # type: ignore[no-untyped-def]
    return load_settings(raw(**keys), project="etl-platform", stack=stack, architectures=registry)


def error_of(
    registry: Registry | None = None, stack: str = "dev", secret_keys: tuple[str, ...] = (), **keys: Any
) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(raw(**keys), project="etl-platform", stack=stack, architectures=registry, secret_keys=secret_keys)
    assert isinstance(caught.value, pulumi.RunError), "config errors must print without a traceback"
    return str(caught.value)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_loads_with_the_profile_it_names(stack: str) -> None:
    config = load_stack_config(ROOT, stack)
    settings = load_settings(config.values, project="etl-platform", stack=stack, secret_keys=config.secret_keys)
    assert settings.environment.value == config.values["etl-platform:environment"]
    assert settings.profile == PROFILES[settings.environment]
    assert settings.region == config.values["aws:region"]


def test_the_profile_is_the_environment_setting_not_the_stack_name() -> None:
    settings = load(
        stack="prod-us", environment="prod", alertEmails=["oncall@example.com"], replication={"region": "eu-central-1"}
    )
    assert settings.environment is Environment.PROD and settings.profile.protect
    assert settings.default_tags["Environment"] == "prod" and settings.default_tags["Stack"] == "prod-us"
    assert load(stack="dev-eu").profile == PROFILES[Environment.DEV]


def test_empty_architecture_list_is_the_foundation_alone() -> None:
    assert load(architectures=[]).architectures == []


def test_profiles_fill_defaults_and_keys_override_them() -> None:
    dev = load()
    assert dev.nat_gateways is NatGateways.NONE
    assert dev.log_retention_days == 14
    assert dev.profile.protect is False and dev.profile.fargate_capacity is CapacityProvider.FARGATE_SPOT
    subscribed = {
        "environment": "prod",
        "alertEmails": ["oncall@example.com"],
        "replication": {"region": "eu-central-1"},
    }
    prod = load(**subscribed)
    assert prod.environment is Environment.PROD
    assert prod.nat_gateways is NatGateways.PER_AZ and prod.profile.protect and prod.profile.retain_on_delete
    assert prod.audit_log_retention_days >= 365
    assert prod.code_signing and prod.replication and not (dev.code_signing or dev.replication)
    assert load(**subscribed, logRetentionDays=731, network={"natGateways": "single"}).log_retention_days == 731
    assert load(**subscribed, network={"natGateways": "single"}).nat_gateways is NatGateways.SINGLE
    assert not load(**{**subscribed, "codeSigning": False, "replication": {"enabled": False}}).replication


def test_prod_needs_someone_to_alert_and_dev_does_not() -> None:
    assert "etl-platform:alertEmails: prod needs at least 1 subscriber" in error_of(environment="prod")
    assert load(alertEmails=[]).config.alert_emails == []


def test_the_tags_key_adds_tags_but_the_program_sets_its_own() -> None:
    tags = load(tags={"CostCenter": "42"}).default_tags
    assert tags["Project"] == "etl-platform" and tags["Stack"] == "dev" and tags["CostCenter"] == "42"
    for managed in MANAGED_TAGS:
        assert f"etl-platform:tags.{managed}: 'x' is invalid: the program sets the '{managed}' tag itself" in error_of(
            tags={managed: "x"}
        )


def test_selected_architecture_without_settings_gets_defaults() -> None:
    settings = load(architectures=["containers"])
    containers = settings.architecture_settings("containers")
    assert containers.build_on_preview is False and containers.cpu == 512


def test_a_stage_override_inherits_what_it_does_not_give() -> None:
    settings = ContainersSettings.model_validate(
        {"cpu": 1024, "memory": 4096, "stages": {"transform": {"memory": 2048}, "load": {"cpu": 2048}}}
    )
    assert (settings.size(Stage.TRANSFORM).cpu, settings.size(Stage.TRANSFORM).memory) == (1024, 2048)
    assert (settings.size(Stage.LOAD).cpu, settings.size(Stage.LOAD).memory) == (2048, 4096)
    assert (settings.size(Stage.EXTRACT).cpu, settings.size(Stage.EXTRACT).memory) == (1024, 4096)


def test_top_level_values_arrive_as_text_and_nested_values_keep_their_type() -> None:
    assert load(logRetentionDays="365").log_retention_days == 365
    message = error_of(network={"azCount": "2"})
    assert (
        "etl-platform:network.azCount: '2' is invalid: Input should be a valid integer; write it without quotes"
        in message
    )


def test_keys_are_read_as_written_only() -> None:
    """camelCase is the key; the Python name would be accepted by no editor and no JSON Schema."""
    assert "etl-platform:log_retention_days: unknown key. Did you mean 'logRetentionDays'?" in error_of(
        log_retention_days=30
    )


def test_the_provider_namespaces_are_the_provider_packages_the_program_depends_on() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    packages = {match[1] for d in dependencies if (match := re.match(r"pulumi-([a-z0-9-]+)", d))}
    assert packages == set(PROVIDER_NAMESPACES)


@pytest.mark.parametrize("namespace", ["aws", "docker", "pulumi"])
def test_keys_of_the_providers_and_the_engine_pass(namespace: str) -> None:
    assert load(**{f"{namespace}__someSetting": "x"}).environment is Environment.DEV


def test_other_namespaces_are_refused_with_the_key_to_write() -> None:
    message = error_of(**{"etl-platfrom__alertEmails": ["a@example.com"], "azure__location": "westeurope"})
    assert (
        "etl-platfrom:alertEmails: unknown namespace 'etl-platfrom' (the program reads etl-platform, aws, docker, "
        "pulumi), so nothing would read this key. Did you mean 'etl-platform:alertEmails'?"
    ) in message
    assert "azure:location: unknown namespace 'azure'" in message and "Did you mean" not in message.split("azure")[-1]


def test_regions_are_the_providers_region_list() -> None:
    assert set(AWS_REGIONS) == {region.value for region in aws.Region}
    for region in ("eu-west-1", "us-east-1", "ap-southeast-7", AWS_REGIONS[-1]):
        assert load(aws__region=region).region == region
    assert "aws:region: 'eu-wast-1' is not an AWS region. Did you mean 'eu-west-1'?" in error_of(
        aws__region="eu-wast-1"
    )
    assert "Allowed: af-south-1," in error_of(aws__region="europe")


def test_secret_values_are_never_printed_and_are_refused_where_they_would_leak() -> None:
    message = error_of(alertEmails="s3cr3t-value", secret_keys=("etl-platform:alertEmails",))
    assert "s3cr3t-value" not in message
    assert (
        "etl-platform:alertEmails: is a secret (`secure:`), but the program passes it to resources as plain text"
        in message
    )
    assert message.count("etl-platform:alertEmails") == 1, "one line for the key, not a type error as well"
    assert load(**{"aws__secretKey": "s3cr3t"}).region == "eu-west-1", "a provider's secrets are the provider's"


def test_the_stack_name_must_fit_the_aws_names_it_becomes_part_of() -> None:
    assert load(stack="prod-us-2", environment="dev").stack == "prod-us-2"
    for stack in ("Prod", "dev.eu", "dev_eu", "-dev"):
        assert f"stack name '{stack}': it is part of AWS names" in error_of(stack=stack)


def test_reserved_architecture_is_not_available_yet() -> None:
    registry = Registry({"containers": ARCHITECTURES["containers"], "glue": None})
    message = error_of(registry, architectures=["glue"])
    assert (
        "etl-platform:architectures[0]: 'glue' is not available yet in this version; available: containers." in message
    )
    assert "etl-platform:glue: 'glue' is not available yet in this version, so it takes no settings." in error_of(
        registry, glue={"schedule": "rate(1 hour)"}
    )


def test_a_registered_architecture_whose_module_is_broken_fails_loudly() -> None:
    """A typo in an import path is a bug, not an architecture "not available yet"."""
    registry = Registry({"containers": "components.architectures.no_such_module:Containers"})
    with pytest.raises(ModuleNotFoundError):
        load(registry, architectures=["containers"])


def test_every_mistake_is_reported_at_once_each_on_one_line_naming_the_file() -> None:
    message = error_of(environment="qa", logRetentionDays=2, network={"azCount": 1}, aws__region="mars-1")
    assert message.startswith("stack 'dev' (Pulumi.dev.yaml) has 4 config errors:\n")
    lines = message.splitlines()[1:]
    assert len(lines) == 4 and all(line.startswith("  - Pulumi.dev.yaml: ") for line in lines)


def test_the_profile_is_checked_even_when_other_keys_are_wrong() -> None:
    message = error_of(environment="prod", logRetentionDays=2)
    assert "etl-platform:logRetentionDays: 2 is invalid" in message and "prod needs at least 1 subscriber" in message


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


def test_config_problems_are_the_lines_load_settings_raises() -> None:
    keys = {"environment": "qa", "tags": {"aws:x": "y"}}
    lines = config_problems(raw(**keys), project="etl-platform", stack="dev")
    assert lines and all(f"  - {line}" in error_of(**keys) for line in lines)
    assert config_problems(raw(), project="etl-platform", stack="dev") == []
